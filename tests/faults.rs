//! Crashes and races: certs:update, certs:add, certs:generate, certs:remove and
//! letsencrypt:set killed with SIGKILL at random instants, and sixteen updates at once.
//! Afterwards tls/ holds one whole pair or none, nginx.conf agrees with it and passes
//! `nginx -t`, settings.json is whole, and the next command is not blocked.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, fixtures};

const DOMAIN: &str = "myapp.example.com";

/// The two pairs updates alternate between, as (server.crt, server.key) bytes once installed.
struct Pairs {
    files: [(String, String); 2],
    installed: [(Vec<u8>, Vec<u8>); 2],
    nginx_conf: Vec<u8>,
}

fn update_command(sandbox: &Sandbox, (crt, key): &(String, String)) -> Command {
    let mut command = sandbox.command(&["certs:update", "myapp", crt, key]);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn read_pair(app_dir: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(app_dir.join("tls/server.crt")).unwrap(),
        std::fs::read(app_dir.join("tls/server.key")).unwrap(),
    )
}

/// Installs both pairs once to learn what each looks like on disk.
fn learn_pairs(sandbox: &Sandbox) -> Pairs {
    let dir = fixtures();
    let file = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let files = [
        (file("leaf.fullchain.crt"), file("leaf.key")),
        (file("leaf2.crt"), file("leaf2.key")),
    ];
    let app = sandbox.app_dir("myapp");
    let mut installed = Vec::new();
    for pair in &files {
        assert!(update_command(sandbox, pair).status().unwrap().success());
        installed.push(read_pair(&app));
    }
    let nginx_conf = std::fs::read(app.join("nginx.conf")).unwrap();
    Pairs {
        files,
        installed: [installed[0].clone(), installed[1].clone()],
        nginx_conf,
    }
}

/// The state a crash may leave: exactly one of the two pairs, whole, matching, with the
/// nginx.conf that serves it, accepted by `nginx -t`.
fn assert_consistent(sandbox: &Sandbox, pairs: &Pairs, when: &str) -> usize {
    let app = sandbox.app_dir("myapp");
    let on_disk = read_pair(&app);
    let which = pairs
        .installed
        .iter()
        .position(|pair| *pair == on_disk)
        .unwrap_or_else(|| {
            panic!("{when}: tls/ holds neither pair whole (a mixed or partial pair)")
        });
    assert_eq!(
        std::fs::read(app.join("nginx.conf")).unwrap(),
        pairs.nginx_conf,
        "{when}: nginx.conf changed"
    );
    let test = Command::new("sh")
        .arg("-c")
        .arg(format!("{} -t", sandbox.nginx_cmd()))
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{when}: nginx -t fails: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    which
}

/// A small deterministic generator: the test is random in where it kills, yet repeatable.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// An app on a running nginx, and the two pairs the fault tests switch between.
fn serving_app_and_pairs() -> (Sandbox, Pairs) {
    let mut sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    sandbox.start_nginx();
    let pairs = learn_pairs(&sandbox);
    (sandbox, pairs)
}

#[test]
fn sigkill_at_any_instant_of_an_update_leaves_one_whole_pair() {
    let (sandbox, pairs) = serving_app_and_pairs();

    // How long an uninterrupted update takes here, so kills spread over its whole life.
    let started = Instant::now();
    for pair in &pairs.files {
        assert!(update_command(&sandbox, pair).status().unwrap().success());
    }
    let typical = started.elapsed() / 2;
    let window_us = (typical.as_micros() as u64).max(1_000);

    let mut random = Lcg(0x5eed_d0cc_u64);
    let (mut interrupted, mut ended_old, mut ended_new) = (0, 0, 0);
    for round in 0..150 {
        let target = round % 2;
        let mut child = update_command(&sandbox, &pairs.files[target])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(random.below(window_us)));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        let which = assert_consistent(&sandbox, &pairs, &format!("round {round}"));
        if which == target {
            ended_new += 1
        } else {
            ended_old += 1
        }
    }
    // The test has teeth only if kills landed mid-update, on both sides of the swap.
    assert!(
        interrupted >= 30,
        "only {interrupted} of 150 kills interrupted an update (window {window_us} µs)"
    );
    assert!(
        ended_old > 0 && ended_new > 0,
        "kills never landed on both sides: old {ended_old}, new {ended_new}"
    );

    // No stale lock: the next update is not blocked (a stale lock would block it forever,
    // so give up after wait_until's 30 s rather than hang), and it clears any staging leftovers.
    let mut next = update_command(&sandbox, &pairs.files[0]).spawn().unwrap();
    let finished = common::wait_until(|| next.try_wait().unwrap().is_some());
    if !finished {
        next.kill().ok();
    }
    let status = next.wait().unwrap();
    assert!(
        finished && status.success(),
        "the update after the kills did not finish: {status:?}"
    );
    assert_eq!(
        assert_consistent(&sandbox, &pairs, "after the last update"),
        0
    );
    let app = sandbox.app_dir("myapp");
    let leftovers: Vec<_> = std::fs::read_dir(&app)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging leftovers: {leftovers:?}");
    let expected = common::first_cert_der(&pairs.installed[0].0);
    assert_eq!(sandbox.wait_served(DOMAIN, &expected), expected);
    eprintln!(
        "kills: {interrupted} mid-update of 150; ended on the old pair {ended_old}, on the new {ended_new}"
    );
}

#[test]
fn sixteen_updates_at_once_all_finish_serialized() {
    let (sandbox, pairs) = serving_app_and_pairs();
    let children: Vec<_> = (0..16)
        .map(|i| {
            let mut command = sandbox.command(&[
                "certs:update",
                "myapp",
                &pairs.files[i % 2].0,
                &pairs.files[i % 2].1,
            ]);
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "an update failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let which = assert_consistent(&sandbox, &pairs, "after 16 concurrent updates");
    let expected = common::first_cert_der(&pairs.installed[which].0);
    assert_eq!(sandbox.wait_served(DOMAIN, &expected), expected);
    assert!(!sandbox.app_dir("myapp").join(".tls.staging").exists());
}

/// What a certificate-changing command killed at a random instant may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Killed {
    Add,
    Generate,
    Remove,
}

/// tls/ right after a kill, before any other command: nothing, or one whole pair (both
/// files, the key matching the certificate). `true` if a pair is there.
fn whole_pair_or_none(app_dir: &Path, when: &str) -> bool {
    let tls = app_dir.join("tls");
    if !tls.exists() {
        return false;
    }
    let read = |name: &str| {
        std::fs::read(tls.join(name))
            .unwrap_or_else(|e| panic!("{when}: tls/ without a whole pair: {name}: {e}"))
    };
    let sources = [
        dokku_certs::bundle::Source {
            name: "server.crt".into(),
            bytes: read("server.crt"),
        },
        dokku_certs::bundle::Source {
            name: "server.key".into(),
            bytes: read("server.key"),
        },
    ];
    if let Err(e) = dokku_certs::bundle::assemble(&sources, dokku_certs::bundle::Origin::Files) {
        panic!("{when}: tls/ holds a broken or mixed pair: {e}");
    }
    true
}

fn nginx_test_passes(sandbox: &Sandbox, when: &str) {
    let test = Command::new("sh")
        .arg("-c")
        .arg(format!("{} -t", sandbox.nginx_cmd()))
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{when}: nginx -t fails: {}",
        String::from_utf8_lossy(&test.stderr)
    );
}

/// After the next command (here certs:report, which resolves what a killed change left):
/// tls/, nginx.conf and the report all say the same thing. Returns whether a pair is in use.
fn settled_and_agreeing(sandbox: &Sandbox, when: &str) -> bool {
    let report = sandbox
        .run(&["certs:report", "myapp", "--ssl-enabled"], None)
        .ok();
    let app = sandbox.app_dir("myapp");
    let has_pair = whole_pair_or_none(&app, when);
    let conf = std::fs::read_to_string(app.join("nginx.conf")).unwrap_or_default();
    let conf_serves_tls = conf.contains("ssl_certificate");
    assert_eq!(
        report.stdout.trim(),
        has_pair.to_string(),
        "{when}: certs:report disagrees with tls/"
    );
    assert_eq!(
        conf_serves_tls, has_pair,
        "{when}: nginx.conf (TLS: {conf_serves_tls}) disagrees with tls/ ({has_pair})"
    );
    nginx_test_passes(sandbox, when);
    has_pair
}

/// certs:add (to an app without a certificate), certs:generate and certs:remove killed with
/// SIGKILL at random instants, each round starting from whatever the last one left. Right
/// after each kill tls/ holds one whole pair or none and nginx -t passes; after the next
/// command nginx.conf and certs:report agree with tls/, so generate never says "already
/// defined" about a certificate nginx does not serve.
#[test]
fn sigkill_during_add_generate_and_remove_leaves_a_state_everything_agrees_on() {
    let mut sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    sandbox.start_nginx();
    let dir = fixtures();
    let (crt, key) = (dir.join("leaf.fullchain.crt"), dir.join("leaf.key"));
    let command_for = |killed: Killed| {
        let args: Vec<&str> = match killed {
            Killed::Add => vec![
                "certs:add",
                "myapp",
                crt.to_str().unwrap(),
                key.to_str().unwrap(),
            ],
            Killed::Generate => vec!["certs:generate", "myapp", DOMAIN],
            Killed::Remove => vec!["certs:remove", "myapp"],
        };
        let mut command = sandbox.command(&args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };

    // How long each command takes uninterrupted, so kills spread over its whole life.
    let mut window_us = std::collections::HashMap::new();
    for killed in [
        Killed::Add,
        Killed::Remove,
        Killed::Generate,
        Killed::Remove,
    ] {
        let started = Instant::now();
        assert!(
            command_for(killed).status().unwrap().success(),
            "{killed:?} fails uninterrupted"
        );
        window_us.insert(killed, (started.elapsed().as_micros() as u64).max(1_000));
    }

    let mut random = Lcg(0x0dd_c0ffee);
    let mut interrupted = std::collections::HashMap::new();
    let mut has_pair = false;
    let started = Instant::now();
    for round in 0..240 {
        if started.elapsed() > Duration::from_secs(120) {
            break;
        }
        let killed = match (has_pair, round % 4 < 2) {
            (true, _) => Killed::Remove,
            (false, true) => Killed::Generate,
            (false, false) => Killed::Add,
        };
        let mut child = command_for(killed).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(random.below(window_us[&killed])));
        if child.try_wait().unwrap().is_none() {
            *interrupted.entry(killed).or_insert(0) += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        let when = format!("round {round}, {killed:?} killed");
        whole_pair_or_none(&sandbox.app_dir("myapp"), &when);
        nginx_test_passes(&sandbox, &when);
        has_pair = settled_and_agreeing(&sandbox, &when);
    }
    eprintln!("kills that interrupted a command: {interrupted:?}");
    for killed in [Killed::Add, Killed::Generate, Killed::Remove] {
        let count = interrupted.get(&killed).copied().unwrap_or(0);
        assert!(
            count >= 5,
            "only {count} kills interrupted {killed:?}: {interrupted:?}"
        );
    }
    // And the app still works both ways.
    if has_pair {
        sandbox.run(&["certs:remove", "myapp"], None).ok();
    }
    sandbox.run(&["certs:generate", "myapp", DOMAIN], None).ok();
    assert!(settled_and_agreeing(&sandbox, "after the last generate"));
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.app_dir("myapp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "leftovers: {leftovers:?}");
}

/// letsencrypt:set killed at random instants: settings.json always parses and holds the
/// last value set or the one before, 0600; the next set leaves no temp file behind.
#[test]
fn sigkill_during_letsencrypt_set_never_loses_or_tears_the_settings() {
    let sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    let set = |value: &str| {
        let mut command = sandbox.command(&["letsencrypt:set", "myapp", "graceperiod", value]);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    sandbox
        .run(
            &["letsencrypt:set", "--global", "email", "ops@example.com"],
            None,
        )
        .ok();
    let started = Instant::now();
    assert!(set("1").status().unwrap().success());
    let window_us = (started.elapsed().as_micros() as u64).max(1_000);
    let path = sandbox.root().join(".letsencrypt/settings.json");
    let mut random = Lcg(0x5e7_5e7);
    let (mut interrupted, mut before) = (0, "1".to_string());
    for round in 2..152 {
        let value = round.to_string();
        let mut child = set(&value).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(random.below(window_us)));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        child.kill().ok();
        child.wait().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let table: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("round {round}: settings.json torn ({e}):\n{text}"));
        assert_eq!(
            table["--global"]["email"], "ops@example.com",
            "round {round}: another value was lost"
        );
        let now = table["myapp"]["graceperiod"].as_str().unwrap().to_string();
        assert!(
            now == value || now == before,
            "round {round}: graceperiod {now}, expected {value} or {before}"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        before = now;
    }
    assert!(set("7").status().unwrap().success());
    let names: Vec<_> = std::fs::read_dir(sandbox.root().join(".letsencrypt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["settings.json"], "temp files left behind");
    assert!(
        interrupted >= 30,
        "only {interrupted} of 150 kills interrupted a set"
    );
    eprintln!("letsencrypt:set kills: {interrupted} of 150 mid-command");
}

/// The pids of `pid`'s children.
fn children_of(pid: u32) -> Vec<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|child| child.parse().ok())
        .collect()
}

/// A child process holds a copy of every descriptor of the command, the app's lock too,
/// until it execs. A command killed while such a child is still on its way to exec leaves
/// the lock held for a moment, and the next command cannot resolve what it left. strace
/// holds each exec after the command's own for 2 s, so the kill lands while the command's
/// first child waits: the state it left must agree all the same.
#[test]
fn a_generate_killed_while_its_child_still_holds_the_lock_leaves_a_state_everything_agrees_on() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let command = sandbox.command(&["certs:generate", "myapp", DOMAIN]);
    let mut traced = Command::new("strace");
    traced
        .args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=execve",
            "-e",
            "inject=execve:delay_enter=2000000:when=2+",
        ])
        .arg(command.get_program())
        .args(command.get_args())
        .envs(
            command
                .get_envs()
                .filter_map(|(name, value)| Some((name, value?))),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut strace = traced.spawn().expect("strace (make deps installs it)");
    let tracee = || children_of(strace.id()).first().copied();
    assert!(
        common::wait_until(|| tracee().is_some_and(|pid| !children_of(pid).is_empty())),
        "no child started"
    );
    let generate = tracee().unwrap();
    Command::new("kill")
        .args(["-KILL", &generate.to_string()])
        .status()
        .unwrap();
    assert!(common::wait_until(|| !Path::new(&format!(
        "/proc/{generate}"
    ))
    .exists()
        || std::fs::read_to_string(format!("/proc/{generate}/stat"))
            .is_ok_and(|stat| stat.contains(") Z"))));
    let when = "generate killed while its first child had not exec'd yet";
    whole_pair_or_none(&sandbox.app_dir("myapp"), when);
    settled_and_agreeing(&sandbox, when);
    strace.kill().ok();
    strace.wait().unwrap();
    // Once the child is gone, the next command resolves what is left and generate works.
    sandbox.run(&["certs:generate", "myapp", DOMAIN], None).ok();
    assert!(settled_and_agreeing(&sandbox, "after the next generate"));
}

/// The next command that changes an app resolves what a killed one left when it opens the
/// app, and says so on stderr rather than dropping the note.
#[test]
fn the_next_change_says_that_it_resolved_an_interrupted_one() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let dir = fixtures();
    let (crt, key) = (dir.join("leaf.crt"), dir.join("leaf.key"));
    let add = [
        "certs:add",
        "myapp",
        crt.to_str().unwrap(),
        key.to_str().unwrap(),
    ];
    sandbox.run(&add, None).ok();
    sandbox.run(&["certs:remove", "myapp"], None).ok();
    // What a certs:add killed between its two renames leaves: the journal, and a tls/ beside
    // an nginx.conf that does not serve it.
    let app_dir = sandbox.app_dir("myapp");
    std::fs::rename(app_dir.join("tls.previous"), app_dir.join("tls")).unwrap();
    std::fs::write(
        app_dir.join(".dokku-certs-journal"),
        "a dokku-certs change is under way\n",
    )
    .unwrap();
    let run = sandbox.run(&add, None).ok();
    assert!(
        run.stderr.contains(
            "an earlier command on myapp was interrupted; its certificate was not in use"
        ),
        "{}",
        run.stderr
    );
}
