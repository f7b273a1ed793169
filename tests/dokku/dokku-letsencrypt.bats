#!/usr/bin/env bats
# dokku-certs' letsencrypt plugin inside a real dokku (the dokku lab), against a real Pebble
# (Debian's pebble package, as tests/common/pebble.rs runs it) started in the lab's network
# namespace, where dokku's nginx listens: Pebble's HTTP-01 check reaches nginx on
# 127.0.0.1:80 there, and pebble-challtestsrv resolves every name to 127.0.0.1.
# `dokku letsencrypt:enable` itself runs in the namespace too, to reach Pebble's ACME API.

APP=dokku-le-test
NETNS=(ip netns exec dokku-lab)
ACME_PORT=14000
DNS_PORT=8053

setup_file() {
  # Accounts of an earlier run's Pebble are unknown to this one.
  rm -rf /home/dokku/.letsencrypt
  # The dokku user reads Pebble's CA certificate: not from bats' own 0700 temporary directory.
  local dir fixtures
  dir="$(mktemp -d /tmp/dokku-letsencrypt-bats.XXXXXX)"
  echo "$dir" >"$BATS_FILE_TMPDIR/dir"
  fixtures="$dir/fixtures"
  sh "$BATS_TEST_DIRNAME/../../fixtures/make-fixtures.sh" "$fixtures"
  chmod -R a+rX "$dir"
  cat >"$BATS_FILE_TMPDIR/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$ACME_PORT", "managementListenAddress": "127.0.0.1:15000",
  "certificate": "$fixtures/pebble-localhost.crt", "privateKey": "$fixtures/pebble-localhost.key",
  "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
  "${NETNS[@]}" pebble-challtestsrv -dns01 "127.0.0.1:$DNS_PORT" -http01 "" -https01 "" -tlsalpn01 "" \
    -management 127.0.0.1:8055 -defaultIPv4 127.0.0.1 -defaultIPv6 "" >"$BATS_FILE_TMPDIR/challtestsrv.log" 2>&1 3>&- &
  echo $! >"$BATS_FILE_TMPDIR/challtestsrv.pid"
  "${NETNS[@]}" env PEBBLE_VA_NOSLEEP=1 pebble -config "$BATS_FILE_TMPDIR/pebble.json" -dnsserver "127.0.0.1:$DNS_PORT" \
    >"$BATS_FILE_TMPDIR/pebble.log" 2>&1 3>&- &
  echo $! >"$BATS_FILE_TMPDIR/pebble.pid"
  for _ in $(seq 100); do
    "${NETNS[@]}" curl -sf --cacert "$fixtures/pebble-ca.crt" "https://127.0.0.1:$ACME_PORT/dir" >/dev/null && return 0
    sleep 0.1
  done
  echo "pebble did not answer; log:" >&2
  cat "$BATS_FILE_TMPDIR/pebble.log" >&2
  return 1
}

teardown_file() {
  local name
  for name in pebble challtestsrv; do
    if [[ -f "$BATS_FILE_TMPDIR/$name.pid" ]]; then
      kill "$(cat "$BATS_FILE_TMPDIR/$name.pid")" 2>/dev/null || true
    fi
  done
  rm -rf /home/dokku/.letsencrypt
  rm -rf "$(cat "$BATS_FILE_TMPDIR/dir")"
}

setup() {
  dokku --force apps:destroy "$APP" >/dev/null 2>&1 || true
  dokku apps:create "$APP" >/dev/null
  dokku ports:set "$APP" http:80:5000 >/dev/null
  dokku letsencrypt:set --global email ops@example.com
  dokku letsencrypt:set --global server "https://127.0.0.1:$ACME_PORT/dir"
}

teardown() {
  dokku --force apps:destroy "$APP" >/dev/null 2>&1 || true
}

served_issuer() {
  "${NETNS[@]}" openssl s_client -connect 127.0.0.1:443 -servername "$APP.dokku.me" </dev/null 2>/dev/null |
    openssl x509 -noout -issuer 2>/dev/null || true # nothing served: empty
}

# Waits (up to 10 s) until the issuer nginx serves matches the pattern $1 ("": no
# certificate). A reload returns once the new workers run; the old ones accept for 100 ms more.
assert_issuer() {
  local got
  for _ in $(seq 100); do
    got="$(served_issuer)"
    # shellcheck disable=SC2053
    [[ -z "$1" && -z "$got" ]] || [[ -n "$1" && "$got" == $1 ]] && return 0
    sleep 0.1
  done
  echo "nginx serves a certificate issued by '$got', expected '$1'"
  return 1
}

enable() {
  run "${NETNS[@]}" env DOKKU_LETSENCRYPT_CA_CERTIFICATES="$(cat "$BATS_FILE_TMPDIR/dir")/fixtures/pebble-ca.crt" \
    dokku letsencrypt:enable "$APP"
  echo "output: $output"
}

@test "(dokku-letsencrypt) letsencrypt:enable gets a certificate from Pebble that dokku's nginx serves" {
  enable
  [[ "$status" -eq 0 ]]
  [[ "$output" == *"Certificate retrieved successfully."* ]]
  assert_issuer "*Pebble Intermediate*"
  [[ ! -e "/home/dokku/$APP/nginx.conf.d/letsencrypt.conf" ]] # the challenge is gone again
  [[ "$(dokku letsencrypt:active "$APP")" == true ]]
  run dokku letsencrypt:list
  [[ "$output" == *"$APP"* ]]
  [[ "$(dokku certs:report "$APP" --ssl-hostnames)" == "$APP.dokku.me" ]]
}

@test "(dokku-letsencrypt) letsencrypt:disable goes back to plain http" {
  enable
  [[ "$status" -eq 0 ]]
  run dokku letsencrypt:disable "$APP"
  echo "output: $output"
  [[ "$status" -eq 0 ]]
  [[ ! -e "/home/dokku/$APP/tls" ]]
  assert_issuer ""
  [[ "$(dokku letsencrypt:active "$APP")" == false ]]
}
