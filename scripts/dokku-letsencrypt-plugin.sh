#!/usr/bin/env bash
# Installs make plugin's letsencrypt plugin into a dokku host (in place of dokku-letsencrypt),
# or removes it again.
#   scripts/dokku-letsencrypt-plugin.sh target/dokku-plugin/letsencrypt
#   scripts/dokku-letsencrypt-plugin.sh --remove
# Refuses to replace a letsencrypt plugin that is not ours (uninstall dokku-letsencrypt first:
# dokku plugin:uninstall letsencrypt).
set -euo pipefail
PLUGINS=/var/lib/dokku/plugins
TARGET="$PLUGINS/available/letsencrypt"

ours() { grep -qs "dokku-certs" "$TARGET/plugin.toml"; }

if [[ -e "$TARGET" ]] && ! ours; then
  echo " !     $TARGET is not dokku-certs' letsencrypt plugin; remove it first (dokku plugin:uninstall letsencrypt)" >&2
  exit 1
fi
if [[ "${1:-}" == --remove ]]; then
  [[ -e "$TARGET" ]] || exit 0
  rm -f "$PLUGINS/enabled/letsencrypt"
  rm -rf "$TARGET"
  echo "-----> removed dokku-certs' letsencrypt plugin"
  exit 0
fi
SRC="${1:?usage: $0 PLUGIN_DIR | --remove}"
[[ -f "$SRC/plugin.toml" && -x "$SRC/bin/dokku-certs" ]] || { echo " !     $SRC is not make plugin's letsencrypt output" >&2; exit 1; }
rm -rf "$TARGET.new"
cp -a "$SRC" "$TARGET.new"
chown -R dokku:dokku "$TARGET.new"
rm -rf "$TARGET"
mv "$TARGET.new" "$TARGET"
ln -sfn "$TARGET" "$PLUGINS/enabled/letsencrypt"
chown -h dokku:dokku "$PLUGINS/enabled/letsencrypt"
echo "-----> installed dokku-certs' letsencrypt plugin in $TARGET"
