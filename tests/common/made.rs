//! Certificates made at test time with rcgen, in shapes openssl's command line makes slowly
//! or not at all: hundreds of certificates, long chains, names holding control characters.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};

/// A fresh ECDSA P-256 key (fast to make, so hundreds cost little).
pub fn ec_key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

/// Parameters for a certificate named `common_name` (also its one DNS name unless it is a CA).
pub fn params(common_name: &str, ca: bool) -> CertificateParams {
    let names = if ca {
        Vec::new()
    } else {
        vec![common_name.to_string()]
    };
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    params
}

/// `count` certificates for `domain` that all hold one key, then that key (PEM). Each is
/// issued under its own name by another key: every certificate looks like a candidate
/// issuer of every other, and no signature verifies, the worst case for pairing them.
pub fn certs_sharing_one_key(domain: &str, count: u64) -> Vec<u8> {
    let (key, other) = (ec_key(), ec_key());
    let mut pem = String::new();
    for serial in 1..=count {
        let mut params = params(domain, false);
        params.serial_number = Some(serial.into());
        let issuer = Issuer::new(self::params(domain, false), &other);
        pem.push_str(&params.signed_by(&key, &issuer).unwrap().pem());
    }
    pem.push_str(&key.serialize_pem());
    pem.into_bytes()
}

/// A root, `intermediates` CAs each issued by the one before, and a server certificate for
/// `domain`, then the server's key (PEM). With `same_name` every intermediate is called
/// "Intermediate" (self-issued, as a CA's key rollover makes them). In server.crt's order
/// (server first, root last), or with `reversed` the other way round.
pub fn chain(domain: &str, intermediates: usize, same_name: bool, reversed: bool) -> Vec<u8> {
    let mut issuer_key = ec_key();
    let mut issuer_params = params("Test Root", true);
    let mut certs = vec![issuer_params.self_signed(&issuer_key).unwrap().pem()];
    issuer_params = params("Test Root", true);
    for n in 0..intermediates {
        let name = if same_name {
            "Intermediate".to_string()
        } else {
            format!("Intermediate {n}")
        };
        let key = ec_key();
        let issuer = Issuer::new(issuer_params, &issuer_key);
        certs.push(params(&name, true).signed_by(&key, &issuer).unwrap().pem());
        (issuer_params, issuer_key) = (params(&name, true), key);
    }
    let key = ec_key();
    let issuer = Issuer::new(issuer_params, &issuer_key);
    certs.push(
        params(domain, false)
            .signed_by(&key, &issuer)
            .unwrap()
            .pem(),
    );
    if !reversed {
        certs.reverse();
    }
    let mut pem = certs.concat();
    pem.push_str(&key.serialize_pem());
    pem.into_bytes()
}

/// `count` unrelated private keys (PEM).
pub fn keys(count: usize) -> Vec<u8> {
    (0..count)
        .map(|_| ec_key().serialize_pem())
        .collect::<String>()
        .into_bytes()
}
