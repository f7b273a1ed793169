#!/bin/sh
# Writes a sandbox nginx main config plus a tiny "app" backend.
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
  apps="ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Debian's stock line
  ssl_prefer_server_ciphers on;
  include $dir/conf.d/*.conf;"
else
  apps="include $root/*/nginx.conf;"
fi
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  server_names_hash_bucket_size 128;
  # The app itself: in dokku, a container; here, a backend that says hello.
  server { listen 127.0.0.1:$backend; location / { return 200 "hello from myapp\n"; } }
  $apps
}
CONF
