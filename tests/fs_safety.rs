//! Links, races and other users: nothing outside an app directory is ever read, written,
//! chmod-ed or deleted, whatever is planted or swapped inside it, and every file gets its
//! mode set explicitly. Attacker steps run as an unprivileged uid (65534, through setpriv)
//! against a root-run dokku-certs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, Sandbox, Tree, fixture, tar_of};

const DOMAIN: &str = "myapp.example.com";
/// nobody:nogroup on Debian: a local user with no rights of its own.
const NOBODY: u32 = 65534;
/// What the planted links point at: a root-only file, as /etc/shadow would be.
const SECRET: &str = "root:$6$do-not-print-me$:19000:0:99999:7:::\n";

/// A tar holding the pair `n` (1: leaf, 2: leaf2) for certs:add on stdin.
fn pair_tar(n: usize) -> Vec<u8> {
    let (crt, key) = if n == 1 {
        ("leaf.fullchain.crt", "leaf.key")
    } else {
        ("leaf2.crt", "leaf2.key")
    };
    tar_of(
        &[("server.crt", &fixture(crt)), ("server.key", &fixture(key))],
        false,
    )
}

/// An outside directory with a root-only secret in it, and a snapshot to compare with.
fn outside(sandbox: &Sandbox) -> (PathBuf, Tree) {
    let dir = sandbox.dir.path().join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.join("shadow");
    std::fs::write(&secret, SECRET).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let snapshot = Tree::of(&dir);
    (dir, snapshot)
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
}

fn assert_never_printed(run: &Run) {
    assert!(
        !run.stdout.contains("do-not-print-me"),
        "the secret was printed:\n{}",
        run.stdout
    );
    assert!(
        !run.stderr.contains("do-not-print-me"),
        "the secret was quoted:\n{}",
        run.stderr
    );
}

/// The refusal names the link: ` !     <path> is a symbolic link; ...`.
fn refused_as_link(run: Run, link: &Path) -> Run {
    assert_never_printed(&run);
    run.refused(&format!("{} is a symbolic link", link.display()))
}

/// Lets uid 65534 reach DOKKU_ROOT (a sandbox is 0700, root's).
fn open_to_nobody(sandbox: &Sandbox) {
    for dir in [sandbox.dir.path().to_path_buf(), sandbox.root()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The binary as uid 65534, with the sandbox's environment.
fn as_nobody(sandbox: &Sandbox, args: &[&str]) -> Command {
    let template = sandbox.command(args);
    let mut command = Command::new("setpriv");
    command.args([
        "--reuid",
        &NOBODY.to_string(),
        "--regid",
        &NOBODY.to_string(),
        "--clear-groups",
    ]);
    command
        .arg(template.get_program())
        .args(template.get_args());
    for (name, value) in template.get_envs() {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    command
}

fn run_as_nobody(sandbox: &Sandbox, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = as_nobody(sandbox, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run setpriv (util-linux)");
    let mut pipe = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    std::thread::spawn(move || std::io::Write::write_all(&mut pipe, &bytes));
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// An app that root gave a certificate twice (root-owned tls/ and tls.previous/), in a
/// DOKKU_ROOT uid 65534 can reach.
fn app_installed_twice_by_root() -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    open_to_nobody(&sandbox);
    sandbox
        .run(&["certs:add", "myapp"], Some(&pair_tar(1)))
        .ok();
    sandbox
        .run(&["certs:add", "myapp"], Some(&pair_tar(2)))
        .ok();
    let app = sandbox.app_dir("myapp");
    (sandbox, app)
}

/// Runs the binary under umask 000 with the sandbox's environment and `env`; it must succeed.
fn run_under_umask_000(sandbox: &Sandbox, args: &[&str], env: &[(String, String)]) {
    let mut line = format!("umask 000; exec '{}'", common::binary().display());
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let template = sandbox.command(&[]);
    let mut command = Command::new("sh");
    command.arg("-c").arg(line);
    for (name, value) in template.get_envs() {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let output = command.stdin(Stdio::null()).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn chown_tree(path: &Path, uid: u32) {
    for entry in walkdir::WalkDir::new(path) {
        std::os::unix::fs::lchown(entry.unwrap().path(), Some(uid), Some(uid)).unwrap();
    }
}

#[test]
fn links_planted_in_an_app_are_refused_never_read_through() {
    let sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    let (out, before) = outside(&sandbox);
    let app = sandbox.app_dir("myapp");
    sandbox
        .run(&["certs:add", "myapp"], Some(&pair_tar(1)))
        .ok();

    // tls/server.key linked to a root-only file: certs:show must not print it.
    let key = app.join("tls/server.key");
    std::fs::rename(&key, app.join("key.bak")).unwrap();
    symlink(&out.join("shadow"), &key);
    refused_as_link(sandbox.run(&["certs:show", "myapp", "key"], None), &key);
    // dokku's certs-get trigger prints the key the same way.
    refused_as_link(
        sandbox.run(&["trigger", "certs-get", "myapp", "key"], None),
        &key,
    );
    std::fs::remove_file(&key).unwrap();

    // A hard link to the secret (possible where protected_hardlinks is off, and for root):
    // refused too, since the file has another name outside.
    std::fs::hard_link(out.join("shadow"), &key).unwrap();
    let run = sandbox.run(&["certs:show", "myapp", "key"], None);
    assert_never_printed(&run);
    run.refused(&format!("{} is a hard link", key.display()));
    std::fs::remove_file(&key).unwrap();
    std::fs::rename(app.join("key.bak"), &key).unwrap();

    // server.crt linked: info and report say so, quoting nothing of the target.
    let crt = app.join("tls/server.crt");
    std::fs::rename(&crt, app.join("crt.bak")).unwrap();
    symlink(&out.join("shadow"), &crt);
    refused_as_link(sandbox.run(&["certs:info", "myapp"], None), &crt);
    let report = sandbox.run(&["certs:report", "myapp"], None);
    assert_never_printed(&report);
    assert!(
        report.stdout.contains("is a symbolic link"),
        "{}",
        report.stdout
    );
    std::fs::remove_file(&crt).unwrap();
    std::fs::rename(app.join("crt.bak"), &crt).unwrap();

    // tls/ itself linked to the outside directory.
    std::fs::write(out.join("server.key"), SECRET).unwrap();
    std::fs::write(out.join("server.crt"), SECRET).unwrap();
    let before_with_pair = Tree::of(&out);
    std::fs::rename(app.join("tls"), app.join("tls.real")).unwrap();
    symlink(&out, &app.join("tls"));
    refused_as_link(
        sandbox.run(&["certs:show", "myapp", "key"], None),
        &app.join("tls"),
    );
    refused_as_link(
        sandbox.run(&["certs:add", "myapp"], Some(&pair_tar(2))),
        &app.join("tls"),
    );
    refused_as_link(
        sandbox.run(&["certs:remove", "myapp"], None),
        &app.join("tls"),
    );
    assert_eq!(
        Tree::of(&out),
        before_with_pair,
        "something outside the app changed"
    );
    std::fs::remove_file(app.join("tls")).unwrap();
    std::fs::rename(app.join("tls.real"), app.join("tls")).unwrap();
    std::fs::remove_file(out.join("server.key")).unwrap();
    std::fs::remove_file(out.join("server.crt")).unwrap();

    // VHOST and LISTENERS linked to the secret: refused, and no line of it is quoted.
    for name in ["VHOST", "LISTENERS"] {
        let path = app.join(name);
        std::fs::rename(&path, app.join("bak")).unwrap();
        symlink(&out.join("shadow"), &path);
        refused_as_link(
            sandbox.run(&["certs:add", "myapp"], Some(&pair_tar(2))),
            &path,
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(app.join("bak"), &path).unwrap();
    }
    assert_eq!(Tree::of(&out), before, "something outside the app changed");
}

#[test]
fn a_linked_nginx_conf_is_refused_up_front_and_stays_a_link() {
    let sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    let (out, _) = outside(&sandbox);
    let app = sandbox.app_dir("myapp");
    std::fs::write(out.join("site.conf"), "# an nginx.conf kept elsewhere\n").unwrap();
    let before = Tree::of(&out);
    symlink(&out.join("site.conf"), &app.join("nginx.conf"));
    // A broken nginx.conf.d file makes nginx -t fail: the old roll back turned the link into a copy.
    std::fs::create_dir(app.join("nginx.conf.d")).unwrap();
    std::fs::write(
        app.join("nginx.conf.d/broken.conf"),
        "this is not nginx syntax\n",
    )
    .unwrap();
    let tree = sandbox.tree("myapp");
    refused_as_link(
        sandbox.run(&["certs:add", "myapp"], Some(&pair_tar(1))),
        &app.join("nginx.conf"),
    );
    assert!(
        std::fs::symlink_metadata(app.join("nginx.conf"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(sandbox.tree("myapp"), tree, "the app dir changed");
    assert_eq!(Tree::of(&out), before, "the link's target changed");
}

#[test]
fn a_linked_letsencrypt_dir_is_refused_and_its_target_left_alone() {
    let sandbox = Sandbox::new();
    let (out, before) = outside(&sandbox);
    let link = sandbox.root().join(".letsencrypt");
    symlink(&out, &link);
    refused_as_link(
        sandbox.run(
            &["letsencrypt:set", "--global", "email", "ops@example.com"],
            None,
        ),
        &link,
    );
    assert_eq!(
        Tree::of(&out),
        before,
        "the link's target was written or chmod-ed"
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "the link's target was chmod-ed");
}

/// letsencrypt:enable and auto-renew with acme-challenge/ planted as a link: refused before
/// the CA is contacted (the configured CA does not even exist, so reaching it would fail
/// differently), and the target is neither written nor deleted. A link planted inside a real
/// acme-challenge/ is unlinked with the other leftovers, never followed.
#[test]
fn enable_and_auto_renew_refuse_a_linked_challenge_location() {
    let mut sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    sandbox.start_nginx();
    let (out, _) = outside(&sandbox);
    std::fs::write(out.join("token"), "# root's own file\n").unwrap();
    let before = Tree::of(&out);
    let app = sandbox.app_dir("myapp");
    let nowhere = format!("https://127.0.0.1:{}/dir", common::free_port());
    sandbox
        .run(
            &["letsencrypt:set", "--global", "email", "ops@example.com"],
            None,
        )
        .ok();
    sandbox
        .run(&["letsencrypt:set", "--global", "server", &nowhere], None)
        .ok();
    sandbox
        .run(
            &["letsencrypt:set", "myapp", "graceperiod", "999999999"],
            None,
        )
        .ok();
    // A certificate "from us" (the marker), due for renewal under that grace period.
    sandbox.run(&["certs:generate", "myapp", DOMAIN], None).ok();
    let marker = serde_json::json!({"server": nowhere, "email": "ops@example.com"}).to_string();
    std::fs::write(app.join("tls/letsencrypt.json"), marker).unwrap();

    let challenge = app.join("acme-challenge");
    symlink(&out, &challenge);
    refused_as_link(
        sandbox.run(&["letsencrypt:enable", "myapp"], None),
        &challenge,
    );
    let renew = sandbox.run(&["letsencrypt:auto-renew", "myapp"], None);
    assert_ne!(renew.code, 0);
    assert!(
        renew
            .stderr
            .contains(&format!("{} is a symbolic link", challenge.display())),
        "{}",
        renew.stderr
    );
    assert_eq!(
        Tree::of(&out),
        before,
        "the target of acme-challenge changed"
    );
    assert!(
        std::fs::symlink_metadata(&challenge)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was deleted"
    );

    std::fs::remove_file(&challenge).unwrap();
    std::fs::create_dir(&challenge).unwrap();
    let token = challenge.join("token");
    symlink(&out.join("token"), &token);
    let enable = sandbox.run(&["letsencrypt:enable", "myapp"], None);
    assert_ne!(enable.code, 0);
    assert!(
        enable.stderr.contains("cannot create the account"),
        "{}",
        enable.stderr
    );
    assert_eq!(
        Tree::of(&out),
        before,
        "the target of a link in acme-challenge changed"
    );
    assert!(
        std::fs::symlink_metadata(&token).is_err(),
        "the planted link is a leftover: unlinked"
    );
}

/// The owner of an app directory swaps .tls.staging, tls, tls.previous and nginx.conf.d for
/// links to a directory of theirs while root runs certs:add (and certs:remove) in a loop: whatever the timing,
/// root never writes, chmods or deletes anything there.
#[test]
fn the_app_dir_owner_racing_root_cannot_make_it_write_outside() {
    let (sandbox, app) = app_installed_twice_by_root();
    chown_tree(&app, NOBODY);
    // The attacker's own directory, where a confused root would land files.
    let out = sandbox.dir.path().join("outside");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("mine"), "the attacker's file\n").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown_tree(&out, NOBODY);
    let before = Tree::of(&out);

    // perl is part of every Debian system (perl-base is essential): a tight rename/symlink loop.
    let racer = r#"
        my ($out, $stop) = @ARGV; my $n = 0;
        my @names = ("tls", "tls.previous", "nginx.conf.d");
        while (!-e $stop) {
            $n++;
            # The staging dir is swapped for a link the moment it appears: root is then
            # between making it and writing the pair into it.
            if (-d ".tls.staging" && !-l ".tls.staging") {
                rename ".tls.staging", ".junk-staging-$n"; symlink $out, ".tls.staging";
            }
            # Now and then the others: a link goes and what it replaced comes back (so root
            # gets far enough to write), or something real is swapped for a link.
            next if rand() > 0.01;
            my $name = $names[$n % 3];
            if (-l $name) { unlink $name; rename ".junk-$name", $name; }
            elsif (-e $name) { rename $name, ".junk-$name"; symlink $out, $name; }
        }
    "#;
    let stop = sandbox.dir.path().join("stop-racing");
    let mut attacker = Command::new("setpriv")
        .args([
            "--reuid",
            &NOBODY.to_string(),
            "--regid",
            &NOBODY.to_string(),
            "--clear-groups",
        ])
        .args([
            "perl",
            "-e",
            racer,
            out.to_str().unwrap(),
            stop.to_str().unwrap(),
        ])
        .current_dir(&app)
        .spawn()
        .expect("run perl as nobody");

    let started = Instant::now();
    let (mut runs, mut succeeded) = (0, 0);
    while runs < 200 && started.elapsed() < Duration::from_secs(20) {
        // Mostly certs:add; every third run a certs:remove, so that tls/ also goes away
        // through tls.previous/ while the attacker swaps it.
        let run = if runs % 3 == 2 {
            sandbox.run(&["certs:remove", "myapp"], None)
        } else {
            sandbox.run(&["certs:add", "myapp"], Some(&pair_tar(1 + runs % 2)))
        };
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        succeeded += usize::from(run.code == 0);
        runs += 1;
    }
    std::fs::write(&stop, "").unwrap();
    attacker.wait().unwrap();
    assert_eq!(
        Tree::of(&out),
        before,
        "after {runs} runs, something outside the app dir changed"
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755, "the outside directory was chmod-ed");
    eprintln!("{runs} runs raced, {succeeded} succeeded");
    assert!(runs >= 20, "only {runs} runs in 20 s");
}

/// After root installed certificates (root-owned tls/, tls.previous/), the app dir's owner
/// runs certs:add: it lands and says what it could not clean up and how, or it fails and
/// nothing changed. A leftover never blocks the next command.
#[test]
fn root_then_the_owner_never_claims_nothing_changed_when_it_did() {
    let (sandbox, app) = app_installed_twice_by_root();
    // nginx -t runs as the owner too: the logs and temp paths root's runs made must be writable for it.
    for sub in ["nginx", "logs"] {
        for entry in walkdir::WalkDir::new(sandbox.dir.path().join(sub)) {
            std::fs::set_permissions(
                entry.unwrap().path(),
                std::fs::Permissions::from_mode(0o777),
            )
            .unwrap();
        }
    }
    std::os::unix::fs::chown(&app, Some(NOBODY), Some(NOBODY)).unwrap();
    for file in ["VHOST", "LISTENERS"] {
        std::os::unix::fs::chown(app.join(file), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let crt = || std::fs::read_to_string(app.join("tls/server.crt")).unwrap();
    for round in 0..2 {
        let (installed, conf) = (crt(), std::fs::read(app.join("nginx.conf")).unwrap());
        let run = run_as_nobody(&sandbox, &["certs:add", "myapp"], &pair_tar(1 + round % 2));
        if run.code == 0 {
            assert!(
                crt() != installed,
                "round {round}: success claimed, but tls/ holds the old pair"
            );
        } else {
            assert!(
                crt() == installed,
                "round {round}: {} while tls/ changed",
                run.stderr.trim()
            );
            assert!(
                std::fs::read(app.join("nginx.conf")).unwrap() == conf,
                "round {round}: nginx.conf changed"
            );
        }
        assert_eq!(
            run.code, 0,
            "round {round}: the owner's certs:add failed: {}",
            run.stderr
        );
        if round == 0 {
            // The old root-owned tls.previous cannot be removed by the owner: said, with the fix.
            assert!(
                run.stderr.contains("rm -rf"),
                "no fix given for the root-owned leftover:\n{}",
                run.stderr
            );
        }
    }

    // A root-owned .tls.staging left by a killed root run does not block the owner either.
    std::fs::create_dir(app.join(".tls.staging")).unwrap();
    std::fs::write(app.join(".tls.staging/server.key"), "half a key").unwrap();
    std::fs::set_permissions(
        app.join(".tls.staging"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    let run = run_as_nobody(&sandbox, &["certs:remove", "myapp"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(".tls.staging") && run.stderr.contains("rm -rf"),
        "{}",
        run.stderr
    );
    assert!(!app.join("tls").exists());
    assert!(
        !app.join(".tls.staging").exists(),
        "the leftover still blocks the staging name"
    );
}

/// Under umask 000 every file and directory dokku-certs writes still gets its own mode.
#[test]
fn modes_are_set_explicitly_whatever_the_umask() {
    let sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    let under_umask_000 = |args: &[&str]| run_under_umask_000(&sandbox, args, &[]);
    under_umask_000(&["certs:generate", "myapp", DOMAIN]);
    under_umask_000(&["certs:generate", "myapp", DOMAIN]); // already defined: nothing new
    under_umask_000(&["letsencrypt:set", "--global", "email", "ops@example.com"]);
    under_umask_000(&["letsencrypt:set", "myapp", "graceperiod", "86400"]);
    let mode = |path: &str| {
        std::fs::metadata(sandbox.root().join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("myapp/tls"), 0o750);
    for file in ["server.crt", "server.key", "server.csr"] {
        assert_eq!(mode(&format!("myapp/tls/{file}")), 0o640, "{file}");
    }
    assert_eq!(mode("myapp/nginx.conf"), 0o644);
    assert_eq!(mode(".letsencrypt"), 0o700);
    assert_eq!(mode(".letsencrypt/settings.json"), 0o600);
}

/// Twenty letsencrypt:set calls at once, each for another app: every one is kept.
#[test]
fn concurrent_letsencrypt_set_calls_all_land() {
    let sandbox = Sandbox::new();
    let apps: Vec<String> = (0..20).map(|i| format!("app{i}")).collect();
    for app in &apps {
        sandbox.create_app(app, &[]);
    }
    let children: Vec<_> = apps
        .iter()
        .map(|app| {
            let email = format!("{app}@example.com");
            let mut command = sandbox.command(&["letsencrypt:set", app, "email", &email]);
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = std::fs::read_to_string(sandbox.root().join(".letsencrypt/settings.json")).unwrap();
    let table: serde_json::Value = serde_json::from_str(&text).unwrap();
    for app in &apps {
        assert_eq!(
            table[app]["email"],
            format!("{app}@example.com"),
            "{app}'s email was lost:\n{text}"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.root().join(".letsencrypt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "settings.json")
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

/// letsencrypt:enable under umask 000: acme-challenge/ and the answers in it are 0755 and
/// 0644 while the CA validates (seen by a thread watching the directory), and the
/// certificate lands with tls/'s modes.
#[test]
fn the_challenge_file_has_its_mode_while_the_ca_validates_under_umask_000() {
    let mut sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    sandbox.start_nginx();
    let pebble = common::pebble::Pebble::start(&sandbox);
    let challenge = sandbox.app_dir("myapp").join("acme-challenge");
    let env: Vec<(String, String)> = pebble
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let run = |args: &[&str]| run_under_umask_000(&sandbox, args, &env);
    run(&["letsencrypt:set", "--global", "email", "ops@example.com"]);
    run(&["letsencrypt:set", "--global", "server", &pebble.directory]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, challenge) = (stop.clone(), challenge.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            let mode = |path: &Path| {
                std::fs::symlink_metadata(path).map(|m| m.permissions().mode() & 0o7777)
            };
            // Bounded: two minutes at most.
            for _ in 0..120_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if let (Ok(dir_mode), Ok(entries)) =
                    (mode(&challenge), std::fs::read_dir(&challenge))
                {
                    let mut answers = 0;
                    for entry in entries.flatten() {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        // Written under a temporary name first (0600 until its fchmod): only
                        // what nginx may serve counts.
                        if !name.starts_with('.')
                            && let Ok(file_mode) = mode(&entry.path())
                        {
                            seen.insert(("answer".to_string(), file_mode));
                            answers += 1;
                        }
                    }
                    // The directory is made 0700 and opened to 0755 before any answer is in
                    // it: its mode counts while nginx may be asked for an answer.
                    if answers > 0 && mode(&challenge).is_ok_and(|now| now == dir_mode) {
                        seen.insert(("acme-challenge/".to_string(), dir_mode));
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            seen
        })
    };
    run(&["letsencrypt:enable", "myapp"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    let expected: std::collections::BTreeSet<_> = [
        ("acme-challenge/".to_string(), 0o755),
        ("answer".to_string(), 0o644),
    ]
    .into();
    assert_eq!(seen, expected, "modes seen while the CA validates");
    assert!(!challenge.exists(), "acme-challenge/ was left behind");
    let mode = |path: &str| {
        std::fs::metadata(sandbox.root().join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("myapp/tls"), 0o750);
    assert_eq!(mode("myapp/tls/server.key"), 0o640);
    assert_eq!(mode(".letsencrypt/accounts"), 0o700);
    let account = std::fs::read_dir(sandbox.root().join(".letsencrypt/accounts"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        account.metadata().unwrap().permissions().mode() & 0o7777,
        0o600
    );
}
