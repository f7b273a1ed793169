#!/usr/bin/env bash
# "dokku's way" of certs:add from a tarball, for the benchmark: dokku's steps (tar extract
# into a temp dir, find the .crt and .key, cp, chmod), plus the openssl checks a careful
# admin adds (the certificate and the key parse, and their public keys match), without
# the nginx rebuild (dokku-certs is timed with DOKKU_NGINX_CMD=true too).
#   benches/dokku-add.sh APP < cert-key.tar
set -eo pipefail
app=$1
ssl="$DOKKU_ROOT/$app/tls"
work=$(mktemp -d /tmp/dokku-certs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
tar xf - <&0
crt=$(find . -not -path '*/\.*' -type f | grep ".crt$")
key=$(find . -not -path '*/\.*' -type f | grep ".key$")
[[ $(printf '%s\n' "$crt" | grep -c .) -eq 1 ]] || { echo "Tar archive is missing .crt file" >&2; exit 1; }
[[ $(printf '%s\n' "$key" | grep -c .) -eq 1 ]] || { echo "Tar archive is missing .key file" >&2; exit 1; }
[[ "$(openssl x509 -in "$crt" -noout -pubkey)" == "$(openssl pkey -in "$key" -pubout)" ]] || { echo "mismatch" >&2; exit 1; }
mkdir -p "$ssl"
rm -f "$ssl/server.crt" "$ssl/server.key"
cp "$crt" "$ssl/server.crt"
cp "$key" "$ssl/server.key"
chmod 750 "$ssl"
chmod 640 "$ssl/server.crt" "$ssl/server.key"
