#!/bin/sh
# make fuzz: runs the libFuzzer target over archive reading and certificate/key loading.
#   FUZZ_SECONDS=600 make fuzz
# cargo fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets this machine's stable
# toolchain provide them. The seed corpus is the openssl fixtures, alone and in archives.
set -eu
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
fx=target/fuzz-fixtures
sh fixtures/make-fixtures.sh "$fx"
corpus=fuzz/corpus/bundle
mkdir -p "$corpus"
cp "$fx"/* "$corpus"/
(cd "$fx" && tar cf "$OLDPWD/$corpus/pair.tar" leaf.crt leaf.key chain.ca-bundle \
  && tar czf "$OLDPWD/$corpus/pair.tar.gz" leaf2.crt leaf2.key && tar cf "$OLDPWD/$corpus/der.tar" leaf.crt.der leaf.key.der)
cd fuzz
RUSTC_BOOTSTRAP=1 cargo fuzz run bundle corpus/bundle -- -max_total_time="$seconds" -rss_limit_mb=512 -timeout=10 -max_len=65536
