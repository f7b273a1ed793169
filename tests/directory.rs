//! `certs:add <app> DIR`: a directory (an unpacked bundle, certbot's `live/NAME/`) is walked
//! and the certificate, chain and key found by content, with an archive's limits. Links are
//! followed for a local caller, never into where dokku keeps keys, and a command that came
//! over ssh may not name a directory at all. dokku-certs runs as root here, as in the field.

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use common::{Sandbox, cert_ders, first_cert_der, fixture};

const DOMAIN: &str = "myapp.example.com";
const NOT_TOLD: &str = "it does not exist or may not be read by you";

/// A directory under /tmp that every user can reach (a sudo caller's files live there).
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("dokku-certs-dir")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Writes `bytes` at `dir/name`, making the directories on the way; returns the path.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

fn add_dir(sandbox: &Sandbox, app: &str, dir: &Path, env: &[(&str, &str)]) -> common::Run {
    sandbox.run_with(&["certs:add", app, dir.to_str().unwrap()], None, env)
}

/// tls/server.crt is leaf.crt then inter.crt, and nginx serves the leaf for the app's domain.
fn assert_leaf_installed_and_served(sandbox: &Sandbox) {
    let tls = sandbox.app_dir("myapp").join("tls");
    let expected = vec![
        first_cert_der(&fixture("leaf.crt")),
        first_cert_der(&fixture("inter.crt")),
    ];
    assert_eq!(
        cert_ders(&std::fs::read(tls.join("server.crt")).unwrap()),
        expected
    );
    assert_eq!(sandbox.wait_served(DOMAIN, &expected[0]), expected[0]);
}

#[test]
fn nested_and_misnamed_files_are_found_by_content_and_hidden_ones_ignored() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let dir = shared_dir();
    let bundle = dir.path().join("bundle");
    put(&bundle, "deep/down/below/notes.txt", &fixture("leaf.crt"));
    put(&bundle, "ca/intermediate.ca-bundle", &fixture("inter.crt"));
    put(&bundle, "secret/certificate.crt", &fixture("leaf.key"));
    put(
        &bundle,
        "README",
        b"How to install this certificate: ask the web team.\n",
    );
    // Another whole pair in hidden places: read, it would make two pairs and a refusal.
    put(&bundle, ".old/server.crt", &fixture("leaf2.crt"));
    put(&bundle, "keys/.leaf2.key", &fixture("leaf2.key"));
    put(&bundle, "__MACOSX/._leaf2.key", &fixture("leaf2.key"));
    let run = add_dir(&sandbox, "myapp", &bundle, &[]).ok();
    assert!(
        !run.stderr.contains("ignored"),
        "nothing beside the pair was read: {}",
        run.stderr
    );
    assert_leaf_installed_and_served(&sandbox);
    let key = std::fs::read(sandbox.app_dir("myapp").join("tls/server.key")).unwrap();
    assert_eq!(key, fixture("leaf.key"));
}

/// certbot's layout: `live/NAME/*.pem` are relative links into `archive/NAME/*N.pem`, whose
/// private key is readable by root only; `live/` also holds a README.
fn certbot_layout(base: &Path) -> PathBuf {
    let archive = base.join("etc/letsencrypt/archive/myapp.example.com");
    let live = base.join("etc/letsencrypt/live/myapp.example.com");
    let fullchain = [fixture("leaf.crt"), fixture("inter.crt")].concat();
    put(&archive, "cert1.pem", &fixture("leaf.crt"));
    put(&archive, "chain1.pem", &fixture("inter.crt"));
    put(&archive, "fullchain1.pem", &fullchain);
    let key = put(&archive, "privkey1.pem", &fixture("leaf.key"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(&live).unwrap();
    for name in ["cert", "chain", "fullchain", "privkey"] {
        let target = format!("../../archive/myapp.example.com/{name}1.pem");
        symlink(target, live.join(format!("{name}.pem"))).unwrap();
    }
    put(
        &live,
        "README",
        b"This directory contains your keys and certificates.\n",
    );
    live
}

#[test]
fn certbots_live_directory_of_links_into_archive_is_installed_and_served() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let dir = shared_dir();
    let live = certbot_layout(dir.path());
    let run = add_dir(&sandbox, "myapp", &live, &[]).ok();
    assert!(
        run.stdout.contains("Installed the certificate for myapp"),
        "{}",
        run.stdout
    );
    assert_leaf_installed_and_served(&sandbox);
    // The path with a trailing slash, as a shell completes it, is the same directory.
    let with_slash = format!("{}/", live.display());
    sandbox
        .run(&["certs:update", "myapp", &with_slash], None)
        .ok();
}

#[test]
fn a_sudo_caller_gets_certbots_root_only_key_only_if_they_could_read_it() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let dir = shared_dir();
    let live = certbot_layout(dir.path());
    let sudo_nobody = [
        ("SUDO_UID", "65534"),
        ("SUDO_GID", "65534"),
        ("SUDO_USER", "nobody"),
    ];
    let before = sandbox.tree("myapp");
    let run = add_dir(&sandbox, "myapp", &live, &sudo_nobody).refused(NOT_TOLD);
    assert!(
        run.stderr.contains("privkey.pem"),
        "names the file: {}",
        run.stderr
    );
    assert_eq!(sandbox.tree("myapp"), before);
}

#[test]
fn a_link_into_another_apps_keys_refuses_the_directory_and_changes_nothing() {
    let mut sandbox = Sandbox::new();
    sandbox.create_app("victim", &[DOMAIN]);
    sandbox.create_app("evil", &["evil.example.com"]);
    sandbox.start_nginx();
    let dir = shared_dir();
    let own = put(dir.path(), "own/leaf2.crt", &fixture("leaf2.crt"));
    put(dir.path(), "own/leaf2.key", &fixture("leaf2.key"));
    sandbox
        .run(
            &[
                "certs:add",
                "victim",
                own.parent().unwrap().to_str().unwrap(),
            ],
            None,
        )
        .ok();
    let acme = sandbox.root().join(".letsencrypt");
    put(&acme, "accounts/account.key", &fixture("leaf.key"));
    let victim_tls = sandbox.app_dir("victim").join("tls");

    let file_link = dir.path().join("file-link");
    put(&file_link, "server.crt", &fixture("leaf2.crt"));
    symlink(victim_tls.join("server.key"), file_link.join("server.key")).unwrap();
    let dir_link = dir.path().join("dir-link");
    std::fs::create_dir_all(&dir_link).unwrap();
    symlink(&victim_tls, dir_link.join("certs")).unwrap();
    let acme_link = dir.path().join("acme-link");
    put(&acme_link, "server.crt", &fixture("leaf.crt"));
    symlink(acme.join("accounts"), acme_link.join("accounts")).unwrap();
    let cases = [
        ("a link to the victim's server.key", file_link),
        ("a link to the victim's tls directory", dir_link),
        ("a link into DOKKU_ROOT/.letsencrypt", acme_link),
        ("the victim's tls directory itself", victim_tls.clone()),
    ];
    let before = sandbox.tree("evil");
    for (what, dir) in &cases {
        add_dir(&sandbox, "evil", dir, &[]).refused(NOT_TOLD);
        assert_eq!(sandbox.tree("evil"), before, "{what}: the evil app changed");
    }
    sandbox
        .run(&["certs:show", "evil", "key"], None)
        .refused("doesn't have an SSL endpoint");
    assert_eq!(
        sandbox.wait_served(DOMAIN, &first_cert_der(&fixture("leaf2.crt"))),
        first_cert_der(&fixture("leaf2.crt"))
    );
}

#[test]
fn a_command_that_came_over_ssh_may_not_name_a_directory() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let dir = shared_dir();
    let live = certbot_layout(dir.path());
    let over_ssh = common::OVER_SSH;
    let before = sandbox.tree("myapp");
    let pipe_it =
        "file paths name files on the server, not on your machine; pipe the certificate in";
    add_dir(&sandbox, "myapp", &live, &over_ssh).refused(pipe_it);
    add_dir(&sandbox, "myapp", &dir.path().join("missing"), &over_ssh).refused(pipe_it);
    assert_eq!(sandbox.tree("myapp"), before);
}

#[test]
fn a_directory_within_an_archives_limits_or_refused_like_one() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let dir = shared_dir();
    // An entry over 1 MiB is skipped and named when no pair is found.
    let big = dir.path().join("big");
    let mut huge = fixture("leaf.crt");
    huge.resize(2 << 20, b'\n');
    put(&big, "huge.pem", &huge);
    put(&big, "server.key", &fixture("leaf.key"));
    add_dir(&sandbox, "myapp", &big, &[]).refused("huge.pem (skipped: over 1024 KiB)");
    // More entries than an archive may hold.
    let many = dir.path().join("many");
    std::fs::create_dir_all(&many).unwrap();
    for i in 0..10_001 {
        std::fs::write(many.join(format!("{i}.txt")), b"").unwrap();
    }
    add_dir(&sandbox, "myapp", &many, &[]).refused("more than 10000 entries");
    // Nothing usable at all.
    let empty = dir.path().join("empty");
    put(&empty, "notes.txt", b"nothing here\n");
    add_dir(&sandbox, "myapp", &empty, &[]).refused("no certificate found in");
    assert!(!sandbox.app_dir("myapp").join("tls").exists());
}
