//! Stage, lock, swap, test, roll back: the only code that changes an app's files.
//!
//! The new tls/ is written whole into a staging directory and swapped with the old one
//! in a single `renameat2(RENAME_EXCHANGE)`, so at every instant tls/ holds exactly the
//! old pair or exactly the new pair. nginx.conf and VHOST are replaced by rename too.
//! Then `nginx -t` runs with everything in place; if it fails, every file goes back.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::app::{App, Listener, Settings};
use crate::error::{Error, Result};
use crate::nginx::{self, Site};

/// Mode of tls/ (dokku's `chmod 750`).
pub const TLS_DIR_MODE: u32 = 0o750;
/// Mode of the files in tls/ (dokku's `chmod 640`).
pub const TLS_FILE_MODE: u32 = 0o640;

const STAGING_TLS: &str = ".tls.staging";
const PREVIOUS_TLS: &str = "tls.previous";
const TEMP_SUFFIX: &str = ".dokku-certs-tmp";

/// Holds the app's lock: an flock on the app directory itself, so taking it writes
/// nothing and a refused command leaves the directory byte-identical. The kernel drops
/// it when the process dies, so a killed command never leaves a stale lock.
#[derive(Debug)]
pub struct AppLock {
    _dir: File,
}

/// Waits for and takes the app's lock.
pub fn lock(app: &App) -> Result<AppLock> {
    let dir = File::open(&app.dir).map_err(|source| Error::Read { path: app.dir.clone(), source })?;
    dir.lock().map_err(|source| Error::Write { path: app.dir.clone(), source })?;
    Ok(AppLock { _dir: dir })
}

/// The files of a certificate endpoint, as they will be written into tls/.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// server.crt: leaf then chain, PEM.
    pub crt: String,
    /// server.key, PEM.
    pub key: String,
    /// server.csr, if the command made one (certs:generate).
    pub csr: Option<String>,
    /// Other files that belong with this pair (the Let's Encrypt marker), by name.
    pub extra: Vec<(&'static str, String)>,
}

/// What a command does to tls/.
#[derive(Debug, Clone)]
pub enum TlsChange {
    /// Put these files in place of whatever tls/ holds.
    Install(TlsFiles),
    /// Take tls/ away (kept as tls.previous/).
    Remove,
    /// Leave tls/ as it is; only render nginx.conf again.
    Keep,
}

/// One change to an app: tls/, optionally VHOST, and the nginx.conf that follows.
#[derive(Debug, Clone)]
pub struct Change {
    /// The tls/ change.
    pub tls: TlsChange,
    /// New VHOST content, if it changes (certs:generate adds its domain).
    pub vhost: Option<String>,
    /// The domains nginx.conf will name (those of the new VHOST).
    pub domains: Vec<String>,
    /// The app's upstream servers.
    pub listeners: Vec<Listener>,
}

/// How a change that landed ended.
#[derive(Debug)]
pub struct Applied {
    /// `Err` holds what nginx said when the reload failed (the files stay, as tested).
    pub reload: std::result::Result<(), String>,
}

/// What has been done so far, so that it can be undone in reverse.
#[derive(Default)]
struct Undo {
    /// The old tls/ now sits in the staging dir (swapped), or tls/ was new (`false`).
    tls_swapped: Option<bool>,
    /// Files replaced, with their previous contents (`None`: did not exist).
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
}

/// Applies `change` to `app` under its lock: stage, swap, `nginx -t`, then commit and
/// reload, or restore every file byte for byte and return nginx's complaint.
pub fn apply(settings: &Settings, app: &App, change: &Change) -> Result<Applied> {
    clean_leftovers(app)?;
    let mut undo = Undo::default();
    match stage_and_test(settings, app, change, &mut undo) {
        Ok(()) => {
            commit(app, change, &undo)?;
            Ok(Applied { reload: nginx::reload(settings) })
        }
        Err(error) => {
            roll_back(app, &undo);
            Err(error)
        }
    }
}

fn stage_and_test(settings: &Settings, app: &App, change: &Change, undo: &mut Undo) -> Result<()> {
    let has_tls = match &change.tls {
        TlsChange::Install(files) => {
            write_staging_tls(app, files)?;
            undo.tls_swapped = Some(swap_in_tls(app)?);
            true
        }
        TlsChange::Remove => false,
        TlsChange::Keep => app.has_cert(),
    };
    if let Some(vhost) = &change.vhost {
        replace_file(&app.vhost_path(), vhost.as_bytes(), undo)?;
    }
    let site = Site { app, domains: &change.domains, listeners: &change.listeners, has_tls };
    replace_file(&app.nginx_conf_path(), nginx::render(settings, &site)?.as_bytes(), undo)?;
    nginx::test(settings)
}

/// Removes what a killed earlier run left behind.
fn clean_leftovers(app: &App) -> Result<()> {
    remove_dir_if_present(&app.dir.join(STAGING_TLS))?;
    for name in ["nginx.conf", "VHOST"] {
        let temp = temp_path(&app.dir.join(name));
        if temp.exists() {
            fs::remove_file(&temp).map_err(|source| Error::Write { path: temp, source })?;
        }
    }
    Ok(())
}

fn write_staging_tls(app: &App, files: &TlsFiles) -> Result<()> {
    let dir = app.dir.join(STAGING_TLS);
    fs::DirBuilder::new()
        .mode(TLS_DIR_MODE)
        .create(&dir)
        .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(TLS_DIR_MODE)))
        .map_err(|source| Error::Write { path: dir.clone(), source })?;
    write_new_file(&dir.join("server.crt"), files.crt.as_bytes(), TLS_FILE_MODE)?;
    write_new_file(&dir.join("server.key"), files.key.as_bytes(), TLS_FILE_MODE)?;
    if let Some(csr) = &files.csr {
        write_new_file(&dir.join("server.csr"), csr.as_bytes(), TLS_FILE_MODE)?;
    }
    for (name, content) in &files.extra {
        write_new_file(&dir.join(name), content.as_bytes(), TLS_FILE_MODE)?;
    }
    sync_dir(&dir);
    Ok(())
}

/// Puts the staged tls/ in place. `true`: the old tls/ was swapped into the staging dir.
fn swap_in_tls(app: &App) -> Result<bool> {
    let staging = app.dir.join(STAGING_TLS);
    let tls = app.tls_dir();
    let swapped = if tls.exists() {
        exchange(&staging, &tls)?;
        true
    } else {
        rename(&staging, &tls)?;
        false
    };
    sync_dir(&app.dir);
    Ok(swapped)
}

/// After a successful test: keep the old pair as tls.previous/ (certs:rollback's input).
fn commit(app: &App, change: &Change, undo: &Undo) -> Result<()> {
    let old_tls = match change.tls {
        TlsChange::Install(_) if undo.tls_swapped == Some(true) => app.dir.join(STAGING_TLS),
        TlsChange::Install(_) | TlsChange::Keep => return Ok(()),
        TlsChange::Remove => app.tls_dir(),
    };
    if !old_tls.exists() {
        return Ok(());
    }
    let previous = app.dir.join(PREVIOUS_TLS);
    if previous.exists() {
        exchange(&old_tls, &previous)?;
        remove_dir_if_present(&old_tls)?;
    } else {
        rename(&old_tls, &previous)?;
    }
    sync_dir(&app.dir);
    Ok(())
}

/// Undoes in reverse order; best effort, since the original error is what the user needs.
fn roll_back(app: &App, undo: &Undo) {
    for (path, old) in undo.files.iter().rev() {
        let _ = match old {
            Some(bytes) => write_replacing(path, bytes),
            None => fs::remove_file(path).map_err(|source| Error::Write { path: path.clone(), source }),
        };
    }
    let staging = app.dir.join(STAGING_TLS);
    let _ = match undo.tls_swapped {
        Some(true) => exchange(&staging, &app.tls_dir()),
        Some(false) => rename(&app.tls_dir(), &staging),
        None => Ok(()),
    };
    let _ = remove_dir_if_present(&staging);
    sync_dir(&app.dir);
}

/// Writes a secret (settings, an ACME account key) as a 0600 file in a 0700 directory, by rename.
pub fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| Error::Write { path: parent.into(), source })?;
    }
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let temp = temp_path(path);
    let _ = fs::remove_file(&temp);
    write_new_file(&temp, bytes, 0o600)?;
    rename(&temp, path)
}

/// Replaces a file by rename, remembering its old contents for [`roll_back`].
fn replace_file(path: &Path, bytes: &[u8], undo: &mut Undo) -> Result<()> {
    let old = match fs::read(path) {
        Ok(old) => Some(old),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Read { path: path.into(), source });
        }
    };
    if old.as_deref() == Some(bytes) {
        return Ok(());
    }
    write_replacing(path, bytes)?;
    undo.files.push((path.to_path_buf(), old));
    Ok(())
}

fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = temp_path(path);
    let mode = fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644);
    let _ = fs::remove_file(&temp);
    write_new_file(&temp, bytes, mode)?;
    rename(&temp, path)
}

fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_data()
    };
    write().map_err(|source| Error::Write { path: path.into(), source })
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_SUFFIX);
    path.with_file_name(format!(".{}", name.to_string_lossy()))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|source| Error::Write { path: to.into(), source })
}

/// Atomically swaps two directory entries (Linux renameat2 RENAME_EXCHANGE).
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE)
        .map_err(|errno| Error::Write { path: b.into(), source: errno.into() })
}

fn remove_dir_if_present(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Write { path: dir.into(), source }),
    }
}

/// Makes renames in `dir` durable; a failure here changes nothing a reader sees.
fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}
