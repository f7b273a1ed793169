//! Pairing: which certificate goes with which key, through a map of public keys, and which
//! one is the server certificate when several have their key present.

use std::collections::{HashMap, HashSet};

use crate::cert::{Certificate, Issuers};
use crate::error::{Error, Result};
use crate::key::{PrivateKey, PublicKey};

/// Pairs keys with the certificates they belong to (through a map of public keys); exactly
/// one server certificate must remain. Returns the leaf's index in `certs` and its key.
pub(super) fn choose_pair(
    certs: &[(Certificate, String)],
    keys: &[(PrivateKey, String)],
    issuers: &Issuers<'_>,
) -> Result<(usize, PrivateKey)> {
    let mut key_of: HashMap<&PublicKey, usize> = HashMap::new();
    for (index, (key, _)) in keys.iter().enumerate() {
        key_of.entry(key.public_key()).or_insert(index);
    }
    let mut pairs: Vec<(usize, usize)> = certs
        .iter()
        .enumerate()
        .filter_map(|(c, (cert, _))| key_of.get(&cert.public_key).map(|&k| (c, k)))
        .collect();
    if pairs.is_empty() {
        if let Some((ca, file)) = certs
            .iter()
            .find(|(c, _)| c.is_intermediate_ca())
            .filter(|_| certs.iter().all(|(c, _)| c.is_ca))
        {
            return Err(Error::CaAsLeaf {
                file: file.clone(),
                issuer: ca.issuer.clone(),
            });
        }
        return Err(Error::KeyMismatch {
            certs: unique_files(certs.iter().map(|(_, f)| f)),
            keys: unique_files(keys.iter().map(|(_, f)| f)),
        });
    }
    if pairs.len() > 1 {
        // A server certificate and the CA above it may both have their keys present; the
        // server one wins: drop every server certificate that issued another one.
        let servers: Vec<(usize, usize)> = pairs
            .iter()
            .copied()
            .filter(|&(c, _)| !certs[c].0.is_ca || certs[c].0.self_signed)
            .collect();
        let is_server: HashSet<usize> = servers.iter().map(|&(c, _)| c).collect();
        let issued_a_server: HashSet<usize> = servers
            .iter()
            .flat_map(|&(c, _)| issuers.issuers_among(c, &is_server))
            .collect();
        let leaves: Vec<(usize, usize)> = servers
            .into_iter()
            .filter(|(c, _)| !issued_a_server.contains(c))
            .collect();
        if leaves.len() != 1 {
            let listed = pairs
                .iter()
                .map(|&(c, k)| {
                    let (cert, cert_file) = &certs[c];
                    format!(
                        "{} + {} for {}",
                        cert_file,
                        keys[k].1,
                        cert.common_name.as_deref().unwrap_or(&cert.subject)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::Ambiguous {
                count: pairs.len(),
                pairs: listed,
            });
        }
        pairs = leaves;
    }
    let (cert, key) = pairs[0];
    Ok((cert, keys[key].0.clone()))
}

fn unique_files<'a>(files: impl Iterator<Item = &'a String>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for file in files {
        if !seen.contains(&file.as_str()) {
            seen.push(file);
        }
    }
    seen.join(", ")
}
