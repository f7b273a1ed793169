//! Diagnosis: when no pair can be installed, which refusal to show. Nothing here decides
//! what is installed; it only picks the message that names the file and what it holds.

use super::Source;
use super::classify::Refusal;
use crate::cert::Certificate;
use crate::error::{Error, Result};
use crate::key::PrivateKey;

/// With two files, each must hold what its place says, or the error names what it holds.
pub(super) fn check_file_roles(
    sources: &[Source],
    certs: &[(Certificate, String)],
    keys: &[(PrivateKey, String)],
    refused: &[(Refusal, String)],
) -> Result<()> {
    let [crt, key] = sources else { return Ok(()) };
    let in_file = |name: &str| refusals_in(refused, name);
    if !certs.iter().any(|(_, file)| *file == crt.name) {
        // A damaged certificate where one belongs is said to be damaged, not "of the wrong kind".
        if let Some(r) =
            in_file(&crt.name).find(|r| matches!(r, Refusal::Pkcs12 | Refusal::BadCertificate(_)))
        {
            return Err(refusal_error(r, &crt.name));
        }
        let got = if keys.iter().any(|(_, file)| *file == crt.name)
            || in_file(&crt.name).any(is_key_refusal)
        {
            "a private key".to_string()
        } else if let Some(r) = in_file(&crt.name).next() {
            describe_refusal(r)
        } else {
            return Err(Error::NoCertificate(crt.name.clone()));
        };
        return Err(Error::WrongKind {
            file: crt.name.clone(),
            got,
            wanted: "a certificate",
            hint: "give the certificate first, then its key: certs:add <app> CRT KEY",
        });
    }
    if !keys.iter().any(|(_, file)| *file == key.name) {
        if let Some(r) =
            in_file(&key.name).find(|r| is_key_refusal(r) || matches!(r, Refusal::Pkcs12))
        {
            return Err(refusal_error(r, &key.name));
        }
        let got = if certs.iter().any(|(_, file)| *file == key.name) {
            "a certificate".to_string()
        } else if let Some(r) = in_file(&key.name).next() {
            describe_refusal(r)
        } else {
            return Err(Error::NoKey(key.name.clone()));
        };
        return Err(Error::WrongKind {
            file: key.name.clone(),
            got,
            wanted: "a private key",
            hint: "give the certificate first, then its key: certs:add <app> CRT KEY",
        });
    }
    Ok(())
}

fn refusals_in<'a>(
    refused: &'a [(Refusal, String)],
    file: &str,
) -> impl Iterator<Item = &'a Refusal> + use<'a> {
    let file = file.to_string();
    refused
        .iter()
        .filter(move |(_, f)| *f == file)
        .map(|(r, _)| r)
}

fn is_key_refusal(refusal: &Refusal) -> bool {
    matches!(refusal, Refusal::Encrypted | Refusal::UnsupportedKey(_))
}

fn describe_refusal(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Encrypted => "an encrypted private key".into(),
        Refusal::Pkcs12 => "a PKCS#12 bundle".into(),
        Refusal::BadCertificate(why) => format!("a damaged certificate ({why})"),
        Refusal::UnsupportedKey(what) => what.to_string(),
        Refusal::Other(what) => (*what).into(),
    }
}

fn refusal_error(refusal: &Refusal, file: &str) -> Error {
    match refusal {
        Refusal::Encrypted => Error::EncryptedKey(file.into()),
        Refusal::Pkcs12 => Error::Pkcs12(file.into()),
        Refusal::BadCertificate(why) => Error::BadCertificate {
            file: file.into(),
            why: why.clone(),
        },
        Refusal::UnsupportedKey(what) => Error::UnsupportedKey {
            file: file.into(),
            what: what.clone(),
        },
        Refusal::Other(what) => Error::WrongKind {
            file: file.into(),
            got: (*what).into(),
            wanted: "a certificate or a private key",
            hint: "send the server certificate and its private key",
        },
    }
}

/// The sources' names for an error message: the first few, then how many more (an archive
/// of 10,000 entries would otherwise make a line of a hundred kilobytes).
fn names(sources: &[Source]) -> String {
    const SHOWN: usize = 10;
    if sources.is_empty() {
        return "the input".into();
    }
    let mut listed = sources
        .iter()
        .take(SHOWN)
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if sources.len() > SHOWN {
        listed.push_str(&format!(" and {} more", sources.len() - SHOWN));
    }
    listed
}

pub(super) fn no_certificate(sources: &[Source], refused: &[(Refusal, String)]) -> Error {
    let first = |wanted: fn(&Refusal) -> bool| refused.iter().find(|(r, _)| wanted(r));
    if let Some((r, file)) = first(|r| matches!(r, Refusal::Pkcs12))
        .or_else(|| first(|r| matches!(r, Refusal::BadCertificate(_))))
        .or_else(|| first(|r| matches!(r, Refusal::Other(_))))
    {
        return refusal_error(r, file);
    }
    Error::NoCertificate(names(sources))
}

pub(super) fn no_key(sources: &[Source], refused: &[(Refusal, String)]) -> Error {
    let first = |wanted: fn(&Refusal) -> bool| refused.iter().find(|(r, _)| wanted(r));
    if let Some((r, file)) = first(|r| matches!(r, Refusal::Encrypted))
        .or_else(|| first(|r| matches!(r, Refusal::UnsupportedKey(_))))
        .or_else(|| first(|r| matches!(r, Refusal::Pkcs12)))
    {
        return refusal_error(r, file);
    }
    Error::NoKey(names(sources))
}
