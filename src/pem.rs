//! PEM text: the one reader of PEM blocks (the `pem` crate, which rcgen brings anyway) and
//! the one place PEM is written, plus a byte-level reader for certificate blocks alone
//! where it pays (see [`certificates`]).

/// One PEM block: its label, its headers (`Proc-Type` marks an old-style encrypted key)
/// and its decoded contents.
pub use ::pem::Pem as Block;
/// Why PEM text could not be read.
pub use ::pem::PemError;

/// Every block in `text`, in order; text between blocks is ignored.
pub fn blocks(text: &[u8]) -> Result<Vec<Block>, PemError> {
    ::pem::parse_many(text)
}

/// Whether the bytes hold a PEM block anywhere (`openssl x509 -text` puts kilobytes of text first).
pub fn looks_like_pem(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"-----BEGIN ").is_some()
}

/// Encodes `der` as one PEM block with Unix line endings (the pem crate defaults to CRLF),
/// as nginx's files and openssl's output have them.
pub fn encode(label: &str, der: &[u8]) -> String {
    let config = ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF);
    ::pem::encode_config(&Block::new(label, der), config)
}

/// Why [`certificates`] could not read a `CERTIFICATE` block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// A `BEGIN` line without its `END` line (a truncated file).
    #[error("a CERTIFICATE block has no END line")]
    NoEnd,
    /// The text between the lines is not base64.
    #[error("a CERTIFICATE block is not valid base64 ({0})")]
    Base64(#[from] base64::DecodeError),
}

/// The DER of every `CERTIFICATE` block in PEM text, in order.
///
/// Kept beside [`blocks`] because it pays: it reads every app's server.crt in certs:report
/// and the system's CA bundle on every run that verifies a chain. On Debian's bundle (144
/// certificates, 215 KiB) it takes 0.36-0.46 ms against the pem crate's 1.0-1.2 ms (it
/// looks for two fixed lines and decodes the base64 between, with no header handling:
/// certificate blocks carry none). The 0.6 ms saved is a third of the 1.8 ms a one-app
/// certs:report takes in all (BENCHMARKS.md, "Dependencies and PEM reader").
pub fn certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, BlockError> {
    use base64::Engine;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |haystack: &[u8], needle: &[u8]| memchr::memmem::find(haystack, needle);
    let mut ders = Vec::new();
    let mut rest = text;
    while let Some(start) = find(rest, BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = find(body, END).ok_or(BlockError::NoEnd)?;
        let base64: Vec<u8> = body[..end].iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(&base64)?;
        ders.push(der);
        rest = &body[end + END.len()..];
    }
    Ok(ders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_reads_what_the_pem_crate_reads() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let block = encode("CERTIFICATE", &der);
        let text = format!("junk\n{block}\nmore junk\n{}", block.replace('\n', "\r\n"));
        let ours = certificates(text.as_bytes()).unwrap();
        let theirs: Vec<Vec<u8>> = blocks(text.as_bytes()).unwrap().into_iter().map(|p| p.into_contents()).collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours, vec![der.clone(), der]);
        assert_eq!(certificates(b"-----BEGIN CERTIFICATE-----\nAAAA"), Err(BlockError::NoEnd));
        let bad = certificates(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----").unwrap_err();
        assert!(bad.to_string().starts_with("a CERTIFICATE block is not valid base64 ("), "{bad}");
        assert!(certificates(b"no certificate here").unwrap().is_empty());
    }
}
