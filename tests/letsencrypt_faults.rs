//! Crashes during Let's Encrypt commands: letsencrypt:enable, letsencrypt:disable and a
//! renewal (letsencrypt:auto-renew) killed with SIGKILL at random instants against a real
//! Pebble. After every kill tls/ holds one whole pair (the old one or a new one) or none and
//! `nginx -t` passes whatever nginx.conf.d/letsencrypt.conf was left; after the next command
//! nginx.conf and certs:report agree with tls/; at the end the next enable, renewal or
//! disable succeeds and leaves nothing behind.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pebble::{World, run_guarded, whole_pair};

const DOMAIN: &str = "myapp.example.com";

/// A small deterministic generator: random in where it kills, yet repeatable.
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

/// Right after a kill, before any other command: no tls/, or a whole pair from us (the
/// marker beside it); `nginx -t` passes whatever nginx.conf.d/letsencrypt.conf was left.
fn assert_whole_pair_or_none(world: &World, when: &str) {
    let app = world.sandbox.app_dir("myapp");
    if let Some(pair) = whole_pair(&app) {
        pair.unwrap_or_else(|why| panic!("{when}: tls/ holds no whole pair: {why}"));
        assert!(
            app.join("tls/letsencrypt.json").exists(),
            "{when}: a pair without its marker"
        );
    }
    nginx_test_passes(world, when);
}

fn nginx_test_passes(world: &World, when: &str) {
    let test = Command::new("sh")
        .arg("-c")
        .arg(format!("{} -t", world.sandbox.nginx_cmd()))
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{when}: nginx -t fails: {}",
        String::from_utf8_lossy(&test.stderr)
    );
}

/// After the next command (certs:report, which resolves what a killed change left, as in
/// tests/faults.rs): tls/, nginx.conf and the report agree. Returns the installed leaf
/// (empty without tls/).
fn assert_settled(world: &World, when: &str) -> Vec<u8> {
    let report = world.run(&["certs:report", "myapp", "--ssl-enabled"]).ok();
    let app = world.sandbox.app_dir("myapp");
    assert_whole_pair_or_none(world, when);
    let has_pair = app.join("tls").exists();
    let conf_serves_tls = std::fs::read_to_string(app.join("nginx.conf"))
        .unwrap()
        .contains("ssl_certificate");
    assert_eq!(
        report.stdout.trim(),
        has_pair.to_string(),
        "{when}: certs:report disagrees with tls/"
    );
    assert_eq!(
        conf_serves_tls, has_pair,
        "{when}: nginx.conf (TLS: {conf_serves_tls}) disagrees with tls/"
    );
    if has_pair {
        world.installed_leaf()
    } else {
        Vec::new()
    }
}

/// How the kills of one command landed.
#[derive(Debug, Default)]
struct Kills {
    /// While the command still ran.
    interrupted: usize,
    /// After which tls/ held what it held before.
    unchanged: usize,
    /// After which tls/ held a new pair, or (disable) none.
    changed: usize,
}

impl Kills {
    /// The test has teeth only if kills landed mid-command, on both sides of the swap.
    fn assert_spread(&self, rounds: usize, what: &str) {
        assert!(
            self.interrupted >= rounds / 4,
            "only {self:?} of {rounds} kills interrupted {what}"
        );
        assert!(
            self.unchanged > 0 && self.changed > 0,
            "{what}: kills never landed on both sides: {self:?}"
        );
        eprintln!("{what}: {rounds} kills: {self:?}");
    }
}

/// Kills `args` `rounds` times at a random instant within one and a half `window` (a
/// loaded machine makes later runs slower than the measured one); `before_round` sets up
/// each round.
fn kill_rounds(
    world: &World,
    args: &[&str],
    rounds: usize,
    window: Duration,
    before_round: impl Fn(&World),
) -> Kills {
    let mut random = Lcg(0xac3e_u64 ^ args.len() as u64);
    let window_us = (window.as_micros() as u64 * 3 / 2).max(1_000);
    let mut kills = Kills::default();
    for round in 0..rounds {
        before_round(world);
        let before = assert_settled(world, &format!("before round {round}"));
        let mut command = world.command(args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command.spawn().unwrap();
        std::thread::sleep(Duration::from_micros(random.below(window_us)));
        if child.try_wait().unwrap().is_none() {
            kills.interrupted += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        let when = format!("{args:?}, round {round}");
        assert_whole_pair_or_none(world, &when);
        let after = assert_settled(world, &when);
        if args[0] == "letsencrypt:disable" {
            assert!(
                after.is_empty() || after == before,
                "round {round}: disable left a different certificate"
            );
        }
        if after == before {
            kills.unchanged += 1
        } else {
            kills.changed += 1
        }
    }
    kills
}

/// How long one uninterrupted run of `args` takes here (it must succeed).
fn typical(world: &World, args: &[&str]) -> Duration {
    let started = Instant::now();
    run_guarded(world.command(args), Duration::from_secs(120)).ok();
    started.elapsed()
}

/// The next command after the kills: not blocked, succeeds, and leaves nothing behind.
fn assert_recovers(world: &World, args: &[&str]) {
    run_guarded(world.command(args), Duration::from_secs(120)).ok();
    let leaf = assert_settled(world, "after recovery");
    assert!(
        !world.challenge_conf_exists(),
        "nginx.conf.d/letsencrypt.conf was left behind"
    );
    let leftovers: Vec<_> = std::fs::read_dir(world.sandbox.app_dir("myapp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging leftovers: {leftovers:?}");
    if !leaf.is_empty() {
        assert_eq!(world.sandbox.wait_served(DOMAIN, &leaf), leaf);
    }
}

#[test]
fn sigkill_during_enable_leaves_one_whole_pair_or_none() {
    let world = World::new(&[DOMAIN]);
    // --force: a round whose enable completed must not make the next ones no-ops.
    let window = typical(&world, &["letsencrypt:enable", "myapp", "--force"]);
    world.run(&["letsencrypt:disable", "myapp"]).ok();
    kill_rounds(
        &world,
        &["letsencrypt:enable", "myapp", "--force"],
        40,
        window,
        |_| {},
    )
    .assert_spread(40, "enable");
    assert_recovers(&world, &["letsencrypt:enable", "myapp", "--force"]);
}

#[test]
fn sigkill_during_a_renewal_leaves_the_old_pair_or_a_new_one() {
    let world = World::new(&[DOMAIN]);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    world
        .run(&["letsencrypt:set", "myapp", "graceperiod", "999999999"])
        .ok();
    let window = typical(&world, &["letsencrypt:auto-renew"]);
    kill_rounds(&world, &["letsencrypt:auto-renew"], 40, window, |_| {})
        .assert_spread(40, "renewal");
    let before = world.installed_leaf();
    assert_recovers(&world, &["letsencrypt:auto-renew"]);
    assert_ne!(
        world.installed_leaf(),
        before,
        "the renewal after the kills did not renew"
    );
}

#[test]
fn sigkill_during_disable_leaves_the_pair_or_none() {
    let world = World::new(&[DOMAIN]);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let window = typical(&world, &["letsencrypt:disable", "myapp"]);
    // Every round starts from a certificate of ours (enabled again when a disable finished).
    let enabled = |world: &World| {
        if world.run(&["letsencrypt:active", "myapp"]).ok().stdout != "true\n" {
            run_guarded(
                world.command(&["letsencrypt:enable", "myapp"]),
                Duration::from_secs(120),
            )
            .ok();
        }
    };
    kill_rounds(
        &world,
        &["letsencrypt:disable", "myapp"],
        30,
        window,
        enabled,
    )
    .assert_spread(30, "disable");
    enabled(&world);
    assert_recovers(&world, &["letsencrypt:disable", "myapp"]);
    assert_recovers(&world, &["letsencrypt:enable", "myapp"]);
}
