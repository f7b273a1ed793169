//! Finds the certificate, its chain and its key in two files, a directory or a tar archive,
//! by content rather than by name. Archives are read in memory within fixed limits and
//! nothing from them is ever written to a path they name.
//!
//! [`archive`] reads stdin, [`classify`] tells what each block holds, [`pairing`] matches
//! keys and certificates, and [`diagnosis`] only chooses which refusal to show when no pair
//! can be installed. [`assemble`] puts them together.

use std::collections::HashSet;

use crate::cert::{Certificate, Issuers};
use crate::error::{Error, Result};
use crate::key::PrivateKey;

mod archive;
mod classify;
mod diagnosis;
mod pairing;

pub(crate) use archive::{entry_source, is_hidden_name};
pub use archive::{sources_from_archive, sources_from_reader};
use classify::{Counted, Found, Refusal, objects_in};
use diagnosis::{check_file_roles, no_certificate, no_key};
use pairing::choose_pair;

/// Most bytes read from stdin or from one file given on the command line.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;
/// Most bytes of one archive entry that are looked at; larger entries are skipped.
pub const MAX_ENTRY_BYTES: u64 = 1024 * 1024;
/// Most bytes an archive may unpack to in all (a gzip bomb stops here).
pub const MAX_UNPACKED_BYTES: u64 = 16 * 1024 * 1024;
/// Most entries an archive may hold.
pub const MAX_ENTRIES: usize = 10_000;
/// Most certificates one input may hold, duplicates counted: a bundle is a server
/// certificate and a few intermediates (certbot's cert, chain and fullchain hold 4).
/// Each one costs a parse and maybe a signature check, so the count is capped before
/// the work, not after.
pub const MAX_CERTIFICATES: usize = 64;
/// Most private keys one input may hold.
pub const MAX_KEYS: usize = 16;
/// Longest chain written to server.crt, server certificate included: real chains are 2 to
/// 4 long, and clients give up on a handshake whose certificates fill too many bytes.
pub const MAX_CHAIN: usize = 16;

/// One file's worth of input: its name (as the user knows it) and its bytes.
#[derive(Debug, Clone)]
pub struct Source {
    /// Path as given on the command line or inside the archive.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A certificate, its chain and its key, checked to belong together.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Leaf first, then each issuer in order.
    pub chain: Vec<Certificate>,
    /// The key of the leaf.
    pub key: PrivateKey,
    /// Things worth telling the user that do not stop the import.
    pub notes: Vec<String>,
}

impl Bundle {
    /// The leaf (server) certificate.
    pub fn leaf(&self) -> &Certificate {
        &self.chain[0]
    }

    /// server.crt as written to disk: leaf first, then its chain, PEM.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(Certificate::to_pem).collect()
    }
}

/// Where the input came from, which changes how a missing piece is explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `certs:add <app> CRT KEY`: the first source is the certificate, the second the key.
    Files,
    /// A tar archive (or PEM) on stdin.
    Archive,
}

/// Finds the one certificate/key pair in `sources`, with the leaf's chain in order. An input
/// over [`MAX_CERTIFICATES`], [`MAX_KEYS`] or [`MAX_CHAIN`] is refused; below them the work
/// is near-linear: pairs are found through a map of public keys, issuers through a map of
/// subjects, and a signature is checked only between a certificate and a named issuer.
pub fn assemble(sources: &[Source], origin: Origin) -> Result<Bundle> {
    let mut certs: Vec<(Certificate, String)> = Vec::new();
    let mut keys: Vec<(PrivateKey, String)> = Vec::new();
    let mut refused: Vec<(Refusal, String)> = Vec::new();
    let mut seen_certs: HashSet<Vec<u8>> = HashSet::new();
    let mut counted = Counted::default();
    for source in sources {
        for found in objects_in(source, &mut counted)? {
            match found {
                Found::Cert(cert) if !seen_certs.insert(cert.der().to_vec()) => {}
                Found::Cert(cert) => certs.push((cert, source.name.clone())),
                Found::Key(key) if keys.iter().any(|(k, _)| *k == key) => {}
                Found::Key(key) => keys.push((key, source.name.clone())),
                Found::Refused(refusal) => refused.push((refusal, source.name.clone())),
            }
        }
    }
    if origin == Origin::Files {
        check_file_roles(sources, &certs, &keys, &refused)?;
    }
    if certs.is_empty() {
        return Err(no_certificate(sources, &refused));
    }
    if keys.is_empty() {
        return Err(no_key(sources, &refused));
    }
    let only_certs: Vec<Certificate> = certs.iter().map(|(c, _)| c.clone()).collect();
    let issuers = Issuers::new(&only_certs);
    let (leaf_index, key) = choose_pair(&certs, &keys, &issuers)?;
    let (leaf, leaf_file) = &certs[leaf_index];
    if leaf.is_intermediate_ca() {
        return Err(Error::CaAsLeaf {
            file: leaf_file.clone(),
            issuer: leaf.issuer.clone(),
        });
    }
    let above = issuers
        .chain_above(leaf_index, MAX_CHAIN)
        .map_err(|max| Error::ChainTooLong { max })?;
    let mut notes: Vec<String> = (0..certs.len())
        .filter(|i| *i != leaf_index && !above.contains(i))
        .map(|i| {
            let c = &certs[i].0;
            format!(
                "ignored the certificate {} (issued by {}): it is not in the server certificate's chain",
                c.subject, c.issuer
            )
        })
        .collect();
    if keys.len() > 1 {
        notes.push(format!(
            "used the key that matches the certificate; {} other key(s) ignored",
            keys.len() - 1
        ));
    }
    let chain = std::iter::once(leaf_index)
        .chain(above)
        .map(|i| certs[i].0.clone())
        .collect();
    Ok(Bundle { chain, key, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_ten_sources_and_counts_the_rest() {
        let sources: Vec<Source> = (0..25)
            .map(|i| Source {
                name: format!("f{i}"),
                bytes: vec![0x30],
            })
            .collect();
        let Err(Error::NoCertificate(listed)) = assemble(&sources, Origin::Archive) else {
            panic!("not refused")
        };
        assert_eq!(listed, "f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 and 15 more");
    }
}
