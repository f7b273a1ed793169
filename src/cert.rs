//! Certificates: parse, inspect, order chains, verify, and format names and dates as
//! openssl prints them (dokku's certs:info and certs:report show openssl's words).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};
use x509_parser::x509::AttributeTypeAndValue;

use crate::key::{KeyError, PublicKey};
use crate::text::printable;

/// One parsed X.509 certificate, with what dokku-certs needs of it kept owned. Its text
/// fields are for display and already escaped ([`printable`]): whoever made the certificate
/// chose them, and no command may print an ESC or a newline from them.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    /// Subject as openssl's compat form turned into dokku's `C=US; ST=...; CN=...`.
    pub subject: String,
    /// Issuer as dokku prints it, from openssl 3's `-text`: `C = US, ST = ..., CN = ...`.
    pub issuer: String,
    /// Start of validity, seconds since the epoch.
    pub not_before: i64,
    /// End of validity, seconds since the epoch.
    pub not_after: i64,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
    /// DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// Whether basicConstraints says CA:TRUE.
    pub is_ca: bool,
    /// The public key the matching private key must have.
    pub public_key: PublicKey,
    /// Issuer equals subject and the certificate's own key verifies its signature.
    pub self_signed: bool,
}

/// Why a certificate (or a file of them) cannot be read. The text completes "FILE holds a
/// certificate that cannot be parsed (...)".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The DER is not an X.509 certificate; x509-parser's reason.
    #[error("{0}")]
    Parse(String),
    /// Its public key is one dokku-certs cannot pair with a key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// PEM text that does not decode.
    #[error("damaged PEM ({0})")]
    DamagedPem(String),
    /// A `CERTIFICATE` block that does not decode; the byte-level reader's reason.
    #[error(transparent)]
    BadBlock(#[from] crate::pem::BlockError),
    /// A file that should hold certificates holds none.
    #[error("it holds no PEM certificate")]
    Empty,
}

impl Certificate {
    /// Parses one DER certificate; trailing bytes are ignored.
    pub fn from_der(der: &[u8]) -> std::result::Result<Certificate, CertError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CertError::Parse(e.to_string()))?;
        let der = der[..der.len() - rest.len()].to_vec();
        let spki = cert.public_key();
        let parameters = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let public_key = PublicKey::from_spki(
            spki.algorithm.algorithm.as_bytes(),
            parameters.as_ref().map(|oid| oid.as_bytes()),
            &spki.subject_public_key.data,
        )?;
        let dns_names = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        x509_parser::extensions::GeneralName::DNSName(dns) => Some(printable(dns)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let is_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        let self_issued = cert.subject().as_raw() == cert.issuer().as_raw();
        Ok(Certificate {
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            subject: printable(&format_name(cert.subject(), "; ")),
            // Printable ASCII by construction: openssl's escapes, not `printable`'s.
            issuer: format_name_oneline(cert.issuer()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            common_name: cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(printable),
            dns_names,
            is_ca,
            public_key,
            self_signed: self_issued && signature_checks_out(&cert, None),
            der,
        })
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as one PEM block.
    pub fn to_pem(&self) -> String {
        crate::pem::encode("CERTIFICATE", &self.der)
    }

    /// The names dokku lists as "Common Name(s)": CN and SAN DNS names, sorted, unique.
    pub fn hostnames(&self) -> Vec<String> {
        let names: BTreeSet<String> = self
            .common_name
            .iter()
            .chain(&self.dns_names)
            .cloned()
            .collect();
        names.into_iter().collect()
    }

    /// The names a browser checks a host against: the SAN DNS names, or the CN without them.
    pub fn names_for_matching(&self) -> Vec<String> {
        if self.dns_names.is_empty() {
            self.common_name.iter().cloned().collect()
        } else {
            self.dns_names.clone()
        }
    }

    /// Whether `issuer` issued this certificate: names chain and its key verifies the signature.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        if self.issuer_raw != issuer.subject_raw {
            return false;
        }
        match (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) {
            (Ok((_, child)), Ok((_, parent))) => signature_checks_out(&child, Some(&parent)),
            _ => false,
        }
    }

    /// A CA certificate that some other CA issued: an intermediate, never a server certificate.
    pub fn is_intermediate_ca(&self) -> bool {
        self.is_ca && !self.self_signed
    }
}

/// Verifies a signature; an algorithm the library no longer checks (SHA-1 with DSA, MD5...)
/// counts as verified, since only the names can be compared then.
fn signature_checks_out(cert: &X509Certificate<'_>, issuer: Option<&X509Certificate<'_>>) -> bool {
    use x509_parser::error::X509Error;
    match cert.verify_signature(issuer.map(|i| i.public_key())) {
        Ok(()) => true,
        Err(X509Error::SignatureUnsupportedAlgorithm) => true,
        Err(_) => false,
    }
}

/// Who issued whom among the certificates of one input. Candidates are found by name
/// (a map from subject to certificates), and a signature is checked only for a candidate,
/// at most once per certificate and issuer key: an input of many certificates under one
/// name, or sharing one key, costs one check per certificate, not one per pair.
pub struct Issuers<'a> {
    certs: &'a [Certificate],
    by_subject: HashMap<&'a [u8], Vec<usize>>,
    /// Per certificate: the index of the first certificate with the same public key.
    key_id: Vec<usize>,
    checked: RefCell<HashMap<(usize, usize), bool>>,
}

impl<'a> Issuers<'a> {
    /// Indexes `certs` (expected free of duplicates) by subject and by public key.
    pub fn new(certs: &'a [Certificate]) -> Issuers<'a> {
        let mut by_subject: HashMap<&[u8], Vec<usize>> = HashMap::new();
        let mut first_with_key: HashMap<&PublicKey, usize> = HashMap::new();
        let mut key_id = Vec::with_capacity(certs.len());
        for (index, cert) in certs.iter().enumerate() {
            by_subject
                .entry(cert.subject_raw.as_slice())
                .or_default()
                .push(index);
            key_id.push(*first_with_key.entry(&cert.public_key).or_insert(index));
        }
        Issuers {
            certs,
            by_subject,
            key_id,
            checked: RefCell::new(HashMap::new()),
        }
    }

    /// The certificates among `among` that issued `certs[child]` (itself excluded), in input
    /// order; only those in `among` have their signature checked.
    pub fn issuers_among<'s>(
        &'s self,
        child: usize,
        among: &'s HashSet<usize>,
    ) -> impl Iterator<Item = usize> + 's {
        self.named_issuers(child)
            .filter(move |&issuer| among.contains(&issuer) && self.signed(child, issuer))
    }

    /// The other certificates whose subject is `certs[child]`'s issuer: no signature checked yet.
    fn named_issuers(&self, child: usize) -> impl Iterator<Item = usize> + '_ {
        let named = self.by_subject.get(self.certs[child].issuer_raw.as_slice());
        named
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&issuer| issuer != child)
    }

    fn signed(&self, child: usize, issuer: usize) -> bool {
        let key = (child, self.key_id[issuer]);
        if let Some(&known) = self.checked.borrow().get(&key) {
            return known;
        }
        let verdict = self.certs[child].is_issued_by(&self.certs[issuer]);
        self.checked.borrow_mut().insert(key, verdict);
        verdict
    }

    /// The chain above `certs[leaf]`: each next certificate the issuer of the previous one,
    /// up to a self-signed root or until no issuer is left. Returns the indexes (without the
    /// leaf), or `Err(max)` if the chain, leaf included, would be longer than `max`.
    pub fn chain_above(&self, leaf: usize, max: usize) -> Result<Vec<usize>, usize> {
        let mut used = vec![false; self.certs.len()];
        used[leaf] = true;
        let mut chain = Vec::new();
        let mut current = leaf;
        while !self.certs[current].self_signed {
            let Some(next) = self
                .named_issuers(current)
                .find(|&i| !used[i] && self.signed(current, i))
            else {
                break;
            };
            if chain.len() + 2 > max {
                return Err(max);
            }
            used[next] = true;
            chain.push(next);
            current = next;
        }
        Ok(chain)
    }
}

/// Formats seconds since the epoch as openssl does: `Aug 24 23:32:59 2016 GMT`.
pub fn format_openssl_date(timestamp: i64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(timestamp) else {
        return format!("@{timestamp}");
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:>2} {:02}:{:02}:{:02} {} GMT",
        MONTHS[at.month() as usize - 1],
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.year()
    )
}

/// Formats a name as openssl's short names, `C=US<sep>ST=...`, RDNs in certificate order.
pub fn format_name(name: &X509Name<'_>, separator: &str) -> String {
    name.iter()
        .map(|rdn| {
            rdn.iter()
                .map(format_attribute)
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect::<Vec<_>>()
        .join(separator)
}

fn format_attribute(attribute: &AttributeTypeAndValue<'_>) -> String {
    let value = attribute
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|_| hex_value(attribute));
    format!("{}={value}", short_name(attribute))
}

/// Formats a name as openssl 3's `x509 -text` does (its `oneline` name option), which is
/// what dokku's certs:report shows as the issuer: `C = US, O = "Foo, Inc.", CN = x`.
pub fn format_name_oneline(name: &X509Name<'_>) -> String {
    let attribute = |a: &AttributeTypeAndValue<'_>| {
        let value = a
            .as_str()
            .map(oneline_value)
            .unwrap_or_else(|_| hex_value(a));
        format!("{} = {value}", short_name(a))
    };
    name.iter()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join(" + "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// openssl's escaping under `oneline` (RFC 2253 with quotes): a value holding `,+<>;` or
/// starting with `#` or a space, or ending with a space, is put in double quotes; `"` and
/// `\` get a backslash; control characters and every byte of a non-ASCII character are `\XX`.
fn oneline_value(value: &str) -> String {
    let mut quote = value.starts_with(['#', ' ']) || value.ends_with(' ');
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b',' | b'+' | b'<' | b'>' | b';' => {
                quote = true;
                out.push(byte as char);
            }
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0..0x20 | 0x7f.. => out.push_str(&format!("\\{byte:02X}")),
            _ => out.push(byte as char),
        }
    }
    if quote { format!("\"{out}\"") } else { out }
}

/// A value that is not a string, as openssl dumps it: `#` and its DER bytes in hex.
fn hex_value(attribute: &AttributeTypeAndValue<'_>) -> String {
    let hex: String = attribute
        .attr_value()
        .data
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    format!("#{hex}")
}

/// The attribute's short name as openssl prints it (its OID when openssl has none).
fn short_name(attribute: &AttributeTypeAndValue<'_>) -> String {
    let oid = attribute.attr_type().to_id_string();
    let key = match oid.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "2.5.4.4" => "SN",
        "2.5.4.42" => "GN",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return oid,
    };
    key.to_string()
}

/// How far a certificate chain can be trusted, as certs:info words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The leaf signed itself.
    SelfSigned,
    /// The chain verifies to a root in the system trust store.
    Verified,
    /// Neither: why not, e.g. the chain is incomplete.
    NotVerified(String),
}

impl Trust {
    /// The words after "SSL certificate is " (without the final dot).
    pub fn describe(&self) -> String {
        match self {
            Trust::SelfSigned => "self signed".into(),
            Trust::Verified => "verified by a certificate authority".into(),
            Trust::NotVerified(why) => format!("not verified: {why}"),
        }
    }
}

/// The system's CA bundle files, as Debian/Ubuntu, Fedora/RHEL, openSUSE and Alpine name
/// them (the list Go's crypto/x509 reads).
const CA_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's trusted roots, loaded once per run and only when a chain must be verified.
/// One bundle file is read (SSL_CERT_FILE, else the distribution's bundle); a directory
/// (SSL_CERT_DIR, or no bundle at all) goes through rustls-native-certs. Reading the bundle
/// alone, decoded with `crate::pem::certificates`, takes a tenth of the time of rustls-native-certs,
/// which reads both the bundle and every file in /etc/ssl/certs with a constant-time base64
/// decoder (trust roots are public, so constant time buys nothing here).
fn trust_anchors() -> &'static [rustls_pki_types::TrustAnchor<'static>] {
    static ANCHORS: OnceLock<Vec<rustls_pki_types::TrustAnchor<'static>>> = OnceLock::new();
    ANCHORS.get_or_init(|| {
        let bundle = match std::env::var_os("SSL_CERT_FILE") {
            Some(file) => Some(std::path::PathBuf::from(file)),
            None if std::env::var_os("SSL_CERT_DIR").is_some() => None,
            None => CA_BUNDLES
                .iter()
                .map(std::path::PathBuf::from)
                .find(|path| path.is_file()),
        };
        let ders: Vec<Vec<u8>> = match bundle {
            Some(path) => std::fs::read(path)
                .ok()
                .and_then(|bytes| crate::pem::certificates(&bytes).ok())
                .unwrap_or_default(),
            None => rustls_native_certs::load_native_certs()
                .certs
                .into_iter()
                .map(|der| der.to_vec())
                .collect(),
        };
        ders.iter()
            .filter_map(|der| {
                let der = CertificateDer::from(der.as_slice());
                webpki::anchor_from_trusted_cert(&der)
                    .ok()
                    .map(|anchor| anchor.to_owned())
            })
            .collect()
    })
}

/// Decides whether `chain` (leaf first) is self-signed, verified by a CA the system
/// trusts, or neither, checking validity at `now` (seconds since the epoch).
pub fn trust_of(chain: &[Certificate], now: i64) -> Trust {
    let Some(leaf) = chain.first() else {
        return Trust::NotVerified("the file holds no certificate".into());
    };
    if leaf.self_signed {
        return Trust::SelfSigned;
    }
    let leaf_der = CertificateDer::from(leaf.der.as_slice());
    let end_entity = match webpki::EndEntityCert::try_from(&leaf_der) {
        Ok(end_entity) => end_entity,
        Err(e) => return Trust::NotVerified(format!("the certificate cannot be checked ({e})")),
    };
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(c.der.as_slice()))
        .collect();
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    match end_entity.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        trust_anchors(),
        &intermediates,
        time,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    ) {
        Ok(_) => Trust::Verified,
        Err(error) => Trust::NotVerified(explain_webpki(&error, chain)),
    }
}

#[allow(deprecated)] // the older variants are still what some paths return
fn explain_webpki(error: &webpki::Error, chain: &[Certificate]) -> String {
    use webpki::Error as E;
    let leaf = &chain[0];
    match error {
        E::UnknownIssuer if ends_at_own_root(chain) => format!(
            "the chain is complete, but its root ({}) is not in the system trust store; a private CA is trusted only by clients that install its root",
            chain[chain.len() - 1].subject
        ),
        E::UnknownIssuer => format!(
            "the chain is incomplete or its root is not trusted (no trusted issuer found for {}); append the intermediate certificates after the server certificate",
            leaf.issuer
        ),
        E::CertExpired { .. } => "a certificate in the chain has expired".into(),
        E::CertNotValidYet { .. } => "a certificate in the chain is not valid yet".into(),
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
            "the certificate is not issued for TLS servers (extended key usage)".into()
        }
        E::InvalidSignatureForPublicKey => "a signature in the chain does not verify".into(),
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "the chain uses a signature algorithm no longer accepted (such as SHA-1)".into()
        }
        E::CaUsedAsEndEntity => "the server certificate is a CA certificate".into(),
        other => format!("the chain does not verify ({other})"),
    }
}

/// Whether `chain` links from the leaf up to a self-signed root it carries itself: then
/// nothing is missing from the file, only the root is not trusted.
fn ends_at_own_root(chain: &[Certificate]) -> bool {
    chain.len() > 1
        && chain[chain.len() - 1].self_signed
        && chain.windows(2).all(|pair| pair[0].is_issued_by(&pair[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::now;

    #[test]
    fn issuer_values_are_escaped_as_openssl_oneline() {
        // What openssl 3.0's `x509 -text` printed for these values.
        assert_eq!(oneline_value("dokku.me"), "dokku.me");
        assert_eq!(oneline_value("Foo, Inc. \"x\""), "\"Foo, Inc. \\\"x\\\"\"");
        assert_eq!(oneline_value("tëst.example.com"), "t\\C3\\ABst.example.com");
        // Control characters and bidi overrides come out as escapes: printable ASCII only.
        assert_eq!(oneline_value("a\x1b[2J\u{202E}"), "a\\1B[2J\\E2\\80\\AE");
    }

    #[test]
    fn dates_look_like_openssl() {
        assert_eq!(
            format_openssl_date(1_472_081_579),
            "Aug 24 23:32:59 2016 GMT"
        );
        assert_eq!(
            format_openssl_date(1_441_065_600),
            "Sep  1 00:00:00 2015 GMT"
        );
    }

    fn self_signed(domain: &str) -> Certificate {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![domain.to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "US");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, domain);
        Certificate::from_der(params.self_signed(&key).unwrap().der()).unwrap()
    }

    #[test]
    fn names_are_formatted_as_dokku_prints_them() {
        let cert = self_signed("test.dokku.me");
        assert_eq!(cert.subject, "C=US; CN=test.dokku.me");
        assert_eq!(cert.issuer, "C = US, CN = test.dokku.me");
        assert_eq!(cert.hostnames(), vec!["test.dokku.me"]);
        assert!(cert.self_signed);
        assert_eq!(trust_of(&[cert], now()), Trust::SelfSigned);
    }
}
