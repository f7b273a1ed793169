"""Section 7 of `make bench`: one certificate change on a host with 1, 1,000 and 10,000 apps,
each with its own certificate, behind a real nginx on loopback (issue 12).

The host is set up as the README's recipe: Debian's stock http{} lines, the policy file of
`nginx:setup`, which includes DOKKU_ROOT/*/nginx.conf. Certificates come from one CA made
here, leaf keys and certificates made in-process (python3-cryptography), so 10,000 apps take
seconds to build. Each app's nginx.conf is the one dokku-certs renders for app00000, with
the name replaced.

Rows, side by side for each number of apps:
- full `nginx -t`: what every change cost before, and what dokku's proxy rebuild runs;
- dokku's way: `nginx -t && nginx -s reload` (returns before the master has reloaded);
- the master's own reload: SIGHUP to a master whose app00000 has a new certificate on disk,
  until a TLS handshake with app00000's SNI sees it;
- each dokku-certs command on app00000, whole process until it has nginx's confirmation,
  with its CPU time (its own and its children's: the one-app `nginx -t`) in the note;
- the same with the binary before issue 12, if BENCH_OLD_BIN names one (up to
  BENCH_OLD_MAX_APPS apps).
"""

import datetime
import os
import resource
import shutil
import socket
import ssl
import subprocess
import time

COUNTS = [int(n) for n in os.environ.get("BENCH_SCALE", "1,1000,10000").split(",")]
SECTION = "7. scale, real nginx"
# The older binary's rows take a minute each at 10,000 apps: BENCH_OLD_MAX_APPS=1000 skips them there.
OLD_MAX_APPS = int(os.environ.get("BENCH_OLD_MAX_APPS", "10000"))


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
    """A distinct key and certificate for `domain`, signed by the CA: (crt PEM with chain, key PEM)."""
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
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if served_leaf(port, domain) == der:
            return time.perf_counter()
        time.sleep(0.002)
    raise SystemExit(f"nginx never served the expected certificate for {domain}")


def master_pid(nginx):
    with open(os.path.join(nginx.dir, "nginx", "nginx.pid")) as f:
        return int(f.read().strip())


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
    pid = master_pid(nginx)
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
    raise SystemExit("nginx's master never settled after a reload")


def timed_settled(b, nginx, cmd, env, runs, before_each=None):
    """Wall time of `cmd` and its CPU time (user + system, with its children), each run
    starting after the previous reload is over."""
    walls, cpus = [], []
    for i in range(runs):
        if before_each:
            before_each(i)
        workers = children(master_pid(nginx))
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd} failed: {proc.stderr.read().decode(errors='replace')}")
        cpus.append(usage.ru_utime + usage.ru_stime)
        settle(nginx, workers)
    return walls, cpus


def build_host(b, n, ca):
    """A sandbox nginx set up as the host recipe, with n apps, started and serving."""
    nginx = b.Nginx(f"scale-{n}", flavour="debian", start=False)
    env = dict(nginx.env, DOKKU_NGINX_GLOBAL_CONF=os.path.join(nginx.dir, "nginx", "conf.d", "dokku-certs.conf"),
               DOKKU_LIB_ROOT=os.path.join(nginx.dir, "lib"))
    nginx.env = env
    quiet = dict(env, DOKKU_NGINX_CMD="true")
    b.run([b.BIN, "nginx:setup"], env=quiet)
    # One access log (off) and one error log for every app: 10,000 apps with a log file each
    # would need more than the 20,000 descriptors this machine allows a process.
    b.run([b.BIN, "nginx:set", "--global", "access-log-path", "off"], env=quiet)
    b.run([b.BIN, "nginx:set", "--global", "error-log-path", os.path.join(nginx.dir, "apps-error.log")], env=quiet)
    start = time.perf_counter()
    template = None
    for i in range(n):
        name = f"app{i:05d}"
        domain = f"{name}.example.com"
        app = nginx.app(name, domain)
        crt, key, _ = make_leaf(ca, domain)
        if template is None:
            write(os.path.join(nginx.dir, "first.crt"), crt)
            write(os.path.join(nginx.dir, "first.key"), key)
            b.run([b.BIN, "certs:add", name, os.path.join(nginx.dir, "first.crt"), os.path.join(nginx.dir, "first.key")], env=quiet)
            with open(os.path.join(app, "nginx.conf")) as f:
                template = f.read()
            continue
        tls = os.path.join(app, "tls")
        os.mkdir(tls, 0o750)
        write(os.path.join(tls, "server.crt"), crt)
        write(os.path.join(tls, "server.key"), key)
        with open(os.path.join(app, "nginx.conf"), "w") as f:
            f.write(template.replace("app00000", name))
    b.say(f"  {n} apps built in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    b.run(["sh", "-c", nginx.cmd])
    while served_leaf(nginx.ssl, "app00000.example.com") is None:
        time.sleep(0.01)
    b.say(f"  nginx started and serving in {time.perf_counter() - start:.1f} s")
    settle(nginx, set())
    return nginx


def pair_files(nginx, ca, label):
    """Two certificates for app00000 (A and B), as files; returns [(crt, key, der)]."""
    out = []
    for tag in ("a", "b"):
        crt, key, der = make_leaf(ca, "app00000.example.com")
        c, k = os.path.join(nginx.dir, f"{label}-{tag}.crt"), os.path.join(nginx.dir, f"{label}-{tag}.key")
        write(c, crt)
        write(k, key)
        out.append((c, k, der))
    return out


def bench_master_reload(b, nginx, pairs, apps, runs):
    """SIGHUP after swapping app00000's files by hand, until the new certificate is served."""
    tls = os.path.join(nginx.root, "app00000", "tls")
    samples = []
    for i in range(runs):
        crt, key, der = pairs[i % 2]
        shutil.copyfile(crt, os.path.join(tls, "server.crt"))
        shutil.copyfile(key, os.path.join(tls, "server.key"))
        pid = master_pid(nginx)
        workers = children(pid)
        start = time.perf_counter()
        os.kill(pid, 1)
        samples.append(wait_served(nginx.ssl, "app00000.example.com", der) - start)
        settle(nginx, workers)
    b.record(SECTION, f"nginx master reload until the new certificate is served (SIGHUP), {apps}", samples)


def bench_commands(b, nginx, pairs, apps, runs, binary, who):
    env = nginx.env
    app = "app00000"
    rows = []

    def add_a(i):
        b.run([binary, "certs:add", app, pairs[0][0], pairs[0][1]], env=env)
        settle(nginx, set())

    def remove(i):
        b.run([binary, "certs:remove", app], env=env)
        settle(nginx, set())

    cases = [
        ("certs:add", lambda i: [binary, "certs:add", app, pairs[i % 2][0], pairs[i % 2][1]], None),
        ("certs:update", lambda i: [binary, "certs:update", app, pairs[(i + 1) % 2][0], pairs[(i + 1) % 2][1]], None),
        # certs:generate does nothing on an app that has a certificate (as dokku): removed first.
        ("certs:generate", lambda i: [binary, "certs:generate", app, "app00000.example.com"], remove),
        ("certs:remove", lambda i: [binary, "certs:remove", app], add_a),
    ]
    for name, cmd, before in cases:
        walls, cpus = [], []
        for i in range(runs):
            w, c = timed_settled(b, nginx, cmd(i), env, 1, before_each=(lambda _: before(i)) if before else None)
            walls += w
            cpus += c
        cpu = sorted(cpus)[len(cpus) // 2]
        rows.append(b.record(SECTION, f"{who} {name} app00000, {apps}", walls, f"CPU {b.fmt(cpu)} (median, with children)"))
    add_a(0)
    return rows


def bench_scale(b):
    b.say("7. one certificate change with a real nginx and 1 to 10,000 apps")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Each app has its own access and error log: 10,000 apps need 20,000+ descriptors.
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        b.say(f"  cannot raise the open-file limit above {soft}: large app counts may fail")
    ca = make_ca()
    old = os.environ.get("BENCH_OLD_BIN")
    for n in COUNTS:
        apps = "1 app" if n == 1 else f"{n} apps"
        runs = b.RUNS if n <= 1000 else max(3, b.RUNS - 2)
        nginx = build_host(b, n, ca)
        try:
            pairs = pair_files(nginx, ca, "p")
            b.record(SECTION, f"full nginx -t, {apps}", b.timed(["sh", "-c", nginx.cmd + " -t"], None, runs=runs))
            dokku = ["sh", "-c", f"{nginx.cmd} -t && {nginx.cmd} -s reload"]
            walls, _ = timed_settled(b, nginx, dokku, None, runs)
            b.record(SECTION, f"dokku's way: nginx -t && nginx -s reload, {apps}", walls, "returns before the master has reloaded")
            bench_master_reload(b, nginx, pairs, apps, runs)
            bench_commands(b, nginx, pairs, apps, runs, b.BIN, "dokku-certs")
            if old and n <= OLD_MAX_APPS:
                bench_commands(b, nginx, pairs, apps, runs, old, "before issue 12:")
        finally:
            nginx.stop()
            shutil.rmtree(nginx.dir, ignore_errors=True)
