//! Finds the certificate, its chain and its key in two files or in a tar archive, by
//! content rather than by name. Archives are read in memory within fixed limits and
//! nothing from them is ever written to a path they name.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

use std::collections::{HashMap, HashSet};

use crate::cert::{Certificate, Issuers};
use crate::error::{Error, Result};
use crate::key::{KeyFormat, PrivateKey, PublicKey, is_encrypted_pkcs8};

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
    /// Contents.
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

/// What one PEM block or DER file turned out to be.
#[derive(Debug)]
enum Found {
    Cert(Certificate),
    Key(PrivateKey),
    /// Something refused, with a description for the error message.
    Refused(Refusal),
}

#[derive(Debug)]
enum Refusal {
    Encrypted,
    Pkcs12,
    BadCertificate(String),
    UnsupportedKey(String),
    /// A valid object of the wrong kind: a CSR, a public key...
    Other(&'static str),
}

/// Reads an archive from `input` as it streams in: a tar or tar.gz (told apart by its first
/// bytes), or a bare PEM bundle. Nothing is written to disk and only entries that can hold
/// a certificate or a key are kept, so memory stays a few MiB whatever the archive's size.
/// Hidden files and macOS metadata are skipped; links, devices, absolute paths and `..`
/// refuse the whole archive.
pub fn sources_from_reader(input: impl Read) -> Result<Vec<Source>> {
    let raw_exceeded = Rc::new(Cell::new(false));
    let mut input = Limited { inner: input, remaining: MAX_INPUT_BYTES, exceeded: raw_exceeded.clone() };
    let mut head = Vec::with_capacity(512);
    (&mut input).take(512).read_to_end(&mut head).map_err(|source| Error::Read { path: "stdin".into(), source })?;
    if head.is_empty() {
        return Err(Error::NoArchive);
    }
    let stream = std::io::Cursor::new(head.clone()).chain(input);
    let result = if head.starts_with(&[0x1f, 0x8b]) {
        read_tar(flate2::read::MultiGzDecoder::new(stream))
    } else if is_tar_header(&head) {
        read_tar(stream)
    } else {
        // Not a tar: a PEM bundle piped straight in (`certs:add app < combined.pem`), or junk
        // that the tar reader names.
        let mut bytes = Vec::new();
        let read = stream.take(MAX_INPUT_BYTES).read_to_end(&mut bytes);
        match read {
            Ok(_) if looks_like_pem(&bytes) => Ok(vec![Source { name: "stdin".into(), bytes }]),
            Ok(_) => read_tar(bytes.as_slice()),
            Err(source) => Err(Error::Read { path: "stdin".into(), source }),
        }
    };
    if raw_exceeded.get() {
        return Err(Error::ArchiveTooLarge(format!("stdin is over {} MiB", MAX_INPUT_BYTES >> 20)));
    }
    result
}

/// [`sources_from_reader`] over bytes already in memory.
pub fn sources_from_archive(bytes: &[u8]) -> Result<Vec<Source>> {
    sources_from_reader(bytes)
}

/// Whether `bytes` starts with a tar header: its checksum field matches the sum of the
/// header's bytes (the field itself counted as spaces), as every tar format writes it.
fn is_tar_header(bytes: &[u8]) -> bool {
    let Some(block) = bytes.get(..512) else { return false };
    let digits: String = block[148..156].iter().map(|&b| b as char).filter(|c| c.is_digit(8)).collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else { return false };
    let sum: u32 =
        block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
    stored == sum
}

/// Stops reading after `remaining` bytes and records that there was more, so that a gzip
/// bomb (or an endless stdin) is told apart from a truncated archive.
struct Limited<R> {
    inner: R,
    remaining: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                self.exceeded.set(true);
                return Err(std::io::Error::other("the input is over the limit"));
            }
            return Ok(0);
        }
        let wanted = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..wanted])?;
        self.remaining -= read as u64;
        Ok(read)
    }
}

fn read_tar(reader: impl Read) -> Result<Vec<Source>> {
    let exceeded = Rc::new(Cell::new(false));
    let limited = Limited { inner: reader, remaining: MAX_UNPACKED_BYTES, exceeded: exceeded.clone() };
    let result = read_entries(&mut tar::Archive::new(limited));
    if exceeded.get() {
        return Err(Error::ArchiveTooLarge(format!("it unpacks to more than {} MiB", MAX_UNPACKED_BYTES >> 20)));
    }
    result
}

fn read_entries<R: Read>(archive: &mut tar::Archive<R>) -> Result<Vec<Source>> {
    let entries = archive.entries().map_err(|e| tar_error(&e))?;
    let mut sources = Vec::new();
    let mut count = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| tar_error(&e))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(Error::ArchiveTooLarge(format!("more than {MAX_ENTRIES} entries")));
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        check_entry_path(&name)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        if let Some(what) = hostile_kind(kind) {
            return Err(Error::HostileEntry { entry: name, what });
        }
        if is_hidden(&name) {
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > MAX_ENTRY_BYTES {
            // Named in the error if no pair is found; no certificate or key is this large.
            let name = format!("{name} (skipped: over {} KiB)", MAX_ENTRY_BYTES >> 10);
            sources.push(Source { name, bytes: Vec::new() });
            continue;
        }
        let mut bytes = Vec::with_capacity(size as usize);
        (&mut entry).take(MAX_ENTRY_BYTES).read_to_end(&mut bytes).map_err(|e| tar_error(&e))?;
        // Only PEM text or DER (a SEQUENCE) can hold a certificate or a key; the rest is let go.
        if looks_like_pem(&bytes) || bytes.first() == Some(&0x30) {
            sources.push(Source { name, bytes });
        }
    }
    if count == 0 {
        return Err(Error::NotAnArchive("it holds no entries".into()));
    }
    Ok(sources)
}

fn tar_error(error: &std::io::Error) -> Error {
    let text = error.to_string();
    if error.kind() == std::io::ErrorKind::UnexpectedEof
        || text.contains("unexpected EOF")
        || text.contains("fill whole buffer")
    {
        Error::NotAnArchive("it is truncated".into())
    } else if text.contains("corrupt deflate stream") || text.contains("invalid gzip header") {
        Error::NotAnArchive("its gzip stream is damaged".into())
    } else {
        Error::NotAnArchive(text)
    }
}

fn check_entry_path(name: &str) -> Result<()> {
    if name.starts_with('/') {
        return Err(Error::HostileEntry { entry: name.into(), what: "an absolute path" });
    }
    if name.split(['/', '\\']).any(|part| part == "..") {
        return Err(Error::HostileEntry { entry: name.into(), what: "a path that climbs out with '..'" });
    }
    Ok(())
}

fn hostile_kind(kind: tar::EntryType) -> Option<&'static str> {
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNULongName => None,
        tar::EntryType::Symlink => Some("a symbolic link"),
        tar::EntryType::Link => Some("a hard link"),
        tar::EntryType::Char | tar::EntryType::Block => Some("a device"),
        tar::EntryType::Fifo => Some("a fifo"),
        _ => Some("not a regular file"),
    }
}

/// Hidden files (`.DS_Store`, `._server.crt`) and `__MACOSX/` hold no certificate.
fn is_hidden(name: &str) -> bool {
    name.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .any(|part| part.starts_with('.') || part == "__MACOSX")
}

/// Whether the bytes hold a PEM block anywhere (`openssl x509 -text` puts kilobytes of text first).
fn looks_like_pem(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"-----BEGIN ").is_some()
}

/// How many certificates and keys the input held so far, to refuse an input over the
/// caps before parsing what is over them.
#[derive(Debug, Default)]
struct Counted {
    certs: usize,
    keys: usize,
}

impl Counted {
    /// Counts one more certificate (or key); an error once the input is over its cap.
    fn one_more(&mut self, key: bool) -> Result<()> {
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
fn objects_in(source: &Source, counted: &mut Counted) -> Result<Vec<Found>> {
    if looks_like_pem(&source.bytes) {
        let blocks = match pem::parse_many(&source.bytes) {
            Ok(blocks) => blocks,
            Err(e) => return Ok(vec![Found::Refused(Refusal::BadCertificate(format!("damaged PEM ({e})")))]),
        };
        let mut found = Vec::new();
        for block in &blocks {
            if let Some(is_key) = holds_cert_or_key(block.tag()) {
                counted.one_more(is_key)?;
            }
            found.extend(object_in_pem(block));
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
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "DSA PRIVATE KEY" => {
            Some(true)
        }
        _ => None,
    }
}

fn object_in_pem(block: &pem::Pem) -> Option<Found> {
    let encrypted = block.headers().get("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED"));
    let key = |format: KeyFormat| {
        if encrypted {
            Found::Refused(Refusal::Encrypted)
        } else {
            key_found(PrivateKey::from_der(block.contents(), format))
        }
    };
    Some(match block.tag() {
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => match Certificate::from_der(block.contents()) {
            Ok(cert) => Found::Cert(cert),
            Err(why) => Found::Refused(Refusal::BadCertificate(why)),
        },
        "PRIVATE KEY" => key(KeyFormat::Pkcs8),
        "RSA PRIVATE KEY" => key(KeyFormat::Pkcs1),
        "EC PRIVATE KEY" => key(KeyFormat::Sec1),
        "ENCRYPTED PRIVATE KEY" => Found::Refused(Refusal::Encrypted),
        "DSA PRIVATE KEY" => Found::Refused(Refusal::UnsupportedKey("a DSA key".into())),
        "OPENSSH PRIVATE KEY" => Found::Refused(Refusal::UnsupportedKey("an OpenSSH key, not a TLS key".into())),
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

fn key_found(parsed: Result<PrivateKey, String>) -> Found {
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
    const PKCS7_DATA: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    let head = &bytes[..bytes.len().min(32)];
    head.windows(3).any(|w| w == [0x02, 0x01, 0x03])
        && bytes[..bytes.len().min(64)].windows(11).any(|w| w == PKCS7_DATA)
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
        return Err(Error::CaAsLeaf { file: leaf_file.clone(), issuer: leaf.issuer.clone() });
    }
    let above = issuers.chain_above(leaf_index, MAX_CHAIN).map_err(|max| Error::ChainTooLong { max })?;
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
        notes.push(format!("used the key that matches the certificate; {} other key(s) ignored", keys.len() - 1));
    }
    let chain = std::iter::once(leaf_index).chain(above).map(|i| certs[i].0.clone()).collect();
    Ok(Bundle { chain, key, notes })
}

/// With two files, each must hold what its place says, or the error names what it holds.
fn check_file_roles(
    sources: &[Source],
    certs: &[(Certificate, String)],
    keys: &[(PrivateKey, String)],
    refused: &[(Refusal, String)],
) -> Result<()> {
    let [crt, key] = sources else { return Ok(()) };
    let in_file = |name: &str| refusals_in(refused, name);
    if !certs.iter().any(|(_, file)| *file == crt.name) {
        if let Some(Refusal::Pkcs12) = in_file(&crt.name).next() {
            return Err(Error::Pkcs12(crt.name.clone()));
        }
        let got = if keys.iter().any(|(_, file)| *file == crt.name) || in_file(&crt.name).any(is_key_refusal) {
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
        if let Some(r) = in_file(&key.name).find(|r| is_key_refusal(r) || matches!(r, Refusal::Pkcs12)) {
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

fn refusals_in<'a>(refused: &'a [(Refusal, String)], file: &str) -> impl Iterator<Item = &'a Refusal> + use<'a> {
    let file = file.to_string();
    refused.iter().filter(move |(_, f)| *f == file).map(|(r, _)| r)
}

fn is_key_refusal(refusal: &Refusal) -> bool {
    matches!(refusal, Refusal::Encrypted | Refusal::UnsupportedKey(_))
}

fn describe_refusal(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Encrypted => "an encrypted private key".into(),
        Refusal::Pkcs12 => "a PKCS#12 bundle".into(),
        Refusal::BadCertificate(why) => format!("a damaged certificate ({why})"),
        Refusal::UnsupportedKey(what) => what.clone(),
        Refusal::Other(what) => (*what).into(),
    }
}

fn refusal_error(refusal: &Refusal, file: &str) -> Error {
    match refusal {
        Refusal::Encrypted => Error::EncryptedKey(file.into()),
        Refusal::Pkcs12 => Error::Pkcs12(file.into()),
        Refusal::BadCertificate(why) => Error::BadCertificate { file: file.into(), why: why.clone() },
        Refusal::UnsupportedKey(what) => Error::UnsupportedKey { file: file.into(), what: what.clone() },
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
    let mut listed = sources.iter().take(SHOWN).map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
    if sources.len() > SHOWN {
        listed.push_str(&format!(" and {} more", sources.len() - SHOWN));
    }
    listed
}

fn no_certificate(sources: &[Source], refused: &[(Refusal, String)]) -> Error {
    let first = |wanted: fn(&Refusal) -> bool| refused.iter().find(|(r, _)| wanted(r));
    if let Some((r, file)) = first(|r| matches!(r, Refusal::Pkcs12))
        .or_else(|| first(|r| matches!(r, Refusal::BadCertificate(_))))
        .or_else(|| first(|r| matches!(r, Refusal::Other(_))))
    {
        return refusal_error(r, file);
    }
    Error::NoCertificate(names(sources))
}

fn no_key(sources: &[Source], refused: &[(Refusal, String)]) -> Error {
    let first = |wanted: fn(&Refusal) -> bool| refused.iter().find(|(r, _)| wanted(r));
    if let Some((r, file)) = first(|r| matches!(r, Refusal::Encrypted))
        .or_else(|| first(|r| matches!(r, Refusal::UnsupportedKey(_))))
        .or_else(|| first(|r| matches!(r, Refusal::Pkcs12)))
    {
        return refusal_error(r, file);
    }
    Error::NoKey(names(sources))
}

/// Pairs keys with the certificates they belong to (through a map of public keys); exactly
/// one server certificate must remain. Returns the leaf's index in `certs` and its key.
fn choose_pair(
    certs: &[(Certificate, String)],
    keys: &[(PrivateKey, String)],
    issuers: &Issuers<'_>,
) -> Result<(usize, PrivateKey)> {
    let mut key_of: HashMap<&PublicKey, usize> = HashMap::new();
    for (index, (key, _)) in keys.iter().enumerate() {
        key_of.entry(key.public_key()).or_insert(index);
    }
    let mut pairs: Vec<(usize, usize)> =
        certs.iter().enumerate().filter_map(|(c, (cert, _))| key_of.get(&cert.public_key).map(|&k| (c, k))).collect();
    if pairs.is_empty() {
        if let Some((ca, file)) =
            certs.iter().find(|(c, _)| c.is_intermediate_ca()).filter(|_| certs.iter().all(|(c, _)| c.is_ca))
        {
            return Err(Error::CaAsLeaf { file: file.clone(), issuer: ca.issuer.clone() });
        }
        return Err(Error::KeyMismatch {
            certs: unique_files(certs.iter().map(|(_, f)| f)),
            keys: unique_files(keys.iter().map(|(_, f)| f)),
        });
    }
    if pairs.len() > 1 {
        // A server certificate and the CA above it may both have their keys present; the
        // server one wins: drop every server certificate that issued another one.
        let servers: Vec<(usize, usize)> =
            pairs.iter().copied().filter(|&(c, _)| !certs[c].0.is_ca || certs[c].0.self_signed).collect();
        let is_server: HashSet<usize> = servers.iter().map(|&(c, _)| c).collect();
        let issued_a_server: HashSet<usize> =
            servers.iter().flat_map(|&(c, _)| issuers.issuers_among(c, &is_server)).collect();
        let leaves: Vec<(usize, usize)> = servers.into_iter().filter(|(c, _)| !issued_a_server.contains(c)).collect();
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
            return Err(Error::Ambiguous { count: pairs.len(), pairs: listed });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tar_of_pem_files_is_read_as_a_tar() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(11);
        header.set_cksum();
        builder.append_data(&mut header, "a.pem", &b"-----BEGIN "[..]).unwrap();
        let archive = builder.into_inner().unwrap();
        assert!(is_tar_header(&archive));
        assert!(!is_tar_header(&[0u8; 512]));
        assert_eq!(sources_from_archive(&archive).unwrap()[0].name, "a.pem");
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".repeat(10);
        assert_eq!(sources_from_archive(&pem).unwrap()[0].name, "stdin");
    }

    #[test]
    fn an_error_names_ten_sources_and_counts_the_rest() {
        let sources: Vec<Source> = (0..25).map(|i| Source { name: format!("f{i}"), bytes: vec![0x30] }).collect();
        let Err(Error::NoCertificate(listed)) = assemble(&sources, Origin::Archive) else { panic!("not refused") };
        assert_eq!(listed, "f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 and 15 more");
    }

    #[test]
    fn hidden_and_macos_entries_are_skipped() {
        assert!(is_hidden("._server.crt"));
        assert!(is_hidden("__MACOSX/._server.crt"));
        assert!(is_hidden("certs/.secret/server.key"));
        assert!(!is_hidden("./certs/server.crt"));
        assert!(!is_hidden("server.crt"));
    }

    #[test]
    fn climbing_and_absolute_paths_are_refused() {
        assert!(check_entry_path("../etc/passwd").is_err());
        assert!(check_entry_path("a/../../b").is_err());
        assert!(check_entry_path("/etc/passwd").is_err());
        assert!(check_entry_path("a/b..c/server.crt").is_ok());
    }
}
