//! Let's Encrypt as in late 2026, against the acme-lab kit (`make acme-lab`): Pebble v2.10.1
//! (profiles, ARI, EAB) and BIND (RFC 2136 with TSIG), with a real nginx on loopback.

mod common;

use std::collections::BTreeMap;

use common::Sandbox;
use common::acmelab::Lab;
use dokku_certs::acme::dns::{Provider, Txt};
use dokku_certs::cert::Certificate;

fn dig_txt(lab: &Lab, fqdn: &str) -> Vec<String> {
    let (host, port) = lab.bind["BIND_NAMESERVER"].rsplit_once(':').unwrap();
    let output = std::process::Command::new("dig")
        .args([
            "+short",
            "+norecurse",
            "-p",
            port,
            &format!("@{host}"),
            "TXT",
            fqdn,
        ])
        .output()
        .expect("dig (bind9-dnsutils, installed by make acme-lab)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

fn rfc2136_values(lab: &Lab) -> BTreeMap<String, String> {
    [
        ("RFC2136_NAMESERVER", "BIND_NAMESERVER"),
        ("RFC2136_TSIG_KEY", "TSIG_KEY_NAME"),
        ("RFC2136_TSIG_ALGORITHM", "TSIG_ALGORITHM"),
        ("RFC2136_TSIG_SECRET", "TSIG_SECRET"),
    ]
    .iter()
    .map(|(key, from)| (key.to_string(), lab.bind[*from].clone()))
    .collect()
}

#[test]
fn rfc2136_publishes_two_values_on_one_name_and_removes_them() {
    let sandbox = Sandbox::new();
    let lab = Lab::start(&sandbox, &[]);
    let provider = Provider::from_settings(Some("rfc2136"), &rfc2136_values(&lab))
        .unwrap()
        .unwrap();
    let records = [
        Txt::for_domain("*.example.test", "wild".into()),
        Txt::for_domain("example.test", "apex".into()),
    ];
    for txt in &records {
        provider.present(txt).unwrap();
    }
    provider.wait_propagated(&records).unwrap();
    let mut values = dig_txt(&lab, "_acme-challenge.example.test");
    values.sort();
    assert_eq!(values, ["apex", "wild"]);
    for txt in &records {
        provider.cleanup(txt).unwrap();
    }
    assert!(dig_txt(&lab, "_acme-challenge.example.test").is_empty());

    // A wrong secret is refused by BIND, and the message says so without the secret.
    let mut wrong = rfc2136_values(&lab);
    wrong.insert("RFC2136_TSIG_SECRET".into(), "d3Jvbmc=".into());
    let provider = Provider::from_settings(Some("rfc2136"), &wrong)
        .unwrap()
        .unwrap();
    let error = provider.present(&records[0]).unwrap_err();
    assert!(
        error.contains("refused") || error.contains("TSIG"),
        "{error}"
    );
    assert!(!error.contains("d3Jvbmc="), "{error}");
}

/// A sandbox with one app, nginx running, and the lab's Pebble and BIND.
struct World {
    sandbox: Sandbox,
    lab: Lab,
}

impl World {
    fn new(domains: &[&str], pebble_options: &[&str]) -> World {
        let mut sandbox = Sandbox::new();
        sandbox.create_app("myapp", domains);
        sandbox.start_nginx();
        let lab = Lab::start(&sandbox, pebble_options);
        let world = World { sandbox, lab };
        world
            .run(&["letsencrypt:set", "--global", "email", "ops@example.test"])
            .ok();
        let directory = world.lab.directory().to_string();
        world
            .run(&["letsencrypt:set", "--global", "server", &directory])
            .ok();
        world
    }

    fn run(&self, args: &[&str]) -> common::Run {
        let env = self.lab.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.sandbox.run_with(args, None, &env)
    }

    fn server_crt(&self) -> std::path::PathBuf {
        self.sandbox.app_dir("myapp").join("tls/server.crt")
    }

    fn leaf(&self) -> Certificate {
        Certificate::from_der(&common::first_cert_der(
            &std::fs::read(self.server_crt()).unwrap(),
        ))
        .unwrap()
    }
}

const DAY: i64 = 86_400;

#[test]
fn shortlived_profile_gives_a_six_day_certificate_and_an_unknown_profile_is_refused_before_ordering()
 {
    let world = World::new(&["short.example.test"], &[]);
    let tree = files(&world);
    world
        .run(&["letsencrypt:set", "myapp", "profile", "longlived"])
        .ok();
    let refused = world
        .run(&["letsencrypt:enable", "myapp"])
        .refused("profile \"longlived\" is not offered by");
    assert!(
        refused.stderr.contains("classic, shortlived, tlsserver"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stdout.contains("Ordered"),
        "an order was placed: {}",
        refused.stdout
    );
    assert_eq!(files(&world), tree);

    world
        .run(&["letsencrypt:set", "myapp", "profile", "shortlived"])
        .ok();
    let run = world.run(&["letsencrypt:enable", "myapp"]).ok();
    assert!(run.stdout.contains("profile shortlived"), "{}", run.stdout);
    let leaf = world.leaf();
    let days = (leaf.not_after - leaf.not_before) as f64 / DAY as f64;
    assert!(
        (6.5..7.0).contains(&days),
        "a shortlived certificate lives {days} days"
    );
    let list = world.run(&["letsencrypt:list"]).ok().stdout;
    assert!(
        list.lines()
            .any(|l| l.starts_with("myapp ") && l.contains("shortlived")),
        "{list}"
    );
}

#[test]
fn ari_decides_renewal_and_the_new_order_replaces_the_old_certificate() {
    let world = World::new(&["ari.example.test"], &[]);
    world
        .run(&["letsencrypt:set", "--global", "profile", "shortlived"])
        .ok();
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let first = world.leaf();
    let saved: Vec<(String, Vec<u8>)> = ["server.crt", "server.key", "letsencrypt.json"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                std::fs::read(world.sandbox.app_dir("myapp").join("tls").join(n)).unwrap(),
            )
        })
        .collect();

    // The window lies in the future: left alone although fewer than 7 days (less than the
    // old fixed 30-day grace period) are left.
    world.lab.set_renewal_window(
        &world.server_crt(),
        &rfc3339_in(3 * DAY),
        &rfc3339_in(4 * DAY),
    );
    let run = world.run(&["letsencrypt:auto-renew"]).ok();
    assert!(
        run.stdout.contains("myapp: no renewal needed"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("ARI window"), "{}", run.stdout);
    assert_eq!(world.leaf().der(), first.der());

    // An explicit graceperiod wins over ARI.
    world
        .run(&["letsencrypt:set", "myapp", "graceperiod", "1"])
        .ok();
    let run = world.run(&["letsencrypt:auto-renew"]).ok();
    assert!(
        run.stdout.contains("myapp: no renewal needed"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("graceperiod"), "{}", run.stdout);
    world.run(&["letsencrypt:set", "myapp", "graceperiod"]).ok();

    // The window moves into the past. The CA's Retry-After (6 hours) has not passed: the
    // cached answer holds and the CA is not asked again.
    world.lab.set_renewal_window(
        &world.server_crt(),
        &rfc3339_in(-2 * DAY),
        &rfc3339_in(-DAY),
    );
    let run = world.run(&["letsencrypt:auto-renew"]).ok();
    assert!(
        run.stdout.contains("myapp: no renewal needed"),
        "{}",
        run.stdout
    );
    assert_eq!(world.leaf().der(), first.der());
    // Six hours later (the state's next check moved into the past): renewed, the order
    // names the old certificate.
    let state_file = world.sandbox.root().join(".letsencrypt/state/myapp.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert!(
        state["ari-next-check"].as_i64().unwrap() > dokku_certs::util::now() + 5 * 3600,
        "{state}"
    );
    state["ari-next-check"] = serde_json::json!(0);
    std::fs::write(&state_file, state.to_string()).unwrap();
    let run = world.run(&["letsencrypt:auto-renew"]).ok();
    assert!(run.stdout.contains("myapp: renewing"), "{}", run.stdout);
    assert!(run.stdout.contains("replaces"), "{}", run.stdout);
    let second = world.leaf();
    assert_ne!(second.der(), first.der());

    // The old certificate comes back (a restored backup) and is renewed again: Pebble answers
    // 409 alreadyReplaced to a second replacement; the renewal goes on without `replaces`.
    for (name, bytes) in &saved {
        std::fs::write(world.sandbox.app_dir("myapp").join("tls").join(name), bytes).unwrap();
    }
    let run = world.run(&["letsencrypt:auto-renew"]).ok();
    assert!(run.stdout.contains("alreadyReplaced"), "{}", run.stdout);
    assert_ne!(world.leaf().der(), first.der());
    assert_ne!(world.leaf().der(), second.der());
}

/// The app's files except nginx.conf: enable renders a plain-HTTP one for an app that has
/// none before it orders, so that nginx can answer the challenge.
fn files(world: &World) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let tree = world.sandbox.tree("myapp");
    tree.0
        .into_iter()
        .filter(|(path, _)| !path.ends_with("nginx.conf"))
        .map(|(p, (_, bytes))| (p, bytes))
        .collect()
}

fn rfc3339_in(seconds: i64) -> String {
    common::acmelab::rfc3339_in(seconds)
}

fn set_rfc2136(world: &World) {
    world
        .run(&["letsencrypt:set", "myapp", "dns-provider", "rfc2136"])
        .ok();
    for (key, value) in rfc2136_values(&world.lab) {
        world
            .run(&[
                "letsencrypt:set",
                "myapp",
                &format!("dns-provider-{key}"),
                &value,
            ])
            .ok();
    }
}

#[test]
fn a_wildcard_and_its_apex_over_rfc2136_and_the_txt_records_are_gone_afterwards() {
    let world = World::new(&["*.example.test", "example.test"], &[]);
    set_rfc2136(&world);
    let secret = world.lab.bind["TSIG_SECRET"].clone();
    let report = world.run(&["letsencrypt:report", "myapp"]).ok();
    assert!(
        report.stdout.contains("dns-provider-RFC2136_TSIG_SECRET")
            && report.stdout.contains("****"),
        "{}",
        report.stdout
    );
    let run = world.run(&["letsencrypt:enable", "myapp"]).ok();
    assert!(!run.stdout.contains(&secret) && !run.stderr.contains(&secret));
    assert!(run.stdout.contains("DNS-01"), "{}", run.stdout);
    let mut names = world.leaf().hostnames();
    names.sort();
    assert_eq!(names, ["*.example.test", "example.test"]);
    assert!(dig_txt(&world.lab, "_acme-challenge.example.test").is_empty());
    let leaf = world.leaf();
    assert_eq!(
        world.sandbox.wait_served("app.example.test", leaf.der()),
        leaf.der()
    );

    assert!(!run.stderr.contains("does not cover"), "{}", run.stderr);

    // A failed order removes the records too: a TSIG secret BIND does not know, and a new
    // name (Pebble reuses valid authorizations half of the time).
    std::fs::write(
        world.sandbox.app_dir("myapp").join("VHOST"),
        "*.example.test\nexample.test\nnew.example.test\n",
    )
    .unwrap();
    world
        .run(&[
            "letsencrypt:set",
            "myapp",
            "dns-provider-RFC2136_TSIG_SECRET",
            "d3Jvbmc=",
        ])
        .ok();
    let tree = files(&world);
    let refused = world
        .run(&["letsencrypt:enable", "myapp"])
        .refused("refused the update");
    assert!(refused.stderr.contains("TSIG"), "{}", refused.stderr);
    assert!(refused.stderr.contains("TSIG"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("d3Jvbmc="), "{}", refused.stderr);
    assert_eq!(files(&world), tree);
    assert!(dig_txt(&world.lab, "_acme-challenge.example.test").is_empty());
}

#[test]
fn the_exec_provider_runs_the_script_with_legos_protocol() {
    let world = World::new(&["*.exec.example.test"], &[]);
    let dir = world.sandbox.dir.path();
    let log = dir.join("exec.log");
    let script = nsupdate_hook(&world, &format!("echo \"$1 $2 $3\" >> {}", log.display()));
    world
        .run(&["letsencrypt:set", "--global", "dns-provider", "exec"])
        .ok();
    world
        .run(&[
            "letsencrypt:set",
            "--global",
            "dns-provider-EXEC_PATH",
            script.to_str().unwrap(),
        ])
        .ok();
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    assert_eq!(world.leaf().hostnames(), ["*.exec.example.test"]);
    let calls = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 2, "{calls}");
    assert!(
        lines[0].starts_with("present _acme-challenge.exec.example.test. "),
        "{calls}"
    );
    assert!(
        lines[1].starts_with("cleanup _acme-challenge.exec.example.test. "),
        "{calls}"
    );
    assert_eq!(lines[0].split(' ').nth(2), lines[1].split(' ').nth(2));
    assert!(dig_txt(&world.lab, "_acme-challenge.exec.example.test").is_empty());
}

#[test]
fn eab_required_enable_fails_with_the_cas_reason_without_it_and_succeeds_with_it() {
    let world = World::new(&["eab.example.test"], &["--eab"]);
    let tree = files(&world);
    world
        .run(&["letsencrypt:enable", "myapp"])
        .refused("externalAccountRequired");
    assert_eq!(files(&world), tree);
    let (kid, key) = (
        world.lab.pebble["EAB_KID"].clone(),
        world.lab.pebble["EAB_HMAC_KEY"].clone(),
    );
    world
        .run(&["letsencrypt:set", "--global", "eab-kid", &kid])
        .ok();
    world
        .run(&["letsencrypt:set", "--global", "eab-hmac-key", &key])
        .ok();
    let report = world.run(&["letsencrypt:report", "--global"]).ok();
    assert!(
        !report.stdout.contains(&key) && report.stdout.contains("****"),
        "{}",
        report.stdout
    );
    let run = world.run(&["letsencrypt:enable", "myapp"]).ok();
    assert!(!run.stdout.contains(&key));
    assert_eq!(world.leaf().hostnames(), ["eab.example.test"]);
}

/// An exec-provider script that runs `first_line`, then publishes or removes the TXT value
/// in the lab's BIND with nsupdate and TSIG.
fn nsupdate_hook(world: &World, first_line: &str) -> std::path::PathBuf {
    let b = &world.lab.bind;
    let (host, port) = b["BIND_NAMESERVER"].rsplit_once(':').unwrap();
    let tsig = format!(
        "{}:{}:{}",
        b["TSIG_ALGORITHM"], b["TSIG_KEY_NAME"], b["TSIG_SECRET"]
    );
    let script = world.sandbox.dir.path().join("dns-hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{first_line}\ncase $1 in present) op=add;; cleanup) op=delete;; *) exit 2;; esac\n\
             printf 'server {host} {port}\\nupdate %s %s 60 TXT \"%s\"\\nsend\\n' $op \"$2\" \"$3\" | nsupdate -y '{tsig}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

/// The app's renewal state file, as JSON.
fn state_of(world: &World) -> (std::path::PathBuf, serde_json::Value) {
    let path = world.sandbox.root().join(".letsencrypt/state/myapp.json");
    let value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (path, value)
}

#[test]
fn failed_renewals_back_off_notify_and_show_in_prometheus_metrics() {
    let world = World::new(&["*.notify.example.test"], &[]);
    let dir = world.sandbox.dir.path();
    let events = dir.join("events.log");
    let notify = format!(
        "echo \"$LETSENCRYPT_EVENT|$LETSENCRYPT_APP|$LETSENCRYPT_DOMAINS|$LETSENCRYPT_EXPIRY|$LETSENCRYPT_ERROR\" >> {}",
        events.display()
    );
    world
        .run(&["letsencrypt:set", "--global", "notify-command", &notify])
        .ok();
    // An exec provider that publishes records through BIND.
    let script = nsupdate_hook(&world, "");
    world
        .run(&["letsencrypt:set", "myapp", "dns-provider", "exec"])
        .ok();
    world
        .run(&[
            "letsencrypt:set",
            "myapp",
            "dns-provider-EXEC_PATH",
            script.to_str().unwrap(),
        ])
        .ok();
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    let first = world.leaf();

    // Renewals are due (graceperiod longer than the lifetime) and the CA cannot be reached
    // (nothing listens on port 1): a failure before any authorization, so Pebble's
    // occasional reuse of a valid one (1% even with PEBBLE_AUTHZREUSE=0) cannot turn it
    // into a success.
    world
        .run(&["letsencrypt:set", "myapp", "graceperiod", "999999999"])
        .ok();
    world
        .run(&[
            "letsencrypt:set",
            "myapp",
            "server",
            "https://127.0.0.1:1/dir",
        ])
        .ok();
    let mut waits = Vec::new();
    for attempt in 1..=3 {
        let run = world.run(&["letsencrypt:auto-renew"]);
        assert_eq!(run.code, 1, "attempt {attempt}: {run:?}");
        assert!(
            run.stderr.contains("cannot create the account"),
            "{}",
            run.stderr
        );
        // Right after a failure, the next run does not try: it waits out the backoff.
        let held = world.run(&["letsencrypt:auto-renew"]).ok();
        assert!(
            held.stdout
                .contains(&format!("myapp: {attempt} renewal(s) failed in a row")),
            "{}",
            held.stdout
        );
        assert!(
            held.stdout.contains("backoff") && !held.stdout.contains("Ordered"),
            "{}",
            held.stdout
        );
        let (path, mut state) = state_of(&world);
        assert_eq!(state["failures"], attempt);
        waits.push(
            state["next-attempt"].as_i64().unwrap() - state["last-failure"].as_i64().unwrap(),
        );
        // The backoff passes (its moment moved into the past).
        state["next-attempt"] = serde_json::json!(0);
        std::fs::write(&path, state.to_string()).unwrap();
    }
    assert!(
        waits[0] >= 3_600 && waits[1] >= 7_200 && waits[2] >= 14_400,
        "no exponential backoff: {waits:?}"
    );
    assert!(waits[1] > waits[0] && waits[2] > waits[1], "{waits:?}");
    assert_eq!(world.leaf().der(), first.der());

    // Metrics while failing: strict format (promtool), expiry and three failures.
    let metrics = world
        .run(&["certs:report", "--format", "prometheus"])
        .ok()
        .stdout;
    promtool_check(&metrics);
    let expiry = format!(
        "dokku_certs_certificate_expiry_timestamp_seconds{{app=\"myapp\"}} {}\n",
        first.not_after
    );
    assert!(metrics.contains(&expiry), "{metrics}");
    assert!(
        metrics.contains("dokku_certs_letsencrypt_renewal_failures{app=\"myapp\"} 3\n"),
        "{metrics}"
    );

    // The CA is back: renewed, the failures are forgotten.
    world.run(&["letsencrypt:set", "myapp", "server"]).ok();
    world.run(&["letsencrypt:auto-renew"]).ok();
    let second = world.leaf();
    assert_ne!(second.der(), first.der());
    assert_eq!(state_of(&world).1["failures"], 0);
    let metrics = world
        .run(&["certs:report", "--format", "prometheus"])
        .ok()
        .stdout;
    promtool_check(&metrics);
    assert!(
        metrics.contains("dokku_certs_letsencrypt_renewal_failures{app=\"myapp\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dokku_certs_letsencrypt_last_renewal_timestamp_seconds{app=\"myapp\"} "),
        "{metrics}"
    );

    let events = std::fs::read_to_string(&events).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(
        lines.len(),
        5,
        "enable, three failures, one renewal:\n{events}"
    );
    assert!(
        lines[0].starts_with(&format!(
            "renewed|myapp|*.notify.example.test|{}|",
            first.not_after
        )),
        "{events}"
    );
    for line in &lines[1..4] {
        assert!(
            line.starts_with("failed|myapp|*.notify.example.test|")
                && line.contains("cannot create the account"),
            "{events}"
        );
    }
    assert_eq!(
        lines[4],
        format!("renewed|myapp|*.notify.example.test|{}|", second.not_after)
    );
}

/// `promtool check metrics` (from Debian's prometheus package, unpacked by make acme-lab) must
/// accept the text without a single complaint.
fn promtool_check(metrics: &str) {
    use std::io::Write;
    let promtool = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| {
        format!(
            "{}/target/promtool/root/usr/bin/promtool",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool: run `make acme-lab`, which unpacks it from Debian's prometheus package");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool: {}{}\n{metrics}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn enable_all_enables_every_app_and_a_second_run_orders_nothing() {
    let world = World::new(&["one.example.test"], &[]);
    world.sandbox.create_app("second", &["two.example.test"]);
    let run = world.run(&["letsencrypt:enable", "--all"]).ok();
    assert_eq!(
        run.stdout.matches("Ordered a certificate").count(),
        2,
        "{}",
        run.stdout
    );
    assert_eq!(
        world.run(&["letsencrypt:active", "second"]).ok().stdout,
        "true\n"
    );
    let again = world.run(&["letsencrypt:enable", "--all"]).ok();
    assert_eq!(
        again.stdout.matches("nothing to do").count(),
        2,
        "{}",
        again.stdout
    );
    assert!(!again.stdout.contains("Ordered"), "{}", again.stdout);
    // A changed setting (the profile) is a reason to order again.
    world
        .run(&["letsencrypt:set", "second", "profile", "tlsserver"])
        .ok();
    let changed = world.run(&["letsencrypt:enable", "--all"]).ok();
    assert_eq!(
        changed.stdout.matches("Ordered a certificate").count(),
        1,
        "{}",
        changed.stdout
    );
    assert!(
        changed
            .stdout
            .contains("Ordered a certificate for two.example.test (profile tlsserver)"),
        "{}",
        changed.stdout
    );
}
