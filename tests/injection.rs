//! A certificate's names are chosen by whoever made it. ESC sequences, bells, carriage
//! returns and newlines in its O, CN or DNS names never reach the admin's terminal or a
//! JSON consumer raw: they are written out as `\x1B`, `\x0A`... in every command's output,
//! warnings and errors, so no fake line ("SSL certificate is verified...") can appear.

mod common;

use common::{Sandbox, made};

const DOMAIN: &str = "myapp.example.com";
const FAKE: &str = "SSL certificate is verified by a certificate authority.";

/// A self-signed certificate for DOMAIN whose names carry terminal escapes and fake lines, then its key.
fn hostile_pair() -> Vec<u8> {
    let key = made::ec_key();
    let evil_san = format!("x\x1b[2K\r\n{FAKE}.example.com");
    let mut params = rcgen::CertificateParams::new(vec![DOMAIN.to_string(), evil_san]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        format!("Evil\x1b]0;owned\x07\x1b[31m\n{FAKE}"),
    );
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("{DOMAIN}\u{202E}\x1b[1A\r=====> Subject: bank"),
    );
    let mut pem = params.self_signed(&key).unwrap().pem();
    pem.push_str(&key.serialize_pem());
    pem.into_bytes()
}

/// Nothing a terminal acts on: no control character but the line ends, no bidi override.
fn assert_clean(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| (c.is_control() && c != '\n') || c == '\u{202E}')
        .collect();
    assert!(bad.is_empty(), "{what}: raw {bad:?} in {text:?}");
    assert!(
        !text.lines().any(|line| line.starts_with(FAKE)),
        "{what}: a fake line in {text:?}"
    );
}

fn serving_hostile_cert() -> Sandbox {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let added = sandbox
        .run(&["certs:add", "myapp"], Some(&hostile_pair()))
        .ok();
    assert_clean("certs:add stdout", &added.stdout);
    assert_clean("certs:add stderr", &added.stderr);
    assert!(
        added.stdout.contains("x\\x1B[2K\\x0D\\x0ASSL certificate"),
        "escaped, not dropped: {}",
        added.stdout
    );
    sandbox
}

#[test]
fn info_and_report_write_escapes_out() {
    let sandbox = serving_hostile_cert();
    let info = sandbox.run(&["certs:info", "myapp"], None).ok();
    assert_clean("certs:info", &info.stdout);
    assert!(
        info.stdout
            .lines()
            .all(|l| l.starts_with("-----> ") || l.starts_with("=====> ")),
        "{}",
        info.stdout
    );
    let verdicts: Vec<&str> = info
        .stdout
        .lines()
        .filter(|l| l.starts_with("=====> SSL certificate is"))
        .collect();
    assert_eq!(
        verdicts,
        ["=====> SSL certificate is self signed."],
        "one verdict line, ours:\n{}",
        info.stdout
    );
    assert!(
        info.stdout
            .contains("O=Evil\\x1B]0;owned\\x07\\x1B[31m\\x0ASSL"),
        "{}",
        info.stdout
    );
    assert!(info.stdout.contains("\\u{202E}"), "{}", info.stdout);

    let report = sandbox.run(&["certs:report", "myapp"], None).ok();
    assert_clean("certs:report", &report.stdout);
    assert_eq!(
        report.stdout.lines().count(),
        9,
        "a heading and 8 fields:\n{}",
        report.stdout
    );
    for flag in ["--ssl-subject", "--ssl-issuer", "--ssl-hostnames"] {
        let field = sandbox.run(&["certs:report", "myapp", flag], None).ok();
        assert_clean(flag, &field.stdout);
        assert_eq!(
            field.stdout.lines().count(),
            1,
            "{flag}: {:?}",
            field.stdout
        );
    }

    let json = sandbox
        .run(&["certs:report", "myapp", "--format", "json"], None)
        .ok();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    for (key, field) in value.as_object().unwrap() {
        assert_clean(&format!("json {key}"), field.as_str().unwrap());
    }
    assert!(
        value["subject"].as_str().unwrap().contains("\\x1B]0;owned"),
        "{}",
        value["subject"]
    );
}

#[test]
fn errors_quoting_a_certificate_write_escapes_out() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    // An intermediate CA offered as the server certificate: the error names its issuer.
    let root_key = made::ec_key();
    let root_name = format!("Root\x1b[2J\n !     {FAKE}");
    let root = rcgen::Issuer::new(made::params(&root_name, true), &root_key);
    let key = made::ec_key();
    let mut pem = made::params("Intermediate", true)
        .signed_by(&key, &root)
        .unwrap()
        .pem();
    pem.push_str(&key.serialize_pem());
    let run = sandbox
        .run(&["certs:add", "myapp"], Some(pem.as_bytes()))
        .refused("is a CA certificate (CA:TRUE)");
    assert_clean("the error", &run.stderr);
    // The issuer is escaped as openssl (and so dokku) prints it: `\1B`, `\0A`.
    assert!(
        run.stderr.contains("Root\\1B[2J\\0A !     SSL"),
        "{}",
        run.stderr
    );
}
