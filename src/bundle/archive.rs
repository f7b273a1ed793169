//! Reading an archive (tar, tar.gz, or a bare PEM bundle) from stdin in memory, within
//! fixed limits; links, devices, absolute paths and `..` refuse the whole archive.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

use super::{MAX_ENTRIES, MAX_ENTRY_BYTES, MAX_INPUT_BYTES, MAX_UNPACKED_BYTES, Source};
use crate::error::{Error, Result};
use crate::pem::looks_like_pem;

/// Reads an archive from `input` as it streams in: a tar or tar.gz (told apart by its first
/// bytes), or a bare PEM bundle. Nothing is written to disk and only entries that can hold
/// a certificate or a key are kept, so memory stays a few MiB whatever the archive's size.
/// Hidden files and macOS metadata are skipped; links, devices, absolute paths and `..`
/// refuse the whole archive.
pub fn sources_from_reader(input: impl Read) -> Result<Vec<Source>> {
    let raw_exceeded = Rc::new(Cell::new(false));
    let mut input = Limited {
        inner: input,
        remaining: MAX_INPUT_BYTES,
        exceeded: raw_exceeded.clone(),
    };
    let mut head = Vec::with_capacity(512);
    (&mut input)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|source| Error::Read {
            path: "stdin".into(),
            source,
        })?;
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
            Ok(_) if looks_like_pem(&bytes) => Ok(vec![Source {
                name: "stdin".into(),
                bytes,
            }]),
            Ok(_) => read_tar(bytes.as_slice()),
            Err(source) => Err(Error::Read {
                path: "stdin".into(),
                source,
            }),
        }
    };
    if raw_exceeded.get() {
        return Err(Error::ArchiveTooLarge(format!(
            "stdin is over {} MiB",
            MAX_INPUT_BYTES >> 20
        )));
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
    let Some(block) = bytes.get(..512) else {
        return false;
    };
    let digits: String = block[148..156]
        .iter()
        .map(|&b| b as char)
        .filter(|c| c.is_digit(8))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
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
        let wanted = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..wanted])?;
        self.remaining -= read as u64;
        Ok(read)
    }
}

fn read_tar(reader: impl Read) -> Result<Vec<Source>> {
    let exceeded = Rc::new(Cell::new(false));
    let limited = Limited {
        inner: reader,
        remaining: MAX_UNPACKED_BYTES,
        exceeded: exceeded.clone(),
    };
    let result = read_entries(&mut tar::Archive::new(limited));
    if exceeded.get() {
        return Err(Error::ArchiveTooLarge(format!(
            "it unpacks to more than {} MiB",
            MAX_UNPACKED_BYTES >> 20
        )));
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
            return Err(Error::ArchiveTooLarge(format!(
                "more than {MAX_ENTRIES} entries"
            )));
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
        sources.extend(entry_source(name, size, &mut entry).map_err(|e| tar_error(&e))?);
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
        return Err(Error::HostileEntry {
            entry: name.into(),
            what: "an absolute path",
        });
    }
    if name.split(['/', '\\']).any(|part| part == "..") {
        return Err(Error::HostileEntry {
            entry: name.into(),
            what: "a path that climbs out with '..'",
        });
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

/// Reads one entry of `size` bytes (as the archive or the file system says) into a source,
/// the same way for an archive and a directory. An entry over [`MAX_ENTRY_BYTES`] is kept by
/// name only, to be named if no pair is found (no certificate or key is this large); one
/// that is neither PEM text nor DER (a SEQUENCE) is let go, as it cannot hold either.
pub(crate) fn entry_source(
    name: String,
    size: u64,
    reader: impl Read,
) -> std::io::Result<Option<Source>> {
    if size > MAX_ENTRY_BYTES {
        let name = format!("{name} (skipped: over {} KiB)", MAX_ENTRY_BYTES >> 10);
        return Ok(Some(Source {
            name,
            bytes: Vec::new(),
        }));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    reader.take(MAX_ENTRY_BYTES).read_to_end(&mut bytes)?;
    Ok((looks_like_pem(&bytes) || bytes.first() == Some(&0x30)).then_some(Source { name, bytes }))
}

/// Hidden files (`.DS_Store`, `._server.crt`) and `__MACOSX/` hold no certificate.
fn is_hidden(name: &str) -> bool {
    name.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .any(is_hidden_name)
}

/// Whether one component of a path is hidden: a dot file or directory, or macOS's `__MACOSX`.
pub(crate) fn is_hidden_name(part: &str) -> bool {
    part.starts_with('.') || part == "__MACOSX"
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
        builder
            .append_data(&mut header, "a.pem", &b"-----BEGIN "[..])
            .unwrap();
        let archive = builder.into_inner().unwrap();
        assert!(is_tar_header(&archive));
        assert!(!is_tar_header(&[0u8; 512]));
        assert_eq!(sources_from_archive(&archive).unwrap()[0].name, "a.pem");
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".repeat(10);
        assert_eq!(sources_from_archive(&pem).unwrap()[0].name, "stdin");
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
