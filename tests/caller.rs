//! certs:add with file arguments reads only what the person asking could read themselves:
//! never another app's key, never a path for a command that came over ssh (stdin only),
//! never with root's rights for a sudo caller or a set-user-ID run, and its error never tells
//! whether a path exists. dokku-certs runs as root here; the attacker's steps run as uid
//! 65534 (`setpriv`), so these tests need root, as CI and `make test` on this machine are.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Sandbox, fixture, tar_of};

const DOMAIN: &str = "myapp.example.com";
const NOT_TOLD: &str = "it does not exist or may not be read by you";
const SUDO_NOBODY: [(&str, &str); 3] = [
    ("SUDO_UID", "65534"),
    ("SUDO_GID", "65534"),
    ("SUDO_USER", "nobody"),
];

fn assert_root() {
    let id = Command::new("id").arg("-u").output().expect("run id");
    let uid = String::from_utf8_lossy(&id.stdout).trim().to_string();
    assert_eq!(
        uid, "0",
        "these tests run dokku-certs as root for uid 65534: run them as root"
    );
}

/// Runs `args` as uid and gid 65534 with no other group: an unprivileged user's step.
fn as_nobody(args: &[&str]) {
    let status = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .status()
        .expect("run setpriv (util-linux)");
    assert!(status.success(), "as uid 65534: {args:?} failed");
}

/// A directory in /tmp that every user can reach, and a subdirectory owned by uid 65534.
struct Shared {
    dir: tempfile::TempDir,
}

impl Shared {
    fn new() -> Shared {
        let dir = tempfile::Builder::new()
            .prefix("dokku-certs-caller")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let nobody = dir.path().join("nobody");
        std::fs::create_dir(&nobody).unwrap();
        std::os::unix::fs::chown(&nobody, Some(65534), Some(65534)).unwrap();
        Shared { dir }
    }

    /// Writes a fixture's bytes at `name` (root-owned) with `mode`; returns its path.
    fn file(&self, name: &str, fixture_name: &str, mode: u32) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, fixture(fixture_name)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// A symbolic link made by uid 65534 in its own directory.
    fn link_by_nobody(&self, name: &str, target: &Path) -> PathBuf {
        let link = self.dir.path().join("nobody").join(name);
        as_nobody(&["ln", "-s", target.to_str().unwrap(), link.to_str().unwrap()]);
        link
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn add(sandbox: &Sandbox, app: &str, crt: &Path, key: &Path, env: &[(&str, &str)]) -> common::Run {
    sandbox.run_with(
        &[
            "certs:add",
            app,
            crt.to_str().unwrap(),
            key.to_str().unwrap(),
        ],
        None,
        env,
    )
}

/// The message with the path taken out: equal for every file that may not be read.
fn shape(run: &common::Run, path: &Path) -> String {
    run.stderr.replace(path.to_str().unwrap(), "FILE")
}

#[test]
fn another_apps_key_is_never_imported_through_file_arguments() {
    assert_root();
    let mut sandbox = Sandbox::new();
    sandbox.create_app("victim", &[DOMAIN]);
    sandbox.create_app("evil", &["evil.example.com"]);
    sandbox.start_nginx();
    let shared = Shared::new();
    let (crt, key) = (
        shared.file("leaf.crt", "leaf.crt", 0o644),
        shared.file("leaf.key", "leaf.key", 0o644),
    );
    add(&sandbox, "victim", &crt, &key, &[]).ok();
    let (crt2, key2) = (
        shared.file("leaf2.crt", "leaf2.crt", 0o644),
        shared.file("leaf2.key", "leaf2.key", 0o644),
    );
    add(&sandbox, "victim", &crt2, &key2, &[]).ok(); // the first pair is now in tls.previous/
    let acme = sandbox.root().join(".letsencrypt");
    std::fs::create_dir_all(&acme).unwrap();
    std::fs::write(acme.join("account.key"), fixture("leaf.key")).unwrap();

    let victim = sandbox.app_dir("victim");
    let tls_link = shared.link_by_nobody("tls", &victim.join("tls"));
    let innocent = shared.link_by_nobody("innocent.key", &victim.join("tls/server.key"));
    // (what, CRT, KEY, the file refused): the CRT is read first.
    let cases: Vec<(&str, PathBuf, PathBuf, PathBuf)> = vec![
        (
            "the victim's pair",
            victim.join("tls/server.crt"),
            victim.join("tls/server.key"),
            victim.join("tls/server.crt"),
        ),
        (
            "its previous pair",
            victim.join("tls.previous/server.crt"),
            key.clone(),
            victim.join("tls.previous/server.crt"),
        ),
        (
            "a link made by another user",
            crt2.clone(),
            innocent.clone(),
            innocent,
        ),
        (
            "a linked tls directory",
            crt2.clone(),
            tls_link.join("server.key"),
            tls_link.join("server.key"),
        ),
        (
            "a key under .letsencrypt",
            crt.clone(),
            acme.join("account.key"),
            acme.join("account.key"),
        ),
    ];
    let (missing_crt, missing_key) = (shared.path("missing.crt"), shared.path("missing.key"));
    let like_missing_crt = shape(
        &add(&sandbox, "evil", &missing_crt, &key, &[]).refused(NOT_TOLD),
        &missing_crt,
    );
    let like_missing_key = shape(
        &add(&sandbox, "evil", &crt, &missing_key, &[]).refused(NOT_TOLD),
        &missing_key,
    );
    let before = sandbox.tree("evil");
    for (name, crt_arg, key_arg, refused) in &cases {
        let run = add(&sandbox, "evil", crt_arg, key_arg, &[]).refused(NOT_TOLD);
        let like_missing = if refused == crt_arg {
            &like_missing_crt
        } else {
            &like_missing_key
        };
        assert_eq!(
            &shape(&run, refused),
            like_missing,
            "{name}: refused just like a missing file"
        );
        assert_eq!(sandbox.tree("evil"), before, "{name}: the evil app changed");
    }
    sandbox
        .run(&["certs:show", "evil", "key"], None)
        .refused("doesn't have an SSL endpoint");
    // The admin still imports their own files.
    add(&sandbox, "evil", &crt, &key, &[]).ok();
}

#[test]
fn a_command_that_came_over_ssh_takes_stdin_only() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let shared = Shared::new();
    let (crt, key) = (
        shared.file("leaf.crt", "leaf.crt", 0o644),
        shared.file("leaf.key", "leaf.key", 0o644),
    );
    let over_ssh = common::OVER_SSH;
    // An older sshcommand key line sets NAME only.
    let old_key_line = [
        ("SSH_CONNECTION", "127.0.0.1 40022 127.0.0.1 22"),
        ("NAME", "alice"),
    ];
    let before = sandbox.tree("myapp");
    let pipe_it = "file paths name files on the server, not on your machine; pipe the certificate in: dokku certs:add myapp < cert-key.tar";
    for env in [&over_ssh[..], &old_key_line[..]] {
        add(&sandbox, "myapp", &crt, &key, env).refused(pipe_it);
        add(&sandbox, "myapp", &shared.path("missing.crt"), &key, env).refused(pipe_it);
        assert_eq!(sandbox.tree("myapp"), before);
    }
    let archive = tar_of(
        &[
            ("server.crt", &fixture("leaf.crt")),
            ("server.key", &fixture("leaf.key")),
        ],
        true,
    );
    sandbox
        .run_with(&["certs:add", "myapp"], Some(&archive), &over_ssh)
        .ok();
    assert_eq!(
        std::fs::read(sandbox.app_dir("myapp").join("tls/server.key")).unwrap(),
        fixture("leaf.key")
    );
    // An admin logged in over ssh (no key line of dokku's) runs dokku in a shell: their files are theirs.
    let admin_shell = [
        ("SSH_CONNECTION", "127.0.0.1 40022 127.0.0.1 22"),
        ("SSH_USER", "root"),
        ("SSH_NAME", "default"),
    ];
    let (crt2, key2) = (
        shared.file("leaf2.crt", "leaf2.crt", 0o644),
        shared.file("leaf2.key", "leaf2.key", 0o644),
    );
    add(&sandbox, "myapp", &crt2, &key2, &admin_shell).ok();
}

#[test]
fn a_sudo_caller_reads_only_what_they_could_and_learns_nothing_of_the_rest() {
    assert_root();
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let shared = Shared::new();
    let crt = shared.file("leaf.crt", "leaf.crt", 0o644);
    let secret = shared.file("secret.key", "leaf.key", 0o600);
    let behind_a_closed_dir = shared.file("private/open.key", "leaf.key", 0o644);
    std::fs::set_permissions(
        shared.path("private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let unreadable: Vec<PathBuf> = vec![
        secret.clone(),
        behind_a_closed_dir,
        shared.link_by_nobody("link.key", &secret),
        shared.path("missing.key"),
        PathBuf::from("/etc/shadow"),
    ];
    let before = sandbox.tree("myapp");
    let first = add(&sandbox, "myapp", &crt, &unreadable[0], &SUDO_NOBODY).refused(NOT_TOLD);
    for key in &unreadable {
        let run = add(&sandbox, "myapp", &crt, key, &SUDO_NOBODY).refused(NOT_TOLD);
        assert_eq!(
            shape(&run, key),
            shape(&first, &unreadable[0]),
            "{}: not told apart",
            key.display()
        );
    }
    assert_eq!(sandbox.tree("myapp"), before);
    // What uid 65534 can read goes in; what root alone can read goes in only for root itself.
    let readable = shared.file("readable.key", "leaf.key", 0o644);
    add(&sandbox, "myapp", &crt, &readable, &SUDO_NOBODY).ok();
    let crt2 = shared.file("leaf2.crt", "leaf2.crt", 0o644);
    let secret2 = shared.file("secret2.key", "leaf2.key", 0o600);
    add(&sandbox, "myapp", &crt2, &secret2, &SUDO_NOBODY).refused(NOT_TOLD);
    add(&sandbox, "myapp", &crt2, &secret2, &[]).ok();
}

/// Runs `setuid` (a set-user-ID root copy of the binary) as uid 65534 with the sandbox's
/// environment: effective uid 0, real uid 65534, as a set-user-ID install would run.
fn run_setuid(sandbox: &Sandbox, setuid: &Path, args: &[&str]) -> common::Run {
    let template = sandbox.command(args);
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(setuid)
        .args(args);
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    // nginx is not what this run is about (and would not start with a real uid that cannot write its logs).
    command.env("DOKKU_NGINX_CMD", "true");
    // The copy was just written: a thread of this test binary that forked meanwhile holds
    // the written file open until its child execs, and exec then fails with ETXTBSY.
    for _ in 0..100 {
        let output = command.output().unwrap();
        if !String::from_utf8_lossy(&output.stderr).contains("Text file busy") {
            return common::Run::from(output);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{} stayed busy for 2 s", setuid.display());
}

#[test]
fn a_set_user_id_run_reads_with_the_real_user_s_rights() {
    assert_root();
    let sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    let shared = Shared::new();
    let setuid = shared.path("dokku-certs");
    std::fs::copy(common::binary(), &setuid).unwrap();
    std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let crt = shared.file("leaf.crt", "leaf.crt", 0o644);
    let secret = shared.file("secret.key", "leaf.key", 0o600);
    let before = sandbox.tree("myapp");
    let missing = shared.path("missing.key");
    let add = |key: &Path| {
        run_setuid(
            &sandbox,
            &setuid,
            &[
                "certs:add",
                "myapp",
                crt.to_str().unwrap(),
                key.to_str().unwrap(),
            ],
        )
    };
    let refused = add(&secret).refused(NOT_TOLD);
    assert_eq!(
        shape(&refused, &secret),
        shape(&add(&missing).refused(NOT_TOLD), &missing)
    );
    assert_eq!(sandbox.tree("myapp"), before);
    // The same run reaches the app (root's rights) and reads what uid 65534 may read.
    let readable = shared.file("readable.key", "leaf.key", 0o644);
    add(&readable).ok();
}
