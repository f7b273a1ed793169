"""Sections 7 and 8 of `make bench` (`make bench-scale` runs only these): a certificate change
on a host with 1,000 and 10,000 apps, each with its own certificate, behind a real nginx on
loopback, and Let's Encrypt for 1 and 100 apps against lego on the same Pebble (issue 12).

The host is set up as the README's recipe: Debian's stock http{} lines, the policy file of
`nginx:setup`, which includes DOKKU_ROOT/*/nginx.conf. Certificates come from one CA made
here, leaf keys and certificates made in-process (python3-cryptography: about 1 ms per app,
where a `certs:generate` process per app costs tens of ms), so 10,000 apps take seconds to
build. Each app's nginx.conf is the one dokku-certs renders for app00000, with the name
replaced.

Section 7, side by side for each number of apps (BENCH_SCALE, default 1000,10000):
- full `nginx -t`: what every change cost before, and what dokku's proxy rebuild runs;
- dokku's way: the new files copied in, then `nginx -t && nginx -s reload`;
- the master's own reload: SIGHUP to a master whose app00000 has new files on disk;
- each dokku-certs command on app00000 (certs:add, certs:update, certs:remove,
  certs:generate, and letsencrypt:auto-renew of app00000 made due by its graceperiod, against
  a real Pebble), whole process until it returns.
Each cell gives the process's wall time, its CPU time (user + system, with the children it
waited for: the one-app `nginx -t`), and "served": from the start (or the SIGHUP) until a
TLS handshake with app00000's SNI sees the new leaf.

Section 8, a host of BENCH_LE_APPS (100) apps served over plain HTTP: letsencrypt:enable of one
app and `--all`, against `lego run --http.webroot` for one app and then for each app in turn,
as dokku-letsencrypt runs it (lego leaves the certificate on disk; nginx is not reloaded).
"""

import datetime
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import time

COUNTS = [int(n) for n in os.environ.get("BENCH_SCALE", "1000,10000").split(",")]
# Runs per row above 1,000 apps, where one run costs up to a minute.
BIG_RUNS = int(os.environ.get("BENCH_SCALE_BIG_RUNS", "3"))
LE_APPS = int(os.environ.get("BENCH_LE_APPS", "100"))
LE_ALL_RUNS = int(os.environ.get("BENCH_LE_ALL_RUNS", "2"))
# lego one by one over 100 apps takes about 10 minutes per run.
LEGO_ALL_RUNS = int(os.environ.get("BENCH_LEGO_ALL_RUNS", "1"))
APP, DOMAIN = "app00000", "app00000.example.com"
# graceperiod for the renewal row: longer than any Pebble certificate lives, so always due.
ALWAYS_DUE = str(10 * 365 * 86400)


class Failed(Exception):
    """A row that could not be measured: recorded as such, the run goes on."""


def make_ca():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dokku-certs bench CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(ca, domain):
    """A distinct key and certificate for `domain`, signed by the CA: (crt PEM with chain, key PEM, leaf DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    crt = cert.public_bytes(pem) + ca_cert.public_bytes(pem)
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return crt, key_pem, cert.public_bytes(serialization.Encoding.DER)


def write(path, data, mode=0o640):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def installed_leaf(nginx, app):
    """The DER of the leaf in `app`'s tls/server.crt, or None without one."""
    try:
        with open(os.path.join(nginx.root, app, "tls", "server.crt")) as f:
            text = f.read()
    except OSError:
        return None
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(text[:text.index(end) + len(end)])


def served_leaf(port, domain):
    """The DER of the leaf nginx serves for `domain`, or None."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=domain) as tls:
                return tls.getpeercert(binary_form=True)
    except OSError:
        return None


def wait_served(port, domain, der, timeout=600):
    """The moment a TLS handshake with `domain` first sees `der` (polled every 2 ms)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if served_leaf(port, domain) == der:
            return time.perf_counter()
        time.sleep(0.002)
    raise Failed(f"nginx did not serve the new certificate for {domain} within {timeout} s")


def children(pid):
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                found.add(int(entry))
    return found


def master_busy(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat[stat.rfind(")") + 2] not in "SI"


def settle(nginx, before, timeout=600):
    """Waits until the master runs one worker, started after `before` was taken, and has
    been asleep for 0.3 s: the reload (if any) is over, the old worker has gone, and the
    master has freed the old configuration (seconds at 10,000 apps), so the next run starts
    from rest instead of queueing behind that work."""
    pid = nginx.master()
    deadline = time.perf_counter() + timeout
    idle_since = None
    while time.perf_counter() < deadline:
        now = children(pid)
        if len(now) == 1 and not now & before and not master_busy(pid):
            idle_since = idle_since or time.perf_counter()
            if time.perf_counter() - idle_since >= 0.3:
                return
        else:
            idle_since = None
        time.sleep(0.01)
    raise Failed("nginx's master never settled after a reload")


class Cell:
    """The samples of one row at one app count."""

    def __init__(self):
        self.wall, self.cpu, self.served = [], [], []
        self.error = None


def timed_cpu(cmd, env):
    """Runs `cmd`; returns (wall, cpu) with its children's CPU."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise Failed(f"{' '.join(cmd[-3:])} failed: {proc.stderr.read().decode(errors='replace').strip()[-300:]}")
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def measure(b, nginx, cmd, env, cell, expect=None, app=APP, domain=DOMAIN, changed_from=None):
    """One timed run of `cmd`, which changes `app`'s certificate: wall and CPU time of the
    process, then the time from its start until a handshake sees the new leaf (`expect`, or
    whatever tls/server.crt holds once it returns; none after a removal). Returns once the
    master is idle again."""
    workers = children(nginx.master())
    start = time.perf_counter()
    wall, cpu = timed_cpu(cmd, env)
    der = expect or installed_leaf(nginx, app)
    if changed_from is not None and der == changed_from:
        raise Failed(f"{' '.join(cmd[-2:])} left the certificate as it was")
    if der:
        cell.served.append(wait_served(nginx.ssl, domain, der) - start)
    cell.wall.append(wall)
    cell.cpu.append(cpu)
    settle(nginx, workers)


def build_host(b, n, ca, name, with_certs=True):
    """A sandbox nginx set up as the host recipe, with n apps (each with its own certificate,
    or plain HTTP), started and idle."""
    nginx = b.Nginx(name, flavour="debian", start=False)
    env = dict(nginx.env, DOKKU_NGINX_GLOBAL_CONF=os.path.join(nginx.dir, "nginx", "conf.d", "dokku-certs.conf"),
               DOKKU_LIB_ROOT=os.path.join(nginx.dir, "lib"))
    nginx.env = env
    quiet = dict(env, DOKKU_NGINX_CMD="true")
    b.run([b.BIN, "nginx:setup"], env=quiet)
    # One access log (off) and one error log for every app. dokku gives each app its own
    # two log files, which nginx keeps open: 20,000 descriptors at 10,000 apps, more than
    # this machine's hard limit (ulimit -Hn 20000, not raisable here). On a real host that
    # needs `worker_rlimit_nofile` and a master limit above 2 per app.
    b.run([b.BIN, "nginx:set", "--global", "access-log-path", "off"], env=quiet)
    b.run([b.BIN, "nginx:set", "--global", "error-log-path", os.path.join(nginx.dir, "apps-error.log")], env=quiet)
    start = time.perf_counter()
    first = os.path.join(nginx.dir, "first")
    nginx.app(APP, DOMAIN)
    crt, key, _ = make_leaf(ca, DOMAIN)
    write(first + ".crt", crt)
    write(first + ".key", key)
    b.run([b.BIN, "certs:add", APP, first + ".crt", first + ".key"], env=quiet)
    if not with_certs:
        b.run([b.BIN, "certs:remove", APP], env=quiet)  # back to plain HTTP, as a deployed app
    with open(os.path.join(nginx.root, APP, "nginx.conf")) as f:
        template = f.read()
    for i in range(1, n):
        name = f"app{i:05d}"
        domain = f"{name}.example.com"
        app = nginx.app(name, domain)
        if with_certs:
            crt, key, _ = make_leaf(ca, domain)
            tls = os.path.join(app, "tls")
            os.mkdir(tls, 0o750)
            write(os.path.join(tls, "server.crt"), crt)
            write(os.path.join(tls, "server.key"), key)
        with open(os.path.join(app, "nginx.conf"), "w") as f:
            f.write(template.replace(APP, name))
    b.say(f"  {n} apps built in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    nginx.start()
    probe = (lambda: served_leaf(nginx.ssl, DOMAIN)) if with_certs else (lambda: http_up(nginx.http))
    while probe() is None:
        time.sleep(0.01)
    b.say(f"  nginx started and serving in {time.perf_counter() - start:.1f} s")
    settle(nginx, set())
    return nginx


def http_up(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return None


def pair_files(nginx, ca):
    """Two certificates for app00000 (A and B), as files; returns [(crt, key, der)]."""
    out = []
    for tag in ("a", "b"):
        crt, key, der = make_leaf(ca, DOMAIN)
        c, k = os.path.join(nginx.dir, f"pair-{tag}.crt"), os.path.join(nginx.dir, f"pair-{tag}.key")
        write(c, crt)
        write(k, key)
        out.append((c, k, der))
    return out


def unserved(nginx, pairs):
    """The pair whose leaf nginx does not serve for app00000 now: a run must change it."""
    return pairs[1] if served_leaf(nginx.ssl, DOMAIN) == pairs[0][2] else pairs[0]


def copy_in(nginx, pair):
    tls = os.path.join(nginx.root, APP, "tls")
    os.makedirs(tls, mode=0o750, exist_ok=True)
    shutil.copyfile(pair[0], os.path.join(tls, "server.crt"))
    shutil.copyfile(pair[1], os.path.join(tls, "server.key"))


def row(b, table, key, n, body):
    """Runs `body(cell)`; a failure is recorded in the cell (and said), not fatal."""
    cell = table.setdefault(key, {}).setdefault(n, Cell())
    try:
        body(cell)
    except Failed as error:
        cell.error = str(error)
    except SystemExit as error:
        if not isinstance(error.code, str):  # a signal: stop the run
            raise
        # "['/path/dokku-certs', 'cmd', 'app'] failed: ..." -> "dokku-certs cmd app failed: ..."
        text = re.sub(r"\[([^\]]*)\] failed:", lambda m: " ".join(
            os.path.basename(a.strip(" '\"")) for a in m.group(1).split(",")) + " failed:", error.code.strip().splitlines()[-1])
        cell.error = text[:300]
    b.say(f"  {key}, {n} apps: {describe(b, cell)}")


def describe(b, cell):
    parts = []
    if cell.wall:
        parts.append(f"wall {spread(b, cell.wall)}")
    if cell.cpu:
        parts.append(f"CPU {b.fmt(statistics.median(cell.cpu))}")
    if cell.served:
        parts.append(f"served {spread(b, cell.served)}")
    if cell.error:
        parts.append(f"FAILED: {cell.error}")
    return "; ".join(parts) or "-"


def spread(b, samples):
    if len(samples) == 1:
        return f"{b.fmt(samples[0])} (1 run)"
    return f"{b.fmt(statistics.median(samples))} ({b.fmt(min(samples))}-{b.fmt(max(samples))})"


def bench_host(b, fx, ca, n, table, loads):
    runs = b.RUNS if n <= 1000 else BIG_RUNS
    nginx = build_host(b, n, ca, f"scale-{n}")
    pebble = None
    try:
        loads[n] = [os.getloadavg()[0]]
        pairs = pair_files(nginx, ca)
        env = nginx.env
        full_t = ["sh", "-c", nginx.cmd + " -t"]

        def full_test(cell):
            for _ in range(runs):
                wall, cpu = timed_cpu(full_t, None)
                cell.wall.append(wall)
                cell.cpu.append(cpu)

        row(b, table, "full nginx -t", n, full_test)

        def dokku_way(cell):
            # dokku's certs plugin copies the files in, then its proxy rebuild tests and reloads.
            for _ in range(runs):
                pair = unserved(nginx, pairs)
                copy_in(nginx, pair)
                measure(b, nginx, ["sh", "-c", f"{nginx.cmd} -t && {nginx.cmd} -s reload"], None, cell, expect=pair[2])

        row(b, table, "dokku's way", n, dokku_way)

        def master_reload(cell):
            for _ in range(runs):
                pair = unserved(nginx, pairs)
                copy_in(nginx, pair)
                pid = nginx.master()
                workers = children(pid)
                start = time.perf_counter()
                os.kill(pid, signal.SIGHUP)
                cell.served.append(wait_served(nginx.ssl, DOMAIN, pair[2]) - start)
                settle(nginx, workers)

        row(b, table, "master reload", n, master_reload)
        # app00000 back to a certificate installed by dokku-certs, as the commands expect.
        b.run([b.BIN, "certs:add", APP, pairs[1][0], pairs[1][1]], env=env)
        settle(nginx, set())

        def command(args_of, before=None, expect_of=None):
            def body(cell):
                for i in range(runs):
                    if before:
                        before()
                    expect = expect_of(i) if expect_of else None
                    measure(b, nginx, [b.BIN] + args_of(i), env, cell, expect=expect)
            return body

        def untimed(*args):
            def go():
                b.run([b.BIN] + list(args), env=env)
                settle(nginx, set())
            return go

        row(b, table, "certs:add", n, command(lambda i: ["certs:add", APP, pairs[i % 2][0], pairs[i % 2][1]],
                                             expect_of=lambda i: pairs[i % 2][2]))
        row(b, table, "certs:update", n, command(lambda i: ["certs:update", APP, pairs[(i + 1) % 2][0], pairs[(i + 1) % 2][1]],
                                                expect_of=lambda i: pairs[(i + 1) % 2][2]))
        row(b, table, "certs:remove", n, command(lambda i: ["certs:remove", APP],
                                                before=untimed("certs:add", APP, pairs[0][0], pairs[0][1])))
        def remove_if_installed():
            if installed_leaf(nginx, APP):
                untimed("certs:remove", APP)()

        # certs:generate does nothing on an app that has a certificate (as dokku): removed first.
        row(b, table, "certs:generate", n, command(lambda i: ["certs:generate", APP, DOMAIN], before=remove_if_installed))

        pebble = b.Pebble(nginx, fx)
        le_env = dict(env, DOKKU_LETSENCRYPT_CA_CERTIFICATES=f"{fx}/pebble-ca.crt")

        def renewal(cell):
            for key, value in (("email", "bench@example.com"), ("server", pebble.directory)):
                b.run([b.BIN, "letsencrypt:set", "--global", key, value], env=le_env)
            start = time.perf_counter()
            b.run([b.BIN, "letsencrypt:enable", APP], env=le_env)  # the account and a first certificate
            settle(nginx, set())
            b.say(f"  first letsencrypt:enable (untimed): {b.fmt(time.perf_counter() - start)}")
            b.run([b.BIN, "letsencrypt:set", APP, "graceperiod", ALWAYS_DUE], env=le_env)
            for _ in range(runs):
                measure(b, nginx, [b.BIN, "letsencrypt:auto-renew", APP], le_env, cell,
                        changed_from=installed_leaf(nginx, APP))

        row(b, table, "renewal", n, renewal)
        loads[n].append(os.getloadavg()[0])
    finally:
        if pebble:
            pebble.stop()
        nginx.stop()
        shutil.rmtree(nginx.dir, ignore_errors=True)


def bench_le(b, fx, ca, table):
    """Section 8: letsencrypt:enable for 1 and LE_APPS apps against lego one by one."""
    n = LE_APPS
    nginx = build_host(b, n, ca, f"le-{n}", with_certs=False)
    pebble = b.Pebble(nginx, fx)
    env = dict(nginx.env, DOKKU_LETSENCRYPT_CA_CERTIFICATES=f"{fx}/pebble-ca.crt")
    names = [f"app{i:05d}" for i in range(n)]
    try:
        for key, value in (("email", "bench@example.com"), ("server", pebble.directory)):
            b.run([b.BIN, "letsencrypt:set", "--global", key, value], env=env)
        b.run([b.BIN, "letsencrypt:enable", APP], env=env)  # warm-up: creates the account
        settle(nginx, set())

        def one(cell):
            for _ in range(b.RUNS):
                measure(b, nginx, [b.BIN, "letsencrypt:enable", APP, "--force"], env, cell, changed_from=installed_leaf(nginx, APP))

        row(b, table, "dokku-certs enable 1", n, one)

        def everyone(cell):
            for _ in range(LE_ALL_RUNS):
                before = {a: installed_leaf(nginx, a) for a in names}
                workers = children(nginx.master())
                start = time.perf_counter()
                wall, cpu = timed_cpu([b.BIN, "letsencrypt:enable", "--all", "--force"], env)
                for a in names:
                    der = installed_leaf(nginx, a)
                    if der is None or der == before[a]:
                        raise Failed(f"enable --all left {a} without a new certificate")
                    wait_served(nginx.ssl, f"{a}.example.com", der)
                cell.served.append(time.perf_counter() - start)
                cell.wall.append(wall)
                cell.cpu.append(cpu)
                settle(nginx, workers)

        row(b, table, "dokku-certs enable --all", n, everyone)

        # lego answers from a webroot nginx serves: a ^~ location in each app's nginx.conf.d
        # (as dokku-letsencrypt's), set up once, before lego is timed.
        webroot = os.path.join(nginx.dir, "webroot")
        os.makedirs(webroot)
        for a in names:
            conf_d = os.path.join(nginx.root, a, "nginx.conf.d")
            os.makedirs(conf_d, exist_ok=True)
            with open(os.path.join(conf_d, "webroot.conf"), "w") as f:
                f.write(f"location ^~ /.well-known/acme-challenge/ {{ root {webroot}; default_type text/plain; }}\n")
        workers = children(nginx.master())
        b.run(["sh", "-c", nginx.cmd + " -s reload"])
        settle(nginx, workers)
        lego_dir = os.path.join(nginx.dir, "lego")
        lego_env = dict(os.environ, LEGO_CA_CERTIFICATES=f"{fx}/pebble-ca.crt")

        def lego(app):
            return ["lego", "--accept-tos", "--email", "bench@example.com", "--server", pebble.directory, "--path", lego_dir,
                    "--domains", f"{app}.example.com", "--http", "--http.webroot", webroot, "run"]

        b.run(lego(APP), env=lego_env)  # warm-up: creates the account

        def lego_one(cell):
            for _ in range(b.RUNS):
                wall, cpu = timed_cpu(lego(APP), lego_env)
                cell.wall.append(wall)
                cell.cpu.append(cpu)

        row(b, table, "lego 1", n, lego_one)

        def lego_all(cell):
            for _ in range(LEGO_ALL_RUNS):
                walls = cpus = 0
                for a in names:
                    wall, cpu = timed_cpu(lego(a), lego_env)
                    walls += wall
                    cpus += cpu
                cell.wall.append(walls)
                cell.cpu.append(cpus)

        row(b, table, "lego one by one", n, lego_all)
    finally:
        pebble.stop()
        nginx.stop()
        shutil.rmtree(nginx.dir, ignore_errors=True)


SCALE_ROWS = [
    ("full nginx -t", "full `nginx -t` (what dokku's proxy rebuild runs per change)"),
    ("dokku's way", "dokku's way: files copied in, `nginx -t && nginx -s reload` (returns before the reload)"),
    ("master reload", "nginx master alone: SIGHUP, files already in place"),
    ("certs:add", "dokku-certs certs:add app00000 CRT KEY"),
    ("certs:update", "dokku-certs certs:update app00000 CRT KEY"),
    ("certs:remove", "dokku-certs certs:remove app00000"),
    ("certs:generate", "dokku-certs certs:generate app00000 DOMAIN"),
    ("renewal", "dokku-certs letsencrypt:auto-renew app00000 (due: graceperiod), real Pebble"),
]
COMMANDS = ["certs:add", "certs:update", "certs:remove", "certs:generate", "renewal"]


def med(samples):
    return statistics.median(samples) if samples else None


def cell_text(b, cell, what):
    if cell is None or not (cell.wall or cell.cpu or cell.served or cell.error):
        return "not run"
    if cell.error and not getattr(cell, what):
        # Said once, in the first column; the others of the row stay short.
        return f"failed: {cell.error}" if what == "wall" else "-"
    samples = getattr(cell, what)
    return spread(b, samples) if samples else "-"


def git_head():
    """The commit the binary's source comes from: the last one that touched src/ or Cargo.*
    (the benchmark's own commits do not change what is measured)."""
    out = subprocess.run(["git", "-C", os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "log", "-1",
                          "--format=%h", "--", "src", "Cargo.toml", "Cargo.lock", "templates"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode().strip()
    return out[:100] or "unknown"


def render(b, table, le, loads, counts, started):
    cpu, cores, mem, kernel, versions = b.machine()
    lines = [
        "## Scale with a real nginx: one change among 1,000 and 10,000 apps, Let's Encrypt for 1 and 100 apps",
        "",
        f"Measured by `make bench-scale` (benches/scale.py, also part of `make bench`) from {started} to "
        f"{datetime.datetime.now(datetime.timezone.utc).strftime('%H:%M UTC')}, release build of the source at {git_head()} (the last commit that touched src/, Cargo.* or templates/).",
        f"Machine: {cpu}, {cores} cores, {mem:.0f} GiB, Linux {kernel}; nginx: {versions.get('nginx')}; lego: {versions.get('lego')}. "
        "Shared with other helpers' builds and tests: load average (1 min) "
        + ", ".join(f"{n:,} apps: {' -> '.join(f'{x:.2f}' for x in v)}" for n, v in loads.items()) + ".",
        f"Each cell: median (min-max) of {b.RUNS} runs at up to 1,000 apps, {BIG_RUNS} at 10,000; every run starts with "
        "the nginx master idle. *wall*: the process, start to exit. *CPU*: its user + system time with the children "
        "it waited for (the one-app `nginx -t`; for dokku's way, both nginx runs). *served*: from the start (the SIGHUP "
        "for the master row) until a TLS handshake with app00000's SNI sees the new leaf.",
        "",
    ]
    head = "| what |" + "".join(f" {n:,} apps: wall | CPU | served |" for n in counts)
    lines += [head, "| --- |" + " --- | --- | --- |" * len(counts)]
    for key, label in SCALE_ROWS:
        cells = [table.get(key, {}).get(n) for n in counts]
        line = f"| {label} |"
        for c in cells:
            line += "".join(f" {cell_text(b, c, w)} |" for w in ("wall", "cpu", "served"))
        lines.append(line)
    lines += ["", "Ratios from this run (medians):", ""]
    for n in counts:
        full = table.get("full nginx -t", {}).get(n)
        dokku = table.get("dokku's way", {}).get(n)
        if not full or not full.cpu:
            continue
        parts = []
        for key in COMMANDS:
            c = table.get(key, {}).get(n)
            if c is None or not c.cpu:
                continue
            text = f"{key} {med(c.cpu) / med(full.cpu) * 100:.1f}%"
            if c.served and dokku and dokku.served and key != "renewal":
                text += f" (served in {med(c.served) / med(dokku.served):.2f}x dokku's way's time)"
            parts.append(text)
        if parts:
            lines.append(f"- {n:,} apps, the command's CPU time as a share of one full `nginx -t`'s "
                         f"({b.fmt(med(full.cpu))} CPU, {b.fmt(med(full.wall))} wall): " + "; ".join(parts) + ".")
    if len(counts) > 1:
        lo, hi = counts[0], counts[-1]
        growth = []
        for key in ["full nginx -t"] + COMMANDS:
            a, z = table.get(key, {}).get(lo), table.get(key, {}).get(hi)
            if a and z and a.cpu and z.cpu:
                growth.append(f"{key} {med(z.cpu) / med(a.cpu):.1f}x")
        if growth:
            lines.append(f"- CPU time from {lo:,} to {hi:,} apps: " + ", ".join(growth) + ".")
    if le:
        n = LE_APPS
        lines += [
            "",
            f"Let's Encrypt on a host of {n} apps served over plain HTTP, the same Pebble (PEBBLE_VA_NOSLEEP=1, no "
            "authorization reuse, no nonce rejection) and nginx: dokku-certs installs and serves each certificate; "
            "lego (`run --http.webroot`, as dokku-letsencrypt) leaves it on disk and reloads nothing. "
            f"{b.RUNS} runs for one app; `--all` {LE_ALL_RUNS} runs (the first one issues {n - 1} apps' first certificates), "
            f"lego over all apps {LEGO_ALL_RUNS} run(s). *served*: until every app's handshake sees its new leaf.",
            "",
            "| what | wall | CPU | served |",
            "| --- | --- | --- | --- |",
        ]
        for key, label in (("dokku-certs enable 1", "dokku-certs letsencrypt:enable app00000 --force"),
                           ("lego 1", "lego run, 1 app"),
                           ("dokku-certs enable --all", f"dokku-certs letsencrypt:enable --all --force ({n} apps)"),
                           ("lego one by one", f"lego run for each of the {n} apps, one after the other")):
            c = le.get(key, {}).get(n)
            lines.append(f"| {label} | " + " | ".join(cell_text(b, c, w) for w in ("wall", "cpu", "served")) + " |")
        ratios = []
        for ours, theirs, what in (("dokku-certs enable 1", "lego 1", "1 app"), ("dokku-certs enable --all", "lego one by one", f"{n} apps")):
            a, z = le.get(ours, {}).get(n), le.get(theirs, {}).get(n)
            if a and z and a.wall and z.wall:
                ratios.append(f"{what}: lego takes {med(z.wall) / med(a.wall):.1f}x dokku-certs' wall time")
        if ratios:
            lines += ["", "- " + "; ".join(ratios) + "."]
    return "\n".join(lines) + "\n"


def bench(b, fx, scale=True, le=True):
    """Runs section 7 (`scale`) and/or 8 (`le`); returns the markdown block."""
    b.say("7. one certificate change with a real nginx and 1,000 to 10,000 apps; 8. Let's Encrypt for 1 and 100 apps")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ca = make_ca()
    table, le_table, loads = {}, {}, {}
    if scale:
        for n in COUNTS:
            bench_host(b, fx, ca, n, table, loads)
    if le:
        loads[LE_APPS] = [os.getloadavg()[0]]
        bench_le(b, fx, ca, le_table)
        loads[LE_APPS].append(os.getloadavg()[0])
    return render(b, table, le_table, loads, COUNTS if scale else [], started)
