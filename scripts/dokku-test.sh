#!/usr/bin/env bash
# make dokku-test: dokku-certs as dokku's certs plugin inside the dokku lab (a real dokku,
# ../shared/dokku-lab): dokku's own bats files, then ours (tests/dokku/*.bats).
# Usage: scripts/dokku-test.sh LAB_DIR PLUGIN_OUT   (PLUGIN_OUT: make plugin's output)
set -uo pipefail
LAB="$1"
PLUGIN_OUT="$(cd "$2" && pwd)"
REPO="$(cd "$(dirname "$0")/.." && pwd)"

if [[ ! -x "$LAB/setup.sh" || ! -x "$LAB/run-bats.sh" || ! -x "$LAB/use-certs-plugin.sh" ]]; then
  echo "make dokku-test needs the dokku lab (setup.sh, run-bats.sh, use-certs-plugin.sh) in $LAB;" >&2
  echo "it is the folder shared/dokku-lab next to this checkout; give another place with: make dokku-test DOKKU_LAB=/path/to/dokku-lab" >&2
  exit 2
fi
LAB="$(cd "$LAB" && pwd)"
if [[ $(id -u) != 0 ]]; then
  echo "make dokku-test must run as root (the dokku lab installs dokku and runs nginx in a network namespace)" >&2
  exit 2
fi

step() { printf '\n==> %s (t+%ss)\n' "$1" "$SECONDS"; }

step "dokku lab: $LAB/setup.sh"
"$LAB/setup.sh" || { echo "the dokku lab could not be set up; see the messages above" >&2; exit 1; }

# Whatever happens from here on, dokku gets its own certs plugin back and ours goes away.
restore() {
  step "putting dokku's own certs plugin back"
  "$REPO/scripts/dokku-letsencrypt-plugin.sh" --remove || true
  "$LAB/use-certs-plugin.sh" --original || echo "could not put dokku's certs plugin back: run $LAB/use-certs-plugin.sh --original" >&2
}
trap restore EXIT

step "swapping in $PLUGIN_OUT/certs as dokku's certs plugin"
"$LAB/use-certs-plugin.sh" "$PLUGIN_OUT/certs" || exit 1
"$REPO/scripts/dokku-letsencrypt-plugin.sh" "$PLUGIN_OUT/letsencrypt" || exit 1

failed=()
run() {
  local name="$1"
  shift
  step "$name"
  "$@" || failed+=("$name")
}
run "dokku's certs.bats" "$LAB/run-bats.sh" certs.bats
run "dokku's nginx-vhosts_14.bats and nginx-vhosts_properties.bats" \
  "$LAB/run-bats.sh" nginx-vhosts_14.bats nginx-vhosts_properties.bats
run "dokku-certs' own dokku-mode tests (tests/dokku)" "$LAB/run-bats.sh" "$REPO"/tests/dokku/*.bats

step "done"
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "all passed"
