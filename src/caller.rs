//! Who asked for this command, and which files may be read for them.
//!
//! `certs:add APP CRT KEY` reads two paths and installs what they hold, after which
//! `certs:show APP key` prints the key: reading a file is handing it out. So a file is read
//! only if the person behind the command could read it themselves, and never from where
//! dokku keeps keys (an app's `tls/`, `tls.previous/`, `.tls.staging/`, or a hidden
//! directory of DOKKU_ROOT such as `.letsencrypt`). A file that is missing, unreadable or off limits gets one
//! and the same message, so that the error tells nothing about what exists.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::process::{Gid, Uid};

use crate::bundle::{
    MAX_ENTRIES, MAX_ENTRY_BYTES, MAX_INPUT_BYTES, MAX_UNPACKED_BYTES, Source, entry_source,
    is_hidden_name,
};
use crate::error::{Error, Result};

/// Who runs the command, as far as reading files goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A command that came over ssh for a dokku user (someone with push rights): paths name
    /// files on the server, which are not theirs. Their input comes on stdin only.
    Remote,
    /// Someone on this machine; files are read with the identity in [`ReadAs`].
    Local(ReadAs),
}

/// Whose permissions a file given on the command line is opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadAs {
    /// This process's own: it runs as the person who asked.
    Process,
    /// Another user's: this process runs with privileges on their behalf (root under sudo,
    /// or a set-user-ID binary), so it reads only what they could read themselves.
    User {
        /// Their user id.
        uid: u32,
        /// Their primary group id.
        gid: u32,
        /// Their supplementary groups; `None` keeps this process's (a set-user-ID process
        /// still has its caller's).
        groups: Option<Vec<u32>>,
    },
}

impl Caller {
    /// Reads who the caller is from this process's environment and credentials.
    pub fn from_env() -> Result<Caller> {
        let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        if is_remote(|name| var(name).is_some()) {
            return Ok(Caller::Remote);
        }
        Ok(Caller::Local(read_as(|name| {
            var(name).map(|value| value.to_string_lossy().into_owned())
        })?))
    }
}

/// Whether the environment is that of a command run for an ssh key through dokku.
///
/// sshcommand writes each dokku user's key into `~dokku/.ssh/authorized_keys` as
/// `command="FINGERPRINT=... NAME=\"...\" `cat ~/.sshcommand` $SSH_ORIGINAL_COMMAND"`: sshd
/// sets SSH_CONNECTION, SSH_CLIENT and SSH_ORIGINAL_COMMAND, the forced command exports
/// FINGERPRINT and NAME, and dokku's main script un-exports SSH_ORIGINAL_COMMAND before it
/// runs a plugin, then exports SSH_USER (`dokku`) and SSH_NAME (NAME, or `default`). So:
///
/// - FINGERPRINT set: the key line of any sshcommand since 0.7 (2017);
/// - NAME set while SSH_CONNECTION or SSH_CLIENT is: older key lines, which set only NAME;
/// - SSH_ORIGINAL_COMMAND set: a forced command that runs dokku-certs without dokku's script.
///
/// The remote user cannot take these away: a forced command runs whatever they send, and
/// sshd passes on no other variables from them (Debian's AcceptEnv takes LANG and LC_* only).
/// SSH_CONNECTION alone is not enough: it is also set for an admin who logged in over ssh and
/// runs `dokku` in a shell, whose files are theirs. SSH_USER and SSH_NAME tell nothing, as
/// dokku sets them for local commands too. A local user who sets these variables only
/// loses the use of file arguments.
pub fn is_remote(is_set: impl Fn(&str) -> bool) -> bool {
    is_set("FINGERPRINT")
        || is_set("SSH_ORIGINAL_COMMAND")
        || (is_set("NAME") && (is_set("SSH_CONNECTION") || is_set("SSH_CLIENT")))
}

/// Decides whose permissions files are read with:
///
/// - root with SUDO_UID (not 0): the sudo caller's, with their primary group (SUDO_GID)
///   and the supplementary groups the system gives them (getgrouplist). A sudoers rule
///   that allows only dokku-certs must not make it a reader of every file.
/// - a real user or group id that differs from the effective one (a set-user-ID or
///   set-group-ID binary): the real ones.
/// - otherwise this process's own. A non-root process cannot take another user's identity;
///   a caller that sudo let become this (non-root) user, as dokku's own `sudo -u dokku -E`
///   does, was given that user's rights, its files included.
pub fn read_as(var: impl Fn(&str) -> Option<String>) -> Result<ReadAs> {
    let (euid, ruid) = (rustix::process::geteuid(), rustix::process::getuid());
    let (egid, rgid) = (rustix::process::getegid(), rustix::process::getgid());
    if euid.is_root()
        && let Some(value) = var("SUDO_UID")
    {
        let uid = id_setting("SUDO_UID", &value)?;
        if uid != 0 {
            let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten();
            let gid = match var("SUDO_GID") {
                Some(value) => id_setting("SUDO_GID", &value)?,
                None => user.as_ref().map_or(uid, |user| user.gid.as_raw()),
            };
            let groups = user
                .and_then(|user| CString::new(user.name).ok())
                .and_then(|name| {
                    nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid)).ok()
                })
                .map_or_else(
                    || vec![gid],
                    |groups| groups.iter().map(|g| g.as_raw()).collect(),
                );
            return Ok(ReadAs::User {
                uid,
                gid,
                groups: Some(groups),
            });
        }
    }
    if euid != ruid || egid != rgid {
        return Ok(ReadAs::User {
            uid: ruid.as_raw(),
            gid: rgid.as_raw(),
            groups: None,
        });
    }
    Ok(ReadAs::Process)
}

fn id_setting(name: &'static str, value: &str) -> Result<u32> {
    value.trim().parse().map_err(|_| Error::BadSetting {
        name,
        value: value.into(),
        why: "a numeric id is expected",
    })
}

/// Which file of `certs:add APP CRT KEY` is read, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// The certificate (CRT).
    Certificate,
    /// The private key (KEY).
    Key,
}

/// Reads a file named on the command line for `caller`: opened with the caller's
/// permissions ([`ReadAs`]), a regular file, and not where dokku keeps keys
/// ([`holds_dokku_keys`]) once every link is followed. Every refusal is the same
/// [`Error::FileUnreadable`], whatever the reason; a remote caller gets
/// [`Error::RemoteFiles`] before anything is looked at.
pub fn read_file(
    caller: &Caller,
    dokku_root: &Path,
    app: &str,
    path: &Path,
    role: FileRole,
) -> Result<Source> {
    let read_as = match caller {
        Caller::Remote => return Err(Error::RemoteFiles(app.to_string())),
        Caller::Local(read_as) => read_as,
    };
    let unreadable = || Error::FileUnreadable {
        role,
        path: path.to_path_buf(),
    };
    let file = open_as(read_as, path).map_err(|_| unreadable())?;
    if opened_path(&file).is_none_or(|real| holds_dokku_keys(&real, dokku_root)) {
        return Err(unreadable());
    }
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| unreadable())?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::ArchiveTooLarge(format!(
            "{} is over {} MiB",
            path.display(),
            MAX_INPUT_BYTES >> 20
        )));
    }
    Ok(Source {
        name: path.display().to_string(),
        bytes,
    })
}

/// Opens `path` for reading as `read_as` (see [`as_caller`]).
fn open_as(read_as: &ReadAs, path: &Path) -> std::io::Result<File> {
    as_caller(read_as, || open_regular(path))?
}

/// Runs `work` with `read_as`'s permissions. Another user's identity is taken on a thread of
/// its own, through the raw system calls, which change only the calling thread's credentials
/// (glibc's setresuid would change every thread's): the kernel then checks every directory
/// on the way and every file, ACLs and security modules included, exactly as for that
/// user. The thread ends with the work; file descriptors stay with the process. (The kernel
/// marks the process not dumpable after a credential change; nothing here needs it.)
fn as_caller<T: Send>(read_as: &ReadAs, work: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    let ReadAs::User { uid, gid, groups } = read_as else {
        return Ok(work());
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                if let Some(groups) = groups {
                    let groups: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
                    rustix::thread::set_thread_groups(&groups)?;
                }
                let (uid, gid) = (Uid::from_raw(*uid), Gid::from_raw(*gid));
                rustix::thread::set_thread_res_gid(gid, gid, gid)?;
                rustix::thread::set_thread_res_uid(uid, uid, uid)?;
                Ok(work())
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the reading thread panicked")))
    })
}

/// Whether `path` is a directory, as the caller sees it: a path the caller cannot look at
/// is not one (and is then refused as a file, with the message that tells nothing).
pub fn is_dir(caller: &Caller, path: &Path) -> bool {
    match caller {
        Caller::Remote => false,
        Caller::Local(read_as) => as_caller(read_as, || path.is_dir()).unwrap_or(false),
    }
}

/// Reads `certs:add APP DIR` for `caller`: every file under `dir`, at any depth, to be
/// sorted by content like an archive's entries, within the same limits ([`MAX_ENTRIES`]
/// entries, [`MAX_ENTRY_BYTES`] per file, [`MAX_UNPACKED_BYTES`] in all) and skipping hidden
/// files and directories. Links are followed, as certbot's `live/NAME/` is made of links into
/// `../../archive/NAME/`; the walk and every open happen with the caller's permissions, and
/// a file that turns out (links resolved, from the opened descriptor) to lie where dokku
/// keeps keys refuses the whole directory with [`Error::DirEntryUnreadable`], as does one the
/// caller may not read. A remote caller gets [`Error::RemoteFiles`] before anything is
/// looked at. Devices, fifos and sockets are never opened and hold nothing to import.
pub fn read_dir(caller: &Caller, dokku_root: &Path, app: &str, dir: &Path) -> Result<Vec<Source>> {
    let read_as = match caller {
        Caller::Remote => return Err(Error::RemoteFiles(app.to_string())),
        Caller::Local(read_as) => read_as,
    };
    let unreadable = || Error::DirEntryUnreadable(dir.to_path_buf());
    as_caller(read_as, || walk(dokku_root, dir)).map_err(|_| unreadable())?
}

/// The walk of [`read_dir`], on the caller's thread.
fn walk(dokku_root: &Path, dir: &Path) -> Result<Vec<Source>> {
    let unreadable = |path: &Path| Error::DirEntryUnreadable(path.to_path_buf());
    if std::fs::canonicalize(dir).map_or(true, |real| holds_dokku_keys(&real, dokku_root)) {
        return Err(unreadable(dir));
    }
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    let (mut sources, mut entries, mut total) = (Vec::new(), 0usize, 0u64);
    for entry in
        walker.filter_entry(|e| e.depth() == 0 || !is_hidden_name(&e.file_name().to_string_lossy()))
    {
        let entry = entry.map_err(|e| unreadable(e.path().unwrap_or(dir)))?;
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(Error::ArchiveTooLarge(format!(
                "{} holds more than {MAX_ENTRIES} entries",
                dir.display()
            )));
        }
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let file = open_regular(path).map_err(|_| unreadable(path))?;
        if opened_path(&file).is_none_or(|real| holds_dokku_keys(&real, dokku_root)) {
            return Err(unreadable(path));
        }
        let size = file.metadata().map_err(|_| unreadable(path))?.len();
        total += size.min(MAX_ENTRY_BYTES);
        if total > MAX_UNPACKED_BYTES {
            return Err(Error::ArchiveTooLarge(format!(
                "{} holds more than {} MiB",
                dir.display(),
                MAX_UNPACKED_BYTES >> 20
            )));
        }
        sources.extend(
            entry_source(path.display().to_string(), size, file).map_err(|_| unreadable(path))?,
        );
    }
    if sources.is_empty() {
        return Err(Error::NoCertificate(dir.display().to_string()));
    }
    Ok(sources)
}

/// Opens a regular file for reading, following links. It is first opened with O_PATH, which
/// reads nothing and has no side effect on a device or a fifo (a fifo would block an open
/// for reading), then reopened through /proc for reading once its type is known: the
/// reopening checks the read permission on that same inode.
fn open_regular(path: &Path) -> std::io::Result<File> {
    let handle = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    if FileType::from_raw_mode(rustix::fs::fstat(&handle)?.st_mode) != FileType::RegularFile {
        return Err(std::io::Error::other("not a regular file"));
    }
    let reopen = format!("/proc/thread-self/fd/{}", handle.as_raw_fd());
    Ok(File::from(rustix::fs::open(
        reopen,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?))
}

/// Where the opened file really is, every link resolved: read from the descriptor, so a
/// link swapped after the open changes nothing.
fn opened_path(file: &File) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

/// Whether `real` (a resolved path) lies where dokku keeps private keys: any app's `tls`,
/// `tls.previous`, `.tls.staging` (any directory of an app whose name starts with `tls` or
/// `.tls`), DOKKU_ROOT's own `tls/` (dokku's global certificate), or a hidden directory of
/// DOKKU_ROOT (`.letsencrypt` with the ACME account keys, `.ssh` with dokku's own key).
/// An admin moving a certificate between apps pipes it (`certs:show a key`); dokku-certs
/// itself never takes it from there.
pub fn holds_dokku_keys(real: &Path, dokku_root: &Path) -> bool {
    let root = std::fs::canonicalize(dokku_root).unwrap_or_else(|_| dokku_root.to_path_buf());
    let Ok(inside) = real.strip_prefix(&root) else {
        return false;
    };
    let mut parts = inside
        .components()
        .map(|part| part.as_os_str().to_string_lossy());
    let keys_dir = |name: &str| name.starts_with("tls") || name.starts_with(".tls");
    match (parts.next(), parts.next()) {
        (Some(top), _) if top.starts_with('.') || keys_dir(&top) => true,
        (Some(_app), Some(dir)) => keys_dir(&dir),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_means_a_key_line_of_sshcommand_not_just_ssh() {
        let env = |set: &'static [&'static str]| move |name: &str| set.contains(&name);
        assert!(is_remote(env(&[
            "FINGERPRINT",
            "NAME",
            "SSH_CONNECTION",
            "SSH_CLIENT",
            "SSH_USER"
        ])));
        assert!(is_remote(env(&["FINGERPRINT"])));
        assert!(is_remote(env(&["NAME", "SSH_CLIENT"])));
        assert!(is_remote(env(&["SSH_ORIGINAL_COMMAND"])));
        assert!(
            !is_remote(env(&[
                "SSH_CONNECTION",
                "SSH_CLIENT",
                "SSH_USER",
                "SSH_NAME"
            ])),
            "an admin's ssh shell"
        );
        assert!(
            !is_remote(env(&["NAME"])),
            "NAME alone is any shell variable"
        );
        assert!(!is_remote(env(&[])));
    }

    #[test]
    fn key_directories_are_off_limits_whatever_the_app() {
        let root = Path::new("/nonexistent-root");
        let off_limits = [
            "victim/tls/server.key",
            "a/tls.previous/k",
            "a/.tls.staging/k",
            ".letsencrypt/x.json",
            ".ssh/id_rsa",
            "tls/k",
        ];
        for path in off_limits {
            assert!(holds_dokku_keys(&root.join(path), root), "{path}");
        }
        for path in ["victim/VHOST", "victim/nginx.conf.d/x.key", "victim"] {
            assert!(!holds_dokku_keys(&root.join(path), root), "{path}");
        }
        assert!(!holds_dokku_keys(
            Path::new("/etc/ssl/tls/server.key"),
            root
        ));
    }
}
