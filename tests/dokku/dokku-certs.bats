#!/usr/bin/env bats
# dokku-certs as dokku's certs plugin, inside a real dokku (the dokku lab): what a dokku user
# notices. Run by `make dokku-test` through the lab's run-bats.sh, as root, after
# use-certs-plugin.sh swapped make plugin's output in. nginx runs in the network namespace
# dokku-lab, so every handshake and HTTP request goes through `ip netns exec dokku-lab`.

APP=dokku-certs-test
NETNS=(ip netns exec dokku-lab)
RECORDER=dokku-certs-test-recorder

setup_file() {
  # dokku runs as the dokku user: the files must be readable by it, and bats' own temporary
  # directory is not (0700 under /tmp).
  local dir
  dir="$(mktemp -d /tmp/dokku-certs-bats.XXXXXX)"
  echo "$dir" >"$BATS_FILE_TMPDIR/certs-dir"
  # Two self-signed pairs for the app's domain, a key that matches neither, and a pair for
  # another name (nginx-vhosts matches none of the app's domains against it).
  local name
  for pair in a b other renamed; do
    name="$APP.dokku.me"
    [[ "$pair" != renamed ]] || name="renamed.dokku.me"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
      -keyout "$dir/$pair.key" -out "$dir/$pair.crt" 2>/dev/null
    mkdir -p "$dir/tar-$pair"
    cp "$dir/$pair.crt" "$dir/tar-$pair/server.crt"
    cp "$dir/$pair.key" "$dir/tar-$pair/server.key"
    tar -C "$dir/tar-$pair" -cf "$dir/$pair.tar" server.crt server.key
  done
  chmod -R a+rX "$dir"
  # A plugin that only records the triggers a certificate change fires, as another plugin
  # listening to them (ports, the k3s scheduler, nginx-vhosts) would hear them.
  local recorder=/var/lib/dokku/plugins/available/$RECORDER
  rm -rf "$recorder"
  mkdir -p "$recorder"
  printf '[plugin]\ndescription = "dokku-certs tests: records certificate triggers"\nversion = "0.1.0"\n[plugin.config]\n' >"$recorder/plugin.toml"
  for trigger in post-certs-update post-certs-remove post-domains-update; do
    printf '#!/usr/bin/env bash\necho "%s $1" >>"%s"\n' "$trigger" "$dir/triggers.log" >"$recorder/$trigger"
    chmod 755 "$recorder/$trigger"
  done
  touch "$dir/triggers.log"
  chmod 666 "$dir/triggers.log"
  chown -R dokku:dokku "$recorder"
  PLUGIN_PATH=/var/lib/dokku/plugins plugn enable "$RECORDER"
}

teardown_file() {
  PLUGIN_PATH=/var/lib/dokku/plugins plugn disable "$RECORDER" || true
  rm -rf "/var/lib/dokku/plugins/available/$RECORDER"
  rm -rf "$(cat "$BATS_FILE_TMPDIR/certs-dir")"
}

# The triggers fired for the app since the last call, one per line.
fired() {
  grep " $APP\$" "$CERTS/triggers.log" | cut -d' ' -f1 || true
  : >"$CERTS/triggers.log"
}

# What a rebuild would change of the app's nginx.conf: its inode (dokku renders a new file
# and moves it in place), modification time and content.
nginx_conf_state() {
  stat -c '%i %Y.%y' "/home/dokku/$APP/nginx.conf"
  md5sum <"/home/dokku/$APP/nginx.conf"
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

# Installs pair a and waits until nginx serves it; then forgets the triggers fired so far
# and keeps nginx.conf's state in $before.
add_a_and_watch() {
  dokku certs:add "$APP" <"$CERTS/a.tar"
  assert_served "$CERTS/a.crt"
  fired >/dev/null
  before="$(nginx_conf_state)"
}

# certs:update with pair $1, through `run`.
update_to() {
  run bash -c "dokku certs:update $APP $CERTS/$1.crt $CERTS/$1.key"
  echo "output: $output"
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

@test "(dokku-certs) certs:update with the same names: nginx.conf untouched, new certificate served, no rebuild" {
  add_a_and_watch
  update_to b
  [[ "$status" -eq 0 ]]
  [[ "$output" == *"Reloading nginx: the new certificate matches the same domains, nginx.conf stays as it is"* ]]
  [[ "$output" != *"Creating https nginx.conf"* ]] # nginx-vhosts did not rebuild
  [[ "$(nginx_conf_state)" == "$before" ]]
  cmp "$CERTS/b.crt" "/home/dokku/$APP/tls/server.crt"
  assert_served "$CERTS/b.crt"
  # The ports plugin and the k3s scheduler still hear post-certs-update; nginx-vhosts'
  # post-domains-update (the rebuild) is not fired.
  [[ "$(fired)" == "post-certs-update" ]]
  [[ "$(dokku --quiet ports:report "$APP" --ports-map)" == "http:80:5000 https:443:5000" ]]
}

# The nginx master's workers that accept connections now (not those told to quit).
accepting_workers() {
  local master
  master="$(cat /run/nginx.pid)"
  for pid in $(pgrep -P "$master"); do
    [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" == "nginx: worker process " ]] && echo "$pid"
  done
  return 0
}

@test "(dokku-certs) certs:update with the same names returns once nginx's new workers took over, even from a reload that returns at once" {
  add_a_and_watch
  # A service command that returns at once, before nginx even got the signal (more so than
  # `systemctl reload nginx`, which returns right after it): the reload happens meanwhile.
  local service="$CERTS/nginx-service-async" previous
  previous="$(dokku nginx:report --global --nginx-global-nginx-service-command)"
  printf '#!/usr/bin/env bash\n[[ "$1" != reload ]] || { sudo -n %q reload </dev/null >/dev/null 2>&1 & exit 0; }\nexec sudo -n %q "$@"\n' \
    /var/tmp/dokku-lab/bin/nginx-service-root /var/tmp/dokku-lab/bin/nginx-service-root >"$service"
  chmod 755 "$service"
  dokku nginx:set --global nginx-service-command "$service"
  local old_workers
  old_workers="$(accepting_workers)"
  update_to b
  local served="" workers
  served="$(served_fingerprint)" # one handshake, at once: no waiting here
  workers="$(accepting_workers)"
  dokku nginx:set --global nginx-service-command "$previous"
  [[ -n "$old_workers" ]]
  [[ "$status" -eq 0 ]]
  [[ "$(nginx_conf_state)" == "$before" ]]
  [[ "$served" == "$(fingerprint "$CERTS/b.crt")" ]]
  # Every worker that accepted before the command has stopped accepting; new ones took over.
  [[ -n "$workers" ]]
  for pid in $old_workers; do
    [[ " $(echo $workers) " != *" $pid "* ]]
  done
  # dokku-certs runs outside the lab's network namespace: it says that it saw the new
  # workers but could not reach nginx's listener, and never that it saw the certificate.
  [[ "$output" == *"nginx's new workers took over (master pid $(cat /run/nginx.pid)); no handshake: 127.0.0.1:443 cannot be reached from here"* ]]
  [[ "$output" != *"nginx serves the new certificate"* ]]
}

@test "(dokku-certs) certs:update with other names: dokku rebuilds nginx.conf" {
  add_a_and_watch
  update_to renamed
  [[ "$status" -eq 0 ]]
  [[ "$output" == *"Creating https nginx.conf"* ]]
  [[ "$(nginx_conf_state)" != "$before" ]]
  [[ "$(fired | tr '\n' ' ')" == "post-certs-update post-domains-update " ]]
  assert_served "$CERTS/renamed.crt"
}

@test "(dokku-certs) the first certificate and certs:remove rebuild" {
  fired >/dev/null
  run bash -c "dokku certs:add $APP < $CERTS/a.tar"
  [[ "$status" -eq 0 ]]
  [[ "$(fired | tr '\n' ' ')" == "post-certs-update post-domains-update " ]]
  run bash -c "dokku certs:remove $APP"
  [[ "$status" -eq 0 ]]
  [[ "$(fired | tr '\n' ' ')" == "post-certs-remove post-domains-update " ]]
}

@test "(dokku-certs) a reload nginx refuses puts the old pair back, nginx.conf untouched, the old pair served" {
  add_a_and_watch
  # A broken file in nginx.conf.d/, which dokku's template includes: nginx refuses to reload.
  echo "this is not valid nginx config" >"/home/dokku/$APP/nginx.conf.d/broken.conf"
  chown dokku:dokku "/home/dokku/$APP/nginx.conf.d/broken.conf"
  update_to b
  [[ "$status" -eq 1 ]]
  [[ "$(echo "$output" | tail -n 1)" == " !     nginx refused to reload with the new certificate ("*"[emerg]"*"broken.conf"*"); the previous certificate and key are back in place and nginx keeps serving them" ]]
  cmp "$CERTS/a.crt" "/home/dokku/$APP/tls/server.crt"
  cmp "$CERTS/a.key" "/home/dokku/$APP/tls/server.key"
  [[ "$(nginx_conf_state)" == "$before" ]]
  assert_served "$CERTS/a.crt"
  # post-certs-update with the new pair, then again with the old one (the k3s scheduler
  # copies tls/ into its secret on it).
  [[ "$(fired | tr '\n' ' ')" == "post-certs-update post-certs-update " ]]
  rm "/home/dokku/$APP/nginx.conf.d/broken.conf"
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
  # Other names: dokku rebuilds (the same names would only reload, the test above).
  run bash -c "dokku certs:update $APP $CERTS/renamed.crt $CERTS/renamed.key"
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
