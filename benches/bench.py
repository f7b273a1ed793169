#!/usr/bin/env python3
"""make bench: dokku-certs beside what a dokku user runs today, measured in one run.

Prints one table and writes BENCHMARKS.md. Every row is the median of BENCH_RUNS runs
(default 5) with min and max, wall-clock time of the whole process. Only loopback is used.
Nothing here is a test: `make test` never depends on timing.
"""

import atexit
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "target", "release", "dokku-certs")
WORK = os.path.join(REPO, "target", "bench")
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
APP_COUNTS = [1, 30, 1000, 10000]
DOKKU_WAY_APPS = 30
ANALYSIS_MARKER = "## What the numbers mean, and what was tuned"

SCALE_BEGIN, SCALE_END = "<!-- scale:begin -->", "<!-- scale:end -->"

rows = []  # (section, what, median_s, min_s, max_s, note)
notes = []
LIVE = []  # nginx and Pebble instances started by this run: stopped however the run ends
_run_dir = []


def run_dir():
    """This run's own temporary directory under target/bench (removed at exit unless
    BENCH_KEEP=1): the sandboxes, their nginx and Pebble live there."""
    if not _run_dir:
        os.makedirs(WORK, exist_ok=True)
        _run_dir.append(tempfile.mkdtemp(prefix="run-", dir=WORK))
        # nginx's workers (nobody) read webroots and app directories below it.
        os.chmod(_run_dir[0], 0o755)
    return _run_dir[0]


def cleanup():
    while LIVE:
        try:
            LIVE.pop().stop()
        except Exception as error:  # keep stopping the others
            say(f"cleanup: {error}")
    if _run_dir and os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(_run_dir.pop(), ignore_errors=True)


def on_signal(signum, _frame):
    # SystemExit unwinds the finally blocks, then atexit runs cleanup().
    raise SystemExit(128 + signum)


def say(text):
    print(text, file=sys.stderr, flush=True)


def run(cmd, env=None, stdin=None, check=True, capture=False):
    result = subprocess.run(
        cmd,
        env=env,
        input=stdin,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if check and result.returncode != 0:
        raise SystemExit(f"{cmd} failed: {result.stderr.decode(errors='replace')}")
    return result


def timed(cmd, env, runs=RUNS, stdin=None, before=None):
    samples = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        run(cmd, env=env, stdin=stdin)
        samples.append(time.perf_counter() - start)
    return samples


def record(section, what, samples, note=""):
    row = (section, what, statistics.median(samples), min(samples), max(samples), note)
    rows.append(row)
    say(f"  {what}: median {fmt(row[2])} (min {fmt(row[3])}, max {fmt(row[4])}) {note}")
    return row


def fmt(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixtures():
    path = os.path.join(WORK, "fixtures")
    run(["sh", os.path.join(REPO, "fixtures", "make-fixtures.sh"), path])
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def pairs(fx):
    """The certificates the benchmark apps carry, as certs:add leaves them: a CA-signed RSA
    chain, a CA-signed ECDSA chain, dokku's own SHA-1 self-signed kind, and one of ours."""
    gen_root = os.path.join(WORK, "gen")
    shutil.rmtree(gen_root, ignore_errors=True)
    os.makedirs(os.path.join(gen_root, "g"))
    env = dict(os.environ, DOKKU_ROOT=gen_root, DOKKU_NGINX_CMD="true", DOKKU_NGINX_LOG_DIR=WORK)
    run([BIN, "certs:generate", "g", "myapp.example.com"], env=env)
    generated = os.path.join(gen_root, "g", "tls")
    return [
        (read(f"{fx}/leaf.fullchain.crt"), read(f"{fx}/leaf.key")),
        (read(f"{fx}/leaf2.crt") + read(f"{fx}/inter.crt"), read(f"{fx}/leaf2.key")),
        (read(f"{fx}/dokku.crt"), read(f"{fx}/dokku.key")),
        (read(f"{generated}/server.crt"), read(f"{generated}/server.key")),
    ]


def make_root(n, cert_pairs):
    root = os.path.join(WORK, f"root-{n}")
    stamp = os.path.join(root, ".complete")
    if os.path.exists(stamp):
        return root
    shutil.rmtree(root, ignore_errors=True)
    for i in range(n):
        app = os.path.join(root, f"app{i:05d}")
        tls = os.path.join(app, "tls")
        os.makedirs(tls)
        crt, key = cert_pairs[i % len(cert_pairs)]
        for name, data in (("server.crt", crt), ("server.key", key)):
            with open(os.path.join(tls, name), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(tls, name), 0o640)
        os.chmod(tls, 0o750)
        with open(os.path.join(app, "VHOST"), "w") as f:
            f.write("myapp.example.com\n")
        with open(os.path.join(app, "LISTENERS"), "w") as f:
            f.write("127.0.0.1:5000\n")
    open(stamp, "w").close()
    return root


def base_env(root):
    return dict(os.environ, DOKKU_ROOT=root, DOKKU_NGINX_CMD="true", DOKKU_NGINX_LOG_DIR=WORK)


def bench_report(cert_pairs):
    say("1. certs:report")
    ours = {}
    for n in APP_COUNTS:
        root = make_root(n, cert_pairs)
        apps = "1 app" if n == 1 else f"{n} apps"
        ours[n] = record("1. certs:report", f"dokku-certs certs:report, {apps}", timed([BIN, "certs:report"], base_env(root)))
    root = make_root(DOKKU_WAY_APPS, cert_pairs)
    script = os.path.join(REPO, "benches", "dokku-report.sh")
    theirs = record("1. certs:report", f"dokku's way (7 openssl calls per app), {DOKKU_WAY_APPS} apps", timed(["bash", script], base_env(root)))
    ratio = theirs[2] / ours[DOKKU_WAY_APPS][2]
    notes.append(f"certs:report on {DOKKU_WAY_APPS} apps: dokku-certs is {ratio:,.0f}x faster than dokku's way (medians).")
    per_app = [(n, ours[n][2] / n) for n in APP_COUNTS]
    notes.append("certs:report time per app (whole process divided by apps): " + ", ".join(f"{n}: {fmt(t)}" for n, t in per_app) + ".")
    return ratio


def bench_add(cert_pairs, fx):
    say("2. certs:add of a tarball")
    root = make_root(1, cert_pairs)
    env = base_env(root)
    archive = tar_bytes([("server.crt", cert_pairs[0][0]), ("server.key", cert_pairs[0][1])])
    ours = record("2. certs:add", "dokku-certs certs:add < cert-key.tar, nginx left out (DOKKU_NGINX_CMD=true), as dokku's pipeline below", timed([BIN, "certs:add", "app00000"], env, stdin=archive))
    script = os.path.join(REPO, "benches", "dokku-add.sh")
    theirs = record("2. certs:add", "dokku's way: tar x, find, openssl checks, cp, chmod", timed(["bash", script, "app00000"], env, stdin=archive))
    notes.append(f"certs:add of a tarball: {theirs[2] / ours[2]:,.1f}x faster than dokku's pipeline (medians), including nginx.conf rendering, staging, fsync and the atomic swap, which dokku's pipeline does not do.")
    big = tar_bytes([("server.crt", cert_pairs[0][0]), ("server.key", cert_pairs[0][1])] + [(f"pad/{i}.bin", os.urandom(1_000_000)) for i in range(10)])
    for label, cmd in (("dokku-certs certs:add", [BIN, "certs:add", "app00000"]), ("dokku's way", ["bash", script, "app00000"])):
        result = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=env, input=big, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        kib = int(result.stderr.decode().strip().splitlines()[-1])
        rows.append(("2. certs:add", f"max RSS, {len(big) / 2**20:.1f} MiB archive: {label}", None, None, None, f"{kib / 1024:.1f} MiB (largest single process)"))
        say(f"  max RSS {label}: {kib / 1024:.1f} MiB")


def tar_bytes(entries):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Nginx:
    """A sandbox nginx on loopback including DOKKU_ROOT/*/nginx.conf, in this run's temporary
    directory; stopped at exit whatever happens."""

    def __init__(self, name, flavour="", start=True):
        self.dir = os.path.join(run_dir(), name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.root = os.path.join(self.dir, "root")
        os.makedirs(self.root)
        self.http, self.ssl, self.backend = free_port(), free_port(), free_port()
        ngx = os.path.join(self.dir, "nginx")
        self.pid_file = os.path.join(ngx, "nginx.pid")
        run(["sh", os.path.join(REPO, "scripts", "sandbox-nginx.sh"), ngx, self.root, str(self.backend), flavour])
        self.cmd = f"nginx -p {ngx} -c {ngx}/nginx.conf -e {ngx}/error.log"
        self.env = dict(
            os.environ,
            DOKKU_ROOT=self.root,
            DOKKU_NGINX_CMD=self.cmd,
            DOKKU_NGINX_PORT=str(self.http),
            DOKKU_NGINX_SSL_PORT=str(self.ssl),
            DOKKU_NGINX_BIND="127.0.0.1",
            DOKKU_NGINX_LOG_DIR=self.dir,
        )
        if start:
            self.start()

    def start(self):
        LIVE.append(self)
        run(["sh", "-c", self.cmd])

    def app(self, name, domain):
        app = os.path.join(self.root, name)
        os.makedirs(app)
        with open(os.path.join(app, "VHOST"), "w") as f:
            f.write(domain + "\n")
        with open(os.path.join(app, "LISTENERS"), "w") as f:
            f.write(f"127.0.0.1:{self.backend}\n")
        return app

    def master(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        """Fast shutdown by the master's pid (`nginx -s stop` would parse the whole
        configuration first: seconds at 10,000 apps); SIGKILL after 30 s."""
        if self in LIVE:
            LIVE.remove(self)
        pid = self.master()
        if pid is None or not os.path.exists(f"/proc/{pid}"):
            return
        workers = [p for p in os.listdir("/proc") if p.isdigit() and parent(int(p)) == pid]
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 30
        while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
            time.sleep(0.05)
        for p in [pid] + [int(w) for w in workers]:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def parent(pid):
    """The parent pid of `pid` from /proc, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[1])


def wrk(url, seconds, close):
    cmd = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", url]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def parse_wrk(text):
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M))
    return {
        "requests": requests,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0,
        "socket_detail": socket_errors.group(0) if socket_errors else "none",
        "latency": latency,
    }


def bench_zero_downtime(fx):
    say("4. zero downtime under load")
    nginx = Nginx("zero-downtime")
    try:
        nginx.app("zd", "myapp.example.com")
        # Two ECDSA P-256 certificates, as a renewal keeps the key type (switching between RSA
        # and ECDSA makes wrk's TLS reconnects fail: see BENCHMARKS.md).
        crt_a, key_a = f"{fx}/leaf2.crt", f"{fx}/leaf2.key"
        crt_b, key_b = f"{fx}/wild.crt", f"{fx}/wild.key"
        run([BIN, "certs:add", "zd", crt_a, key_a], env=nginx.env)
        time.sleep(0.5)
        for close in (True, False):
            load = wrk(f"https://127.0.0.1:{nginx.ssl}/", 6, close)
            time.sleep(1)
            start = time.perf_counter()
            for i in range(20):
                crt, key = (crt_b, key_b) if i % 2 == 0 else (crt_a, key_a)
                run([BIN, "certs:update", "zd", crt, key], env=nginx.env)
            updates = time.perf_counter() - start
            out = load.communicate()[0].decode()
            result = parse_wrk(out)
            label = "Connection: close" if close else "keep-alive"
            lat = result["latency"]
            rows.append((
                "4. zero downtime",
                f"wrk over https ({label}) while 20 certs:update ran back to back ({updates:.2f} s)",
                None, None, None,
                f"{result['requests']} requests, {result['non2xx']} non-2xx/3xx, {result['socket_errors']} socket errors "
                f"({result['socket_detail']}); latency p50 {lat.get('50')}, p75 {lat.get('75')}, p90 {lat.get('90')}, p99 {lat.get('99')}",
            ))
            say(f"  {label}: {rows[-1][5]}")
    finally:
        nginx.stop()


class Pebble:
    def __init__(self, nginx, fx):
        self.dir = os.path.join(nginx.dir, "pebble")
        os.makedirs(self.dir)
        acme, mgmt, dns, dns_mgmt, tls = (free_port() for _ in range(5))
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{acme}", "managementListenAddress": f"127.0.0.1:{mgmt}",
            "certificate": f"{fx}/pebble-localhost.crt", "privateKey": f"{fx}/pebble-localhost.key",
            "httpPort": nginx.http, "tlsPort": tls, "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }}
        path = os.path.join(self.dir, "config.json")
        with open(path, "w") as f:
            json.dump(config, f)
        log = open(os.path.join(self.dir, "log"), "w")
        LIVE.append(self)
        # Sessions of their own: a Ctrl-C reaches this script, which stops them in order.
        self.procs = [
            subprocess.Popen(["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                              "-management", f"127.0.0.1:{dns_mgmt}", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""], stdout=log, stderr=log,
                             start_new_session=True),
            subprocess.Popen(["pebble", "-config", path, "-dnsserver", f"127.0.0.1:{dns}"], stdout=log, stderr=log,
                             env=dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_AUTHZREUSE="0", PEBBLE_WFE_NONCEREJECT="0"),
                             start_new_session=True),
        ]
        self.directory = f"https://127.0.0.1:{acme}/dir"
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", acme), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def stop(self):
        if self in LIVE:
            LIVE.remove(self)
        for p in self.procs:
            p.kill()
            p.wait()


def bench_letsencrypt(fx):
    say("3. Let's Encrypt issuance against a local Pebble (PEBBLE_VA_NOSLEEP=1, no authorization reuse, no nonce rejection)")
    nginx = Nginx("letsencrypt")
    pebble = Pebble(nginx, fx)
    domain = "le.example.com"
    try:
        nginx.app("le", domain)
        env = dict(nginx.env, DOKKU_LETSENCRYPT_CA_CERTIFICATES=f"{fx}/pebble-ca.crt")
        run([BIN, "certs:generate", "le", domain], env=env)  # nginx.conf for the app...
        run([BIN, "certs:remove", "le"], env=env)            # ...back to plain HTTP, as a deployed app
        run([BIN, "letsencrypt:set", "--global", "email", "bench@example.com"], env=env)
        run([BIN, "letsencrypt:set", "--global", "server", pebble.directory], env=env)
        run([BIN, "letsencrypt:enable", "le"], env=env)  # warm-up: creates the account
        # --force: without it every timed run would find the certificate current and order nothing.
        ours = record("3. Let's Encrypt", "dokku-certs letsencrypt:enable (order to certificate installed and served)",
                      timed([BIN, "letsencrypt:enable", "le", "--force"], env))
        # lego and certbot answer through the same nginx from a webroot it serves.
        webroot = os.path.join(nginx.dir, "webroot")
        os.makedirs(webroot)
        conf_d = os.path.join(nginx.root, "le", "nginx.conf.d")
        os.makedirs(conf_d, exist_ok=True)
        with open(os.path.join(conf_d, "webroot.conf"), "w") as f:
            f.write(f"location ^~ /.well-known/acme-challenge/ {{ root {webroot}; default_type text/plain; }}\n")
        run(["sh", "-c", nginx.cmd + " -s reload"])
        time.sleep(0.5)
        results = {"dokku-certs": ours[2]}
        lego_dir = os.path.join(nginx.dir, "lego")
        lego_env = dict(os.environ, LEGO_CA_CERTIFICATES=f"{fx}/pebble-ca.crt")
        lego = ["lego", "--accept-tos", "--email", "bench@example.com", "--server", pebble.directory, "--path", lego_dir,
                "--domains", domain, "--http", "--http.webroot", webroot, "run"]
        run(lego, env=lego_env)  # warm-up: creates the account
        results["lego"] = record("3. Let's Encrypt", "lego run --http.webroot (what dokku-letsencrypt runs; certificate on disk, not installed)", timed(lego, lego_env))[2]
        cb = os.path.join(nginx.dir, "certbot")
        certbot = ["certbot", "certonly", "--webroot", "-w", webroot, "-d", domain, "--server", pebble.directory,
                   "--email", "bench@example.com", "--agree-tos", "--non-interactive", "--no-eff-email", "--force-renewal",
                   "--config-dir", f"{cb}/config", "--work-dir", f"{cb}/work", "--logs-dir", f"{cb}/logs"]
        certbot_env = dict(os.environ, REQUESTS_CA_BUNDLE=f"{fx}/pebble-ca.crt")
        run(certbot, env=certbot_env)  # warm-up: creates the account
        results["certbot"] = record("3. Let's Encrypt", "certbot certonly --webroot (certificate on disk, not installed)", timed(certbot, certbot_env))[2]
        notes.append("Let's Encrypt issuance (medians): " + ", ".join(f"{k} {fmt(v)}" for k, v in results.items())
                     + f"; dokku-certs is {results['lego'] / results['dokku-certs']:.1f}x faster than lego and "
                     f"{results['certbot'] / results['dokku-certs']:.1f}x faster than certbot, and its time includes installing "
                     "the certificate and the one nginx reload that serves it (the challenge needs none).")
    finally:
        pebble.stop()
        nginx.stop()


KIT = os.environ.get("ACME_LAB_KIT", os.path.join(os.path.dirname(REPO), "shared", "acme-lab"))


def kit_start(script, args):
    """Starts a server of the acme-lab kit; returns its KEY=VALUE lines."""
    out = subprocess.run([os.path.join(KIT, script)] + args, stdout=subprocess.PIPE, check=True,
                         env=dict(os.environ, PEBBLE_AUTHZREUSE="0")).stdout.decode()
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def bench_dns01():
    say("6. wildcard + apex certificate over DNS-01 (RFC 2136 + TSIG to BIND), acme-lab Pebble v2.10.1, no authorization reuse")
    nginx = Nginx("dns01")
    bind = kit_start("start-bind.sh", ["--port", str(free_port())])
    pebble = {}
    domains = ["*.bench.example.test", "bench.example.test"]
    try:
        pebble = kit_start("start-pebble.sh", ["--https-port", str(free_port()), "--mgmt-port", str(free_port()),
                                               "--http-port", str(nginx.http), "--tls-port", str(free_port()),
                                               "--dns", bind["BIND_NAMESERVER"], "--no-sleep"])
        nginx.app("wild", domains[0])
        with open(os.path.join(nginx.root, "wild", "VHOST"), "w") as f:
            f.write("\n".join(domains) + "\n")
        env = dict(nginx.env, DOKKU_LETSENCRYPT_CA_CERTIFICATES=pebble["PEBBLE_TLS_CA"])
        settings = [("email", "bench@example.test"), ("server", pebble["PEBBLE_DIRECTORY"]), ("dns-provider", "rfc2136"),
                    ("dns-provider-RFC2136_NAMESERVER", bind["BIND_NAMESERVER"]),
                    ("dns-provider-RFC2136_TSIG_KEY", bind["TSIG_KEY_NAME"]),
                    ("dns-provider-RFC2136_TSIG_ALGORITHM", bind["TSIG_ALGORITHM"]),
                    ("dns-provider-RFC2136_TSIG_SECRET", bind["TSIG_SECRET"])]
        for key, value in settings:
            run([BIN, "letsencrypt:set", "--global", key, value], env=env)
        run([BIN, "letsencrypt:enable", "wild"], env=env)  # warm-up: creates the account
        ours = record("6. DNS-01 wildcard", "dokku-certs letsencrypt:enable --force (rfc2136; certificate installed and served)",
                      timed([BIN, "letsencrypt:enable", "wild", "--force"], env))
        lego_env = dict(os.environ, LEGO_CA_CERTIFICATES=pebble["PEBBLE_TLS_CA"],
                        RFC2136_NAMESERVER=bind["BIND_NAMESERVER"], RFC2136_TSIG_KEY=bind["TSIG_KEY_NAME"],
                        RFC2136_TSIG_ALGORITHM=bind["TSIG_ALGORITHM"] + ".", RFC2136_TSIG_SECRET=bind["TSIG_SECRET"],
                        RFC2136_SEQUENCE_INTERVAL="1", RFC2136_POLLING_INTERVAL="1", RFC2136_TTL="60")
        lego = ["lego", "--accept-tos", "--email", "bench@example.test", "--server", pebble["PEBBLE_DIRECTORY"],
                "--path", os.path.join(nginx.dir, "lego"), "--dns", "rfc2136", "--dns.disable-cp"]
        for d in domains:
            lego += ["--domains", d]
        lego.append("run")
        run(lego, env=lego_env)  # warm-up: creates the account
        theirs = record("6. DNS-01 wildcard", "lego 4.9.1 run --dns rfc2136 --dns.disable-cp, RFC2136_SEQUENCE_INTERVAL=1 (certificate on disk, not installed)",
                        timed(lego, lego_env))
        notes.append(f"Wildcard + apex over DNS-01 (medians): dokku-certs {fmt(ours[2])}, lego {fmt(theirs[2])}; "
                     "lego waits RFC2136_SEQUENCE_INTERVAL between the two TXT values of one name (60 s by default, 1 s here) "
                     "and polls each authorization once a second, dokku-certs publishes both, asks BIND until it answers "
                     "them, and polls from 25 ms.")
    finally:
        subprocess.run([os.path.join(KIT, "stop.sh"), pebble.get("PEBBLE_PID", ""), bind.get("BIND_PID", "")], check=False)
        nginx.stop()


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for name, cmd in (("nginx", ["nginx", "-v"]), ("openssl", ["openssl", "version"]),
                      ("lego", ["dpkg-query", "-W", "-f", "Debian package ${Version}", "lego"]),
                      ("certbot", ["certbot", "--version"]), ("wrk", ["wrk", "--version"])):
        try:
            out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode().strip().splitlines()[0]
            versions[name] = out
        except (OSError, IndexError):
            versions[name] = "not found"
    return cpu, os.cpu_count(), mem, platform.release(), versions


def write_report(ratio):
    cpu, cores, mem, kernel, versions = machine()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` (benches/bench.py) on {date}.",
        f"Machine: {cpu}, {cores} cores, {mem:.0f} GiB, Linux {kernel}. "
        + "; ".join(f"{k}: {v}" for k, v in versions.items()) + ".",
        "Sections 7 and 8 (one change among 1,000 and 10,000 apps with a real nginx; Let's Encrypt for 1",
        "and 100 apps against lego) are in their own block below the summary, from `make bench-scale`.",
        f"Rows marked `DOKKU_NGINX_CMD=true` leave nginx out. Each timed row is the median of {RUNS} runs, with min and max: "
        "wall-clock time of the whole process(es).",
        "",
        "| section | what | median | min | max | note |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for section, what, med, lo, hi, note in rows:
        cells = [fmt(x) if x is not None else "" for x in (med, lo, hi)]
        lines.append(f"| {section} | {what} | {cells[0]} | {cells[1]} | {cells[2]} | {note} |")
    lines += ["", "## Summary", ""] + [f"- {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    print(text)
    return text


def update_benchmarks(top, scale_block):
    """Rewrites BENCHMARKS.md: the table of sections 1-6 (`top`, from a full run), the scale
    block between its markers (`scale_block`, from `make bench` or `make bench-scale`); a part
    given as None is kept, and so is the analysis from ANALYSIS_MARKER on."""
    path = os.path.join(REPO, "BENCHMARKS.md")
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    head, analysis = old, ANALYSIS_MARKER + "\n"
    if ANALYSIS_MARKER in old:
        head, analysis = old[:old.index(ANALYSIS_MARKER)], old[old.index(ANALYSIS_MARKER):]
    old_top, old_scale = head, ""
    if SCALE_BEGIN in head and SCALE_END in head:
        old_top = head[:head.index(SCALE_BEGIN)]
        old_scale = head[head.index(SCALE_BEGIN):head.index(SCALE_END) + len(SCALE_END)]
    if scale_block is not None:
        scale_block = f"{SCALE_BEGIN}\n{scale_block.strip()}\n{SCALE_END}"
    parts = [(top if top is not None else old_top).strip(), (scale_block if scale_block is not None else old_scale).strip()]
    with open(path, "w") as f:
        f.write("\n\n".join(p for p in parts if p) + "\n\n" + analysis)


SECTIONS = ["report", "add", "letsencrypt", "zero-downtime", "dns01", "scale", "le-scale"]


def main():
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release")
    only = set(sys.argv[1:])
    unknown = only - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    atexit.register(cleanup)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    os.makedirs(WORK, exist_ok=True)
    fx = fixtures()
    cert_pairs = pairs(fx)
    ratio = None
    wanted = lambda name: not only or name in only  # noqa: E731
    if wanted("report"):
        ratio = bench_report(cert_pairs)
    if wanted("add"):
        bench_add(cert_pairs, fx)
    if wanted("letsencrypt"):
        bench_letsencrypt(fx)
    if wanted("zero-downtime"):
        bench_zero_downtime(fx)
    if wanted("dns01"):
        bench_dns01()
    scale_block = None
    if wanted("scale") or wanted("le-scale"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        sys.dont_write_bytecode = True  # no benches/__pycache__ left in the work tree
        import scale

        scale_block = scale.bench(sys.modules[__name__], fx, wanted("scale"), wanted("le-scale"))
        print(scale_block)
    top = write_report(ratio) if rows else None
    # Only complete parts replace what BENCHMARKS.md holds: all of sections 1-6, or both scale sections.
    if os.environ.get("BENCH_WRITE", "1") != "0":
        update_benchmarks(top if not only else None, scale_block if wanted("scale") and wanted("le-scale") else None)


if __name__ == "__main__":
    main()
