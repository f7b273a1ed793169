//! letsencrypt:* against a real Pebble and a real nginx on loopback.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::pebble::World;
use common::{Sandbox, fixtures};
use dokku_certs::cert::Certificate;

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
        assert!(
            run.stdout.contains(step),
            "missing {step:?} in\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("PRIVATE KEY") && !run.stderr.contains("PRIVATE KEY"));
    assert!(
        !world.challenge_conf_exists(),
        "nginx.conf.d/letsencrypt.conf was left behind"
    );

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
        .run_with(
            &["certs:report", "myapp", "--ssl-verified"],
            None,
            &[("SSL_CERT_FILE", root.to_str().unwrap())],
        )
        .ok();
    assert_eq!(verified.stdout, "verified by a certificate authority\n");

    assert_eq!(
        world.run(&["letsencrypt:active", "myapp"]).ok().stdout,
        "true\n"
    );
    let list = world.run(&["letsencrypt:list"]).ok().stdout;
    assert!(
        list.lines()
            .any(|l| l.starts_with("myapp ") && l.contains("a.example.com,b.example.com")),
        "{list}"
    );

    // Secrets: the account key and settings are 0600 in a 0700 directory.
    let store = world.sandbox.root().join(".letsencrypt");
    assert_eq!(
        std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(store.join("settings.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let accounts: Vec<_> = std::fs::read_dir(store.join("accounts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(accounts.len(), 1);
    assert_eq!(
        std::fs::metadata(&accounts[0])
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // A second enable with nothing changed does not contact the CA; --force orders again,
    // with the same account.
    let leaf_before = world.installed_leaf();
    let same = world.run(&["letsencrypt:enable", "myapp"]).ok();
    assert!(
        same.stdout.contains("myapp: nothing to do"),
        "{}",
        same.stdout
    );
    assert!(
        !same.stdout.contains("Ordered") && !same.stdout.contains("Using the account"),
        "{}",
        same.stdout
    );
    assert_eq!(world.installed_leaf(), leaf_before);
    let again = world.run(&["letsencrypt:enable", "myapp", "--force"]).ok();
    assert!(
        again
            .stdout
            .contains("Using the account of ops@example.com"),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read_dir(store.join("accounts")).unwrap().count(),
        1
    );
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
            let (http_port, ssl_port, host) =
                (sandbox.http_port, sandbox.ssl_port, host.to_string());
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
                            errors.push(format!(
                                "{}: {other:?}",
                                if https { "https" } else { "http" }
                            ));
                        }
                        _ => {}
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
                errors
            }));
        }
        Prober {
            stop,
            failures,
            requests,
            threads,
        }
    }

    fn finish(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .take(10)
            .collect();
        (
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            errors,
        )
    }
}

fn plain_get(port: u16, host: &str) -> Result<u16, String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad answer {response:?}"))
}

#[test]
fn enable_and_renewal_never_fail_a_request() {
    let world = World::new(&["myapp.example.com"]);
    // The app is served over plain HTTP before it gets a certificate, as a deployed app is.
    world
        .sandbox
        .run(&["certs:generate", "myapp", "myapp.example.com"], None)
        .ok();
    world.sandbox.run(&["certs:remove", "myapp"], None).ok();
    assert_eq!(
        world.sandbox.wait_http_status("myapp.example.com", 200).0,
        200
    );
    // The old workers answer https for 100 ms after a reload; start once they are gone.
    assert!(common::wait_until(|| common::tls_refused(
        world.sandbox.ssl_port
    )));
    let prober = Prober::start(&world.sandbox, "myapp.example.com", false);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let first = world.installed_leaf();
    world.sandbox.wait_served("myapp.example.com", &first);
    let (requests, failures, errors) = prober.finish();
    assert!(requests > 20, "the prober made only {requests} requests");
    assert_eq!(failures, 0, "failed requests during enable: {errors:?}");

    // Renewal on an app already on https: both schemes must answer throughout.
    let prober = Prober::start(&world.sandbox, "myapp.example.com", true);
    world
        .run(&["letsencrypt:set", "myapp", "graceperiod", "999999999"])
        .ok();
    let run = world.run(&["letsencrypt:auto-renew"]).ok();
    assert!(run.stdout.contains("myapp: renewing"), "{}", run.stdout);
    let second = world.installed_leaf();
    assert_ne!(
        first, second,
        "auto-renew inside the grace period must get a new certificate"
    );
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
    assert!(
        run.stdout.contains("myapp: no renewal needed"),
        "{}",
        run.stdout
    );
    assert_eq!(world.sandbox.tree("myapp"), before);
}

#[test]
fn a_domain_the_ca_cannot_reach_fails_with_its_reason_and_changes_nothing() {
    let world = World::new(&["myapp.example.com", "unreachable.example.com"]);
    world
        .sandbox
        .run(&["certs:generate", "myapp", "myapp.example.com"], None)
        .ok();
    let old = world.installed_leaf();
    world.sandbox.wait_served("myapp.example.com", &old);
    let before = world.sandbox.tree("myapp");
    // Nothing listens on 127.0.0.2: the CA's connection is refused.
    world
        .pebble
        .set_address("unreachable.example.com", "127.0.0.2");
    let run = world.run(&["letsencrypt:enable", "myapp"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("unreachable.example.com: connection"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        !world.challenge_conf_exists(),
        "nginx.conf.d/letsencrypt.conf was left behind"
    );
    assert_eq!(world.sandbox.tree("myapp"), before, "the app dir changed");
    assert_eq!(world.sandbox.served_cert("myapp.example.com"), old);
    assert_eq!(
        world.run(&["letsencrypt:active", "myapp"]).ok().stdout,
        "false\n"
    );
}

#[test]
fn revoke_and_disable_do_what_they_say() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let revoke = world.run(&["letsencrypt:revoke", "myapp"]).ok();
    assert!(
        revoke.stdout.contains("Certificate revoked."),
        "{}",
        revoke.stdout
    );
    // Revoking twice: the CA says it is already revoked.
    let again = world.run(&["letsencrypt:revoke", "myapp"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("alreadyRevoked"), "{}", again.stderr);

    // A plain enable replaces the revoked certificate, as revoke's warning says.
    let revoked = world.installed_leaf();
    let enable = world.run(&["letsencrypt:enable", "myapp"]).ok();
    assert!(
        !enable.stdout.contains("nothing to do"),
        "{}",
        enable.stdout
    );
    assert_ne!(
        world.installed_leaf(),
        revoked,
        "the revoked certificate is still installed"
    );
    assert_eq!(
        world.sandbox.served_cert("myapp.example.com"),
        world.installed_leaf()
    );
    let same = world.run(&["letsencrypt:enable", "myapp"]).ok();
    assert!(
        same.stdout.contains("myapp: nothing to do"),
        "{}",
        same.stdout
    );

    world.run(&["letsencrypt:disable", "myapp"]).ok();
    assert!(!world.sandbox.app_dir("myapp").join("tls").exists());
    assert_eq!(
        world.run(&["letsencrypt:active", "myapp"]).ok().stdout,
        "false\n"
    );
    let (status, _) = world.sandbox.wait_http_status("myapp.example.com", 200);
    assert_eq!(status, 200);
    world
        .run(&["letsencrypt:disable", "myapp"])
        .refused("does not have a certificate from Let's Encrypt");
}

#[test]
fn auto_renew_replaces_a_revoked_certificate_at_once() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    world.run(&["letsencrypt:revoke", "myapp"]).ok();
    let revoked = world.installed_leaf();
    let run = world.run(&["letsencrypt:auto-renew"]).ok();
    assert!(
        run.stdout.contains("myapp: renewing (expires in "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("; the certificate was revoked: due now)"),
        "{}",
        run.stdout
    );
    assert_ne!(
        world.installed_leaf(),
        revoked,
        "the revoked certificate is still installed"
    );
    assert_eq!(
        world.sandbox.served_cert("myapp.example.com"),
        world.installed_leaf()
    );
    // The new certificate is not revoked: the next run leaves it alone.
    let again = world.run(&["letsencrypt:auto-renew"]).ok();
    assert!(
        again.stdout.contains("myapp: no renewal needed"),
        "{}",
        again.stdout
    );
}

#[test]
fn settings_are_checked_and_an_app_value_wins() {
    let world = World::new(&["myapp.example.com"]);
    world
        .run(&["letsencrypt:set", "myapp", "email", "not-an-email"])
        .refused("is not a valid email");
    world
        .run(&["letsencrypt:set", "myapp", "colour", "blue"])
        .refused("Invalid key");
    world
        .run(&["letsencrypt:set", "ghost", "email", "a@b.co"])
        .refused("App ghost does not exist");
    world
        .run(&["letsencrypt:set", "myapp", "key-type", "rsa2048"])
        .ok();
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let leaf = Certificate::from_der(&world.installed_leaf()).unwrap();
    assert!(
        matches!(leaf.public_key, dokku_certs::key::PublicKey::Rsa { .. }),
        "the app's key-type was not used"
    );
}

#[test]
fn enable_without_an_email_says_how_to_set_one() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:set", "--global", "email"]).ok();
    world
        .run(&["letsencrypt:enable", "myapp"])
        .refused("letsencrypt:set myapp email");
}

// ---- The renewal cron job (issue 8, items 6 and 12) ----

/// Where a test's cron file and log go, and the variables that point dokku-certs at them.
struct CronPaths {
    file: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl CronPaths {
    fn in_sandbox(sandbox: &Sandbox) -> CronPaths {
        // The log's directory does not exist yet: --add makes it.
        let dir = sandbox.dir.path();
        CronPaths {
            file: dir.join("cron.d-dokku-certs"),
            log: dir.join("log/dokku-certs/letsencrypt.log"),
        }
    }

    fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("DOKKU_LETSENCRYPT_CRON_FILE", self.file.to_str().unwrap()),
            ("DOKKU_LETSENCRYPT_CRON_LOG", self.log.to_str().unwrap()),
        ]
    }
}

/// A cron.d file read as cron reads it: the `NAME=value` lines, and the job's schedule,
/// user and command.
struct CronFile {
    variables: Vec<(String, String)>,
    /// Minute and hour fields.
    schedule: (String, String),
    user: String,
    command: String,
}

fn parse_cron_file(text: &str) -> CronFile {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let (jobs, env): (Vec<&str>, Vec<&str>) = lines.iter().partition(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|f| f.chars().all(|c| c.is_ascii_digit()))
    });
    assert_eq!(jobs.len(), 1, "one job line expected:\n{text}");
    let variables = env
        .iter()
        .map(|l| {
            let (name, value) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not a NAME=value line: {l:?}"));
            (name.trim().to_string(), value.trim().to_string())
        })
        .collect();
    // Five schedule fields, the user, then the command (the rest of the line).
    let mut rest = jobs[0];
    let mut fields = Vec::new();
    for _ in 0..6 {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace).unwrap();
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    assert!(
        !rest.contains('%'),
        "cron would turn % into a newline: {rest:?}"
    );
    let schedule = (fields[0].to_string(), fields[1].to_string());
    CronFile {
        variables,
        schedule,
        user: fields[5].to_string(),
        command: rest.trim().to_string(),
    }
}

/// Runs the job's command the way cron does: cron's own environment (PATH=/usr/bin:/bin,
/// SHELL=/bin/sh, HOME and LOGNAME) overridden by the file's variables, and nothing else.
fn run_like_cron(job: &CronFile) -> common::Run {
    let mut command = std::process::Command::new("env");
    command.args([
        "-i",
        "PATH=/usr/bin:/bin",
        "SHELL=/bin/sh",
        "HOME=/root",
        "LOGNAME=root",
    ]);
    command.args(job.variables.iter().map(|(n, v)| format!("{n}={v}")));
    let shell = job
        .variables
        .iter()
        .rev()
        .find(|(n, _)| n == "SHELL")
        .map_or("/bin/sh", |(_, v)| v.as_str());
    command.args([shell, "-c", &job.command]);
    common::pebble::run_guarded(command, Duration::from_secs(120))
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_cron_job_renews_under_crons_own_environment_and_logs_it() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let first = world.installed_leaf();
    world
        .run(&["letsencrypt:set", "myapp", "graceperiod", "999999999"])
        .ok();
    let paths = CronPaths::in_sandbox(&world.sandbox);
    let add = world
        .run_with(&["letsencrypt:cron-job", "--add"], &paths.env())
        .ok();
    assert!(add.stdout.contains("runs as root"), "{}", add.stdout);
    assert_eq!(mode_of(&paths.file), 0o644);
    assert_eq!(mode_of(&paths.log), 0o640);

    let job = parse_cron_file(&std::fs::read_to_string(&paths.file).unwrap());
    assert_eq!(job.user, "root", "the sandbox's DOKKU_ROOT belongs to root");
    // Twice a day at a random minute: hosts do not all renew at the same moment.
    let minute: u8 = job.schedule.0.parse().unwrap();
    let hours: Vec<u8> = job
        .schedule
        .1
        .split(',')
        .map(|h| h.parse().unwrap())
        .collect();
    assert!(
        minute < 60 && hours.len() == 2 && hours[0] < 12 && hours[1] == hours[0] + 12,
        "{:?}",
        job.schedule
    );
    let schedules: std::collections::BTreeSet<(String, String)> = (0..8)
        .map(|_| {
            world
                .run_with(&["letsencrypt:cron-job", "--add"], &paths.env())
                .ok();
            parse_cron_file(&std::fs::read_to_string(&paths.file).unwrap()).schedule
        })
        .collect();
    assert!(
        schedules.len() > 1,
        "the same time every time: {schedules:?}"
    );
    let ran = run_like_cron(&job);
    assert_eq!(ran.code, 0, "the job failed: {ran:?}");
    assert!(
        ran.stdout.is_empty() && ran.stderr.is_empty(),
        "the job's output must go to the log: {ran:?}"
    );
    let second = world.installed_leaf();
    assert_ne!(first, second, "the cron job did not renew");
    assert_eq!(
        world.sandbox.wait_served("myapp.example.com", &second),
        second
    );
    let log = std::fs::read_to_string(&paths.log).unwrap();
    for line in [
        "=====> letsencrypt:auto-renew, ",
        "myapp: renewing",
        "Certificate retrieved successfully.",
    ] {
        assert!(log.contains(line), "the log lacks {line:?}:\n{log}");
    }

    world
        .run_with(&["letsencrypt:cron-job", "--remove"], &paths.env())
        .ok();
    assert!(!paths.file.exists());
}

#[test]
fn without_nginx_on_path_enable_fails_before_ordering() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let before = world.sandbox.tree("myapp");
    // cron's PATH: nginx (in /usr/sbin) is not found.
    let run = world.run_with(
        &["letsencrypt:enable", "myapp", "--force"],
        &[("PATH", "/usr/bin:/bin")],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("no certificate was ordered") && run.stderr.contains("not found"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("Ordered a certificate"),
        "an order was placed that nginx could never answer"
    );
    assert_eq!(world.sandbox.tree("myapp"), before);
}

#[test]
fn the_cron_job_runs_as_the_owner_of_dokku_root() {
    let sandbox = Sandbox::new();
    sandbox.create_app("myapp", &["myapp.example.com"]);
    std::fs::create_dir(sandbox.root().join(".letsencrypt")).unwrap();
    let paths = CronPaths::in_sandbox(&sandbox);
    // nobody (65534) stands for the dokku user.
    std::os::unix::fs::chown(sandbox.root(), Some(65534), Some(65534)).unwrap();
    let add = sandbox.run_with(&["letsencrypt:cron-job", "--add"], None, &paths.env());
    std::os::unix::fs::chown(sandbox.root(), Some(0), Some(0)).unwrap();
    assert_eq!(add.code, 0, "{add:?}");
    let job = parse_cron_file(&std::fs::read_to_string(&paths.file).unwrap());
    assert_eq!(job.user, "nobody");
    let log = std::fs::metadata(&paths.log).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&log),
        65534,
        "the job's user must be able to append to the log"
    );
    // The accounts belong to root: the job could not read them, and --add says so.
    assert!(add.stderr.contains("chown -R nobody"), "{}", add.stderr);
}

#[test]
fn the_cron_file_is_0644_and_replaced_whole_whatever_the_umask() {
    let sandbox = Sandbox::new();
    let paths = CronPaths::in_sandbox(&sandbox);
    // A symlink where the file goes: it is replaced, its target is not written through.
    let victim = sandbox.dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, &paths.file).unwrap();
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", "umask 000; exec \"$0\" letsencrypt:cron-job --add"])
        .arg(common::binary());
    command.envs(
        sandbox
            .command(&[])
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
    );
    command.envs(paths.env());
    let run = common::pebble::run_guarded(command, Duration::from_secs(30));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(&paths.file).unwrap().is_file());
    assert_eq!(mode_of(&paths.file), 0o644);
    assert_eq!(mode_of(&paths.log), 0o640);
    assert_eq!(mode_of(paths.log.parent().unwrap()), 0o755);
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn an_environment_the_cron_file_cannot_hold_is_refused_and_writes_nothing() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let sandbox = Sandbox::new();
    let paths = CronPaths::in_sandbox(&sandbox);
    let add = |name: &[u8], value: &[u8]| {
        let mut command = sandbox.command(&["letsencrypt:cron-job", "--add"]);
        command
            .envs(paths.env())
            .env(OsStr::from_bytes(name), OsStr::from_bytes(value));
        common::pebble::run_guarded(command, Duration::from_secs(30))
    };
    // Not ours to carry, whatever its bytes: ignored (it used to panic).
    let run = add(b"SOME_LOCALE", b"caf\xe9");
    assert_eq!(run.code, 0, "{run:?}");
    std::fs::remove_file(&paths.file).unwrap();

    let refused: [(&[u8], &[u8], &str); 3] = [
        (
            b"DOKKU_X\n17 * * * * root touch /tmp/injected\nDOKKU_Y",
            b"1",
            "a name may hold only letters",
        ),
        (b"DOKKU_TITLE", b"line one\nline two", "newline"),
        (b"DOKKU_TITLE", b"caf\xe9", "not valid UTF-8"),
    ];
    for (name, value, why) in refused {
        let run = add(name, value);
        assert_eq!(run.code, 1, "{run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.starts_with(" !     ") && run.stderr.contains(why),
            "{}",
            run.stderr
        );
        assert!(
            !paths.file.exists(),
            "a cron file was written for {name:?}={value:?}"
        );
    }
}

// ---- A CA that stops answering (issue 8, item 7) ----

#[test]
fn a_ca_that_never_answers_fails_its_app_in_time_and_the_other_apps_still_renew() {
    let world = World::new(&["myapp.example.com"]);
    world.sandbox.create_app("stuck", &["stuck.example.com"]);
    // stuck first: it expires first, so auto-renew comes to it before myapp.
    world.run(&["letsencrypt:enable", "stuck"]).ok();
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let (stuck_before, myapp_before) = (world.leaf_of("stuck"), world.installed_leaf());
    world
        .run(&["letsencrypt:set", "--global", "graceperiod", "999999999"])
        .ok();
    let silent = common::pebble::SilentServer::start();
    world
        .run(&["letsencrypt:set", "stuck", "server", &silent.directory])
        .ok();

    // Short limits; the guard only catches a hang. auto-renew meets the request timeout,
    // enable the order deadline.
    let mut renew = world.command(&["letsencrypt:auto-renew"]);
    renew.env("DOKKU_LETSENCRYPT_HTTP_TIMEOUT", "2");
    let run = common::pebble::run_guarded(renew, Duration::from_secs(90));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("stuck: ") && run.stderr.contains("renewal failed for stuck"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("myapp"), "{}", run.stderr);
    assert!(
        run.stderr.contains("did not answer within 2 s"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("myapp: renewing"), "{}", run.stdout);
    assert_ne!(
        world.installed_leaf(),
        myapp_before,
        "myapp was not renewed"
    );
    assert_eq!(world.leaf_of("stuck"), stuck_before);

    let mut enable = world.command(&["letsencrypt:enable", "stuck", "--force"]);
    enable.env("DOKKU_LETSENCRYPT_ORDER_TIMEOUT", "3");
    let run = common::pebble::run_guarded(enable, Duration::from_secs(90));
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("did not complete the exchange within 3 s"),
        "{}",
        run.stderr
    );
    assert_eq!(world.leaf_of("stuck"), stuck_before);
    assert!(
        !world
            .sandbox
            .app_dir("stuck")
            .join("nginx.conf.d/letsencrypt.conf")
            .exists()
    );
}

// ---- Decisions under the lock (issue 8, item 9) ----

/// How many processes wait for the flock on `dir` (from /proc/locks).
fn lock_waiters(dir: &std::path::Path) -> usize {
    let inode = format!(
        ":{}",
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(dir).unwrap())
    );
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    locks
        .lines()
        .filter(|l| l.contains("->") && l.split_whitespace().any(|f| f.ends_with(&inode)))
        .count()
}

/// Races `letsencrypt_args` against a certs:add of a manual certificate: the test holds
/// the app's lock until both wait for it, in alternating order, then lets them go. Whatever
/// order they take it in, the manual certificate must be what stays. Returns how many
/// rounds the certs:add went first (the order where deciding outside the lock goes wrong).
fn race_against_certs_add(world: &World, letsencrypt_args: &[&str], rounds: usize) -> usize {
    let app_dir = world.sandbox.app_dir("myapp");
    let (crt, key) = (
        fixtures().join("leaf.fullchain.crt"),
        fixtures().join("leaf.key"),
    );
    let manual = common::first_cert_der(&std::fs::read(&crt).unwrap());
    let mut add_first = 0;
    for round in 0..rounds {
        if world.run(&["letsencrypt:active", "myapp"]).ok().stdout != "true\n" {
            world.run(&["letsencrypt:enable", "myapp"]).ok();
        }
        let lock = std::fs::File::open(&app_dir).unwrap();
        lock.lock().unwrap();
        let spawn = |args: &[&str]| {
            let mut command = world.command(args);
            command
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped());
            command
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let add_args = [
            "certs:add",
            "myapp",
            crt.to_str().unwrap(),
            key.to_str().unwrap(),
        ];
        let mut children = Vec::new();
        for args in if round % 2 == 0 {
            [&add_args[..], letsencrypt_args]
        } else {
            [letsencrypt_args, &add_args[..]]
        } {
            children.push(spawn(args));
            let waiting = children.len();
            assert!(
                common::wait_until(|| lock_waiters(&app_dir) >= waiting),
                "round {round}: nobody waits"
            );
        }
        drop(lock);
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let (add, other) = if round % 2 == 0 {
            (&outputs[0], &outputs[1])
        } else {
            (&outputs[1], &outputs[0])
        };
        assert!(
            add.status.success(),
            "round {round}: certs:add failed: {add:?}"
        );
        let other_stdout = String::from_utf8_lossy(&other.stdout);
        let other_stderr = String::from_utf8_lossy(&other.stderr);
        if other_stderr.contains("does not have a certificate from Let's Encrypt")
            || other_stdout.contains("no longer from Let's Encrypt")
        {
            add_first += 1;
        }
        let installed = std::fs::read(app_dir.join("tls/server.crt"))
            .ok()
            .map(|pem| common::first_cert_der(&pem));
        assert!(
            installed.as_ref() == Some(&manual),
            "round {round}: the manual certificate was replaced or removed"
        );
        assert_eq!(
            world.run(&["letsencrypt:active", "myapp"]).ok().stdout,
            "false\n",
            "round {round}"
        );
    }
    add_first
}

#[test]
fn disable_never_removes_a_certificate_certs_add_installed_meanwhile() {
    let world = World::new(&["myapp.example.com"]);
    let add_first = race_against_certs_add(&world, &["letsencrypt:disable", "myapp"], 6);
    assert!(
        add_first > 0,
        "certs:add never took the lock first: the race was not exercised"
    );
}

#[test]
fn auto_renew_never_replaces_a_certificate_certs_add_installed_meanwhile() {
    let world = World::new(&["myapp.example.com"]);
    world
        .run(&["letsencrypt:set", "myapp", "graceperiod", "999999999"])
        .ok();
    let add_first = race_against_certs_add(&world, &["letsencrypt:auto-renew", "myapp"], 6);
    assert!(
        add_first > 0,
        "certs:add never took the lock first: the race was not exercised"
    );
}

#[test]
fn a_time_limit_that_is_not_a_number_of_seconds_is_refused_before_the_ca_is_asked() {
    let sandbox = Sandbox::new();
    sandbox.create_app("myapp", &["myapp.example.com"]);
    sandbox
        .run(
            &["letsencrypt:set", "--global", "email", "ops@example.com"],
            None,
        )
        .ok();
    let before = sandbox.tree("myapp");
    for (name, value) in [
        ("DOKKU_LETSENCRYPT_ORDER_TIMEOUT", "0"),
        ("DOKKU_LETSENCRYPT_HTTP_TIMEOUT", "5m"),
    ] {
        let run = sandbox.run_with(&["letsencrypt:enable", "myapp"], None, &[(name, value)]);
        let run = run.refused("a whole number of seconds above 0 is expected");
        assert!(run.stderr.contains(name), "{}", run.stderr);
    }
    assert_eq!(sandbox.tree("myapp"), before);
}

/// What a letsencrypt:enable killed while answering challenges leaves in nginx.conf.d/.
const STALE_CHALLENGE: &str = "location ^~ /.well-known/acme-challenge/ {\n  location = /.well-known/acme-challenge/stale {\n    return 200 \"stale.thumb\";\n  }\n}\n";

#[test]
fn a_challenge_file_left_by_a_killed_run_goes_with_the_next_disable_or_enable() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let conf_d = world.sandbox.app_dir("myapp").join("nginx.conf.d");
    for command in ["letsencrypt:disable", "letsencrypt:enable"] {
        std::fs::create_dir_all(&conf_d).unwrap();
        std::fs::write(conf_d.join("letsencrypt.conf"), STALE_CHALLENGE).unwrap();
        world.run(&[command, "myapp"]).ok();
        assert!(
            !world.challenge_conf_exists(),
            "{command} left the stale challenge file"
        );
    }
}
