//! A real Pebble (Let's Encrypt's test CA) with pebble-challtestsrv as its DNS, on loopback:
//! every name resolves to 127.0.0.1, and HTTP-01 is checked on the sandbox nginx's port.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Run, Sandbox, first_cert_der, fixtures, free_port};

/// A sandbox with an app, nginx running, and a Pebble to ask (the global email and server set).
pub struct World {
    pub sandbox: Sandbox,
    pub pebble: Pebble,
}

impl World {
    /// An app `myapp` on `domains`.
    pub fn new(domains: &[&str]) -> World {
        let mut sandbox = Sandbox::new();
        sandbox.create_app("myapp", domains);
        sandbox.start_nginx();
        let pebble = Pebble::start(&sandbox);
        let world = World { sandbox, pebble };
        world
            .run(&["letsencrypt:set", "--global", "email", "ops@example.com"])
            .ok();
        let directory = world.pebble.directory.clone();
        world
            .run(&["letsencrypt:set", "--global", "server", &directory])
            .ok();
        world
    }

    /// Runs the binary with the sandbox's and Pebble's environment.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// [`World::run`] with more variables.
    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let env = self.pebble.env();
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(extra);
        self.sandbox.run_with(args, None, &env)
    }

    /// The binary as a Command with the sandbox's and Pebble's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.command(args);
        command.envs(self.pebble.env());
        command
    }

    /// The leaf DER of `app`'s installed certificate.
    pub fn leaf_of(&self, app: &str) -> Vec<u8> {
        first_cert_der(&std::fs::read(self.sandbox.app_dir(app).join("tls/server.crt")).unwrap())
    }

    /// The leaf DER of myapp's installed certificate.
    pub fn installed_leaf(&self) -> Vec<u8> {
        self.leaf_of("myapp")
    }

    /// Whether myapp's nginx.conf.d/letsencrypt.conf exists.
    pub fn challenge_conf_exists(&self) -> bool {
        self.sandbox
            .app_dir("myapp")
            .join("nginx.conf.d/letsencrypt.conf")
            .exists()
    }
}

/// Runs `command` to its end, but kills it and panics if it has not ended after `limit`:
/// a hang guard, not a timing assertion (`limit` is far above what the command needs).
pub fn run_guarded(mut command: Command, limit: Duration) -> Run {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn dokku-certs");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().ok();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{command:?} still ran after {limit:?}; killed. stdout:\n{}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// An HTTPS server that completes the TLS handshake (with Pebble's own localhost
/// certificate, so the client trusts it) and then never answers: a stalled CA.
pub struct SilentServer {
    /// Its directory URL.
    pub directory: String,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let port = free_port();
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let config = Arc::new(silent_tls_config());
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let (Ok(mut socket), config) = (stream, config.clone()) else {
                    continue;
                };
                std::thread::spawn(move || {
                    let mut tls = rustls::ServerConnection::new(config).unwrap();
                    while tls.is_handshaking() {
                        if tls.complete_io(&mut socket).is_err() {
                            return;
                        }
                    }
                    // Read whatever is asked, answer nothing, until the client gives up.
                    let mut sink = [0u8; 4096];
                    let mut stream = rustls::Stream::new(&mut tls, &mut socket);
                    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                });
            }
        });
        SilentServer {
            directory: format!("https://127.0.0.1:{port}/dir"),
            stop,
            port,
        }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn silent_tls_config() -> rustls::ServerConfig {
    let read = |name: &str| pem::parse_many(std::fs::read(fixtures().join(name)).unwrap()).unwrap();
    let chain = read("pebble-localhost.crt")
        .into_iter()
        .map(|b| b.into_contents().into())
        .collect();
    let key_block = read("pebble-localhost.key").remove(0);
    let key = match key_block.tag() {
        "RSA PRIVATE KEY" => {
            rustls::pki_types::PrivateKeyDer::Pkcs1(key_block.into_contents().into())
        }
        "EC PRIVATE KEY" => {
            rustls::pki_types::PrivateKeyDer::Sec1(key_block.into_contents().into())
        }
        _ => rustls::pki_types::PrivateKeyDer::Pkcs8(key_block.into_contents().into()),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}

/// Whether tls/ of `app_dir` holds a whole pair: a certificate and the key that matches it
/// (openssl compares their public keys). `None` when there is no tls/.
pub fn whole_pair(app_dir: &Path) -> Option<Result<(), String>> {
    let tls = app_dir.join("tls");
    if !tls.exists() {
        return None;
    }
    let public = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| o.stdout)
    };
    let crt = tls.join("server.crt");
    let key = tls.join("server.key");
    let from_crt = public(&["x509", "-noout", "-pubkey", "-in", crt.to_str().unwrap()]);
    let from_key = public(&["pkey", "-pubout", "-in", key.to_str().unwrap()]);
    Some(match (from_crt, from_key) {
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some(_), Some(_)) => Err("server.key does not match server.crt".into()),
        (crt, _) => Err(if crt.is_none() {
            "no readable server.crt"
        } else {
            "no readable server.key"
        }
        .into()),
    })
}

/// Pebble and its DNS, stopped on drop.
pub struct Pebble {
    children: Vec<Child>,
    /// The ACME directory URL.
    pub directory: String,
    management_port: u16,
    dns_management_port: u16,
}

impl Pebble {
    /// Starts Pebble validating HTTP-01 against `sandbox`'s nginx. Nonces are rejected 5% of
    /// the time, as Pebble does by default; validation does not sleep (PEBBLE_VA_NOSLEEP).
    pub fn start(sandbox: &Sandbox) -> Pebble {
        let (acme_port, management_port) = (free_port(), free_port());
        let (dns_port, dns_management_port, tls_port) = (free_port(), free_port(), free_port());
        let dir = sandbox.dir.path().join("pebble");
        std::fs::create_dir_all(&dir).unwrap();
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": fixtures().join("pebble-localhost.crt"),
            "privateKey": fixtures().join("pebble-localhost.key"),
            "httpPort": sandbox.http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_path = dir.join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
        let dns = Command::new("pebble-challtestsrv")
            .args([
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
            ])
            .args([
                "-management",
                &format!("127.0.0.1:{dns_management_port}"),
                "-defaultIPv4",
                "127.0.0.1",
            ])
            .args(["-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble-challtestsrv (make test installs the pebble package)");
        let pebble = Command::new("pebble")
            .args([
                "-config",
                config_path.to_str().unwrap(),
                "-dnsserver",
                &format!("127.0.0.1:{dns_port}"),
            ])
            .env("PEBBLE_VA_NOSLEEP", "1")
            // Some nonces are still refused, so the badNonce path stays exercised; instant-acme
            // retries one twice, and at Pebble's default 5% one POST in 8,000 is refused three
            // times running: over the suite's POSTs that was a flake (seen), at 1% it is not.
            .env("PEBBLE_WFE_NONCEREJECT", "1")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("start pebble (make test installs the pebble package)");
        let pebble = Pebble {
            children: vec![dns, pebble],
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            management_port,
            dns_management_port,
        };
        for port in [acme_port, management_port, dns_management_port] {
            assert!(
                super::wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
                "pebble did not listen on {port}"
            );
        }
        pebble
    }

    /// Pebble's current root certificate, from its management API.
    pub fn root_pem(&self) -> String {
        curl(&[
            "--cacert",
            fixtures().join("pebble-ca.crt").to_str().unwrap(),
            &format!("https://127.0.0.1:{}/roots/0", self.management_port),
        ])
    }

    /// Makes `host` resolve to `ip` (an address on which nothing answers makes the CA fail).
    pub fn set_address(&self, host: &str, ip: &str) {
        let body = serde_json::json!({"host": host, "addresses": [ip]}).to_string();
        curl(&[
            "-X",
            "POST",
            "--data",
            &body,
            &format!("http://127.0.0.1:{}/add-a", self.dns_management_port),
        ]);
    }

    /// The environment dokku-certs needs to talk to this Pebble.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![(
            "DOKKU_LETSENCRYPT_CA_CERTIFICATES",
            fixtures().join("pebble-ca.crt").display().to_string(),
        )]
    }
}

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
