//! Test support: a sandbox DOKKU_ROOT, a real nginx on 127.0.0.1 high ports, a TLS client
//! that reports which certificate nginx served, and the openssl-made fixtures.
#![allow(dead_code)]

pub mod acmelab;
pub mod made;
pub mod pebble;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The built binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dokku-certs"))
}

/// The fixtures made by fixtures/make-fixtures.sh with openssl, made once per test run.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Named after the script's contents, so that a changed script makes new fixtures.
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/make-fixtures.sh");
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&std::fs::read(&script).unwrap(), &mut hasher);
        let version = std::hash::Hasher::finish(&hasher);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fixtures-{version:016x}"));
        let status = Command::new("sh")
            .arg(&script)
            .arg(&dir)
            .status()
            .expect("run fixtures/make-fixtures.sh (needs openssl: make test installs it)");
        assert!(status.success(), "fixtures/make-fixtures.sh failed");
        dir
    })
}

/// Reads one fixture file.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A free TCP port on 127.0.0.1, never handed out twice in this process. Ports come from
/// 20000-32767, below Linux's ephemeral range, so that no outgoing connection and no other
/// sandbox of this test binary takes a port between its allocation and nginx's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 100) * 120;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (base + offset % 12_000) as u16;
        if port <= 32_767 && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with the whole output unless the command succeeded.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts dokku's failure shape: exit 1 and exactly one ` !     ` line on stderr containing `needle`.
    pub fn refused(self, needle: &str) -> Run {
        assert_eq!(
            self.code, 1,
            "expected exit 1:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got:\n{}",
            self.stderr
        );
        assert!(
            lines[0].starts_with(" !     "),
            "not in dokku's style: {:?}",
            lines[0]
        );
        assert!(
            self.stderr.contains(needle),
            "stderr {:?} does not contain {needle:?}",
            self.stderr
        );
        self
    }
}

/// The variables dokku-certs reads to tell who asked: sudo's and those of a command run
/// over ssh for a dokku user (see src/caller.rs).
pub const CALLER_VARIABLES: [&str; 9] = [
    "SUDO_UID",
    "SUDO_GID",
    "SUDO_USER",
    "SSH_ORIGINAL_COMMAND",
    "FINGERPRINT",
    "NAME",
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "SSH_NAME",
];

/// What sshd, sshcommand's key line and dokku's main script leave for a push user's command.
pub const OVER_SSH: [(&str, &str); 6] = [
    ("SSH_CONNECTION", "127.0.0.1 40022 127.0.0.1 22"),
    ("SSH_CLIENT", "127.0.0.1 40022 22"),
    (
        "FINGERPRINT",
        "SHA256:2f1kPnLJbIfO0zGxwpPRM/YY6VPv3CEEzf8YGplP3vA",
    ),
    ("NAME", "alice"),
    ("SSH_USER", "dokku"),
    ("SSH_NAME", "alice"),
];

/// A DOKKU_ROOT and an nginx of its own, torn down on drop.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    pub ssl_port: u16,
    pub app_port: u16,
    nginx_started: bool,
}

impl Sandbox {
    /// A new empty sandbox (nginx not started).
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("sandbox")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        for sub in ["root", "nginx", "logs", "lib"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let sandbox = Sandbox {
            dir,
            http_port: free_port(),
            ssl_port: free_port(),
            app_port: free_port(),
            nginx_started: false,
        };
        sandbox.write_nginx_main_conf();
        sandbox
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn app_dir(&self, app: &str) -> PathBuf {
        self.root().join(app)
    }

    fn nginx_dir(&self) -> PathBuf {
        self.dir.path().join("nginx")
    }

    /// The command prefix the binary and the tests use to drive this sandbox's nginx.
    pub fn nginx_cmd(&self) -> String {
        let dir = self.nginx_dir();
        format!(
            "nginx -p {0} -c {0}/nginx.conf -e {0}/error.log",
            dir.display()
        )
    }

    fn write_nginx_main_conf(&self) {
        self.write_nginx_main_conf_with(&format!(
            "include {}/*/nginx.conf;",
            self.root().display()
        ));
    }

    /// A sandbox set up as the README's host recipe: nginx's http block holds Debian's stock
    /// ssl lines and the one include line `dokku-certs nginx:setup` printed.
    pub fn with_policy() -> Sandbox {
        let sandbox = Sandbox::new();
        let run = sandbox.run(&["nginx:setup"], None).ok();
        let include = run.stdout.lines().last().unwrap_or_default().to_string();
        assert!(
            include.starts_with("include ") && include.ends_with("dokku-certs.conf;"),
            "{}",
            run.stdout
        );
        let debian = "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; ssl_prefer_server_ciphers on;";
        sandbox.write_nginx_main_conf_with(&format!("{debian}\n{include}"));
        sandbox
    }

    /// The file nginx:setup writes in this sandbox.
    pub fn global_conf(&self) -> PathBuf {
        self.nginx_dir().join("dokku-certs.conf")
    }

    /// DOKKU_LIB_ROOT of this sandbox (dokku's property store is under config/).
    pub fn lib_root(&self) -> PathBuf {
        self.dir.path().join("lib")
    }

    /// nginx.conf from scripts/sandbox-nginx.conf.in, the template make demo and make bench
    /// fill in too, with `apps` the lines that include the apps' configs.
    fn write_nginx_main_conf_with(&self, apps: &str) {
        let dir = self.nginx_dir();
        let conf = include_str!("../../scripts/sandbox-nginx.conf.in")
            .replace("@DIR@", &dir.display().to_string())
            .replace("@BACKEND_PORT@", &self.app_port.to_string())
            .replace("@APPS@", apps);
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    }

    /// A new sandbox with one app and nginx running.
    pub fn with_running_app(app: &str, domains: &[&str]) -> Sandbox {
        let mut sandbox = Sandbox::new();
        sandbox.create_app(app, domains);
        sandbox.start_nginx();
        sandbox
    }

    /// Creates an app with its domains and one web listener (the sandbox's backend).
    pub fn create_app(&self, app: &str, domains: &[&str]) {
        let dir = self.app_dir(app);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("VHOST"),
            domains.iter().map(|d| format!("{d}\n")).collect::<String>(),
        )
        .unwrap();
        std::fs::write(
            dir.join("LISTENERS"),
            format!("127.0.0.1:{}\n", self.app_port),
        )
        .unwrap();
    }

    /// Starts nginx (after giving every app a plain-HTTP nginx.conf if it has none).
    pub fn start_nginx(&mut self) {
        let output = Command::new("sh")
            .arg("-c")
            .arg(self.nginx_cmd())
            .output()
            .expect("start nginx");
        assert!(
            output.status.success(),
            "nginx did not start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.nginx_started = true;
        // `nginx` returns as soon as it has forked its daemon; the daemon writes its pid file
        // and only then blocks its signals for the master loop. A SIGTERM or SIGHUP that
        // arrives before that block is taken by the handler but never acted on (the loop's
        // sigsuspend waits for the next signal). Its first worker is started after the block.
        assert!(
            wait_until(|| self.master_with_workers().is_some()),
            "nginx started no worker within 30 s"
        );
    }

    /// The pid of this sandbox's nginx master once it has started a worker: from then on
    /// it acts on every signal.
    fn master_with_workers(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.nginx_dir().join("nginx.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        (!children.trim().is_empty()).then_some(pid)
    }

    /// Stops nginx (a test of "nginx not running").
    pub fn stop_nginx(&mut self) {
        assert!(self.try_stop_nginx(), "nginx did not stop within 30 s");
    }

    /// Stops nginx if this sandbox started it; false if it is still running after 30 s.
    fn try_stop_nginx(&mut self) -> bool {
        if self.nginx_started {
            // A signal to the master's pid, not `nginx -s stop`: that parses the config first
            // and does nothing when a test has left a broken file in nginx.conf.d.
            let pid_file = self.nginx_dir().join("nginx.pid");
            if let Some(pid) = self.master_with_workers() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .output();
            }
            // The master removes its pid file last; a slow machine may take a while.
            self.nginx_started = !wait_until(|| !pid_file.exists());
        }
        !self.nginx_started
    }

    /// Runs the binary with this sandbox's environment.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.run_with(args, stdin, &[])
    }

    /// Runs the binary with extra environment variables.
    pub fn run_with(&self, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
        let mut child = self
            .command(args)
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dokku-certs");
        if let Some(bytes) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            let bytes = bytes.to_vec();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        Run::from(child.wait_with_output().unwrap())
    }

    /// The binary as a Command with this sandbox's environment, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .env("DOKKU_ROOT", self.root())
            .env("DOKKU_NGINX_CMD", self.nginx_cmd())
            .env("DOKKU_NGINX_PORT", self.http_port.to_string())
            .env("DOKKU_NGINX_SSL_PORT", self.ssl_port.to_string())
            .env("DOKKU_NGINX_BIND", "127.0.0.1")
            .env("DOKKU_NGINX_LOG_DIR", self.dir.path().join("logs"))
            .env("DOKKU_LIB_ROOT", self.lib_root())
            .env("DOKKU_NGINX_GLOBAL_CONF", self.global_conf())
            .env("SSL_CERT_FILE", fixtures().join("root.crt"));
        // Who runs the tests is not who the commands act for: a `sudo make test` or an ssh
        // session must not change which files certs:add may read (tests set these themselves).
        for caller in CALLER_VARIABLES {
            command.env_remove(caller);
        }
        command
    }

    /// The certificate nginx serves for `host` on the SSL port (DER of the leaf).
    pub fn served_cert(&self, host: &str) -> Vec<u8> {
        tls_get(self.ssl_port, host).0
    }

    /// Waits (up to 30 s) until nginx serves `expected` for `host` on ten handshakes in a
    /// row, 20 ms apart: `nginx -s reload` returns before the new workers answer, and the
    /// old ones go on accepting for 100 ms after the new ones start. Returns what is served
    /// at the end.
    pub fn wait_served(&self, host: &str, expected: &[u8]) -> Vec<u8> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut last = Err("nothing tried".to_string());
        let mut in_a_row = 0;
        while std::time::Instant::now() < deadline {
            last = try_tls_get(self.ssl_port, host).map(|(leaf, ..)| leaf);
            in_a_row = if last.as_deref() == Ok(expected) {
                in_a_row + 1
            } else {
                0
            };
            if in_a_row == 10 {
                return expected.to_vec();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.nginx_dir().join("error.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        eprintln!(
            "nginx never settled on the expected certificate; last: {:?}; error.log tail: {tail:?}",
            last.as_ref().map(|d| d.len())
        );
        last.unwrap_or_default()
    }

    /// Waits (up to 30 s) until plain HTTP answers `status` for `host`.
    pub fn wait_http_status(&self, host: &str, status: u16) -> (u16, String) {
        let mut last = (0, String::new());
        wait_until(|| {
            last = self.http_get(host, "/");
            last.0 == status
        });
        last
    }

    /// GET / over https: (leaf DER served, status, body).
    pub fn https_get(&self, host: &str) -> (Vec<u8>, u16, String) {
        tls_get(self.ssl_port, host)
    }

    /// GET / over plain http: (status, whole response).
    pub fn http_get(&self, host: &str, path: &str) -> (u16, String) {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.http_port)).expect("connect to nginx http port");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        (status_of(&response), response)
    }

    /// Everything under the app dir: path to (mode, bytes). Equal trees are byte-identical.
    pub fn tree(&self, app: &str) -> Tree {
        Tree::of(&self.app_dir(app))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // No assertion here: a panic while a failed test unwinds would abort the run.
        self.try_stop_nginx();
    }
}

/// A snapshot of a directory tree, for "byte-identical before and after".
#[derive(PartialEq, Eq)]
pub struct Tree(pub BTreeMap<PathBuf, (u32, Vec<u8>)>);

/// Paths, modes and sizes with a digest of the bytes: readable when two trees differ.
impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (path, (mode, bytes)) in &self.0 {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(bytes, &mut hasher);
            let digest = std::hash::Hasher::finish(&hasher);
            writeln!(
                f,
                "{:o} {:>6} {digest:016x} {}",
                mode,
                bytes.len(),
                path.display()
            )?;
        }
        Ok(())
    }
}

impl Tree {
    pub fn of(dir: &Path) -> Tree {
        let mut map = BTreeMap::new();
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let bytes = if meta.is_file() {
                std::fs::read(entry.path()).unwrap()
            } else {
                Vec::new()
            };
            map.insert(
                entry.path().strip_prefix(dir).unwrap().to_path_buf(),
                (meta.permissions().mode(), bytes),
            );
        }
        Tree(map)
    }
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Accepts any certificate: the test wants to see which one nginx serves, not to trust it.
#[derive(Debug)]
struct SeeAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for SeeAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS handshake with SNI `host`, then GET /: (leaf DER, status, body).
pub fn tls_get(port: u16, host: &str) -> (Vec<u8>, u16, String) {
    try_tls_get(port, host).unwrap_or_else(|e| panic!("https://{host} on port {port}: {e}"))
}

/// Like [`tls_get`], but failures are returned.
pub fn try_tls_get(port: u16, host: &str) -> Result<(Vec<u8>, u16, String), String> {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let exchange = tls_exchange(port, Some(host), request.as_bytes(), b"http/1.1")?;
    let response = String::from_utf8_lossy(&exchange.response).into_owned();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((exchange.leaf, status_of(&response), body))
}

/// What one TLS connection saw.
#[derive(Debug)]
pub struct Exchange {
    /// The leaf certificate served (DER).
    pub leaf: Vec<u8>,
    /// The protocol ALPN settled on.
    pub alpn: Option<Vec<u8>>,
    /// Everything the server sent back (empty when the request was not sent).
    pub response: Vec<u8>,
}

/// A TLS connection to 127.0.0.1:`port` with SNI `sni` (none: no SNI at all, as a client
/// connecting by IP address), offering `alpn`; sends `request` (if any) and reads until the
/// server closes. An error is a failed connection or handshake.
pub fn tls_exchange(
    port: u16,
    sni: Option<&str>,
    request: &[u8],
    alpn: &[u8],
) -> Result<Exchange, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SeeAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    // rustls sends no SNI for an IP address.
    let name =
        rustls::pki_types::ServerName::try_from(sni.unwrap_or("127.0.0.1").to_string()).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
    }
    let leaf = tls
        .conn
        .peer_certificates()
        .ok_or("nginx sent no certificate")?[0]
        .to_vec();
    let alpn = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
    let mut response = Vec::new();
    if !request.is_empty() {
        // A server that answers early (413) may stop reading: what it sent still counts.
        let _ = tls.write_all(request).and_then(|()| tls.flush());
        if let Err(e) = tls.read_to_end(&mut response)
            && response.is_empty()
        {
            return Err(format!("TLS read failed: {e}"));
        }
    }
    Ok(Exchange {
        leaf,
        alpn,
        response,
    })
}

/// Whether a TLS connection to the port can be made at all.
pub fn tls_refused(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// Polls `condition` for up to 30 s (generous: CI machines can be ten times slower than this one).
pub fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..1500 {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The DER of the first certificate in a PEM file.
pub fn first_cert_der(pem_bytes: &[u8]) -> Vec<u8> {
    pem::parse_many(pem_bytes)
        .unwrap()
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .unwrap()
        .into_contents()
}

/// All certificate DERs in a PEM file, in order.
pub fn cert_ders(pem_bytes: &[u8]) -> Vec<Vec<u8>> {
    pem::parse_many(pem_bytes)
        .unwrap()
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect()
}

/// A self-signed certificate for `name` that expired yesterday, with its key, as a tar
/// archive; and the certificate's DER.
pub fn expired_archive(name: &str) -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    params.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let cert = params.self_signed(&key).unwrap();
    let archive = tar_of(
        &[
            ("a.crt", cert.pem().as_bytes()),
            ("a.key", key.serialize_pem().as_bytes()),
        ],
        false,
    );
    (archive, cert.der().to_vec())
}

/// A tar archive of (path, bytes) entries, optionally gzipped.
pub fn tar_of(entries: &[(&str, &[u8])], gzip: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, *bytes).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&tar).unwrap();
    encoder.finish().unwrap()
}

/// Runs openssl with `args`; returns stdout, panicking on failure.
pub fn openssl(args: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (make test installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
