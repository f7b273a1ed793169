//! Every bad input, table-driven: exit 1, one line on stderr saying what is wrong, the app
//! dir byte-identical, and nginx still serving the old certificate.

mod common;

use std::io::Write;

use common::{Sandbox, first_cert_der, fixture, fixtures, made, tar_of};

const DOMAIN: &str = "myapp.example.com";

/// How a bad input reaches the command.
enum Input {
    /// certs:add myapp CRT KEY with these fixture files.
    Files(&'static str, &'static str),
    /// certs:add myapp with these bytes on stdin.
    Stdin(Vec<u8>),
    /// Any other command line.
    Args(Vec<String>),
}

/// A sandbox whose app serves leaf.crt, with nginx running.
fn serving_sandbox() -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox.create_app("myapp", &[DOMAIN]);
    sandbox.start_nginx();
    let dir = fixtures();
    let (crt, key) = (dir.join("leaf.crt"), dir.join("leaf.key"));
    sandbox
        .run(
            &[
                "certs:add",
                "myapp",
                crt.to_str().unwrap(),
                key.to_str().unwrap(),
            ],
            None,
        )
        .ok();
    let expected = first_cert_der(&fixture("leaf.crt"));
    assert_eq!(sandbox.wait_served(DOMAIN, &expected), expected);
    sandbox
}

fn run_case(sandbox: &Sandbox, input: &Input) -> common::Run {
    match input {
        Input::Files(crt, key) => {
            let dir = fixtures();
            let (crt, key) = (dir.join(crt), dir.join(key));
            sandbox.run(
                &[
                    "certs:add",
                    "myapp",
                    crt.to_str().unwrap(),
                    key.to_str().unwrap(),
                ],
                None,
            )
        }
        Input::Stdin(bytes) => sandbox.run(&["certs:add", "myapp"], Some(bytes)),
        Input::Args(args) => {
            sandbox.run(&args.iter().map(String::as_str).collect::<Vec<_>>(), None)
        }
    }
}

/// Runs every case against one serving app and checks nothing moved.
fn assert_all_refused(cases: Vec<(&str, Input, &str)>) {
    let sandbox = serving_sandbox();
    let served = first_cert_der(&fixture("leaf.crt"));
    let before = sandbox.tree("myapp");
    let root_before = common::Tree::of(&sandbox.root());
    for (name, input, needle) in &cases {
        let started = std::time::Instant::now();
        let run = run_case(&sandbox, input);
        assert!(
            started.elapsed().as_secs() < 10,
            "{name}: took {:?}",
            started.elapsed()
        );
        assert_eq!(
            run.code, 1,
            "{name}: expected exit 1\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}: expected one line on stderr, got {:?}",
            run.stderr
        );
        assert!(
            lines[0].starts_with(" !     "),
            "{name}: not dokku's style: {:?}",
            lines[0]
        );
        assert!(
            run.stderr.contains(needle),
            "{name}: {:?} does not contain {needle:?}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("panicked"),
            "{name}: panicked: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("PRIVATE KEY") && !run.stdout.contains("PRIVATE KEY"),
            "{name}: key material"
        );
        assert!(
            !quotes_a_key(&run.stderr),
            "{name}: key material in {:?}",
            run.stderr
        );
        assert_eq!(sandbox.tree("myapp"), before, "{name}: the app dir changed");
        assert_eq!(
            sandbox.served_cert(DOMAIN),
            served,
            "{name}: nginx serves another certificate"
        );
    }
    assert_eq!(
        common::Tree::of(&sandbox.root()),
        root_before,
        "something was written under DOKKU_ROOT"
    );
}

/// Whether `text` holds a piece of a body line of the keys the cases damage or send.
fn quotes_a_key(text: &str) -> bool {
    let keys = [
        fixture("leaf.key"),
        fixture("leaf.pkcs1.key"),
        fixture("leaf2.key"),
    ];
    let bodies = keys.into_iter().map(|key| String::from_utf8(key).unwrap());
    bodies
        .flat_map(|body| {
            body.lines()
                .filter(|l| l.len() > 20 && !l.starts_with("-----"))
                .map(|l| l[2..18].to_string())
                .collect::<Vec<_>>()
        })
        .any(|piece| text.contains(&piece))
}

#[test]
fn bad_certificates_and_keys_are_refused_saying_what_they_are() {
    assert_all_refused(vec![
        (
            "PKCS#8 encrypted key",
            Input::Files("leaf.crt", "leaf.pkcs8-encrypted.key"),
            "is encrypted",
        ),
        (
            "legacy encrypted key",
            Input::Files("leaf.crt", "leaf.legacy-encrypted.key"),
            "openssl pkey -in",
        ),
        (
            "DER encrypted key",
            Input::Files("leaf.crt", "leaf.encrypted.key.der"),
            "is encrypted",
        ),
        (
            "CSR as certificate",
            Input::Files("leaf.csr", "leaf.key"),
            "holds a certificate signing request (CSR)",
        ),
        (
            "public key as certificate",
            Input::Files("leaf.pub", "leaf.key"),
            "holds a public key, not a certificate",
        ),
        (
            "files swapped",
            Input::Files("leaf.key", "leaf.crt"),
            "holds a private key, not a certificate",
        ),
        (
            "certificate as key",
            Input::Files("leaf.crt", "leaf.fullchain.crt"),
            "holds a certificate, not a private key",
        ),
        (
            "intermediate CA with its key",
            Input::Files("inter.crt", "inter.key"),
            "is a CA certificate (CA:TRUE) issued by",
        ),
        (
            "intermediate CA, server key",
            Input::Files("inter.crt", "leaf.key"),
            "is a CA certificate (CA:TRUE)",
        ),
        ("DSA key", Input::Files("leaf.crt", "dsa.key"), "a DSA key"),
        ("P-521 key", Input::Files("leaf.crt", "p521.key"), "P-521"),
        (
            "secp256k1 key",
            Input::Files("leaf.crt", "k256.key"),
            "secp256k1",
        ),
        (
            "Ed25519 key",
            Input::Files("leaf.crt", "ed25519.key"),
            "Ed25519",
        ),
        (
            "RSA 1024 key",
            Input::Files("leaf.crt", "rsa1024.key"),
            "RSA 1024-bit key",
        ),
        (
            "PKCS#12",
            Input::Files("leaf.p12", "leaf.key"),
            "openssl pkcs12 -in",
        ),
        (
            "mismatched key",
            Input::Files("leaf.crt", "leaf2.key"),
            "does not match the certificate",
        ),
        (
            "text as certificate",
            Input::Files("inter.csr", "leaf.key"),
            "certificate signing request",
        ),
        (
            "directory as certificate",
            Input::Files(".", "leaf.key"),
            "CRT file specified not found",
        ),
    ]);
}

/// A tar header written by hand: the tar crate's builder refuses `..` and absolute paths.
fn raw_entry(path: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    let name = &mut header.as_gnu_mut().unwrap().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    if let Some(link) = link {
        header.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(kind);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    bytes
}

/// A usable pair followed by `extra` entries, then the end-of-archive blocks.
fn pair_plus(extra: Vec<Vec<u8>>) -> Vec<u8> {
    let mut archive = raw_entry(
        "server.crt",
        tar::EntryType::Regular,
        None,
        &fixture("leaf2.crt"),
    );
    archive.extend(raw_entry(
        "server.key",
        tar::EntryType::Regular,
        None,
        &fixture("leaf2.key"),
    ));
    for entry in extra {
        archive.extend(entry);
    }
    archive.extend([0u8; 1024]);
    archive
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    gzip_at(bytes, flate2::Compression::fast())
}

fn gzip_at(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A gzip stream of a tar whose one entry is `gib` GiB of zeros, a few MiB compressed:
/// one member of 64 MiB of zeros, repeated (concatenated gzip members are one stream).
fn gzip_bomb(gib: u64) -> Vec<u8> {
    let size = gib << 30;
    let mut header = tar::Header::new_gnu();
    header.set_path("server.crt").unwrap();
    header.set_size(size);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut bomb = gzip(header.as_bytes());
    let zeros = gzip_at(&vec![0u8; 64 << 20], flate2::Compression::best());
    for _ in 0..(size / (64 << 20)) {
        bomb.extend_from_slice(&zeros);
    }
    bomb
}

#[test]
fn hostile_and_broken_archives_are_refused_whole() {
    let valid = tar_of(
        &[
            ("server.crt", &fixture("leaf2.crt")),
            ("server.key", &fixture("leaf2.key")),
        ],
        false,
    );
    let many: Vec<(String, Vec<u8>)> = (0..12_000).map(|i| (format!("f{i}"), Vec::new())).collect();
    let many_refs: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let bomb = gzip_bomb(2);
    assert!(
        bomb.len() < 8 << 20,
        "the bomb should be small: {} bytes",
        bomb.len()
    );
    let big_entry = tar_of(
        &[
            ("server.crt", &vec![b'A'; 3 << 20]),
            ("server.key", &fixture("leaf2.key")),
        ],
        true,
    );
    let regular = tar::EntryType::Regular;
    assert_all_refused(vec![
        (
            "dot-dot path",
            Input::Stdin(pair_plus(vec![raw_entry(
                "../evil.crt",
                regular,
                None,
                b"x",
            )])),
            "climbs out",
        ),
        (
            "nested dot-dot",
            Input::Stdin(pair_plus(vec![raw_entry("a/../../x", regular, None, b"x")])),
            "\"a/../../x\"",
        ),
        (
            "absolute path",
            Input::Stdin(pair_plus(vec![raw_entry(
                "/etc/cron.d/x",
                regular,
                None,
                b"x",
            )])),
            "an absolute path",
        ),
        (
            "symlink",
            Input::Stdin(pair_plus(vec![raw_entry(
                "link.key",
                tar::EntryType::Symlink,
                Some("/etc/shadow"),
                b"",
            )])),
            "is a symbolic link",
        ),
        (
            "hard link",
            Input::Stdin(pair_plus(vec![raw_entry(
                "hard.key",
                tar::EntryType::Link,
                Some("server.key"),
                b"",
            )])),
            "is a hard link",
        ),
        (
            "device",
            Input::Stdin(pair_plus(vec![raw_entry(
                "dev",
                tar::EntryType::Char,
                None,
                b"",
            )])),
            "is a device",
        ),
        (
            "fifo",
            Input::Stdin(pair_plus(vec![raw_entry(
                "fifo",
                tar::EntryType::Fifo,
                None,
                b"",
            )])),
            "is a fifo",
        ),
        (
            "gzip bomb",
            Input::Stdin(bomb),
            "unpacks to more than 16 MiB",
        ),
        (
            "one entry over the limit",
            Input::Stdin(big_entry),
            "server.crt (skipped: over 1024 KiB)",
        ),
        (
            "too many entries",
            Input::Stdin(tar_of(&many_refs, true)),
            "more than 10000 entries",
        ),
        (
            "truncated tar",
            Input::Stdin(valid[..700].to_vec()),
            "truncated",
        ),
        (
            "truncated gzip",
            Input::Stdin(gzip(&valid)[..200].to_vec()),
            "stdin is not a tar archive",
        ),
        (
            "random bytes",
            Input::Stdin(
                (0..4096u32)
                    .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                    .collect(),
            ),
            "not a tar archive",
        ),
        (
            "plain text",
            Input::Stdin(b"hello, this is not an archive\n".repeat(40)),
            "not a tar archive",
        ),
        (
            "empty stdin",
            Input::Stdin(Vec::new()),
            "Tar archive containing server.crt and server.key expected on stdin",
        ),
        (
            "two pairs",
            Input::Stdin(tar_of(
                &[
                    ("a.crt", &fixture("leaf2.crt")),
                    ("a.key", &fixture("leaf2.key")),
                    ("b.crt", &fixture("wild.crt")),
                    ("b.key", &fixture("wild.key")),
                ],
                false,
            )),
            "found 2 certificate/key pairs",
        ),
        (
            "encrypted key in an archive",
            Input::Stdin(tar_of(
                &[
                    ("a.crt", &fixture("leaf.crt")),
                    ("a.key", &fixture("leaf.pkcs8-encrypted.key")),
                ],
                false,
            )),
            "is encrypted",
        ),
        (
            "PKCS#12 in an archive",
            Input::Stdin(tar_of(&[("site.pfx", &fixture("leaf.p12"))], false)),
            "openssl pkcs12",
        ),
        (
            "no key in an archive",
            Input::Stdin(tar_of(&[("a.crt", &fixture("leaf.crt"))], false)),
            "no private key found in a.crt",
        ),
    ]);
}

#[test]
fn names_that_could_escape_or_inject_are_refused_before_anything_is_touched() {
    let mut cases: Vec<(&str, Input, &str)> = Vec::new();
    for app in [
        "..", "../myapp", "My", "a b", "a;b", "a{b}", "$app", "a\nb", "/etc",
    ] {
        cases.push((
            "bad app name",
            Input::Args(vec!["certs:info".into(), app.into()]),
            "App name must begin",
        ));
    }
    let long_label = format!("{}.example.com", "a".repeat(64));
    for domain in [
        "a..example.com",
        "*.*.example.com",
        "a.*.example.com",
        "x.com;include /etc/passwd",
        "a{b}.com",
        "$host.com",
        "a\nb.com",
        "Upper.example.com",
        "with space.com",
        "",
        &long_label,
    ] {
        cases.push((
            "bad domain",
            Input::Args(vec![
                "certs:generate".into(),
                "myapp".into(),
                domain.to_string(),
            ]),
            "is not a valid domain",
        ));
    }
    assert_all_refused(cases);
}

#[test]
fn a_vhost_line_that_could_inject_into_nginx_conf_is_refused() {
    let sandbox = serving_sandbox();
    let vhost = sandbox.app_dir("myapp").join("VHOST");
    std::fs::write(&vhost, "myapp.example.com\nevil.com; include /etc/passwd\n").unwrap();
    let before = sandbox.tree("myapp");
    let dir = fixtures();
    let (crt, key) = (dir.join("leaf2.crt"), dir.join("leaf2.key"));
    sandbox
        .run(
            &[
                "certs:add",
                "myapp",
                crt.to_str().unwrap(),
                key.to_str().unwrap(),
            ],
            None,
        )
        .refused("VHOST: line 2");
    assert_eq!(sandbox.tree("myapp"), before);
}

#[test]
fn der_inputs_and_several_keys_pair_by_content() {
    let sandbox = serving_sandbox();
    // Two certificates and two keys, one of each matching: the matching pair is chosen.
    let archive = tar_of(
        &[
            ("certs/leaf2.der", &fixture("leaf.crt.der")),
            ("keys/a.pem", &fixture("leaf2.key")),
            ("keys/b.der", &fixture("leaf.key.der")),
            ("certs/other.pem", &fixture("wild.crt")),
        ],
        true,
    );
    let run = sandbox.run(&["certs:add", "myapp"], Some(&archive)).ok();
    assert!(
        run.stderr.contains("other key(s) ignored"),
        "{}",
        run.stderr
    );
    let installed = std::fs::read(sandbox.app_dir("myapp").join("tls/server.crt")).unwrap();
    assert_eq!(
        common::cert_ders(&installed),
        vec![first_cert_der(&fixture("leaf.crt"))]
    );
    assert!(installed.starts_with(b"-----BEGIN CERTIFICATE-----\n"));
}

/// `block` repeated to just under the 16 MiB stdin limit.
fn up_to_the_stdin_limit(block: &[u8]) -> Vec<u8> {
    let limit = 16 << 20;
    block.repeat(limit / block.len())
}

#[test]
fn inputs_over_the_caps_are_refused_before_the_work_they_would_cost() {
    let mut keys_and_pair = made::keys(16);
    keys_and_pair.extend(fixture("leaf.crt"));
    keys_and_pair.extend(fixture("leaf.key"));
    assert_all_refused(vec![
        (
            "800 certificates sharing one key",
            Input::Stdin(made::certs_sharing_one_key(DOMAIN, 800)),
            "holds more than 64 certificates",
        ),
        (
            "800 self-issued intermediates, root first",
            Input::Stdin(made::chain(DOMAIN, 800, true, true)),
            "holds more than 64 certificates",
        ),
        (
            "a chain of 100 intermediates",
            Input::Stdin(made::chain(DOMAIN, 100, false, false)),
            "more than 64",
        ),
        (
            "a chain of 20",
            Input::Stdin(made::chain(DOMAIN, 18, false, false)),
            "chain is longer than 16 certificates",
        ),
        (
            "17 keys",
            Input::Stdin(keys_and_pair),
            "holds more than 16 private keys",
        ),
        (
            "16 MiB of certificates",
            Input::Stdin(up_to_the_stdin_limit(&fixture("leaf.crt"))),
            "more than 64 certificates",
        ),
    ]);
}

/// `pem` as a block labelled `label` whose second body line starts with `!`, a character
/// base64 does not have: the PEM itself is damaged, not only the DER inside.
fn damaged_pem(pem: &[u8], label: &str) -> Vec<u8> {
    let text = String::from_utf8(pem.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut body: Vec<String> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.to_string())
        .collect();
    body[1].replace_range(0..1, "!");
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
    .into_bytes()
}

#[test]
fn a_damaged_pem_block_is_named_by_its_label_key_or_certificate() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let key = fixture("leaf.key");
    let pkcs8 = damaged_pem(&key, "PRIVATE KEY");
    let (crt, good_key) = (
        write("leaf.crt", &fixture("leaf.crt")),
        write("good.key", &key),
    );
    let add = |crt: &str, key: &str| {
        Input::Args(vec![
            "certs:add".into(),
            "myapp".into(),
            crt.into(),
            key.into(),
        ])
    };
    let bad_pkcs8 = write("pkcs8.key", &pkcs8);
    let bad_ec = write("ec.key", &damaged_pem(&key, "EC PRIVATE KEY"));
    let bad_rsa = write(
        "rsa.key",
        &damaged_pem(&fixture("leaf.pkcs1.key"), "RSA PRIVATE KEY"),
    );
    let bad_crt = write("bad.crt", &damaged_pem(&fixture("leaf.crt"), "CERTIFICATE"));
    let archive = |key: &[u8]| {
        Input::Stdin(tar_of(
            &[("a.crt", &fixture("leaf2.crt")), ("a.key", key)],
            false,
        ))
    };
    let mut combined = fixture("leaf2.crt");
    combined.extend(&pkcs8);
    let damaged_key = "is a damaged PKCS#8 key (invalid data: Invalid symbol 33";
    let cases = vec![
        ("damaged PKCS#8 key", add(&crt, &bad_pkcs8), damaged_key),
        (
            "damaged EC key",
            add(&crt, &bad_ec),
            "is a damaged EC key (invalid data",
        ),
        (
            "damaged RSA key",
            add(&crt, &bad_rsa),
            "is a damaged RSA key (invalid data",
        ),
        (
            "damaged key, complete file",
            add(&crt, &bad_pkcs8),
            "; check that the file is complete and unchanged",
        ),
        (
            "damaged key as CRT",
            add(&bad_pkcs8, &good_key),
            "pkcs8.key holds a private key, not a certificate",
        ),
        (
            "damaged certificate",
            add(&bad_crt, &good_key),
            "bad.crt holds a certificate that cannot be parsed",
        ),
        (
            "damaged certificate as KEY",
            add(&crt, &bad_crt),
            "bad.crt holds a damaged certificate",
        ),
        (
            "damaged key in an archive",
            archive(&pkcs8),
            "the private key in a.key is a damaged PKCS#8 key",
        ),
        (
            "damaged key after a good certificate on stdin",
            Input::Stdin(combined),
            "the private key in stdin is a damaged",
        ),
    ];
    assert_all_refused(cases);
}
