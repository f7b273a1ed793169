#!/bin/sh
# Writes a sandbox nginx main config that includes every app's nginx.conf under DOKKU_ROOT,
# the way the host's nginx includes /home/dokku/*/nginx.conf, plus a tiny "app" backend.
#   scripts/sandbox-nginx.sh NGINX_DIR DOKKU_ROOT BACKEND_PORT
set -eu
dir=$1 root=$2 backend=$3
mkdir -p "$dir"
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
  include $root/*/nginx.conf;
}
CONF
