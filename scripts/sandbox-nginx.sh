#!/bin/sh
# Writes a sandbox nginx main config (from scripts/sandbox-nginx.conf.in, which the tests use
# too) plus a tiny "app" backend.
#   scripts/sandbox-nginx.sh NGINX_DIR DOKKU_ROOT BACKEND_PORT [debian]
# Without "debian": every app's nginx.conf under DOKKU_ROOT is included directly, the way a
# host includes /home/dokku/*/nginx.conf. With "debian": the http block is Debian 12's stock
# one (its ssl_protocols/ssl_prefer_server_ciphers lines and `include conf.d/*.conf`), so
# that `dokku-certs nginx:setup` with DOKKU_NGINX_GLOBAL_CONF=NGINX_DIR/conf.d/dokku-certs.conf
# sets it up exactly as on a fresh host (README, "Host set-up").
set -eu
dir=$1 root=$2 backend=$3 flavour=${4:-}
mkdir -p "$dir/conf.d"
if [ "$flavour" = debian ]; then
  # Debian's stock lines, then its include.
  apps="ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; ssl_prefer_server_ciphers on; include $dir/conf.d/*.conf;"
else
  apps="include $root/*/nginx.conf;"
fi
# | as sed's delimiter: the values are paths and nginx directives, never holding one.
sed -e "s|@DIR@|$dir|g" -e "s|@BACKEND_PORT@|$backend|g" -e "s|@APPS@|$apps|" \
  "$(dirname "$0")/sandbox-nginx.conf.in" > "$dir/nginx.conf"
