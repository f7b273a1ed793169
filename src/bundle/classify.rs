//! Classification: what each PEM block or DER file holds (a certificate, a key, or
//! something refused, with what it is), counted against the caps before it is parsed.

use super::{MAX_CERTIFICATES, MAX_KEYS, Source};
use crate::cert::{CertError, Certificate};
use crate::error::{Error, Result};
use crate::key::{KeyError, KeyFormat, PrivateKey, is_encrypted_pkcs8};
use crate::pem::looks_like_pem;

/// What one PEM block or DER file turned out to be.
#[derive(Debug)]
pub(super) enum Found {
    Cert(Certificate),
    Key(PrivateKey),
    /// Something refused, with a description for the error message.
    Refused(Refusal),
}

#[derive(Debug)]
pub(super) enum Refusal {
    Encrypted,
    Pkcs12,
    BadCertificate(CertError),
    UnsupportedKey(KeyError),
    /// A valid object of the wrong kind: a CSR, a public key...
    Other(&'static str),
}

/// How many certificates and keys the input held so far, to refuse an input over the
/// caps before parsing what is over them.
#[derive(Debug, Default)]
pub(super) struct Counted {
    certs: usize,
    keys: usize,
}

impl Counted {
    /// Counts one more certificate (or key); an error once the input is over its cap.
    pub(super) fn one_more(&mut self, key: bool) -> Result<()> {
        let (count, max, what) = if key {
            (&mut self.keys, MAX_KEYS, "private keys")
        } else {
            (&mut self.certs, MAX_CERTIFICATES, "certificates")
        };
        *count += 1;
        if *count > max {
            return Err(Error::TooManyObjects { what, max });
        }
        Ok(())
    }
}

/// Everything found in one source, in order; certificates and keys are counted in `counted`
/// before they are parsed.
pub(super) fn objects_in(source: &Source, counted: &mut Counted) -> Result<Vec<Found>> {
    if looks_like_pem(&source.bytes) {
        let blocks = match crate::pem::blocks(&source.bytes) {
            Ok(blocks) => blocks.into_iter().map(Ok).collect(),
            // Read each block alone, so that the damaged one is named by its label and the
            // others still count.
            Err(_) => crate::pem::blocks_one_by_one(&source.bytes),
        };
        let mut found = Vec::new();
        for block in &blocks {
            let label = match block {
                Ok(block) => block.tag(),
                Err(damaged) => damaged.label.as_str(),
            };
            if let Some(is_key) = holds_cert_or_key(label) {
                counted.one_more(is_key)?;
            }
            found.extend(match block {
                Ok(block) => object_in_pem(block),
                Err(damaged) => Some(Found::Refused(damaged_block(damaged))),
            });
        }
        return Ok(found);
    }
    let found = object_in_der(&source.bytes);
    match &found {
        Some(Found::Cert(_)) => counted.one_more(false)?,
        Some(Found::Key(_)) => counted.one_more(true)?,
        _ => {}
    }
    Ok(found.into_iter().collect())
}

/// Whether a PEM label holds a certificate (`Some(false)`) or a private key (`Some(true)`).
fn holds_cert_or_key(tag: &str) -> Option<bool> {
    match tag {
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => Some(false),
        "PRIVATE KEY"
        | "RSA PRIVATE KEY"
        | "EC PRIVATE KEY"
        | "ENCRYPTED PRIVATE KEY"
        | "DSA PRIVATE KEY" => Some(true),
        _ => None,
    }
}

/// A block whose base64 or framing is broken, refused as what its label says it was meant
/// to be: a damaged key is a key refusal (so a KEY file holding it is not said to hold
/// "a damaged certificate"), anything else a damaged certificate.
fn damaged_block(damaged: &crate::pem::Damaged) -> Refusal {
    let why = damaged.why.to_string();
    let encoding = match damaged.label.as_str() {
        "PRIVATE KEY" => "PKCS#8",
        "RSA PRIVATE KEY" => "RSA",
        "EC PRIVATE KEY" => "EC",
        "ENCRYPTED PRIVATE KEY" => "encrypted PKCS#8",
        "DSA PRIVATE KEY" => "DSA",
        "OPENSSH PRIVATE KEY" => "OpenSSH",
        _ => return Refusal::BadCertificate(CertError::DamagedPem(why)),
    };
    Refusal::UnsupportedKey(KeyError::Damaged { encoding, why })
}

fn object_in_pem(block: &crate::pem::Block) -> Option<Found> {
    let encrypted = block
        .headers()
        .get("Proc-Type")
        .is_some_and(|v| v.contains("ENCRYPTED"));
    let key = |format: KeyFormat| {
        if encrypted {
            Found::Refused(Refusal::Encrypted)
        } else {
            key_found(PrivateKey::from_der(block.contents(), format))
        }
    };
    Some(match block.tag() {
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
            match Certificate::from_der(block.contents()) {
                Ok(cert) => Found::Cert(cert),
                Err(why) => Found::Refused(Refusal::BadCertificate(why)),
            }
        }
        "PRIVATE KEY" => key(KeyFormat::Pkcs8),
        "RSA PRIVATE KEY" => key(KeyFormat::Pkcs1),
        "EC PRIVATE KEY" => key(KeyFormat::Sec1),
        "ENCRYPTED PRIVATE KEY" => Found::Refused(Refusal::Encrypted),
        "DSA PRIVATE KEY" => Found::Refused(Refusal::UnsupportedKey(KeyError::Dsa)),
        "OPENSSH PRIVATE KEY" => Found::Refused(Refusal::UnsupportedKey(KeyError::OpenSsh)),
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {
            Found::Refused(Refusal::Other("a certificate signing request (CSR)"))
        }
        "PUBLIC KEY" | "RSA PUBLIC KEY" => Found::Refused(Refusal::Other("a public key")),
        "PKCS7" | "CMS" => Found::Refused(Refusal::Other("a PKCS#7 bundle")),
        "PKCS12" => Found::Refused(Refusal::Pkcs12),
        "X509 CRL" => Found::Refused(Refusal::Other("a certificate revocation list")),
        // EC PARAMETERS and DH PARAMETERS sit beside keys and mean nothing here.
        _ => return None,
    })
}

fn key_found(parsed: std::result::Result<PrivateKey, KeyError>) -> Found {
    match parsed {
        Ok(key) => Found::Key(key),
        Err(what) => Found::Refused(Refusal::UnsupportedKey(what)),
    }
}

/// A file that is not PEM: a DER certificate or key, or something to name in an error.
fn object_in_der(bytes: &[u8]) -> Option<Found> {
    if bytes.first() != Some(&0x30) {
        return None;
    }
    if let Ok(cert) = Certificate::from_der(bytes) {
        return Some(Found::Cert(cert));
    }
    if let Some(parsed) = PrivateKey::sniff_der(bytes) {
        return Some(key_found(parsed));
    }
    if is_encrypted_pkcs8(bytes) {
        return Some(Found::Refused(Refusal::Encrypted));
    }
    if looks_like_pkcs12(bytes) {
        return Some(Found::Refused(Refusal::Pkcs12));
    }
    None
}

/// PKCS#12: SEQUENCE { INTEGER 3, ContentInfo { OID pkcs7-data ... } ... }.
fn looks_like_pkcs12(bytes: &[u8]) -> bool {
    const PKCS7_DATA: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
    ];
    let head = &bytes[..bytes.len().min(32)];
    head.windows(3).any(|w| w == [0x02, 0x01, 0x03])
        && bytes[..bytes.len().min(64)]
            .windows(11)
            .any(|w| w == PKCS7_DATA)
}
