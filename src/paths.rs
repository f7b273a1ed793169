//! File operations by path that name the path in their error, as cargo-util's `paths` does:
//! the files outside an app's directory (nginx properties, the host-wide policy file, the
//! cron file and its log, a CA root). Inside DOKKU_ROOT every operation goes through a
//! [`crate::dir::Dir`] handle instead.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// The file's bytes.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })
}

/// The file's bytes; `None` if it does not exist (an unset property, no previous file).
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.into(),
            source,
        }),
    }
}

/// The file's metadata, links followed.
pub fn metadata(path: &Path) -> Result<fs::Metadata> {
    fs::metadata(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })
}

/// Replaces `path` with `bytes` (mode `mode`) by rename, so a reader sees the old file or
/// the new one, never a part; a missing directory is made (0755).
pub fn write_by_rename(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let failed = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .expect("an absolute file path has a directory");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(failed)?;
    let temp = dir.join(format!(
        ".{}.dokku-certs-tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = fs::remove_file(&temp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .map_err(failed)?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_data())
        .and_then(|()| fs::rename(&temp, path))
        .map_err(failed)
}

/// Removes the file; `false` if there was none.
pub fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Write {
            path: path.into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_none_and_other_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/file");
        assert_eq!(read_if_exists(&file).unwrap(), None);
        assert!(!remove_if_exists(&file).unwrap());
        write_by_rename(&file, b"x", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read(&file).unwrap(), b"x");
        assert!(remove_if_exists(&file).unwrap());
        // A directory read as a file: the error says which path.
        let error = read_if_exists(dir.path()).unwrap_err().to_string();
        assert!(error.contains(&dir.path().display().to_string()), "{error}");
    }
}
