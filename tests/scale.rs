//! Issue 12 at a small scale: 50 apps, each with its own certificate, behind a real nginx
//! set up as the host recipe. A change tests only the changed app's configuration (in the
//! host's own http{} context) and reloads the master by its pid; these tests show that the
//! guarantees of a full `nginx -t` + reload still hold where they matter: a broken file in
//! the changed app is refused, every other app keeps being served, and a master that refuses
//! what the one-app test let through is noticed and the change rolled back.

mod common;

use common::{Sandbox, first_cert_der};

const APPS: usize = 50;
const CHANGED: &str = "app07";

fn name(i: usize) -> String {
    format!("app{i:02}")
}

fn domain(app: &str) -> String {
    format!("{app}.example.com")
}

/// 50 apps with a certificate each (certs:generate, so all differ), nginx running.
fn fifty_apps() -> Sandbox {
    let mut sandbox = Sandbox::with_policy();
    for i in 0..APPS {
        let app = name(i);
        sandbox.create_app(&app, &[&domain(&app)]);
        // nginx is not running yet: the certificates go in place without it.
        sandbox
            .run_with(
                &["certs:generate", &app, &domain(&app)],
                None,
                &[("DOKKU_NGINX_CMD", "true")],
            )
            .ok();
    }
    sandbox.start_nginx();
    for i in 0..APPS {
        let app = name(i);
        let installed = installed_leaf(&sandbox, &app);
        assert_eq!(
            sandbox.wait_served(&domain(&app), &installed),
            installed,
            "{app} is served at the start"
        );
    }
    sandbox
}

fn installed_leaf(sandbox: &Sandbox, app: &str) -> Vec<u8> {
    first_cert_der(&std::fs::read(sandbox.app_dir(app).join("tls/server.crt")).unwrap())
}

/// A certificate for the changed app, different from the one it has: certs:generate into a
/// scratch app whose files are then given to certs:add.
fn new_pair_for(sandbox: &Sandbox, app: &str) -> (String, String) {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    std::fs::create_dir_all(root.join("scratch")).unwrap();
    sandbox
        .run_with(
            &["certs:generate", "scratch", &domain(app)],
            None,
            &[
                ("DOKKU_ROOT", root.to_str().unwrap()),
                ("DOKKU_NGINX_CMD", "true"),
            ],
        )
        .ok();
    let keep = sandbox.dir.path().join(format!("{app}-new"));
    std::fs::create_dir_all(&keep).unwrap();
    for file in ["server.crt", "server.key"] {
        std::fs::copy(root.join("scratch/tls").join(file), keep.join(file)).unwrap();
    }
    let path = |file: &str| keep.join(file).to_str().unwrap().to_string();
    (path("server.crt"), path("server.key"))
}

/// Writes `nginx.conf.d/NAME` into an app, as a user's hand would.
fn write_conf_d(sandbox: &Sandbox, app: &str, name: &str, text: &str) {
    let conf_d = sandbox.app_dir(app).join("nginx.conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::write(conf_d.join(name), text).unwrap();
}

/// certs:add of a new pair on the changed app, expected to be refused with `needle`: the
/// app directory stays byte-identical and its old certificate is still served. Returns stderr.
fn refused_add(sandbox: &Sandbox, crt: &str, key: &str, needle: &str) -> String {
    let old = installed_leaf(sandbox, CHANGED);
    let before = sandbox.tree(CHANGED);
    let run = sandbox
        .run(&["certs:add", CHANGED, crt, key], None)
        .refused(needle);
    assert_eq!(
        sandbox.tree(CHANGED),
        before,
        "the app directory is byte-identical"
    );
    assert_eq!(
        sandbox.served_cert(&domain(CHANGED)),
        old,
        "the old certificate is still served"
    );
    run.stderr
}

#[test]
fn a_broken_nginx_conf_d_file_in_the_changed_app_is_refused_and_the_old_certificate_served() {
    let sandbox = fifty_apps();
    write_conf_d(&sandbox, CHANGED, "broken.conf", "proxy_read_timeout;\n");
    let (crt, key) = new_pair_for(&sandbox, CHANGED);

    let stderr = refused_add(&sandbox, &crt, &key, "nginx rejected the new configuration");
    assert!(
        stderr.contains("broken.conf"),
        "nginx's complaint names the file: {stderr}"
    );
}

#[test]
fn a_change_to_one_app_leaves_every_other_app_served() {
    let sandbox = fifty_apps();
    let others: Vec<(String, Vec<u8>)> = (0..APPS)
        .map(name)
        .filter(|app| app != CHANGED)
        .map(|app| (app.clone(), installed_leaf(&sandbox, &app)))
        .collect();
    let (crt, key) = new_pair_for(&sandbox, CHANGED);

    sandbox.run(&["certs:add", CHANGED, &crt, &key], None).ok();

    let new = installed_leaf(&sandbox, CHANGED);
    assert_eq!(new, first_cert_der(&std::fs::read(&crt).unwrap()));
    assert_eq!(
        sandbox.wait_served(&domain(CHANGED), &new),
        new,
        "the new certificate is served"
    );
    for (app, leaf) in &others {
        assert_eq!(
            &sandbox.served_cert(&domain(app)),
            leaf,
            "{app} still serves its own certificate"
        );
    }

    // A global property reaches all 50 apps with one reload, and every app is still served.
    let set = sandbox
        .run(
            &["nginx:set", "--global", "proxy-read-timeout", "90s"],
            None,
        )
        .ok();
    assert_eq!(
        set.stdout.matches("Rendered nginx.conf for").count(),
        APPS,
        "{}",
        set.stdout
    );
    assert_eq!(
        set.stdout.matches("Reloading nginx").count(),
        1,
        "one reload: {}",
        set.stdout
    );
    for (app, leaf) in &others {
        let conf = std::fs::read_to_string(sandbox.app_dir(app).join("nginx.conf")).unwrap();
        assert!(conf.contains("proxy_read_timeout 90s;"), "{app}: {conf}");
        assert_eq!(
            &sandbox.served_cert(&domain(app)),
            leaf,
            "{app} is still served after the global change"
        );
    }
}

#[test]
fn a_master_that_refuses_the_reload_is_detected_and_the_change_rolled_back() {
    let sandbox = fifty_apps();
    // A hand edit in another app since the last reload: the one-app test does not read it,
    // the master's reload does, and refuses the whole configuration.
    write_conf_d(&sandbox, "app03", "hand-edit.conf", "not_a_directive on;\n");
    let (crt, key) = new_pair_for(&sandbox, CHANGED);

    let stderr = refused_add(&sandbox, &crt, &key, "nginx refused to reload");
    assert!(
        stderr.contains("not_a_directive"),
        "nginx's own complaint is shown: {stderr}"
    );
    assert_eq!(
        sandbox.served_cert(&domain("app03")),
        installed_leaf(&sandbox, "app03"),
        "app03 is still served"
    );
}

#[test]
fn an_unloadable_certificate_at_reload_time_is_detected_and_rolled_back() {
    let sandbox = fifty_apps();
    let (crt, key) = new_pair_for(&sandbox, CHANGED);
    // Another app's key replaced by hand with one that does not match its certificate:
    // nginx loads every certificate at reload, and refuses.
    let (_, wrong_key) = new_pair_for(&sandbox, "app05");
    std::fs::copy(&wrong_key, sandbox.app_dir("app05").join("tls/server.key")).unwrap();

    let stderr = refused_add(&sandbox, &crt, &key, "nginx refused to reload");
    assert!(
        stderr.contains("app05"),
        "the complaint names the certificate nginx could not load: {stderr}"
    );
}

#[test]
fn each_command_returns_only_once_the_new_certificate_is_served() {
    let sandbox = fifty_apps();
    for (round, command) in ["certs:add", "certs:update", "certs:add"]
        .into_iter()
        .enumerate()
    {
        let (crt, key) = new_pair_for(&sandbox, CHANGED);
        sandbox.run(&[command, CHANGED, &crt, &key], None).ok();
        let new = first_cert_der(&std::fs::read(&crt).unwrap());
        // One handshake right after the command returned: no waiting, no retry.
        let served = sandbox.served_cert(&domain(CHANGED));
        assert_eq!(
            served, new,
            "{command}, round {round}: the new certificate is served when the command returns"
        );
    }
}
