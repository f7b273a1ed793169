//! How often letsencrypt:* reloads nginx, against a real Pebble and a real nginx: the HTTP-01
//! challenge is answered from files under a location nginx.conf always has, so an enable
//! reloads nginx once, to serve the new certificate, not also to add and remove the challenge.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::pebble::World;

/// Watches the sandbox nginx master's children while a command runs. With
/// `worker_processes 1`, every reload starts exactly one new worker, which lives at least
/// until the next reload (and while it shuts down): the new pids seen count the reloads.
struct Reloads {
    stop: Arc<AtomicBool>,
    watcher: JoinHandle<BTreeSet<u32>>,
    before: BTreeSet<u32>,
}

impl Reloads {
    fn watch(world: &World) -> Reloads {
        let pid_file = world.sandbox.dir.path().join("nginx/nginx.pid");
        let master: u32 = std::fs::read_to_string(pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let children = PathBuf::from(format!("/proc/{master}/task/{master}/children"));
        let read = move || -> BTreeSet<u32> {
            std::fs::read_to_string(&children)
                .unwrap()
                .split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect()
        };
        // Old workers still shutting down count as before: only new pids are reloads.
        let before = read();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let watcher = std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            // Bounded: a test that forgets to stop it ends after two minutes anyway.
            for _ in 0..120_000 {
                seen.extend(read());
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            seen
        });
        Reloads {
            stop,
            watcher,
            before,
        }
    }

    /// How many reloads happened since [`Reloads::watch`] (new workers, the last ones included).
    fn count(self) -> usize {
        // A new worker exists once the master took the change; dokku-certs waits for that.
        std::thread::sleep(Duration::from_millis(20));
        self.stop.store(true, Ordering::Relaxed);
        let seen = self.watcher.join().unwrap();
        seen.difference(&self.before).count()
    }
}

/// Makes `apps`' nginx.conf look as an older dokku-certs rendered it (no challenge location)
/// and has nginx serve that, its old workers gone.
fn strip_challenge_location(world: &World, apps: &[String]) {
    for app in apps {
        let path = world.sandbox.app_dir(app).join("nginx.conf");
        let conf = std::fs::read_to_string(&path).unwrap();
        let start = conf
            .find("  location ~ \"^/\\.well-known/acme-challenge/")
            .expect("the location is rendered");
        let end = start + conf[start..].find("  }\n").unwrap() + 4;
        std::fs::write(&path, format!("{}{}", &conf[..start], &conf[end..])).unwrap();
    }
    let pid = std::fs::read_to_string(world.sandbox.dir.path().join("nginx/nginx.pid")).unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", pid.trim()])
        .status()
        .unwrap();
    // The old workers (with the location) must be gone before the command starts.
    let served = || {
        world
            .sandbox
            .http_get(&domain(&apps[0]), "/.well-known/acme-challenge/x")
            .0
    };
    assert!(common::wait_until(|| served() != 404));
}

fn challenge_dir(world: &World) -> PathBuf {
    world.sandbox.app_dir("myapp").join("acme-challenge")
}

#[test]
fn enable_answers_the_challenge_without_reloading_nginx() {
    let world = World::new(&["myapp.example.com", "www.myapp.example.com"]);
    // nginx.conf with the challenge location, and a certificate not from Pebble: Pebble may
    // reuse an authorization it validated before, and then nothing would be answered.
    world
        .sandbox
        .run(&["certs:generate", "myapp", "myapp.example.com"], None)
        .ok();
    let first = world.installed_leaf();

    let reloads = Reloads::watch(&world);
    let run = world.run(&["letsencrypt:enable", "myapp"]).ok();
    assert_eq!(
        reloads.count(),
        1,
        "only the new certificate needs a reload:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Answering the HTTP-01 challenges from acme-challenge/"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("rendered it again"), "{}", run.stdout);

    let leaf = world.installed_leaf();
    assert_ne!(leaf, first, "no new certificate");
    for domain in ["myapp.example.com", "www.myapp.example.com"] {
        assert_eq!(world.sandbox.wait_served(domain, &leaf), leaf, "{domain}");
    }
    // The answers are gone, and nothing else is served from that location.
    assert!(
        !challenge_dir(&world).exists(),
        "acme-challenge/ was left behind"
    );
    assert!(!world.challenge_conf_exists());
    let (status, _) = world
        .sandbox
        .http_get("myapp.example.com", "/.well-known/acme-challenge/VHOST");
    assert_eq!(status, 404);
    let (status, _) = world.sandbox.http_get(
        "myapp.example.com",
        "/.well-known/acme-challenge/..%2fVHOST",
    );
    assert_ne!(status, 200);
}

#[test]
fn an_nginx_conf_from_before_the_challenge_location_is_rendered_again_with_one_reload() {
    let world = World::new(&["myapp.example.com"]);
    world.run(&["letsencrypt:enable", "myapp"]).ok();
    // An nginx.conf as an older dokku-certs rendered it: no challenge location.
    strip_challenge_location(&world, &["myapp".to_string()]);
    let conf_path = world.sandbox.app_dir("myapp").join("nginx.conf");

    let reloads = Reloads::watch(&world);
    let run = world.run(&["letsencrypt:enable", "myapp", "--force"]).ok();
    assert!(
        run.stdout
            .contains("rendered it again (nginx reloaded once)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        reloads.count(),
        2,
        "one reload for the location, one for the certificate:\n{}",
        run.stdout
    );
    assert!(
        std::fs::read_to_string(&conf_path)
            .unwrap()
            .contains("/acme-challenge/$1;")
    );
    let leaf = world.installed_leaf();
    assert_eq!(world.sandbox.wait_served("myapp.example.com", &leaf), leaf);
}

#[test]
fn a_failed_validation_leaves_no_answers_and_the_old_certificate() {
    let world = World::new(&["myapp.example.com"]);
    // Not from Pebble: it may reuse an authorization it validated before (its default).
    world
        .sandbox
        .run(&["certs:generate", "myapp", "myapp.example.com"], None)
        .ok();
    let before = world.installed_leaf();
    // The CA looks for the answer where nothing listens (loopback, another address).
    world.pebble.set_address("myapp.example.com", "127.0.0.9");
    let reloads = Reloads::watch(&world);
    let run = world.run(&["letsencrypt:enable", "myapp", "--force"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("connection"), "{}", run.stderr);
    assert_eq!(
        reloads.count(),
        0,
        "nothing changed for nginx:\n{}",
        run.stdout
    );
    assert!(
        !challenge_dir(&world).exists(),
        "acme-challenge/ was left behind"
    );
    assert_eq!(world.installed_leaf(), before);
    assert_eq!(
        world.sandbox.wait_served("myapp.example.com", &before),
        before
    );
}

/// A world with myapp and `more` apps (appN.example.com), each with a certificate from
/// Pebble, so their nginx.conf already has the challenge location.
fn world_with_apps(more: usize) -> (World, Vec<String>) {
    let world = World::new(&["myapp.example.com"]);
    let mut apps = vec!["myapp".to_string()];
    for n in 2..=more + 1 {
        let app = format!("app{n}");
        world
            .sandbox
            .create_app(&app, &[&format!("{app}.example.com")]);
        apps.push(app);
    }
    world.run(&["letsencrypt:enable", "--all"]).ok();
    (world, apps)
}

fn domain(app: &str) -> String {
    format!("{app}.example.com")
}

/// Every app but `failed` has a new certificate, and nginx serves each app's own.
fn assert_renewed_except(world: &World, apps: &[String], before: &[Vec<u8>], failed: Option<&str>) {
    for (app, old) in apps.iter().zip(before) {
        let leaf = world.leaf_of(app);
        if Some(app.as_str()) == failed {
            assert_eq!(&leaf, old, "{app} keeps its certificate");
        } else {
            assert_ne!(&leaf, old, "{app} has no new certificate");
        }
        assert_eq!(
            world.sandbox.wait_served(&domain(app), &leaf),
            leaf,
            "{app}"
        );
        assert!(
            !world.sandbox.app_dir(app).join("acme-challenge").exists(),
            "{app}: answers left behind"
        );
    }
}

#[test]
fn enable_all_orders_every_app_and_reloads_nginx_once() {
    let (world, apps) = world_with_apps(4);
    let before: Vec<Vec<u8>> = apps.iter().map(|app| world.leaf_of(app)).collect();

    let reloads = Reloads::watch(&world);
    let run = world.run(&["letsencrypt:enable", "--all", "--force"]).ok();
    assert_eq!(
        reloads.count(),
        1,
        "one reload for five new certificates:\n{}",
        run.stdout
    );
    assert_renewed_except(&world, &apps, &before, None);
    for app in &apps {
        assert!(
            run.stdout
                .contains(&format!("{app}: certificate installed")),
            "{app}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn one_failing_app_stops_no_other_and_is_named() {
    let (world, mut apps) = world_with_apps(3);
    // A new app, never validated (Pebble may reuse an earlier authorization), for which
    // the CA looks where nothing listens.
    world.sandbox.create_app("app5", &[&domain("app5")]);
    world
        .sandbox
        .run(&["certs:generate", "app5", &domain("app5")], None)
        .ok();
    world.pebble.set_address(&domain("app5"), "127.0.0.9");
    apps.push("app5".into());
    let before: Vec<Vec<u8>> = apps.iter().map(|app| world.leaf_of(app)).collect();

    let reloads = Reloads::watch(&world);
    let run = world.run(&["letsencrypt:enable", "--all", "--force"]);
    assert_eq!(reloads.count(), 1, "{}", run.stdout);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("letsencrypt:enable failed for app5;"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with(" !     app5: ") && l.contains("connection")),
        "{}",
        run.stderr
    );
    assert_renewed_except(&world, &apps, &before, Some("app5"));
}

#[test]
fn auto_renew_renews_every_due_app_with_one_reload() {
    let (world, apps) = world_with_apps(3);
    let before: Vec<Vec<u8>> = apps.iter().map(|app| world.leaf_of(app)).collect();
    // Every certificate is inside this grace period: all are due.
    world
        .run(&["letsencrypt:set", "--global", "graceperiod", "999999999"])
        .ok();

    let reloads = Reloads::watch(&world);
    let run = world.run(&["letsencrypt:auto-renew"]).ok();
    assert_eq!(reloads.count(), 1, "{}", run.stdout);
    for app in &apps {
        assert!(
            run.stdout.contains(&format!("{app}: renewing")),
            "{app}:\n{}",
            run.stdout
        );
        assert!(
            run.stdout.contains(&format!("{app}: renewed")),
            "{app}:\n{}",
            run.stdout
        );
    }
    assert_renewed_except(&world, &apps, &before, None);
}

#[test]
fn a_reload_the_master_refuses_puts_every_staged_app_back() {
    let (world, apps) = world_with_apps(2);
    let before: Vec<Vec<u8>> = apps.iter().map(|app| world.leaf_of(app)).collect();
    let trees: Vec<_> = apps.iter().map(|app| world.sandbox.tree(app)).collect();
    // Another app broken by hand since the last reload: each app's own test passes, the
    // master's reload of the whole configuration does not.
    world
        .sandbox
        .create_app("bystander", &["bystander.example.com"]);
    world
        .sandbox
        .run(
            &["certs:generate", "bystander", "bystander.example.com"],
            None,
        )
        .ok();
    let conf_d = world.sandbox.app_dir("bystander").join("nginx.conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::write(conf_d.join("broken.conf"), "this is not nginx;\n").unwrap();
    world
        .run(&["letsencrypt:set", "--global", "graceperiod", "999999999"])
        .ok();

    let run = world.run(&["letsencrypt:auto-renew"]);
    assert_eq!(run.code, 1, "{run:?}");
    for app in &apps {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with(&format!(" !     {app}: nginx refused to reload"))),
            "{app}:\n{}",
            run.stderr
        );
    }
    for ((app, old), tree) in apps.iter().zip(&before).zip(&trees) {
        assert_eq!(&world.leaf_of(app), old, "{app}");
        assert_eq!(&world.sandbox.tree(app), tree, "{app}: every entry back");
        assert_eq!(
            world.sandbox.wait_served(&domain(app), old),
            *old,
            "{app} still serves the old certificate"
        );
    }
}

#[test]
fn apps_whose_nginx_conf_predates_the_location_get_it_with_one_reload_for_all() {
    let (world, apps) = world_with_apps(3);
    let before: Vec<Vec<u8>> = apps.iter().map(|app| world.leaf_of(app)).collect();
    // nginx.conf as an older dokku-certs rendered it, for every app: no challenge location.
    strip_challenge_location(&world, &apps);

    let reloads = Reloads::watch(&world);
    let run = world.run(&["letsencrypt:enable", "--all", "--force"]).ok();
    assert!(
        run.stdout
            .contains("4 app(s) had no ACME challenge location"),
        "{}",
        run.stdout
    );
    assert_eq!(
        reloads.count(),
        2,
        "one reload for the locations, one for the certificates:\n{}",
        run.stdout
    );
    assert_renewed_except(&world, &apps, &before, None);
}
