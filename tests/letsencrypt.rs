//! letsencrypt:* against a real Pebble and a real nginx on loopback.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::pebble::Pebble;
use common::{Run, Sandbox, first_cert_der};
use dokku_certs::cert::Certificate;

/// A sandbox with an app on two domains, nginx running, and a Pebble to ask.
struct World {
    sandbox: Sandbox,
    pebble: Pebble,
}

impl World {
    fn new(domains: &[&str]) -> World {
        let mut sandbox = Sandbox::new();
        sandbox.create_app("myapp", domains);
        sandbox.start_nginx();
        let pebble = Pebble::start(&sandbox);
        let world = World { sandbox, pebble };
        world.run(&["letsencrypt:set", "--global", "email", "ops@example.com"]).ok();
        let directory = world.pebble.directory.clone();
        world.run(&["letsencrypt:set", "--global", "server", &directory]).ok();
        world
    }

    fn run(&self, args: &[&str]) -> Run {
        let env = self.pebble.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.sandbox.run_with(args, None, &env)
    }

    fn installed_leaf(&self) -> Vec<u8> {
        first_cert_der(&std::fs::read(self.sandbox.app_dir("myapp").join("tls/server.crt")).unwrap())
    }

    fn challenge_conf_exists(&self) -> bool {
        self.sandbox.app_dir("myapp").join("nginx.conf.d/letsencrypt.conf").exists()
    }
}

#[test]
fn enable_gets_one_certificate_for_every_domain_and_nginx_serves_it() {
    let world = World::new(&["a.example.com", "b.example.com"]);
    let run = world.run(&["letsencrypt:enable", "myapp"]).ok();
    for step in [
        "Ordered a certificate for a.example.com, b.example.com",
        "Authorization for a.example.com: valid",
        "Finalizing the order",
        "Certificate retrieved successfully.",
    ] {
        assert!(run.stdout.contains(step), "missing {step:?} in\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("PRIVATE KEY") && !run.stderr.contains("PRIVATE KEY"));
    assert!(!world.challenge_conf_exists(), "nginx.conf.d/letsencrypt.conf was left behind");

    let leaf = world.installed_leaf();
    let cert = Certificate::from_der(&leaf).unwrap();
    assert_eq!(cert.hostnames(), vec!["a.example.com", "b.example.com"]);
    for domain in ["a.example.com", "b.example.com"] {
        assert_eq!(world.sandbox.wait_served(domain, &leaf), leaf, "{domain}");
    }

    // The chain verifies to Pebble's root (taken from Pebble's management API).
    let root = world.sandbox.dir.path().join("pebble-root.pem");
    std::fs::write(&root, world.pebble.root_pem()).unwrap();
    let verified = world
        .sandbox
        .run_with(&["certs:report", "myapp", "--ssl-verified"], None, &[("SSL_CERT_FILE", root.to_str().unwrap())])
        .ok();
    assert_eq!(verified.stdout, "verified by a certificate authority\n");

    assert_eq!(world.run(&["letsencrypt:active", "myapp"]).ok().stdout, "true\n");
    let list = world.run(&["letsencrypt:list"]).ok().stdout;
    assert!(list.lines().any(|l| l.starts_with("myapp ") && l.contains("a.example.com,b.example.com")), "{list}");

    // Secrets: the account key and settings are 0600 in a 0700 directory.
    let store = world.sandbox.root().join(".letsencrypt");
    assert_eq!(std::fs::metadata(&store).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(store.join("settings.json")).unwrap().permissions().mode() & 0o777, 0o600);
    let accounts: Vec<_> = std::fs::read_dir(store.join("accounts")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(accounts.len(), 1);
    assert_eq!(std::fs::metadata(&accounts[0]).unwrap().permissions().mode() & 0o777, 0o600);

    // A second enable reuses the account.
    let again = world.run(&["letsencrypt:enable", "myapp"]).ok();
    assert!(again.stdout.contains("Using the account of ops@example.com"), "{}", again.stdout);
    assert_eq!(std::fs::read_dir(store.join("accounts")).unwrap().count(), 1);
}

/// Loops plain GETs over http and https until stopped; counts the failures.
struct Prober {
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Prober {
    /// `https_from_start`: https must answer from the first request; otherwise https
    /// failures only count once https has answered once (the app was plain HTTP before).
    fn start(sandbox: &Sandbox, host: &str, https_from_start: bool) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for https in [false, true] {
            let (stop, failures, requests) = (stop.clone(), failures.clone(), requests.clone());
            let (http_port, ssl_port, host) = (sandbox.http_port, sandbox.ssl_port, host.to_string());
            threads.push(std::thread::spawn(move || {
                let mut errors = Vec::new();
                let mut https_up = https_from_start;
                while !stop.load(Ordering::Relaxed) {
                    let status = if https {
                        common::try_tls_get(ssl_port, &host).map(|(_, status, _)| status)
                    } else {
                        plain_get(http_port, &host)
                    };
                    match status {
                        Ok(200..=399) => https_up |= https,
                        other if !https || https_up => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            errors.push(format!("{}: {other:?}", if https { "https" } else { "http" }));
                        }
                        _ => {}
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
                errors
            }));
        }
        Prober { stop, failures, requests, threads }
    }

    fn finish(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self.threads.into_iter().flat_map(|t| t.join().unwrap()).take(10).collect();
        (self.requests.load(Ordering::Relaxed), self.failures.load(Ordering::Relaxed), errors)
    }
}

fn plain_get(port: u16, host: &str) -> Result<u16, String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad answer {response:?}"))
}

#[test]
fn enable_and_renewal_never_fail_a_request() {
    let world = World::new(&["myapp.example.com"]);
    // The app is served over plain HTTP before it gets a certificate, as a deployed app is.
    world.sandbox.run(&["certs:generate", "myapp", "myapp.example.com"], None).ok();
    world.sandbox.run(&["certs:remove", "myapp"], None).ok();
    assert_eq!(world.sandbox.wait_http_status("myapp.example.com", 200).0, 200);
    // The old workers answer https for 100 ms after a reload; start once they are gone.
    assert!(common::wait_until(|| common::tls_refused(world.sandbox.ssl_port)));
    let prober = Prober::start(&world.sandbox, "myapp.example.com", false);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let first = world.installed_leaf();
    world.sandbox.wait_served("myapp.example.com", &first);
    let (requests, failures, errors) = prober.finish();
    assert!(requests > 20, "the prober made only {requests} requests");
    assert_eq!(failures, 0, "failed requests during enable: {errors:?}");

    // Renewal on an app already on https: both schemes must answer throughout.
    let prober = Prober::start(&world.sandbox, "myapp.example.com", true);
    world.run(&["letsencrypt:set", "myapp", "graceperiod", "999999999"]).ok();
    let run = world.run(&["letsencrypt:auto-renew"]).ok();
    assert!(run.stdout.contains("myapp: renewing"), "{}", run.stdout);
    let second = world.installed_leaf();
    assert_ne!(first, second, "auto-renew inside the grace period must get a new certificate");
    world.sandbox.wait_served("myapp.example.com", &second);
    let (requests, failures, errors) = prober.finish();
    assert!(requests > 20, "the prober made only {requests} requests");
    assert_eq!(failures, 0, "failed requests during renewal: {errors:?}");
}

#[test]
fn auto_renew_leaves_a_fresh_certificate_alone() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let before = world.sandbox.tree("myapp");
    let run = world.run(&["letsencrypt:auto-renew", "myapp"]).ok();
    assert!(run.stdout.contains("myapp: no renewal needed"), "{}", run.stdout);
    assert_eq!(world.sandbox.tree("myapp"), before);
}

#[test]
fn a_domain_the_ca_cannot_reach_fails_with_its_reason_and_changes_nothing() {
    let world = World::new(&["myapp.example.com", "unreachable.example.com"]);
    world.sandbox.run(&["certs:generate", "myapp", "myapp.example.com"], None).ok();
    let old = world.installed_leaf();
    world.sandbox.wait_served("myapp.example.com", &old);
    let before = world.sandbox.tree("myapp");
    // Nothing listens on 127.0.0.2: the CA's connection is refused.
    world.pebble.set_address("unreachable.example.com", "127.0.0.2");
    let run = world.run(&["letsencrypt:enable", "myapp"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("unreachable.example.com: connection"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(!world.challenge_conf_exists(), "nginx.conf.d/letsencrypt.conf was left behind");
    assert_eq!(world.sandbox.tree("myapp"), before, "the app dir changed");
    assert_eq!(world.sandbox.served_cert("myapp.example.com"), old);
    assert_eq!(world.run(&["letsencrypt:active", "myapp"]).ok().stdout, "false\n");
}

#[test]
fn revoke_disable_and_cron_job_do_what_they_say() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let revoke = world.run(&["letsencrypt:revoke", "myapp"]).ok();
    assert!(revoke.stdout.contains("Certificate revoked."), "{}", revoke.stdout);
    // Revoking twice: the CA says it is already revoked.
    let again = world.run(&["letsencrypt:revoke", "myapp"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("alreadyRevoked"), "{}", again.stderr);

    world.run(&["letsencrypt:disable", "myapp"]).ok();
    assert!(!world.sandbox.app_dir("myapp").join("tls").exists());
    assert_eq!(world.run(&["letsencrypt:active", "myapp"]).ok().stdout, "false\n");
    let (status, _) = world.sandbox.wait_http_status("myapp.example.com", 200);
    assert_eq!(status, 200);
    world.run(&["letsencrypt:disable", "myapp"]).refused("does not have a certificate from Let's Encrypt");

    let cron = world.sandbox.dir.path().join("cron.d-dokku-certs");
    let cron_env = [("DOKKU_LETSENCRYPT_CRON_FILE", cron.to_str().unwrap())];
    world.sandbox.run_with(&["letsencrypt:cron-job", "--add"], None, &cron_env).ok();
    let text = std::fs::read_to_string(&cron).unwrap();
    assert!(text.contains(" root ") && text.ends_with("letsencrypt:auto-renew\n"), "{text}");
    assert!(text.contains(&format!("DOKKU_ROOT={}", world.sandbox.root().display())), "{text}");
    world.sandbox.run_with(&["letsencrypt:cron-job", "--remove"], None, &cron_env).ok();
    assert!(!cron.exists());
}

#[test]
fn settings_are_checked_and_an_app_value_wins() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:set", "myapp", "email", "not-an-email"]).refused("is not a valid email");
    world.run(&["letsencrypt:set", "myapp", "colour", "blue"]).refused("Invalid key");
    world.run(&["letsencrypt:set", "ghost", "email", "a@b.co"]).refused("App ghost does not exist");
    world.run(&["letsencrypt:set", "myapp", "key-type", "rsa2048"]).ok();
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let leaf = Certificate::from_der(&world.installed_leaf()).unwrap();
    assert!(matches!(leaf.public_key, dokku_certs::key::PublicKey::Rsa { .. }), "the app's key-type was not used");
}

#[test]
fn enable_without_an_email_says_how_to_set_one() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:set", "--global", "email"]).ok();
    world.run(&["letsencrypt:enable", "myapp"]).refused("letsencrypt:set myapp email");
}
