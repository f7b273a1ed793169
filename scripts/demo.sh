#!/bin/sh
# make demo: dokku-certs end to end on loopback. A sandbox DOKKU_ROOT under target/demo,
# a real nginx on 127.0.0.1 high ports set up by the README's host recipe (nginx:setup),
# an app, certs:generate and certs:info, then the app fetched over https, the certificate
# nginx actually served, HSTS, an nginx:set property, and an unknown name refused.
set -eu
cd "$(dirname "$0")/.."
HTTP_PORT=${DEMO_HTTP_PORT:-18080}
SSL_PORT=${DEMO_SSL_PORT:-18443}
APP_PORT=${DEMO_APP_PORT:-18500}
DOMAIN=myapp.example.com
demo=$(pwd)/target/demo
bin=$(pwd)/target/release/dokku-certs

export DOKKU_ROOT="$demo/root"
export DOKKU_NGINX_CMD="nginx -p $demo/nginx -c $demo/nginx/nginx.conf -e $demo/nginx/error.log"
export DOKKU_NGINX_PORT=$HTTP_PORT DOKKU_NGINX_SSL_PORT=$SSL_PORT DOKKU_NGINX_BIND=127.0.0.1
export DOKKU_NGINX_LOG_DIR="$demo/logs"
# Where dokku keeps nginx:set properties, and the host-wide file nginx:setup writes: in a
# real host /var/lib/dokku and /etc/nginx/conf.d/dokku-certs.conf.
export DOKKU_LIB_ROOT="$demo/lib" DOKKU_NGINX_GLOBAL_CONF="$demo/nginx/conf.d/dokku-certs.conf"

step() { printf '\n\033[1m### %s\033[0m\n' "$*"; }
# A signal to the master's pid: `nginx -s stop` would parse the config first and give up on a broken one.
stop_nginx() { [ -f "$demo/nginx/nginx.pid" ] && kill "$(cat "$demo/nginx/nginx.pid")" 2>/dev/null || true; }

# A previous demo's nginx goes first, then a clean sandbox.
stop_nginx
sleep 0.2
rm -rf "$demo"
mkdir -p "$DOKKU_ROOT/myapp" "$demo/logs"
echo "$DOMAIN" > "$DOKKU_ROOT/myapp/VHOST"
echo "127.0.0.1:$APP_PORT" > "$DOKKU_ROOT/myapp/LISTENERS"
# nginx's main config as Debian 12 ships it (stock ssl lines, include conf.d/*.conf).
sh scripts/sandbox-nginx.sh "$demo/nginx" "$DOKKU_ROOT" "$APP_PORT" debian

step "dokku-certs nginx:setup (the README's host set-up)"
"$bin" nginx:setup 2>/dev/null   # nginx is not running yet: the reload warning is expected
$DOKKU_NGINX_CMD
trap stop_nginx EXIT

# After a reload nginx's old workers (which know the previous configuration) go on accepting
# for a moment, then exit: `workers` before a change, `until_gone` after it, so that every
# request below reaches a worker with the new configuration.
workers() { pgrep -P "$(cat "$demo/nginx/nginx.pid")" | tr '\n' ' '; }
until_gone() {
  i=0; for pid in $1; do
    while kill -0 "$pid" 2>/dev/null; do
      i=$((i+1)); [ $i -lt 600 ] || { echo "nginx's old workers never exited" >&2; exit 1; }; sleep 0.05
    done
  done
}
old_workers=$(workers)

step "dokku-certs certs:generate myapp $DOMAIN"
"$bin" certs:generate myapp "$DOMAIN" --country US --state California --locality "San Francisco" --organization dokku.me

step "dokku-certs certs:info myapp"
"$bin" certs:info myapp

step "dokku-certs certs:report myapp"
"$bin" certs:report myapp

until_gone "$old_workers"
redirect() { curl -s -o /dev/null --max-time 1 -w '%{http_code}' --resolve "$DOMAIN:$HTTP_PORT:127.0.0.1" "http://$DOMAIN:$HTTP_PORT/"; }
i=0; until curl -s -o /dev/null --max-time 1 --cacert "$DOKKU_ROOT/myapp/tls/server.crt" \
  --resolve "$DOMAIN:$SSL_PORT:127.0.0.1" "https://$DOMAIN:$SSL_PORT/" && [ "$(redirect)" = 308 ] \
  && [ "$(redirect)" = 308 ] && [ "$(redirect)" = 308 ]; do
  i=$((i+1)); [ $i -lt 100 ] || { echo "nginx never served https" >&2; exit 1; }; sleep 0.05
done

step "http://$DOMAIN:$HTTP_PORT/ redirects to https"
curl -sS -o /dev/null -w '%{http_code} -> %{redirect_url}\n' --resolve "$DOMAIN:$HTTP_PORT:127.0.0.1" "http://$DOMAIN:$HTTP_PORT/"

step "https://$DOMAIN:$SSL_PORT/ (curl trusts only the certificate just installed)"
curl -sS --cacert "$DOKKU_ROOT/myapp/tls/server.crt" --resolve "$DOMAIN:$SSL_PORT:127.0.0.1" "https://$DOMAIN:$SSL_PORT/"

step "the certificate nginx served, and the one in tls/server.crt"
served=$(openssl s_client -connect "127.0.0.1:$SSL_PORT" -servername "$DOMAIN" </dev/null 2>/dev/null \
  | openssl x509 -noout -subject -enddate -fingerprint -sha256)
installed=$(openssl x509 -in "$DOKKU_ROOT/myapp/tls/server.crt" -noout -subject -enddate -fingerprint -sha256)
echo "served:    $served" | sed 's/^/  /'
echo "installed: $installed" | sed 's/^/  /'
[ "$served" = "$installed" ] && echo "  => nginx serves exactly the certificate dokku-certs installed." \
  || { echo "  => MISMATCH" >&2; exit 1; }

step "HSTS (dokku's default), then dokku-certs nginx:set myapp hsts-max-age 31536000"
hsts() { curl -sS -D - -o /dev/null --cacert "$DOKKU_ROOT/myapp/tls/server.crt" --resolve "$DOMAIN:$SSL_PORT:127.0.0.1" \
  "https://$DOMAIN:$SSL_PORT/" | grep -i '^strict-transport-security' | tr -d '\r'; }
echo "  before: $(hsts)"
old_workers=$(workers)
"$bin" nginx:set myapp hsts-max-age 31536000
until_gone "$old_workers"
after=$(hsts)
echo "  after:  $after"
case "$after" in *31536000*) ;; *) echo "  => nginx:set did not change HSTS" >&2; exit 1 ;; esac

step "a name no app claims: the handshake is refused, no certificate is shown"
if openssl s_client -connect "127.0.0.1:$SSL_PORT" -servername unknown.example.com </dev/null >/dev/null 2>&1; then
  echo "  => served a certificate for an unknown name" >&2; exit 1
fi
echo "  => refused ($(openssl s_client -connect "127.0.0.1:$SSL_PORT" -servername unknown.example.com </dev/null 2>&1 | grep -o 'unrecognized name' | head -1))"
printf '\nThe sandbox stays in %s; nginx is stopped on exit.\n' "$demo"
