//! DNS-01: publishing `_acme-challenge` TXT records and taking them away again.
//!
//! Two providers, with lego's variable names so that dokku-letsencrypt set-ups carry over:
//! - `rfc2136`: TSIG-signed dynamic updates (RFC 2136, RFC 8945) sent over TCP to
//!   `RFC2136_NAMESERVER`, the same server then asked (without recursion) until it answers
//!   the value, within `RFC2136_PROPAGATION_TIMEOUT`. The messages come from hickory-proto:
//!   its TSIG signer and verifier are maintained and tested against BIND, which a
//!   hand-written HMAC over a hand-built wire format would not be.
//! - `exec`: `EXEC_PATH present|cleanup FQDN VALUE`, lego's default (non-raw) protocol; the
//!   script returns once the record is published.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode, update_message};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType, TSigner};

/// The property keys each provider reads (after the `dns-provider-` prefix).
pub const RFC2136_KEYS: [&str; 5] = [
    "RFC2136_NAMESERVER",
    "RFC2136_TSIG_KEY",
    "RFC2136_TSIG_SECRET",
    "RFC2136_TSIG_ALGORITHM",
    "RFC2136_PROPAGATION_TIMEOUT",
];
/// The exec provider's keys.
pub const EXEC_KEYS: [&str; 2] = ["EXEC_PATH", "EXEC_PROPAGATION_TIMEOUT"];
/// Keys whose values are secrets: never printed.
pub const SECRET_KEYS: [&str; 1] = ["RFC2136_TSIG_SECRET"];

/// TTL of the TXT records: short, they live for one validation.
const TTL: u32 = 60;
/// One DNS exchange may take this long.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// lego's default propagation timeout for rfc2136, in seconds.
const DEFAULT_PROPAGATION_TIMEOUT: u64 = 60;

/// A configured DNS provider.
#[derive(Clone)]
pub enum Provider {
    /// RFC 2136 dynamic updates.
    Rfc2136(Rfc2136),
    /// An external program.
    Exec(Exec),
}

/// One TXT record to publish: `_acme-challenge.<domain>.` and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txt {
    /// The record's name, fully qualified with a trailing dot.
    pub fqdn: String,
    /// The base64url SHA-256 digest of the key authorization.
    pub value: String,
}

impl Txt {
    /// The record that answers the challenge for `domain` (a wildcard's `*.` dropped, as
    /// RFC 8555 §8.4 says).
    pub fn for_domain(domain: &str, value: String) -> Txt {
        let base = domain.trim_start_matches("*.").trim_end_matches('.');
        Txt {
            fqdn: format!("_acme-challenge.{base}."),
            value,
        }
    }
}

impl Provider {
    /// The provider named by `dns-provider`, configured from its `dns-provider-*` values;
    /// `Ok(None)` for `none` or no provider.
    pub fn from_settings(
        name: Option<&str>,
        values: &BTreeMap<String, String>,
    ) -> Result<Option<Provider>, String> {
        match name {
            None | Some("none") | Some("") => Ok(None),
            Some("rfc2136") => Rfc2136::from_values(values).map(|p| Some(Provider::Rfc2136(p))),
            Some("exec") => Exec::from_values(values).map(|p| Some(Provider::Exec(p))),
            Some(other) => Err(format!(
                "unknown dns-provider {other:?}; use rfc2136, exec or none"
            )),
        }
    }

    /// Publishes the record.
    pub fn present(&self, txt: &Txt) -> Result<(), String> {
        match self {
            Provider::Rfc2136(p) => p.update(txt, true),
            Provider::Exec(p) => p.run("present", txt),
        }
    }

    /// Removes the record (only this value: a concurrent order's value stays).
    pub fn cleanup(&self, txt: &Txt) -> Result<(), String> {
        match self {
            Provider::Rfc2136(p) => p.update(txt, false),
            Provider::Exec(p) => p.run("cleanup", txt),
        }
    }

    /// Returns once the authoritative server answers every value, or says what is missing
    /// when the propagation timeout passes. The exec script publishes synchronously.
    pub fn wait_propagated(&self, records: &[Txt]) -> Result<(), String> {
        let Provider::Rfc2136(p) = self else {
            return Ok(());
        };
        let deadline = Instant::now() + p.propagation_timeout;
        for txt in records {
            loop {
                let values = p.txt_values(&txt.fqdn)?;
                if values.contains(&txt.value) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "{} does not answer the TXT record for {} after {} s (RFC2136_PROPAGATION_TIMEOUT)",
                        p.nameserver,
                        txt.fqdn,
                        p.propagation_timeout.as_secs()
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }
}

/// RFC 2136 with TSIG.
#[derive(Clone)]
pub struct Rfc2136 {
    nameserver: SocketAddr,
    signer: Option<TSigner>,
    propagation_timeout: Duration,
}

impl Rfc2136 {
    fn from_values(values: &BTreeMap<String, String>) -> Result<Rfc2136, String> {
        let get = |key: &str| {
            values
                .get(key)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let server =
            get("RFC2136_NAMESERVER").ok_or("dns-provider-RFC2136_NAMESERVER is not set")?;
        // lego's default port is 53 when none is given.
        let with_port = if server.parse::<SocketAddr>().is_ok()
            || server
                .rsplit_once(':')
                .is_some_and(|(h, _)| !h.contains(':'))
        {
            server.to_string()
        } else {
            format!("{server}:53")
        };
        let nameserver = with_port
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                format!("dns-provider-RFC2136_NAMESERVER {server:?} is not a reachable HOST[:PORT]")
            })?;
        let signer = match (get("RFC2136_TSIG_KEY"), get("RFC2136_TSIG_SECRET")) {
            (Some(key), Some(secret)) => Some(signer(key, secret, get("RFC2136_TSIG_ALGORITHM"))?),
            (None, None) => None,
            _ => {
                return Err(
                    "set both dns-provider-RFC2136_TSIG_KEY and dns-provider-RFC2136_TSIG_SECRET, or neither".into()
                );
            }
        };
        let propagation_timeout = match get("RFC2136_PROPAGATION_TIMEOUT") {
            Some(v) => v.parse().map_err(|_| {
                format!("dns-provider-RFC2136_PROPAGATION_TIMEOUT {v:?} is not seconds")
            })?,
            None => DEFAULT_PROPAGATION_TIMEOUT,
        };
        Ok(Rfc2136 {
            nameserver,
            signer,
            propagation_timeout: Duration::from_secs(propagation_timeout),
        })
    }

    /// Adds (`add`) or deletes the one TXT value, in the zone that holds the name.
    fn update(&self, txt: &Txt, add: bool) -> Result<(), String> {
        let name = parse_name(&txt.fqdn)?;
        let zone = self.zone_of(&name)?;
        let record = Record::from_rdata(name, TTL, RData::TXT(TXT::new(vec![txt.value.clone()])));
        let mut rrset = RecordSet::from(record);
        rrset.set_dns_class(DNSClass::IN);
        let message = if add {
            update_message::append(rrset, zone, false, false)
        } else {
            update_message::delete_by_rdata(rrset, zone, false)
        };
        let response = self.exchange(message)?;
        match response.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            ResponseCode::NotAuth => Err(format!(
                "{} refused the update of {}: NOTAUTH (check dns-provider-RFC2136_TSIG_KEY, _SECRET and _ALGORITHM)",
                self.nameserver, txt.fqdn
            )),
            code => Err(format!(
                "{} refused the update of {}: {code}",
                self.nameserver, txt.fqdn
            )),
        }
    }

    /// The zone that holds `name`: the owner of the SOA the authoritative server returns.
    fn zone_of(&self, name: &Name) -> Result<Name, String> {
        let response = self.query(name, RecordType::SOA)?;
        response
            .answers
            .iter()
            .chain(response.authorities.iter())
            .find(|r| r.record_type() == RecordType::SOA)
            .map(|r| r.name.clone())
            .ok_or_else(|| {
                format!(
                    "{} is not authoritative for {name} (no SOA)",
                    self.nameserver
                )
            })
    }

    /// The TXT values the server answers for `fqdn` now.
    fn txt_values(&self, fqdn: &str) -> Result<Vec<String>, String> {
        let response = self.query(&parse_name(fqdn)?, RecordType::TXT)?;
        Ok(response
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    fn query(&self, name: &Name, kind: RecordType) -> Result<Message, String> {
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(Query::query(name.clone(), kind));
        // Queries are not signed: BIND answers them to anyone, as a public server would.
        self.send(&message, None)
    }

    /// Sends a signed update and checks the response's signature.
    fn exchange(&self, mut message: Message) -> Result<Message, String> {
        let verifier = match &self.signer {
            Some(signer) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                message
                    .finalize(signer, now)
                    .map_err(|e| format!("cannot sign the update: {e}"))?
            }
            None => None,
        };
        self.send(&message, verifier)
    }

    /// One exchange over TCP (two-byte length prefix, RFC 1035 §4.2.2).
    fn send(
        &self,
        message: &Message,
        verifier: Option<hickory_proto::rr::TSigVerifier>,
    ) -> Result<Message, String> {
        let failed =
            |e: std::io::Error| format!("DNS exchange with {} failed: {e}", self.nameserver);
        let bytes = message
            .to_vec()
            .map_err(|e| format!("cannot encode a DNS message: {e}"))?;
        let mut stream =
            TcpStream::connect_timeout(&self.nameserver, EXCHANGE_TIMEOUT).map_err(failed)?;
        stream
            .set_read_timeout(Some(EXCHANGE_TIMEOUT))
            .map_err(failed)?;
        stream
            .set_write_timeout(Some(EXCHANGE_TIMEOUT))
            .map_err(failed)?;
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).map_err(failed)?;
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).map_err(failed)?;
        let mut answer = vec![0u8; u16::from_be_bytes(length) as usize];
        stream.read_exact(&mut answer).map_err(failed)?;
        let plain = Message::from_vec(&answer)
            .map_err(|e| format!("{} sent a bad DNS message: {e}", self.nameserver))?;
        let response = match verifier {
            // A server that does not know the key or secret answers NOTAUTH unsigned (or
            // signed with an empty MAC): its code says more than a failed verification.
            Some(_) if plain.metadata.response_code != ResponseCode::NoError => plain,
            Some(mut verifier) => {
                verifier
                    .verify(&answer)
                    .map(|r| r.into_message())
                    .map_err(|e| {
                        format!("{}'s answer failed TSIG verification: {e}", self.nameserver)
                    })?
            }
            None => plain,
        };
        if response.metadata.id != message.metadata.id {
            return Err(format!("{} answered another message", self.nameserver));
        }
        Ok(response)
    }
}

/// A TSIG signer from lego's values: key name, base64 secret, algorithm (default
/// hmac-sha256; BIND's `hmac-sha256.` spelling works too).
fn signer(key: &str, secret: &str, algorithm: Option<&str>) -> Result<TSigner, String> {
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(secret.trim())
        .map_err(|_| "dns-provider-RFC2136_TSIG_SECRET is not base64".to_string())?;
    let algorithm = algorithm
        .unwrap_or("hmac-sha256")
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let algorithm = match algorithm.as_str() {
        "hmac-sha256" => TsigAlgorithm::HmacSha256,
        "hmac-sha384" => TsigAlgorithm::HmacSha384,
        "hmac-sha512" => TsigAlgorithm::HmacSha512,
        other => {
            return Err(format!(
                "TSIG algorithm {other:?} is not supported; use hmac-sha256, hmac-sha384 or hmac-sha512"
            ));
        }
    };
    TSigner::new(secret, algorithm, parse_name(key)?, 300).map_err(|e| format!("bad TSIG key: {e}"))
}

fn parse_name(name: &str) -> Result<Name, String> {
    let fqdn = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    Name::from_ascii(&fqdn).map_err(|e| format!("{name:?} is not a DNS name: {e}"))
}

/// lego's exec provider protocol.
#[derive(Clone)]
pub struct Exec {
    path: PathBuf,
    timeout: Duration,
}

impl Exec {
    fn from_values(values: &BTreeMap<String, String>) -> Result<Exec, String> {
        let path = values
            .get("EXEC_PATH")
            .filter(|v| !v.is_empty())
            .ok_or("dns-provider-EXEC_PATH is not set")?;
        let timeout = match values.get("EXEC_PROPAGATION_TIMEOUT") {
            Some(v) => v.parse().map_err(|_| {
                format!("dns-provider-EXEC_PROPAGATION_TIMEOUT {v:?} is not seconds")
            })?,
            None => DEFAULT_PROPAGATION_TIMEOUT,
        };
        Ok(Exec {
            path: PathBuf::from(path),
            timeout: Duration::from_secs(timeout),
        })
    }

    /// Runs `EXEC_PATH ACTION FQDN VALUE`, killed after the propagation timeout.
    fn run(&self, action: &str, txt: &Txt) -> Result<(), String> {
        let mut child = Command::new(&self.path)
            .args([action, &txt.fqdn, &txt.value])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run dns-provider-EXEC_PATH {}: {e}",
                    self.path.display()
                )
            })?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                if status.success() {
                    return Ok(());
                }
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                let last = stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim();
                return Err(format!(
                    "{} {action} {} failed ({status}): {last}",
                    self.path.display(),
                    txt.fqdn
                ));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} {action} did not finish within {} s",
                    self.path.display(),
                    self.timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_and_its_apex_share_one_record_name() {
        assert_eq!(
            Txt::for_domain("*.example.test", "a".into()).fqdn,
            "_acme-challenge.example.test."
        );
        assert_eq!(
            Txt::for_domain("example.test", "b".into()).fqdn,
            "_acme-challenge.example.test."
        );
    }

    #[test]
    fn settings_are_checked() {
        let values = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(
            Provider::from_settings(Some("none"), &BTreeMap::new())
                .unwrap()
                .is_none()
        );
        assert!(Provider::from_settings(Some("route53"), &BTreeMap::new()).is_err());
        assert!(Provider::from_settings(Some("rfc2136"), &BTreeMap::new()).is_err());
        let only_key = values(&[
            ("RFC2136_NAMESERVER", "127.0.0.1:53"),
            ("RFC2136_TSIG_KEY", "k"),
        ]);
        assert!(Provider::from_settings(Some("rfc2136"), &only_key).is_err());
        let bad_secret = values(&[
            ("RFC2136_NAMESERVER", "127.0.0.1"),
            ("RFC2136_TSIG_KEY", "k"),
            ("RFC2136_TSIG_SECRET", "%%%"),
        ]);
        assert!(Provider::from_settings(Some("rfc2136"), &bad_secret).is_err());
        let good = values(&[
            ("RFC2136_NAMESERVER", "127.0.0.1"),
            ("RFC2136_TSIG_KEY", "k"),
            ("RFC2136_TSIG_SECRET", "c2VjcmV0"),
            ("RFC2136_TSIG_ALGORITHM", "hmac-sha256."),
        ]);
        let Some(Provider::Rfc2136(p)) = Provider::from_settings(Some("rfc2136"), &good).unwrap()
        else {
            panic!()
        };
        assert_eq!(p.nameserver.port(), 53);
    }
}
