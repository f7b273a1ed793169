# dokku-certs. On a fresh machine: `make demo` (the main job, end to end, on loopback)
# and `make test`. Both install what they need (nginx, openssl, ...) through apt-get.

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests and the demo run for real: nginx, openssl, curl, pebble (ACME), tar,
# python3-venv for sslyze, util-linux's setpriv and perl (tests/caller.rs and tests/fs_safety.rs
# act as uid 65534), strace (tests/faults.rs holds a child before its exec).
TEST_PACKAGES := nginx-light openssl curl ca-certificates tar gzip pebble python3 python3-venv util-linux perl-base strace
# sslyze (PyPI) judges the HTTPS endpoint against Mozilla's TLS configurations (tests/https.rs).
SSLYZE_VERSION := 6.3.1
SSLYZE_VENV := target/sslyze-venv

.PHONY: all build deps acme-lab acme-lab-test test demo bench bench-scale bench-deps fuzz lint fmt clean plugin dokku-test dokku-lab-check

# The acme-lab kit (Pebble v2.10.1 built from its vendored source, BIND 9, dig/nsupdate) that
# tests/acme_lab.rs runs against. Its setup.sh is idempotent: ~33 s on a fresh machine (apt
# install of bind9 included), under half a second once built.
ACME_LAB_KIT ?= $(abspath ../shared/acme-lab)
export ACME_LAB_KIT
PROMTOOL := target/promtool/root/usr/bin/promtool
export PROMTOOL_BIN := $(abspath $(PROMTOOL))

all: build

build:
	$(CARGO) build --release

# $(call apt_install_missing,PACKAGES): installs those of the Debian PACKAGES that are missing,
# once: `apt-get update` only when something is missing. One shell command line, for a recipe.
apt_install_missing = missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Installs the system packages the tests and the demo need.
deps:
	@$(call apt_install_missing,$(TEST_PACKAGES))
	@command -v nginx >/dev/null || { echo "nginx is not on PATH after install" >&2; exit 1; }

acme-lab: $(PROMTOOL)
	@test -x $(ACME_LAB_KIT)/setup.sh || { echo "no acme-lab kit at $(ACME_LAB_KIT) (set ACME_LAB_KIT)" >&2; exit 1; }
	$(SUDO) $(ACME_LAB_KIT)/setup.sh

# promtool checks `certs:report --format prometheus` (tests/acme_lab.rs). Only the binary is
# taken from Debian's prometheus package, unpacked under target/: installing the package
# would also start a Prometheus server.
$(PROMTOOL): | deps
	rm -rf target/promtool && mkdir -p target/promtool
	cd target/promtool && { apt-get download prometheus || { $(SUDO) apt-get update -qq && apt-get download prometheus; }; } && dpkg-deb -x prometheus_*.deb root
	test -x $(PROMTOOL)

# A venv of its own under target/, so no system Python package is touched.
$(SSLYZE_VENV)/bin/sslyze: | deps
	python3 -m venv $(SSLYZE_VENV)
	$(SSLYZE_VENV)/bin/pip install --quiet --disable-pip-version-check sslyze==$(SSLYZE_VERSION)

test: deps $(SSLYZE_VENV)/bin/sslyze
	$(CARGO) test --all-targets -- --test-threads=4

# tests/acme_lab.rs against the kit's Pebble v2.10.1 and BIND: ARI, profiles, DNS-01, EAB.
# Its own target (and cargo feature) because the kit lives in ../shared, which `make test`
# must not need; CI (.ci/run) runs it after `make test`.
acme-lab-test: deps acme-lab
	$(CARGO) test --features acme-lab --test acme_lab -- --test-threads=4

# The dokku plugins: target/dokku-plugin/certs (dokku's core `certs` plugin replaced) and
# target/dokku-plugin/letsencrypt, each the shims of dokku-plugin/ plus the release binary.
PLUGIN_OUT := target/dokku-plugin
plugin: build
	rm -rf $(PLUGIN_OUT)
	mkdir -p $(PLUGIN_OUT)
	for p in dokku-plugin/*/; do \
	  name=$$(basename $$p); cp -a $$p $(PLUGIN_OUT)/$$name; \
	  mkdir -p $(PLUGIN_OUT)/$$name/bin; cp target/release/dokku-certs $(PLUGIN_OUT)/$$name/bin/; \
	done
	@echo "built: $$(ls -d $(PLUGIN_OUT)/*)"

# dokku's own tests (certs.bats, nginx-vhosts_14/properties) and ours against a real dokku:
# needs the dokku lab in ../shared/dokku-lab (see README, "dokku").
DOKKU_LAB ?= ../shared/dokku-lab
dokku-test: dokku-lab-check deps plugin
	bash scripts/dokku-test.sh $(DOKKU_LAB) $(PLUGIN_OUT)

# Before anything is built: say what is missing.
dokku-lab-check:
	@test -x $(DOKKU_LAB)/setup.sh || { \
	  echo "make dokku-test needs the dokku lab in $(DOKKU_LAB) (setup.sh, run-bats.sh, use-certs-plugin.sh): the folder shared/dokku-lab next to this checkout; elsewhere: make dokku-test DOKKU_LAB=/path/to/dokku-lab" >&2; \
	  exit 2; }

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

demo: deps build
	sh scripts/demo.sh

# Benchmarks (not tests): the table goes to stdout and BENCHMARKS.md. pebble (TEST_PACKAGES)
# and lego are the CA and the client compared in sections 3 and 8.
BENCH_PACKAGES := wrk lego certbot time python3-cryptography
bench-deps: deps build
	@$(call apt_install_missing,$(BENCH_PACKAGES))
	@command -v python3 >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3

bench: bench-deps
	python3 benches/bench.py

# Sections 7 and 8 only (about 30 minutes on 2 cores): one change among 1,000 and 10,000 apps
# with a real nginx, Let's Encrypt for 1 and 100 apps against lego; rewrites their block of BENCHMARKS.md.
bench-scale: bench-deps
	python3 benches/bench.py scale le-scale

# Not part of `make test`: FUZZ_SECONDS (default 600) of libFuzzer on the archive and PEM/DER readers.
fuzz: deps
	sh scripts/fuzz.sh

clean:
	$(CARGO) clean
