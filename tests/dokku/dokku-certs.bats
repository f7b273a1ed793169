#!/usr/bin/env bats
# dokku-certs as dokku's certs plugin, inside a real dokku (the dokku lab): what a dokku user
# notices. Run by `make dokku-test` through the lab's run-bats.sh, as root, after
# use-certs-plugin.sh swapped make plugin's output in. nginx runs in the network namespace
# dokku-lab, so every handshake and HTTP request goes through `ip netns exec dokku-lab`.

APP=dokku-certs-test
NETNS=(ip netns exec dokku-lab)

setup_file() {
  # dokku runs as the dokku user: the files must be readable by it, and bats' own temporary
  # directory is not (0700 under /tmp).
  local dir
  dir="$(mktemp -d /tmp/dokku-certs-bats.XXXXXX)"
  echo "$dir" >"$BATS_FILE_TMPDIR/certs-dir"
  # Two self-signed pairs for the app's domain, and a key that matches neither.
  for pair in a b other; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -subj "/CN=$APP.dokku.me" -addext "subjectAltName=DNS:$APP.dokku.me" \
      -keyout "$dir/$pair.key" -out "$dir/$pair.crt" 2>/dev/null
    mkdir -p "$dir/tar-$pair"
    cp "$dir/$pair.crt" "$dir/tar-$pair/server.crt"
    cp "$dir/$pair.key" "$dir/tar-$pair/server.key"
    tar -C "$dir/tar-$pair" -cf "$dir/$pair.tar" server.crt server.key
  done
  chmod -R a+rX "$dir"
}

teardown_file() {
  rm -rf "$(cat "$BATS_FILE_TMPDIR/certs-dir")"
}

setup() {
  CERTS="$(cat "$BATS_FILE_TMPDIR/certs-dir")"
  dokku --force apps:destroy "$APP" >/dev/null 2>&1 || true
  dokku apps:create "$APP" >/dev/null
  # No deploys in the lab: a port mapping makes nginx-vhosts render nginx.conf anyway.
  dokku ports:set "$APP" http:80:5000 >/dev/null
}

teardown() {
  dokku --force apps:destroy "$APP" >/dev/null 2>&1 || true
}

# The SHA-256 fingerprint of the certificate dokku's nginx serves for the app.
served_fingerprint() {
  "${NETNS[@]}" openssl s_client -connect 127.0.0.1:443 -servername "$APP.dokku.me" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 2>/dev/null || true # nothing served: empty
}

fingerprint() {
  openssl x509 -noout -fingerprint -sha256 -in "$1"
}

# Waits (up to 10 s) until nginx serves the certificate of file $1 ("": none). A reload
# returns once the new workers run, but the old ones go on accepting for another 100 ms.
assert_served() {
  local want="" got
  [[ -z "$1" ]] || want="$(fingerprint "$1")"
  for _ in $(seq 100); do
    got="$(served_fingerprint)"
    [[ "$got" == "$want" ]] && return 0
    sleep 0.1
  done
  echo "nginx serves '$got', expected '$want'"
  return 1
}

@test "(dokku-certs) certs:add from a tar on stdin: dokku's nginx serves it" {
  run bash -c "dokku certs:add $APP < $CERTS/a.tar"
  echo "output: $output"
  [[ "$status" -eq 0 ]]
  [[ "$output" == *"Creating https nginx.conf"* ]] # nginx-vhosts rendered it, not us
  cmp "$CERTS/a.crt" "/home/dokku/$APP/tls/server.crt"
  [[ "$(stat -c %a "/home/dokku/$APP/tls")" == 750 ]]
  [[ "$(stat -c %a "/home/dokku/$APP/tls/server.key")" == 640 ]]
  grep -q "ssl_certificate .*/$APP/tls/server.crt" "/home/dokku/$APP/nginx.conf"
  assert_served "$CERTS/a.crt"
  # the ports plugin heard post-certs-update
  [[ "$(dokku --quiet ports:report "$APP" --ports-map)" == "http:80:5000 https:443:5000" ]]
  # dokku's report, as dokku's plugin prints it
  [[ "$(dokku certs:report "$APP" --ssl-issuer)" == "CN = $APP.dokku.me" ]]
  [[ "$(dokku certs:report "$APP" --ssl-hostnames)" == "$APP.dokku.me" ]]
}

@test "(dokku-certs) certs:update replaces what nginx serves" {
  dokku certs:add "$APP" <"$CERTS/a.tar"
  run bash -c "dokku certs:update $APP $CERTS/b.crt $CERTS/b.key"
  echo "output: $output"
  [[ "$status" -eq 0 ]]
  assert_served "$CERTS/b.crt"
}

@test "(dokku-certs) a refused pair changes nothing: one line, exit 1, the old pair served" {
  dokku certs:add "$APP" <"$CERTS/a.tar"
  before="$(find "/home/dokku/$APP" -type f -exec md5sum {} + | sort)"
  run bash -c "dokku certs:add $APP $CERTS/b.crt $CERTS/other.key"
  echo "output: $output"
  [[ "$status" -eq 1 ]]
  [[ "$output" == " !     the private key does not match the certificate"* ]]
  [[ "$(echo "$output" | wc -l)" -eq 1 ]]
  [[ "$(find "/home/dokku/$APP" -type f -exec md5sum {} + | sort)" == "$before" ]]
  assert_served "$CERTS/a.crt"
}

@test "(dokku-certs) a rebuild that fails puts the old pair back and nginx keeps serving it" {
  dokku certs:add "$APP" <"$CERTS/a.tar"
  # A broken file in nginx.conf.d/, which dokku's template includes: nginx -t fails.
  echo "this is not valid nginx config" >"/home/dokku/$APP/nginx.conf.d/broken.conf"
  chown dokku:dokku "/home/dokku/$APP/nginx.conf.d/broken.conf"
  run bash -c "dokku certs:add $APP < $CERTS/b.tar"
  echo "output: $output"
  [[ "$status" -ne 0 ]]
  [[ "$output" == *"[emerg]"*"broken.conf"* ]] # nginx's own reason
  [[ "$output" == *"the previous certificate and key are back in place"* ]]
  cmp "$CERTS/a.crt" "/home/dokku/$APP/tls/server.crt"
  cmp "$CERTS/a.key" "/home/dokku/$APP/tls/server.key"
  assert_served "$CERTS/a.crt"
  # Once the broken file is gone, dokku's rebuild serves the pair in tls/: still a.
  rm "/home/dokku/$APP/nginx.conf.d/broken.conf"
  dokku proxy:build-config "$APP"
  assert_served "$CERTS/a.crt"
}

@test "(dokku-certs) certs:remove: back to plain http" {
  dokku certs:add "$APP" <"$CERTS/a.tar"
  run bash -c "dokku certs:remove $APP"
  echo "output: $output"
  [[ "$status" -eq 0 ]]
  [[ "$output" == *"Removing SSL endpoint from $APP"* ]]
  [[ ! -e "/home/dokku/$APP/tls" ]]
  run grep -q ssl_certificate "/home/dokku/$APP/nginx.conf"
  [[ "$status" -eq 1 ]]
  assert_served "" # dokku's default site refuses the handshake
  [[ "$(dokku --quiet ports:report "$APP" --ports-map)" == "http:80:5000" ]]
  run bash -c "dokku certs:remove $APP"
  [[ "$status" -eq 1 ]]
  [[ "$output" == " !     An app-specific SSL endpoint is not defined" ]]
}

@test "(dokku-certs) certs:generate: a self-signed certificate dokku's nginx serves" {
  run bash -c "dokku certs:generate $APP $APP.dokku.me"
  echo "output: $output"
  [[ "$status" -eq 0 ]]
  [[ "$output" == *"-----BEGIN CERTIFICATE REQUEST-----"* ]]
  assert_served "/home/dokku/$APP/tls/server.crt"
}

@test "(dokku-certs) dokku report and the triggers other plugins call" {
  dokku certs:add "$APP" <"$CERTS/a.tar"
  [[ "$(dokku plugin:trigger certs-exists "$APP")" == true ]]
  dokku plugin:trigger certs-get "$APP" crt | cmp - "$CERTS/a.crt"
  run bash -c "dokku plugin:trigger certs-get $APP nonsense"
  [[ "$status" -ne 0 ]]
  run bash -c "dokku report $APP"
  echo "output: $output"
  [[ "$output" == *"=====> $APP ssl information"* ]]
  [[ "$output" == *"Ssl enabled:                   true"* ]]
  run bash -c "dokku plugin:trigger certs-remove $APP"
  [[ "$status" -eq 0 ]]
  [[ "$(dokku plugin:trigger certs-exists "$APP")" == false ]]
}
