//! Directory handles: every file operation inside DOKKU_ROOT goes through one.
//!
//! A [`Dir`] is an open directory. Entries are named by one path component and reached with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (or `openat(O_NOFOLLOW)` where openat2 is
//! missing), created with `mkdirat`/`O_EXCL`, moved with `renameat2`, removed with `unlinkat`,
//! and their modes set with `fchmod` on the open file. A symbolic link is never followed: it
//! is refused with a message naming it. Whoever renames or swaps entries meanwhile, nothing
//! outside the directories opened here is read, written, chmod-ed or deleted.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// The biggest file read from an app directory: VHOST, LISTENERS, nginx.conf and a
/// certificate chain are a few KiB; a huge file is refused rather than read into memory.
pub const MAX_READ: u64 = 16 << 20;

/// What sits at a name, seen without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A fifo, socket or device.
    Other,
}

/// An open directory, and the path it was opened at (for messages and nginx.conf only:
/// the path is never used to reach a file).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// An flock held on a directory; the kernel drops it when the process dies.
#[derive(Debug)]
pub struct DirLock {
    _fd: OwnedFd,
}

/// Whether openat2 is missing (old kernel, or a seccomp filter that answers ENOSYS).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

impl Dir {
    /// Opens a directory by its full path. Only for the top: DOKKU_ROOT, which the
    /// administrator sets and may well be a symlink (`/home/dokku` on another disk).
    pub fn open_top(path: &Path) -> std::io::Result<Dir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path this directory was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of an entry, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens `name` without following a link: `None` if there is nothing there.
    fn open_entry(
        &self,
        name: &str,
        flags: OFlags,
        mode: Mode,
    ) -> std::result::Result<OwnedFd, Errno> {
        debug_assert!(
            !name.contains('/') && name != ".." && !name.is_empty(),
            "one component: {name:?}"
        );
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let resolve =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.fd, name, flags, mode, resolve) {
                Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                Err(Errno::AGAIN) => {} // openat2 may ask to retry; openat below does the same job
                result => return result,
            }
        }
        // One component with O_NOFOLLOW is exactly what RESOLVE_NO_SYMLINKS gives.
        rustix::fs::openat(&self.fd, name, flags, mode)
    }

    /// What sits at `name`, without following it; `None` if nothing.
    pub fn kind(&self, name: &str) -> Result<Option<Kind>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(kind_of(FileType::from_raw_mode(stat.st_mode)))),
            Err(Errno::NOENT) => Ok(None),
            Err(errno) => Err(self.read_error(name, errno)),
        }
    }

    /// Fails with the dokku-style message if `name` is a symbolic link.
    pub fn refuse_link(&self, name: &str) -> Result<()> {
        match self.kind(name)? {
            Some(Kind::Symlink) => Err(Error::Symlink(self.join(name))),
            _ => Ok(()),
        }
    }

    /// Opens the subdirectory `name`; `None` if it does not exist. A link or a file there is refused.
    pub fn open_dir(&self, name: &str) -> Result<Option<Dir>> {
        match self.open_entry(name, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: self.join(name),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(errno) => Err(self.open_error(name, errno)),
        }
    }

    /// Creates the subdirectory `name` (it must not exist) with exactly `mode`, whatever the umask.
    pub fn create_dir(&self, name: &str, mode: u32) -> Result<Dir> {
        rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700))
            .map_err(|errno| self.write_error(name, errno))?;
        let dir = self
            .open_dir(name)?
            .ok_or_else(|| self.write_error(name, Errno::NOENT))?;
        rustix::fs::fchmod(&dir.fd, Mode::from_raw_mode(mode))
            .map_err(|errno| self.write_error(name, errno))?;
        Ok(dir)
    }

    /// Opens the subdirectory `name`, creating it with `mode` if missing.
    pub fn open_or_create_dir(&self, name: &str, mode: u32) -> Result<(Dir, bool)> {
        if let Some(dir) = self.open_dir(name)? {
            return Ok((dir, false));
        }
        match self.create_dir(name, mode) {
            Ok(dir) => Ok((dir, true)),
            // Made by someone else meanwhile: open theirs (a link there is still refused).
            Err(Error::Write { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                let dir = self
                    .open_dir(name)?
                    .ok_or_else(|| self.write_error(name, Errno::NOENT))?;
                Ok((dir, false))
            }
            Err(error) => Err(error),
        }
    }

    /// Sets this directory's own mode (on the open directory, never by path). Nothing is
    /// done if it already has it, so that a user who does not own it is not refused for nothing.
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        let failed = |errno: Errno| Error::Write {
            path: self.path.clone(),
            source: errno.into(),
        };
        let stat = rustix::fs::fstat(&self.fd).map_err(failed)?;
        if stat.st_mode & 0o7777 == mode {
            return Ok(());
        }
        rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(mode)).map_err(failed)
    }

    /// Reads the regular file `name`; `None` if it does not exist. A link, a fifo, a device
    /// or a file over [`MAX_READ`] is refused without reading a byte of it.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.read_with_mode(name)?.map(|(bytes, _)| bytes))
    }

    /// [`Dir::read`], with the file's permission bits.
    pub fn read_with_mode(&self, name: &str) -> Result<Option<(Vec<u8>, u32)>> {
        self.read_checked(name, false)
    }

    /// [`Dir::read`] for a secret: a file with another name elsewhere (a hard link, say to
    /// /etc/shadow where the kernel's protected_hardlinks is off) is refused as well.
    pub fn read_unshared(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.read_checked(name, true)?.map(|(bytes, _)| bytes))
    }

    fn read_checked(&self, name: &str, unshared: bool) -> Result<Option<(Vec<u8>, u32)>> {
        // O_NONBLOCK: opening a fifo planted here must not hang the command.
        let fd = match self.open_entry(name, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(errno) => return Err(self.open_error(name, errno)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|errno| self.read_error(name, errno))?;
        match kind_of(FileType::from_raw_mode(stat.st_mode)) {
            Kind::File => {}
            Kind::Dir => return Err(Error::NotAFile(self.join(name), "a directory")),
            _ => return Err(Error::NotAFile(self.join(name), "a fifo, socket or device")),
        }
        if stat.st_size as u64 > MAX_READ {
            return Err(Error::NotAFile(self.join(name), "over 16 MiB"));
        }
        if unshared && stat.st_nlink > 1 {
            return Err(Error::NotAFile(
                self.join(name),
                "a hard link to a file with another name",
            ));
        }
        let mut bytes = Vec::with_capacity(stat.st_size as usize);
        std::fs::File::from(fd)
            .take(MAX_READ)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Read {
                path: self.join(name),
                source,
            })?;
        Ok(Some((bytes, stat.st_mode & 0o7777)))
    }

    /// Writes a new file `name` (it must not exist) with exactly `mode`, synced to disk.
    pub fn write_new(&self, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let fd = self
            .open_entry(name, flags, Mode::from_raw_mode(0o600))
            .map_err(|errno| self.write_error(name, errno))?;
        let write = || -> std::io::Result<()> {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            let mut file = std::fs::File::from(fd.try_clone()?);
            file.write_all(bytes)?;
            file.sync_data()
        };
        write().map_err(|source| Error::Write {
            path: self.join(name),
            source,
        })
    }

    /// A name beginning with `prefix` that no other process picks (random bytes follow).
    pub fn unique_name(prefix: &str) -> String {
        format!("{prefix}{}", unique_suffix())
    }

    /// Whether the entry `name` is the directory `other` is open on (not a link to it).
    pub fn is_same(&self, name: &str, other: &Dir) -> Result<bool> {
        let here = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|errno| self.read_error(name, errno))?;
        let there = rustix::fs::fstat(&other.fd).map_err(|errno| self.read_error(name, errno))?;
        Ok((here.st_dev, here.st_ino) == (there.st_dev, there.st_ino))
    }

    /// Writes `bytes` under a fresh random name beginning with `prefix`; returns the name.
    pub fn write_temp(&self, prefix: &str, bytes: &[u8], mode: u32) -> Result<String> {
        loop {
            let name = Self::unique_name(prefix);
            match self.write_new(&name, bytes, mode) {
                Err(Error::Write { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    continue;
                }
                result => return result.map(|()| name),
            }
        }
    }

    /// Replaces the file `name` whole with `bytes` (exactly `mode`): written under a unique
    /// name beginning with [`Dir::temp_prefix`], then renamed over it and the rename synced.
    /// A reader sees the old file or the new one, never a part; if anything fails the old
    /// file stays and the temporary one is removed. A link at `name` is replaced, not followed.
    pub fn replace(&self, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
        let temp = self.write_temp(&Self::temp_prefix(name), bytes, mode)?;
        if let Err(error) = self.rename(&temp, name) {
            let _ = self.remove_file(&temp);
            return Err(error);
        }
        self.sync();
        Ok(())
    }

    /// How [`Dir::replace`]'s temporary files for `name` begin (`.NAME.tmp.`): hidden, and
    /// with a dot, so neither dokku nor cron takes one for an app or a job.
    pub fn temp_prefix(name: &str) -> String {
        format!(".{name}.tmp.")
    }

    /// Renames `from` to `to`, replacing whatever entry `to` is (a link is replaced, not followed).
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to)
            .map_err(|errno| self.write_error(to, errno))
    }

    /// Renames `from` to `to`; fails if `to` exists.
    pub fn rename_new(&self, from: &str, to: &str) -> Result<()> {
        rustix::fs::renameat_with(&self.fd, from, &self.fd, to, RenameFlags::NOREPLACE)
            .map_err(|errno| self.write_error(to, errno))
    }

    /// Swaps two entries atomically (`renameat2(RENAME_EXCHANGE)`).
    pub fn exchange(&self, a: &str, b: &str) -> Result<()> {
        rustix::fs::renameat_with(&self.fd, a, &self.fd, b, RenameFlags::EXCHANGE)
            .map_err(|errno| self.write_error(b, errno))
    }

    /// Removes the entry `name` if it is not a directory (a link is removed, not its target);
    /// `false` if there was nothing.
    pub fn remove_file(&self, name: &str) -> Result<bool> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(errno) => Err(self.write_error(name, errno)),
        }
    }

    /// Removes the empty directory `name`; `false` if it is missing or not empty.
    pub fn remove_empty_dir(&self, name: &str) -> bool {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).is_ok()
    }

    /// Removes `name` and, if it is a directory, everything in it, through handles only:
    /// a link anywhere inside is unlinked, never followed. Nothing there is not an error.
    pub fn remove_tree(&self, name: &str) -> Result<()> {
        match self.kind(name)? {
            None => Ok(()),
            Some(Kind::Dir) => {
                // Opened without following: if it was swapped for a link meanwhile, that is
                // refused here and the link is unlinked below instead.
                match self.open_dir(name) {
                    Ok(Some(dir)) => dir.empty()?,
                    Ok(None) => return Ok(()),
                    Err(Error::Symlink(_)) => {}
                    Err(error) => return Err(error),
                }
                match rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => Ok(()),
                    Err(Errno::NOTDIR) => self.remove_file(name).map(drop),
                    Err(errno) => Err(self.write_error(name, errno)),
                }
            }
            Some(_) => self.remove_file(name).map(drop),
        }
    }

    /// Removes everything inside this directory.
    fn empty(&self) -> Result<()> {
        let mut entries =
            rustix::fs::Dir::read_from(&self.fd).map_err(|errno| self.read_error(".", errno))?;
        let mut names = Vec::new();
        while let Some(entry) = entries.read() {
            let entry = entry.map_err(|errno| self.read_error(".", errno))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        for name in names {
            self.remove_tree(&name)?;
        }
        Ok(())
    }

    /// The names in this directory (not `.` and `..`), with what each is.
    pub fn entries(&self) -> Result<Vec<(String, Kind)>> {
        let mut entries =
            rustix::fs::Dir::read_from(&self.fd).map_err(|errno| self.read_error(".", errno))?;
        let mut list = Vec::new();
        while let Some(entry) = entries.read() {
            let entry = entry.map_err(|errno| self.read_error(".", errno))?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => self.kind(name)?.unwrap_or(Kind::Other),
                file_type => kind_of(file_type),
            };
            list.push((name.to_string(), kind));
        }
        Ok(list)
    }

    /// Waits for and takes an exclusive flock on this directory. The lock is on a new open
    /// of the directory itself, so it writes nothing and dies with the process.
    pub fn lock(&self) -> Result<DirLock> {
        self.flock(FlockOperation::LockExclusive)
    }

    /// Takes the lock if no one holds it; `None` if someone does.
    pub fn try_lock(&self) -> Result<Option<DirLock>> {
        match self.flock(FlockOperation::NonBlockingLockExclusive) {
            Ok(lock) => Ok(Some(lock)),
            Err(Error::Write { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock => {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    fn flock(&self, operation: FlockOperation) -> Result<DirLock> {
        let fd = rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| Error::Read {
            path: self.path.clone(),
            source: errno.into(),
        })?;
        rustix::fs::flock(&fd, operation).map_err(|errno| Error::Write {
            path: self.path.clone(),
            source: errno.into(),
        })?;
        Ok(DirLock { _fd: fd })
    }

    /// Makes renames in this directory durable; a failure here changes nothing a reader sees.
    pub fn sync(&self) {
        let _ = rustix::fs::fsync(&self.fd);
    }

    /// Another handle on the same directory.
    pub fn try_clone(&self) -> Result<Dir> {
        let fd = self.fd.try_clone().map_err(|source| Error::Read {
            path: self.path.clone(),
            source,
        })?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
        })
    }

    fn open_error(&self, name: &str, errno: Errno) -> Error {
        match errno {
            // ELOOP: O_NOFOLLOW or RESOLVE_NO_SYMLINKS met a link. EXDEV: RESOLVE_BENEATH.
            Errno::LOOP | Errno::XDEV => Error::Symlink(self.join(name)),
            Errno::NOTDIR => match self.kind(name) {
                Ok(Some(Kind::Symlink)) => Error::Symlink(self.join(name)),
                _ => Error::NotAFile(self.join(name), "not a directory"),
            },
            _ => self.read_error(name, errno),
        }
    }

    fn read_error(&self, name: &str, errno: Errno) -> Error {
        Error::Read {
            path: self.join(name),
            source: errno.into(),
        }
    }

    fn write_error(&self, name: &str, errno: Errno) -> Error {
        match errno {
            Errno::LOOP | Errno::XDEV => Error::Symlink(self.join(name)),
            _ => Error::Write {
                path: self.join(name),
                source: errno.into(),
            },
        }
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn kind_of(file_type: FileType) -> Kind {
    match file_type {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    }
}

/// A name part no other process picks: random bytes, else the pid and a counter.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        bytes = (u64::from(std::process::id()) << 32 ^ n).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn setup() -> (tempfile::TempDir, Dir) {
        let top = tempfile::tempdir().unwrap();
        std::fs::create_dir(top.path().join("inside")).unwrap();
        std::fs::create_dir(top.path().join("outside")).unwrap();
        std::fs::write(top.path().join("outside/secret"), "secret\n").unwrap();
        let dir = Dir::open_top(&top.path().join("inside")).unwrap();
        (top, dir)
    }

    #[test]
    fn links_are_refused_never_followed() {
        let (top, dir) = setup();
        let outside = top.path().join("outside");
        std::os::unix::fs::symlink(outside.join("secret"), dir.join("file")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("sub")).unwrap();
        assert!(matches!(dir.read("file"), Err(Error::Symlink(_))));
        assert!(matches!(dir.open_dir("sub"), Err(Error::Symlink(_))));
        assert!(matches!(
            dir.write_new("file", b"x", 0o600),
            Err(Error::Symlink(_)) | Err(Error::Write { .. })
        ));
        assert!(matches!(
            dir.create_dir("sub", 0o700),
            Err(Error::Write { .. })
        ));
        assert_eq!(dir.kind("sub").unwrap(), Some(Kind::Symlink));
        dir.remove_tree("sub").unwrap();
        assert!(
            outside.join("secret").exists(),
            "removing a link removed its target"
        );
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret\n");
    }

    #[test]
    fn trees_go_without_following_links_inside() {
        let (top, dir) = setup();
        let outside = top.path().join("outside");
        let tree = dir.create_dir("tree", 0o750).unwrap();
        tree.write_new("a", b"a", 0o640).unwrap();
        let sub = tree.create_dir("sub", 0o700).unwrap();
        std::os::unix::fs::symlink(&outside, sub.join("escape")).unwrap();
        dir.remove_tree("tree").unwrap();
        assert_eq!(dir.kind("tree").unwrap(), None);
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret\n");
    }

    #[test]
    fn modes_are_set_on_the_open_file_not_left_to_the_umask() {
        // Created 0700/0600 (and so whatever the umask), then fchmod-ed to what was asked:
        // tests/fs_safety.rs runs the binary under umask 000 for the whole picture.
        let (_top, dir) = setup();
        dir.create_dir("d", 0o750).unwrap();
        dir.write_new("f", b"x", 0o640).unwrap();
        assert_eq!(
            std::fs::metadata(dir.join("d"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o750
        );
        assert_eq!(
            std::fs::metadata(dir.join("f"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o640
        );
    }

    #[test]
    fn a_fifo_is_refused_without_hanging() {
        let (_top, dir) = setup();
        rustix::fs::mknodat(
            &dir.fd,
            "fifo",
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(matches!(dir.read("fifo"), Err(Error::NotAFile(..))));
    }
}
