//! The certs:* commands against a real nginx on 127.0.0.1: what nginx serves after each one.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Sandbox, Tree, cert_ders, first_cert_der, fixture, fixtures, openssl, tar_of};

const DOMAIN: &str = "myapp.example.com";

fn sandbox_with_app() -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    sandbox.start_nginx();
    sandbox
}

fn installed_crt(sandbox: &Sandbox) -> Vec<u8> {
    std::fs::read(sandbox.app_dir("myapp").join("tls/server.crt")).unwrap()
}

/// nginx ends up serving the leaf of tls/server.crt (reload is asynchronous, so wait for it).
fn assert_serves_installed(sandbox: &Sandbox) {
    let expected = first_cert_der(&installed_crt(sandbox));
    assert_eq!(
        sandbox.wait_served(DOMAIN, &expected),
        expected,
        "nginx does not serve tls/server.crt"
    );
}

/// tls/server.crt is leaf.crt then inter.crt, and nginx serves the leaf.
fn assert_leaf_then_intermediate_served(sandbox: &Sandbox) {
    let chain = cert_ders(&installed_crt(sandbox));
    let expected = vec![
        first_cert_der(&fixture("leaf.crt")),
        first_cert_der(&fixture("inter.crt")),
    ];
    assert_eq!(chain, expected, "server.crt is not leaf then intermediate");
    assert_serves_installed(sandbox);
}

fn add_files(sandbox: &Sandbox, crt: &str, key: &str) -> common::Run {
    let dir = fixtures();
    sandbox.run(
        &[
            "certs:add",
            "myapp",
            dir.join(crt).to_str().unwrap(),
            dir.join(key).to_str().unwrap(),
        ],
        None,
    )
}

#[test]
fn generate_installs_a_self_signed_certificate_that_nginx_serves() {
    let sandbox = sandbox_with_app();
    let run = sandbox
        .run(
            &[
                "certs:generate",
                "myapp",
                "new.example.com",
                "--country",
                "US",
                "--organization",
                "dokku.me",
            ],
            None,
        )
        .ok();
    assert!(run.stdout.contains("-----BEGIN CERTIFICATE REQUEST-----"));
    assert!(run.stdout.contains("by a CA of your choosing."));
    assert!(!run.stdout.contains("PRIVATE KEY") && !run.stderr.contains("PRIVATE KEY"));

    let expected = first_cert_der(&installed_crt(&sandbox));
    assert_eq!(sandbox.wait_served("new.example.com", &expected), expected);
    let (_, status, body) = sandbox.https_get("new.example.com");
    assert_eq!((status, body.as_str()), (200, "hello from the app\n"));
    let vhost = std::fs::read_to_string(sandbox.app_dir("myapp").join("VHOST")).unwrap();
    assert_eq!(vhost, "myapp.example.com\nnew.example.com\n");

    // openssl as the oracle: the CSR is signed by the key, the certificate names the domain.
    let csr = sandbox.app_dir("myapp").join("tls/server.csr");
    let verify = std::process::Command::new("openssl")
        .args(["req", "-verify", "-noout", "-in", csr.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "openssl req -verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let text = openssl(&[
        "x509",
        "-noout",
        "-text",
        "-in",
        sandbox
            .app_dir("myapp")
            .join("tls/server.crt")
            .to_str()
            .unwrap(),
    ]);
    assert!(text.contains("DNS:new.example.com"), "{text}");

    // A second generate changes nothing, as dokku's.
    let before = sandbox.tree("myapp");
    let again = sandbox
        .run(&["certs:generate", "myapp", "other.example.com"], None)
        .ok();
    assert!(
        again
            .stdout
            .contains("myapp has an SSL endpoint already defined")
    );
    assert_eq!(sandbox.tree("myapp"), before);
}

#[test]
fn generate_makes_every_key_type_it_offers() {
    let sandbox = sandbox_with_app();
    for (key_type, openssl_says) in [("ecdsa-p384", "384 bit"), ("rsa2048", "2048 bit")] {
        sandbox.run(&["certs:remove", "myapp"], None);
        sandbox
            .run(
                &["certs:generate", "myapp", DOMAIN, "--key-type", key_type],
                None,
            )
            .ok();
        let text = openssl(&[
            "x509",
            "-noout",
            "-text",
            "-in",
            sandbox
                .app_dir("myapp")
                .join("tls/server.crt")
                .to_str()
                .unwrap(),
        ]);
        assert!(text.contains(openssl_says), "{key_type}: {text}");
        let expected = first_cert_der(&installed_crt(&sandbox));
        assert_eq!(sandbox.wait_served(DOMAIN, &expected), expected);
    }
}

#[test]
fn add_from_files_writes_leaf_then_chain_with_dokkus_modes() {
    let sandbox = sandbox_with_app();
    add_files(&sandbox, "leaf.fullchain.crt", "leaf.key").ok();
    let tls = sandbox.app_dir("myapp").join("tls");
    assert_eq!(
        std::fs::metadata(&tls).unwrap().permissions().mode() & 0o777,
        0o750
    );
    for file in ["server.crt", "server.key"] {
        assert_eq!(
            std::fs::metadata(tls.join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o640,
            "{file}"
        );
    }
    assert_leaf_then_intermediate_served(&sandbox);
    // Plain HTTP redirects to https on the SSL port.
    let (status, response) = sandbox.http_get(DOMAIN, "/some/path?q=1");
    assert_eq!(status, 308);
    assert!(
        response.contains(&format!(
            "Location: https://{DOMAIN}:{}/some/path?q=1",
            sandbox.ssl_port
        )),
        "{response}"
    );
}

#[test]
fn add_from_a_tar_finds_files_by_content_in_any_folder() {
    let sandbox = sandbox_with_app();
    // Odd names, a nested folder, the chain in a separate bundle listed before the leaf,
    // the leaf twice (cert.pem and fullchain.pem), and macOS litter that must be ignored.
    let archive = tar_of(
        &[
            ("export/intermediate.ca-bundle", &fixture("chain.ca-bundle")),
            ("export/deep/example_com.cer", &fixture("leaf.crt")),
            ("export/deep/fullchain.pem", &fixture("leaf.fullchain.crt")),
            ("export/privkey.pem", &fixture("leaf.pkcs1.key")),
            ("__MACOSX/export/._privkey.pem", b"junk"),
            ("export/.DS_Store", b"junk"),
            ("export/README.txt", b"not a certificate"),
        ],
        false,
    );
    sandbox.run(&["certs:add", "myapp"], Some(&archive)).ok();
    assert_leaf_then_intermediate_served(&sandbox);
}

#[test]
fn update_from_a_tar_gz_replaces_what_nginx_serves_and_keeps_the_previous_pair() {
    let sandbox = sandbox_with_app();
    add_files(&sandbox, "leaf.crt", "leaf.key").ok();
    let old = installed_crt(&sandbox);
    let archive = tar_of(
        &[
            ("server.crt", &fixture("leaf2.crt")),
            ("server.key", &fixture("leaf2.key")),
        ],
        true,
    );
    sandbox.run(&["certs:update", "myapp"], Some(&archive)).ok();
    assert_serves_installed(&sandbox);
    assert_eq!(
        sandbox.served_cert(DOMAIN),
        first_cert_der(&fixture("leaf2.crt"))
    );
    let previous = std::fs::read(sandbox.app_dir("myapp").join("tls.previous/server.crt")).unwrap();
    assert_eq!(previous, old);
}

#[test]
fn der_files_and_p384_keys_are_accepted_and_stored_as_pem() {
    let sandbox = sandbox_with_app();
    add_files(&sandbox, "leaf.crt.der", "leaf.key.der").ok();
    assert!(installed_crt(&sandbox).starts_with(b"-----BEGIN CERTIFICATE-----"));
    let key = std::fs::read(sandbox.app_dir("myapp").join("tls/server.key")).unwrap();
    let key = String::from_utf8(key).unwrap();
    assert!(
        key.starts_with("-----BEGIN ") && key.contains(" PRIVATE KEY-----\n"),
        "{key}"
    );
    assert_serves_installed(&sandbox);
    assert_eq!(
        sandbox.served_cert(DOMAIN),
        first_cert_der(&fixture("leaf.crt"))
    );
    add_files(&sandbox, "leaf3.crt", "leaf3.key").ok();
    assert_serves_installed(&sandbox);
    assert_eq!(
        sandbox.served_cert(DOMAIN),
        first_cert_der(&fixture("leaf3.crt"))
    );
}

fn assert_refused_update_changes_nothing(
    sandbox: &Sandbox,
    run: impl FnOnce() -> common::Run,
    needle: &str,
) {
    assert_serves_installed(sandbox);
    let before = sandbox.tree("myapp");
    let served_before = sandbox.served_cert(DOMAIN);
    run().refused(needle);
    assert_eq!(sandbox.tree("myapp"), before, "the app dir changed");
    assert_eq!(
        sandbox.served_cert(DOMAIN),
        served_before,
        "nginx serves another certificate"
    );
}

#[test]
fn a_mismatched_or_encrypted_key_is_refused_and_the_old_certificate_stays() {
    let sandbox = sandbox_with_app();
    add_files(&sandbox, "leaf.crt", "leaf.key").ok();
    assert_refused_update_changes_nothing(
        &sandbox,
        || add_files(&sandbox, "leaf.crt", "leaf2.key"),
        "does not match",
    );
    assert_refused_update_changes_nothing(
        &sandbox,
        || add_files(&sandbox, "leaf.crt", "leaf.pkcs8-encrypted.key"),
        "encrypted",
    );
    assert_refused_update_changes_nothing(
        &sandbox,
        || add_files(&sandbox, "leaf.crt", "leaf.legacy-encrypted.key"),
        "openssl pkey",
    );
}

#[test]
fn a_config_nginx_rejects_is_rolled_back_byte_for_byte() {
    let sandbox = sandbox_with_app();
    add_files(&sandbox, "leaf.crt", "leaf.key").ok();
    // `nginx -s reload` only signals the master, which re-reads the files later: wait until it
    // serves the pair, or it would read the broken file below and keep the plain-HTTP config.
    assert_serves_installed(&sandbox);
    // Someone leaves a broken file in nginx.conf.d; nginx still serves the old config.
    let conf_d = sandbox.app_dir("myapp").join("nginx.conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::write(conf_d.join("broken.conf"), "this is not nginx syntax\n").unwrap();
    assert_refused_update_changes_nothing(
        &sandbox,
        || add_files(&sandbox, "leaf2.crt", "leaf2.key"),
        "nginx rejected the new configuration",
    );
    // nginx's own words are in the message.
    std::fs::write(conf_d.join("broken.conf"), "bogus_directive on;\n").unwrap();
    let run = add_files(&sandbox, "leaf2.crt", "leaf2.key");
    assert!(
        run.stderr.contains("unknown directive \"bogus_directive\""),
        "{}",
        run.stderr
    );
    assert!(!sandbox.app_dir("myapp").join(".tls.staging").exists());
    // A certificate that would install with warnings (expired, not covering the domain) but is
    // refused: its one line is the refusal; no warning describes a pair that never went live.
    let (archive, _) = common::expired_archive("elsewhere.org");
    assert_refused_update_changes_nothing(
        &sandbox,
        || sandbox.run(&["certs:add", "myapp"], Some(&archive)),
        "nginx rejected the new configuration",
    );
}

#[test]
fn with_nginx_stopped_the_tested_files_stay_and_a_warning_says_so() {
    let mut sandbox = sandbox_with_app();
    sandbox.stop_nginx();
    let run = add_files(&sandbox, "leaf.crt", "leaf.key").ok();
    assert!(
        run.stderr.contains("nginx was not reloaded"),
        "{}",
        run.stderr
    );
    assert_eq!(
        cert_ders(&installed_crt(&sandbox))[0],
        first_cert_der(&fixture("leaf.crt"))
    );
    sandbox.start_nginx();
    assert_serves_installed(&sandbox);
}

#[test]
fn remove_goes_back_to_plain_http() {
    let sandbox = sandbox_with_app();
    add_files(&sandbox, "leaf.crt", "leaf.key").ok();
    let run = sandbox.run(&["certs:remove", "myapp"], None).ok();
    assert!(run.stdout.contains("Removing SSL endpoint from myapp"));
    assert!(!sandbox.app_dir("myapp").join("tls").exists());
    let (status, response) = sandbox.wait_http_status(DOMAIN, 200);
    assert_eq!(status, 200, "{response}");
    assert!(response.ends_with("hello from the app\n"));
    assert!(
        common::wait_until(|| common::tls_refused(sandbox.ssl_port)),
        "nginx still listens on the SSL port"
    );
    sandbox
        .run(&["certs:remove", "myapp"], None)
        .refused("An app-specific SSL endpoint is not defined");
}

#[test]
fn an_app_without_listeners_answers_502() {
    let mut sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    std::fs::remove_file(sandbox.app_dir("myapp").join("LISTENERS")).unwrap();
    sandbox.start_nginx();
    add_files(&sandbox, "leaf.crt", "leaf.key").ok();
    assert_serves_installed(&sandbox);
    let (_, status, _) = sandbox.https_get(DOMAIN);
    assert_eq!(status, 502);
}

#[test]
fn info_prints_dokkus_format_for_dokkus_own_kind_of_certificate() {
    let sandbox = sandbox_with_app();
    sandbox
        .run(&["certs:info", "myapp"], None)
        .ok()
        .stdout
        .contains("-----> myapp does not have an SSL endpoint");
    let dir = fixtures();
    sandbox
        .run(
            &[
                "certs:add",
                "myapp",
                dir.join("dokku.crt").to_str().unwrap(),
                dir.join("dokku.key").to_str().unwrap(),
            ],
            None,
        )
        .ok();
    let info = sandbox.run(&["certs:info", "myapp"], None).ok().stdout;
    let end = openssl(&[
        "x509",
        "-noout",
        "-enddate",
        "-in",
        dir.join("dokku.crt").to_str().unwrap(),
    ]);
    let start = openssl(&[
        "x509",
        "-noout",
        "-startdate",
        "-in",
        dir.join("dokku.crt").to_str().unwrap(),
    ]);
    let expected = format!(
        "-----> Fetching SSL Endpoint info for myapp...\n\
         -----> Certificate details:\n\
         =====> Common Name(s):\n\
         =====>    test.dokku.me\n\
         =====> Expires At: {}\n\
         =====> Issuer: C = US, ST = California, L = San Francisco, O = dokku.me, CN = test.dokku.me\n\
         =====> Starts At: {}\n\
         =====> Subject: C=US; ST=California; L=San Francisco; O=dokku.me; CN=test.dokku.me\n\
         =====> SSL certificate is self signed.\n",
        end.trim().trim_start_matches("notAfter="),
        start.trim().trim_start_matches("notBefore="),
    );
    assert_eq!(info, expected);
}

#[test]
fn info_tells_a_verified_chain_from_an_incomplete_one() {
    let sandbox = sandbox_with_app();
    add_files(&sandbox, "leaf.fullchain.crt", "leaf.key").ok();
    let info = sandbox.run(&["certs:info", "myapp"], None).ok().stdout;
    assert!(
        info.contains("=====>    myapp.example.com\n=====>    www.myapp.example.com\n"),
        "{info}"
    );
    assert!(
        info.ends_with("=====> SSL certificate is verified by a certificate authority.\n"),
        "{info}"
    );
    add_files(&sandbox, "leaf.crt", "leaf.key").ok();
    let info = sandbox.run(&["certs:info", "myapp"], None).ok().stdout;
    assert!(
        info.contains("SSL certificate is not verified: the chain is incomplete"),
        "{info}"
    );
    // Without the test root in the trust store, the full chain is not verified either.
    let run = sandbox.run_with(
        &["certs:report", "myapp", "--ssl-verified"],
        None,
        &[("SSL_CERT_FILE", "/nonexistent")],
    );
    assert!(run.ok().stdout.starts_with("not verified"));
}

#[test]
fn info_says_a_private_root_is_untrusted_not_that_intermediates_are_missing() {
    let sandbox = sandbox_with_app();
    let full = sandbox.dir.path().join("leaf.inter.root.crt");
    std::fs::write(
        &full,
        [
            fixture("leaf.crt"),
            fixture("inter.crt"),
            fixture("root.crt"),
        ]
        .concat(),
    )
    .unwrap();
    let key = fixtures().join("leaf.key");
    sandbox
        .run(
            &[
                "certs:add",
                "myapp",
                full.to_str().unwrap(),
                key.to_str().unwrap(),
            ],
            None,
        )
        .ok();
    let info = sandbox
        .run_with(
            &["certs:info", "myapp"],
            None,
            &[("SSL_CERT_FILE", "/nonexistent")],
        )
        .ok()
        .stdout;
    assert!(
        info.contains("not verified: the chain is complete, but its root (C=US; O=dokku-certs tests; CN=dokku-certs Test Root) is not in the system trust store"),
        "{info}"
    );
    assert!(!info.contains("append the intermediate"), "{info}");
}

#[test]
fn report_prints_dokkus_fields_one_flag_and_json() {
    let mut sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    sandbox.create_app("other", &["other.example.com"]);
    sandbox.start_nginx();
    add_files(&sandbox, "leaf.fullchain.crt", "leaf.key").ok();
    let dir = sandbox.app_dir("myapp").join("tls");
    let text = sandbox.run(&["certs:report", "myapp"], None).ok().stdout;
    let expected_lines = [
        "=====> myapp ssl information".to_string(),
        format!("       Ssl dir:                       {}", dir.display()),
        "       Ssl enabled:                   true".to_string(),
        "       Ssl hostnames:                 myapp.example.com www.myapp.example.com".to_string(),
        "       Ssl issuer:                    C = US, O = dokku-certs tests, CN = dokku-certs Test Intermediate"
            .to_string(),
        "       Ssl subject:                   C=US; ST=California; L=San Francisco; O=dokku.me; CN=myapp.example.com"
            .to_string(),
        "       Ssl verified:                  verified by a certificate authority".to_string(),
    ];
    for line in &expected_lines {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert_eq!(text.lines().count(), 9);

    let hostnames = sandbox
        .run(&["certs:report", "myapp", "--ssl-hostnames"], None)
        .ok()
        .stdout;
    assert_eq!(hostnames, "myapp.example.com www.myapp.example.com\n");
    sandbox
        .run(&["certs:report", "myapp", "--ssl-nope"], None)
        .refused("Invalid flag passed, valid flags: --ssl-dir, --ssl-enabled");

    let json = sandbox
        .run(&["certs:report", "--format", "json"], None)
        .ok()
        .stdout;
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 2, "one object per app");
    assert_eq!(objects[0]["enabled"], "true");
    assert_eq!(
        objects[0]["hostnames"],
        "myapp.example.com www.myapp.example.com"
    );
    assert_eq!(objects[1]["enabled"], "false");
    assert_eq!(objects[1]["expires-at"], "");
    let all = sandbox.run(&["certs:report"], None).ok().stdout;
    assert!(
        all.contains("=====> myapp ssl information")
            && all.contains("=====> other ssl information")
    );
}

/// dokku's certs and nginx-vhosts `CommandReport`: no app is a warning on stderr, exit 0,
/// nothing on stdout, in every format.
#[test]
fn reports_without_apps_warn_as_dokku_does() {
    let sandbox = Sandbox::new();
    for args in [
        &["certs:report"][..],
        &["certs:report", "--format", "json"],
        &["nginx:report"],
        &["nginx:report", "--format", "json"],
    ] {
        let run = sandbox.run(args, None).ok();
        assert_eq!(
            run.stderr, " !     You haven't deployed any applications yet\n",
            "{args:?}"
        );
        assert_eq!(run.stdout, "", "{args:?}");
    }
    // --global is a scope of its own, not "every app": its report stands without apps.
    let global = sandbox.run(&["nginx:report", "--global"], None).ok();
    assert!(
        global
            .stdout
            .starts_with("=====> --global nginx information\n"),
        "{}",
        global.stdout
    );
}

/// Every metric is one app's, so `--global` (the global properties, none for certs) has no
/// metrics: a clear refusal, not the text heading where a scraper expects metrics.
#[test]
fn prometheus_metrics_are_per_app_and_global_has_none() {
    let sandbox = sandbox_with_app();
    add_files(&sandbox, "leaf.crt", "leaf.key").ok();
    let metrics = sandbox
        .run(&["certs:report", "--format", "prometheus"], None)
        .ok()
        .stdout;
    assert!(
        metrics.contains("\ndokku_certs_ssl_enabled{app=\"myapp\"} 1\n"),
        "{metrics}"
    );
    for args in [
        &["--global", "--format", "prometheus"][..],
        &["myapp", "--format", "prometheus", "--global"],
    ] {
        let run = sandbox.run(&[&["certs:report"][..], args].concat(), None);
        assert_eq!(run.stdout, "", "{args:?}");
        run.refused(
            "--global has no metrics (each metric is one app's); for every app's run: certs:report --format prometheus",
        );
    }
}

#[test]
fn show_prints_the_files_and_nothing_else_prints_the_key() {
    let sandbox = sandbox_with_app();
    let run = add_files(&sandbox, "leaf.crt", "leaf.key").ok();
    assert!(!run.stdout.contains("PRIVATE") && !run.stderr.contains("PRIVATE"));
    let crt = sandbox
        .run(&["certs:show", "myapp", "crt"], None)
        .ok()
        .stdout;
    assert_eq!(crt.as_bytes(), installed_crt(&sandbox).as_slice());
    let key = sandbox
        .run(&["certs:show", "myapp", "key"], None)
        .ok()
        .stdout;
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    sandbox
        .run(&["certs:show", "myapp", "pem"], None)
        .refused("specify either 'key' or 'crt'");
    for args in [
        &["certs:info", "myapp"][..],
        &["certs:report", "myapp"][..],
        &["certs:report", "--format", "json"][..],
    ] {
        let out = sandbox.run(args, None).ok();
        assert!(!out.stdout.contains("PRIVATE KEY"), "{args:?}");
    }
}

#[test]
fn the_plain_names_work_too() {
    let sandbox = sandbox_with_app();
    sandbox.run(&["generate", "myapp", DOMAIN], None).ok();
    assert!(
        sandbox
            .run(&["info", "myapp"], None)
            .ok()
            .stdout
            .contains("SSL certificate is self signed.")
    );
    assert!(
        sandbox
            .run(&["help"], None)
            .ok()
            .stdout
            .contains("certs:add <app> CRT KEY")
    );
}

#[test]
fn dokkus_messages_for_missing_input() {
    let sandbox = sandbox_with_app();
    let before = sandbox.tree("myapp");
    add_files(&sandbox, "missing.crt", "leaf.key")
        .refused("CRT file specified not found, please check file paths");
    add_files(&sandbox, "leaf.key", "missing.key")
        .refused("KEY file specified not found, please check file paths");
    let key = fixtures().join("leaf.key");
    sandbox
        .run(&["certs:add", "myapp", key.to_str().unwrap()], None)
        .refused("both a CRT and a KEY file are needed");
    sandbox
        .run(&["certs:add", "myapp"], None)
        .refused("Tar archive containing server.crt and server.key expected on stdin");
    sandbox
        .run(&["certs:add", "myapp"], Some(b""))
        .refused("Tar archive containing server.crt and server.key expected on stdin");
    sandbox
        .run(&["certs:add", "ghost"], None)
        .refused("App ghost does not exist");
    sandbox
        .run(&["certs:add"], None)
        .refused("Please specify an app to run the command on");
    assert_eq!(sandbox.tree("myapp"), before);
    assert_eq!(
        Tree::of(&sandbox.root())
            .0
            .keys()
            .filter(|p| p.starts_with("ghost"))
            .count(),
        0
    );
}

#[test]
fn expired_and_uncovered_certificates_install_with_a_warning() {
    let sandbox = sandbox_with_app();
    let (archive, der) = common::expired_archive("elsewhere.org");
    let run = sandbox.run(&["certs:add", "myapp"], Some(&archive)).ok();
    assert!(run.stderr.contains("expired on"), "{}", run.stderr);
    assert!(
        run.stderr.contains("does not cover myapp.example.com"),
        "{}",
        run.stderr
    );
    assert_serves_installed(&sandbox);
    assert_eq!(sandbox.served_cert(DOMAIN), der);
}
