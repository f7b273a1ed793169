//! The library on openssl-made fixtures, with openssl as the oracle: content detection,
//! key/certificate matching, chain ordering, and names and dates as openssl prints them.

mod common;

use common::{fixture, fixtures, made, openssl};
use dokku_certs::Error;
use dokku_certs::bundle::{Origin, Source, assemble, sources_from_archive};
use dokku_certs::cert::{Certificate, format_openssl_date};

fn source(name: &str) -> Source {
    Source {
        name: name.to_string(),
        bytes: fixture(name),
    }
}

fn openssl_public_key_of(args: &[&str]) -> String {
    openssl(args)
}

#[test]
fn key_matching_agrees_with_openssl_for_every_encoding() {
    let certs = ["leaf.crt", "leaf2.crt", "leaf3.crt", "wild.crt"];
    let keys = [
        "leaf.key",
        "leaf.pkcs1.key",
        "leaf.key.der",
        "leaf2.key",
        "leaf2.key.der",
        "leaf3.key",
        "wild.key",
    ];
    let dir = fixtures();
    for crt in certs {
        let crt_path = dir.join(crt);
        let cert_pub = openssl_public_key_of(&[
            "x509",
            "-noout",
            "-pubkey",
            "-in",
            crt_path.to_str().unwrap(),
        ]);
        for key in keys {
            let key_path = dir.join(key);
            let form = if key.ends_with(".der") { "DER" } else { "PEM" };
            let key_pub = openssl_public_key_of(&[
                "pkey",
                "-pubout",
                "-inform",
                form,
                "-in",
                key_path.to_str().unwrap(),
            ]);
            let openssl_says_match = cert_pub == key_pub;
            let ours = assemble(&[source(crt), source(key)], Origin::Files);
            match ours {
                Ok(_) => assert!(
                    openssl_says_match,
                    "{crt} + {key}: we matched, openssl does not"
                ),
                Err(Error::KeyMismatch { .. }) => {
                    assert!(
                        !openssl_says_match,
                        "{crt} + {key}: openssl matches, we do not"
                    )
                }
                Err(other) => panic!("{crt} + {key}: unexpected {other}"),
            }
        }
    }
}

#[test]
fn chains_are_ordered_leaf_first_whatever_the_input_order() {
    let sources = [
        Source {
            name: "root.crt".into(),
            bytes: fixture("root.crt"),
        },
        Source {
            name: "inter.crt".into(),
            bytes: fixture("inter.crt"),
        },
        Source {
            name: "unrelated.crt".into(),
            bytes: fixture("dokku.crt"),
        },
        Source {
            name: "leaf.crt".into(),
            bytes: fixture("leaf.crt"),
        },
        Source {
            name: "leaf.key".into(),
            bytes: fixture("leaf.key"),
        },
    ];
    let bundle = assemble(&sources, Origin::Archive).unwrap();
    let subjects: Vec<&str> = bundle.chain.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "C=US; ST=California; L=San Francisco; O=dokku.me; CN=myapp.example.com",
            "C=US; O=dokku-certs tests; CN=dokku-certs Test Intermediate",
            "C=US; O=dokku-certs tests; CN=dokku-certs Test Root",
        ]
    );
    assert_eq!(
        bundle.notes.len(),
        1,
        "the unrelated certificate is named: {:?}",
        bundle.notes
    );
    assert!(bundle.notes[0].contains("CN=test.dokku.me"));
    // openssl agrees the written chain verifies against the root.
    let dir = tempfile::tempdir().unwrap();
    let chain_file = dir.path().join("server.crt");
    std::fs::write(&chain_file, bundle.chain_pem()).unwrap();
    let untrusted = dir.path().join("untrusted.crt");
    std::fs::write(&untrusted, bundle.chain[1].to_pem()).unwrap();
    let root = fixtures().join("root.crt");
    let verdict = openssl(&[
        "verify",
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        untrusted.to_str().unwrap(),
        chain_file.to_str().unwrap(),
    ]);
    assert!(verdict.trim().ends_with("OK"), "{verdict}");
}

#[test]
fn names_and_dates_are_what_openssl_prints() {
    let dir = fixtures();
    for name in ["leaf.crt", "inter.crt", "root.crt", "dokku.crt", "wild.crt"] {
        let path = dir.join(name);
        let path = path.to_str().unwrap();
        let cert = Certificate::from_der(&common::first_cert_der(&fixture(name))).unwrap();
        let end = openssl(&["x509", "-noout", "-enddate", "-in", path]);
        let start = openssl(&["x509", "-noout", "-startdate", "-in", path]);
        assert_eq!(
            format_openssl_date(cert.not_after),
            end.trim().trim_start_matches("notAfter="),
            "{name}"
        );
        assert_eq!(
            format_openssl_date(cert.not_before),
            start.trim().trim_start_matches("notBefore="),
            "{name}"
        );
        // dokku's subject: openssl's compat form, '/' turned into '; '.
        let compat = openssl(&[
            "x509", "-noout", "-subject", "-nameopt", "compat", "-in", path,
        ]);
        let dokku_subject = compat
            .trim()
            .trim_start_matches("subject=")
            .trim_start_matches('/')
            .replace('/', "; ");
        assert_eq!(cert.subject, dokku_subject, "{name}");
        // dokku's issuer: the `Issuer:` line of openssl 3's -text.
        let text = openssl(&["x509", "-noout", "-text", "-in", path]);
        let dokku_issuer = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Issuer: "))
            .unwrap();
        assert_eq!(cert.issuer, dokku_issuer, "{name}");
    }
}

#[test]
fn content_is_found_whatever_the_names_and_encodings() {
    let archive = common::tar_of(
        &[
            ("a/b/c/d.txt", &fixture("leaf2.crt")),
            ("weird name.bin", &fixture("leaf2.key.der")),
            ("._leaf2.key", &fixture("leaf.key")),
        ],
        true,
    );
    let sources = sources_from_archive(&archive).unwrap();
    assert_eq!(sources.len(), 2, "the macOS '._' file is skipped");
    let bundle = assemble(&sources, Origin::Archive).unwrap();
    assert_eq!(
        bundle.leaf().der(),
        common::first_cert_der(&fixture("leaf2.crt"))
    );
    assert!(
        bundle
            .key
            .to_pem()
            .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
    );
    // `openssl x509 -text` puts kilobytes of text before the PEM block; a chain saved that
    // way puts more (here the root's and the intermediate's dumps come first).
    let dir = fixtures();
    let dump = |name: &str, noout: bool| {
        let path = dir.join(name);
        let mut args = vec!["x509", "-text", "-in", path.to_str().unwrap()];
        if noout {
            args.push("-noout");
        }
        openssl(&args)
    };
    let text = dump("root.crt", true) + &dump("inter.crt", true) + &dump("leaf2.crt", false);
    assert!(
        text.find("-----BEGIN").unwrap() > 4096,
        "the text part is longer than 4 KiB"
    );
    let archive = common::tar_of(
        &[
            ("site.crt", text.as_bytes()),
            ("site.key", &fixture("leaf2.key")),
        ],
        false,
    );
    let with_text = assemble(&sources_from_archive(&archive).unwrap(), Origin::Archive).unwrap();
    assert_eq!(with_text.leaf().der(), bundle.leaf().der());
    // The SEC1 file's "EC PARAMETERS" block is not mistaken for anything.
    let pem_pair = assemble(&[source("leaf2.crt"), source("leaf2.key")], Origin::Files).unwrap();
    assert_eq!(pem_pair.key.public_key(), bundle.key.public_key());
}

#[test]
fn a_chain_at_the_cap_is_ordered_whatever_its_order_and_names() {
    // 16 certificates: a root, 14 intermediates all named "Intermediate", the server
    // certificate; given root first, each intermediate found only by its signature.
    let input = made::chain("myapp.example.com", 14, true, true);
    let bundle = assemble(
        &[Source {
            name: "stdin".into(),
            bytes: input.clone(),
        }],
        Origin::Archive,
    )
    .unwrap();
    assert_eq!(bundle.chain.len(), 16);
    let given: Vec<Vec<u8>> = common::cert_ders(&input).into_iter().rev().collect();
    let ordered: Vec<Vec<u8>> = bundle.chain.iter().map(|c| c.der().to_vec()).collect();
    assert_eq!(
        ordered, given,
        "server certificate first, then each issuer up to the root"
    );
    assert!(bundle.notes.is_empty(), "{:?}", bundle.notes);
}

#[test]
fn many_certificates_for_one_key_are_ambiguous_not_slow() {
    // 64 certificates (the cap) for one key, each looking like every other's issuer.
    let input = made::certs_sharing_one_key("myapp.example.com", 64);
    let result = assemble(
        &[Source {
            name: "stdin".into(),
            bytes: input,
        }],
        Origin::Archive,
    );
    assert!(
        matches!(result, Err(Error::Ambiguous { count: 64, .. })),
        "{result:?}"
    );
}

#[test]
fn a_compressed_ec_point_in_the_certificate_pairs_with_the_uncompressed_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key, crt) = (dir.path().join("c.key"), dir.path().join("c.crt"));
    let (key, crt) = (key.to_str().unwrap(), crt.to_str().unwrap());
    let leaf2 = fixtures().join("leaf2.key");
    openssl(&[
        "ec",
        "-in",
        leaf2.to_str().unwrap(),
        "-conv_form",
        "compressed",
        "-out",
        key,
    ]);
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-key",
        key,
        "-subj",
        "/CN=myapp.example.com",
        "-days",
        "30",
        "-out",
        crt,
    ]);
    let text = openssl(&["x509", "-in", crt, "-noout", "-text"]);
    assert!(
        text.contains("pub:\n                    02")
            || text.contains("pub:\n                    03"),
        "{text}"
    );
    let certificate = Source {
        name: "c.crt".into(),
        bytes: std::fs::read(crt).unwrap(),
    };
    let bundle = assemble(&[certificate, source("leaf2.key")], Origin::Files).unwrap();
    assert_eq!(bundle.key.describe(), "an ECDSA P-256 key");
    let other = Source {
        name: "c.crt".into(),
        bytes: std::fs::read(crt).unwrap(),
    };
    assert!(matches!(
        assemble(&[other, source("wild.key")], Origin::Files),
        Err(Error::KeyMismatch { .. })
    ));
}

#[test]
fn refusals_carry_typed_kinds_with_the_words_users_saw_before() {
    use dokku_certs::cert::CertError;
    use dokku_certs::key::{KeyError, KeyType};
    let refused = |key: &str| match assemble(&[source("leaf.crt"), source(key)], Origin::Files) {
        Err(Error::UnsupportedKey { what, .. }) => what,
        other => panic!("{key}: {other:?}"),
    };
    assert_eq!(refused("p521.key"), KeyError::P521);
    assert_eq!(refused("k256.key"), KeyError::Secp256k1);
    assert_eq!(refused("ed25519.key"), KeyError::Ed25519);
    assert_eq!(refused("rsa1024.key"), KeyError::RsaTooShort(1024));
    assert_eq!(
        refused("rsa1024.key").to_string(),
        "an RSA 1024-bit key, too short for nginx's OpenSSL (at least 2048 bits)"
    );
    assert!(matches!(
        Certificate::from_der(b"\x30\x03\x02\x01\x05"),
        Err(CertError::Parse(_))
    ));
    let unknown = KeyType::from_name("dsa").unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "unknown key type \"dsa\"; use one of ecdsa-p256, ecdsa-p384, rsa2048, rsa3072, rsa4096"
    );
}
