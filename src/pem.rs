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

/// A PEM block that does not decode, with the label its `BEGIN` line gives it: what the
/// block was meant to be (a key, a certificate) is what an error message should name.
#[derive(Debug)]
pub struct Damaged {
    /// The label of the `BEGIN` line, e.g. `PRIVATE KEY`.
    pub label: String,
    /// Why it does not decode (the pem crate's words: no key material).
    pub why: PemError,
}

/// Every block in `text`, each read on its own, for text that [`blocks`] refuses: the
/// blocks that decode are kept, and each that does not is named by its label.
pub fn blocks_one_by_one(text: &[u8]) -> Vec<Result<Block, Damaged>> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let starts: Vec<usize> = memchr::memmem::find_iter(text, BEGIN).collect();
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    starts
        .iter()
        .zip(ends)
        .map(|(&start, end)| {
            let chunk = &text[start..end];
            ::pem::parse(chunk).map_err(|why| Damaged {
                label: label_of(&chunk[BEGIN.len()..]),
                why,
            })
        })
        .collect()
}

/// The label after `-----BEGIN `: up to the closing dashes or the end of the line.
fn label_of(rest: &[u8]) -> String {
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let label = memchr::memmem::find(line, b"-----").map_or(line, |end| &line[..end]);
    String::from_utf8_lossy(label).trim().to_string()
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
        let base64: Vec<u8> = body[..end]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
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
        let theirs: Vec<Vec<u8>> = blocks(text.as_bytes())
            .unwrap()
            .into_iter()
            .map(|p| p.into_contents())
            .collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours, vec![der.clone(), der]);
        assert_eq!(
            certificates(b"-----BEGIN CERTIFICATE-----\nAAAA"),
            Err(BlockError::NoEnd)
        );
        let bad = certificates(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----")
            .unwrap_err();
        assert!(
            bad.to_string()
                .starts_with("a CERTIFICATE block is not valid base64 ("),
            "{bad}"
        );
        assert!(certificates(b"no certificate here").unwrap().is_empty());
    }

    #[test]
    fn blocks_one_by_one_keeps_good_blocks_and_names_the_damaged_by_label() {
        let good = encode("CERTIFICATE", &[0x30, 0x00]);
        let text = format!(
            "{good}-----BEGIN EC PRIVATE KEY-----\nAB!D\n-----END EC PRIVATE KEY-----\n-----BEGIN RSA PRIVATE KEY\n"
        );
        assert!(blocks(text.as_bytes()).is_err());
        let read = blocks_one_by_one(text.as_bytes());
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].as_ref().unwrap().tag(), "CERTIFICATE");
        let labels: Vec<&str> = read[1..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().label.as_str())
            .collect();
        assert_eq!(labels, ["EC PRIVATE KEY", "RSA PRIVATE KEY"]);
    }
}
