//! The daily renewal job: a cron.d file that works under cron's own environment.
//!
//! cron runs a job with `PATH=/usr/bin:/bin`, `SHELL=/bin/sh`, no terminal and nobody
//! reading its output. So the file sets PATH (nginx is in /usr/sbin) and SHELL, names the
//! binary by its absolute path, appends the output to a log file, runs as the user that
//! owns DOKKU_ROOT, and carries the `DOKKU_*` settings of the shell that wrote it: every
//! one checked, because a name or value with a newline would add a line of its own.
//!
//! In dokku mode dokku runs plugins as the dokku user, who cannot write /etc/cron.d: the job
//! goes into that user's own crontab instead (`crontab -l`, `crontab -`), as dokku-letsencrypt
//! does, between a BEGIN and an END line, so that `--remove` takes out exactly what `--add`
//! put in, and the job runs `dokku letsencrypt:auto-renew` so that dokku sets up its plugins'
//! environment.

use std::ffi::{OsStr, OsString};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::app::Env;
use crate::dir::Dir;
use crate::dokku::Mode;
use crate::error::{Error, Result};
use crate::event::{Event, Reporter};
use crate::paths;

/// Where the cron entry goes, unless DOKKU_LETSENCRYPT_CRON_FILE says otherwise.
pub const DEFAULT_FILE: &str = "/etc/cron.d/dokku-certs-letsencrypt";
/// Environment variable naming the cron file.
pub const FILE_ENV: &str = "DOKKU_LETSENCRYPT_CRON_FILE";
/// Where the job's output is appended, unless DOKKU_LETSENCRYPT_CRON_LOG says otherwise.
pub const DEFAULT_LOG: &str = "/var/log/dokku-certs/letsencrypt.log";
/// Environment variable naming the log file.
pub const LOG_ENV: &str = "DOKKU_LETSENCRYPT_CRON_LOG";
/// The PATH of the job: Debian's default for root, so that nginx in /usr/sbin is found.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// cron.d files must not be writable by group or others (cron ignores them otherwise).
const FILE_MODE: u32 = 0o644;
/// The log holds domains and CA messages, no secrets; the group can read it.
const LOG_MODE: u32 = 0o640;

/// A cron.d file ready to be written.
#[derive(Debug)]
struct Job {
    /// The whole file.
    text: String,
    /// The user the job runs as.
    user: User,
    /// Where its output goes.
    log: PathBuf,
}

/// Where the job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A cron.d file (standalone).
    File(PathBuf),
    /// A block in the crontab of the user running this (dokku mode).
    Crontab,
}

/// What letsencrypt:cron-job --add did.
#[derive(Debug, Clone)]
pub struct Added {
    /// Where the job went.
    pub place: Place,
    /// The user it runs as.
    pub user: String,
    /// Where its output is appended.
    pub log: PathBuf,
}

/// letsencrypt:cron-job --add: the job from this process's environment (DOKKU_CERTS_MODE,
/// the `DOKKU_*` settings, the running binary), written as a cron.d file, or in dokku mode
/// into the dokku user's crontab, its log made ready. Whatever the job's user may not be
/// able to read is told to `reporter` as a warning.
pub fn add(reporter: &dyn Reporter) -> Result<Added> {
    let mode = Mode::from_setting(std::env::var("DOKKU_CERTS_MODE").ok())?;
    // The environment first: a setting that cannot go into the file refuses the
    // command before anything is read through it.
    let variables = carried_variables(std::env::vars_os(), mode)?;
    let env = Env::from_env()?;
    let log = log_path(mode);
    let (job, place) = match mode {
        Mode::Standalone => {
            let exe = std::env::current_exe().map_err(|source| Error::Read {
                path: "the running binary".into(),
                source,
            })?;
            (
                job(&env.dokku_root, &exe, &log, &variables)?,
                Place::File(file_path()),
            )
        }
        // The dokku user cannot write /etc/cron.d, so the job goes into its crontab and
        // runs `dokku letsencrypt:auto-renew`, as dokku-letsencrypt's does.
        Mode::Dokku => {
            let dokku = on_path("dokku").ok_or(CronError::NoDokku)?;
            (user_job(&dokku, &log, &variables)?, Place::Crontab)
        }
    };
    prepare_log(&job)?;
    match &place {
        Place::File(path) => write_file(path, &job.text)?,
        Place::Crontab => write_crontab(&with_block(&read_crontab()?, &job.text)?)?,
    }
    // After the write: a refused --add is its one error line, not a warning about a job
    // that was never installed.
    if let Some(warning) = unreadable_store_warning(&env.dokku_root, &job.user) {
        reporter.report(Event::Warning(warning));
    }
    Ok(Added {
        place,
        user: job.user.name,
        log: job.log,
    })
}

/// letsencrypt:cron-job --remove: where the job was taken out of (in dokku mode, the
/// crontab), or `None` if there was none.
pub fn remove() -> Result<Option<Place>> {
    match Mode::from_setting(std::env::var("DOKKU_CERTS_MODE").ok())? {
        Mode::Standalone => {
            let path = file_path();
            Ok(remove_file(&path)?.then_some(Place::File(path)))
        }
        Mode::Dokku => {
            let (text, found) = without_block(&read_crontab()?)?;
            if !found {
                return Ok(None);
            }
            write_crontab(&text)?;
            Ok(Some(Place::Crontab))
        }
    }
}

/// A local user, as /etc/passwd names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    /// The login name (cron.d's user field).
    name: String,
    uid: u32,
    /// Its primary group.
    gid: u32,
}

/// The cron file's path: DOKKU_LETSENCRYPT_CRON_FILE or [`DEFAULT_FILE`].
fn file_path() -> PathBuf {
    std::env::var_os(FILE_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| DEFAULT_FILE.into(), PathBuf::from)
}

/// The log's path: DOKKU_LETSENCRYPT_CRON_LOG, or [`DEFAULT_LOG`] (standalone) or
/// `$DOKKU_LOGS_DIR/letsencrypt.log` (dokku mode: dokku's log directory, where
/// dokku-letsencrypt's job logs too; the dokku user cannot make a directory in /var/log).
fn log_path(mode: Mode) -> PathBuf {
    let set = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    set(LOG_ENV).unwrap_or_else(|| match mode {
        Mode::Standalone => DEFAULT_LOG.into(),
        Mode::Dokku => set("DOKKU_LOGS_DIR")
            .unwrap_or_else(|| "/var/log/dokku".into())
            .join("letsencrypt.log"),
    })
}

/// Whether `name` goes into the job. Standalone: every `DOKKU_*` variable and
/// `SSL_CERT_FILE`. dokku mode: the job runs `dokku`, which sets its own `DOKKU_*` (and
/// `DOKKU_PID` must not be carried), so only DOKKU_ROOT, our DOKKU_LETSENCRYPT_* settings
/// and SSL_CERT_FILE.
fn is_carried(name: &[u8], mode: Mode) -> bool {
    match mode {
        Mode::Standalone => name.starts_with(b"DOKKU_") || name == b"SSL_CERT_FILE",
        Mode::Dokku => {
            name == b"DOKKU_ROOT"
                || name.starts_with(b"DOKKU_LETSENCRYPT_")
                || name == b"SSL_CERT_FILE"
        }
    }
}

/// The variables the job carries over (see [`is_carried`]), checked. Any other variable
/// is ignored, whatever bytes it holds.
fn carried_variables(
    env: impl IntoIterator<Item = (OsString, OsString)>,
    mode: Mode,
) -> Result<Vec<(String, String)>> {
    let mut carried = Vec::new();
    for (name, value) in env {
        if !is_carried(name.as_bytes(), mode) {
            continue;
        }
        let name = check_name(&name)?;
        let value = check_value(&name, &value)?;
        carried.push((name, value));
    }
    carried.sort();
    Ok(carried)
}

/// A name cron reads as one `NAME=value` line: letters, digits and `_`.
fn check_name(name: &OsStr) -> Result<String> {
    match name.to_str() {
        Some(text) if text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            Ok(text.to_string())
        }
        _ => Err(CronError::VariableName(name.to_string_lossy().into_owned()).into()),
    }
}

/// A value cron reads back exactly: UTF-8, one line, no control characters, no space at
/// either end (cron trims it) and no quote at the start (cron strips a quoted value's quotes).
fn check_value(name: &str, value: &OsStr) -> Result<String> {
    let why = match value.to_str() {
        None => "is not valid UTF-8",
        Some(text) if text.chars().any(char::is_control) => {
            "holds a newline or another control character"
        }
        Some(text) if text.trim() != text => "starts or ends with a space",
        Some(text) if text.starts_with(['"', '\'']) => "starts with a quote",
        Some(text) => return Ok(text.to_string()),
    };
    Err(CronError::VariableValue {
        name: name.to_string(),
        why,
    }
    .into())
}

/// A path in the job's command line, single-quoted for the shell. cron turns `%` into a
/// newline and a quote would end the quoting, so both are refused.
fn quoted(what: &str, path: &Path) -> Result<String> {
    match path.to_str() {
        Some(text)
            if path.is_absolute()
                && !text.contains(['%', '\''])
                && !text.chars().any(char::is_control) =>
        {
            Ok(format!("'{text}'"))
        }
        _ => Err(CronError::Path {
            what: what.to_string(),
            path: path.to_string_lossy().into_owned(),
        }
        .into()),
    }
}

/// A random minute and an hour before noon: twice a day at that minute, as Let's Encrypt
/// asks of clients that follow ARI, and never all hosts at the top of the same hour.
fn random_time() -> (u8, u8) {
    let mut bytes = [0u8; 2];
    // Without randomness (it never fails on Linux) every host would still work, at :17 past 3.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return (17, 3);
    }
    (bytes[0] % 60, bytes[1] % 12)
}

/// The job for the DOKKU_ROOT at `root`: it runs `exe letsencrypt:auto-renew` twice a day as
/// the owner of `root`, with `variables` (from [`carried_variables`]) and output to `log`.
fn job(root: &Path, exe: &Path, log: &Path, variables: &[(String, String)]) -> Result<Job> {
    let user = owner_of(root)?;
    let mut text = String::from(
        "# Written by dokku-certs letsencrypt:cron-job --add: renews Let's Encrypt certificates twice a day.\n",
    );
    text.push_str(&job_lines(exe, log, variables, Some(&user.name))?);
    Ok(Job {
        text,
        user,
        log: log.to_path_buf(),
    })
}

/// dokku mode: the block for the crontab of the user running this (dokku). It runs
/// `dokku letsencrypt:auto-renew` (`dokku` the absolute path of dokku's command) twice a
/// day, between [`BEGIN`] and [`END`].
fn user_job(dokku: &Path, log: &Path, variables: &[(String, String)]) -> Result<Job> {
    let user = user_by_uid(nix::unistd::geteuid().as_raw(), "this process")?;
    let text = format!(
        "{BEGIN}\n{}{END}\n",
        job_lines(dokku, log, variables, None)?
    );
    Ok(Job {
        text,
        user,
        log: log.to_path_buf(),
    })
}

/// The job's lines: where the output goes, SHELL, PATH, the variables, then the schedule
/// line running `exe letsencrypt:auto-renew`; `user` is cron.d's user field (none in a
/// user's crontab).
fn job_lines(
    exe: &Path,
    log: &Path,
    variables: &[(String, String)],
    user: Option<&str>,
) -> Result<String> {
    let command = format!(
        "{} letsencrypt:auto-renew >> {} 2>&1",
        quoted("the binary", exe)?,
        quoted("the log", log)?
    );
    let mut text = format!("# The output is appended to {}.\n", log.display());
    text.push_str(&format!("SHELL=/bin/sh\nPATH={PATH}\n"));
    for (name, value) in variables {
        text.push_str(&format!("{name}={value}\n"));
    }
    let (minute, hour) = random_time();
    let user = user.map(|name| format!("{name} ")).unwrap_or_default();
    text.push_str(&format!(
        "{minute} {hour},{} * * * {user}{command}\n",
        hour + 12
    ));
    Ok(text)
}

/// The job runs as `user`: the accounts and settings in DOKKU_ROOT/.letsencrypt (0700)
/// must be theirs, or every renewal fails to read them.
fn unreadable_store_warning(root: &Path, user: &User) -> Option<String> {
    let store = root.join(".letsencrypt");
    let owner = std::fs::symlink_metadata(&store).ok()?.uid();
    (owner != user.uid && user.uid != 0).then(|| {
        format!(
            "the job runs as {0}, but {1} belongs to uid {owner}, so renewals cannot read the accounts; run: chown -R {0} {1}",
            user.name,
            store.display()
        )
    })
}

/// The user that owns `path`, by name (cron.d wants a name), as the system's user
/// database (NSS) knows it.
fn owner_of(path: &Path) -> Result<User> {
    let uid = paths::metadata(path)?.uid();
    user_by_uid(uid, &path.display().to_string())
}

/// The user with `uid`, by name; `what` (a path, a process) is what belongs to them.
fn user_by_uid(uid: u32, what: &str) -> Result<User> {
    let found = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let usable =
        found.filter(|u| !u.name.is_empty() && u.name.bytes().all(|b| b.is_ascii_graphic()));
    usable
        .map(|u| User {
            name: u.name,
            uid,
            gid: u.gid.as_raw(),
        })
        .ok_or_else(|| {
            CronError::NoUserName {
                what: what.to_string(),
                uid,
            }
            .into()
        })
}

/// Makes sure the job can append to its log: the directory is made (0755) if missing, the
/// file is created 0640 and given to the job's user, whatever the umask. An existing file
/// is given to the user too; a symlink in its place is refused.
fn prepare_log(job: &Job) -> Result<()> {
    let log = &job.log;
    let write_error = |source| Error::Write {
        path: log.clone(),
        source,
    };
    if let Some(dir) = log.parent().filter(|d| !d.exists()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|source| Error::Write {
                path: dir.into(),
                source,
            })?;
    }
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(LOG_MODE)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(log)
        .map_err(write_error)?;
    let meta = file.metadata().map_err(write_error)?;
    if !meta.is_file() {
        return Err(CronError::LogNotAFile(log.clone()).into());
    }
    if meta.uid() != job.user.uid {
        std::os::unix::fs::fchown(&file, Some(job.user.uid), Some(job.user.gid))
            .map_err(write_error)?;
    }
    if meta.permissions().mode() & 0o777 != LOG_MODE {
        file.set_permissions(std::fs::Permissions::from_mode(LOG_MODE))
            .map_err(write_error)?;
    }
    Ok(())
}

/// Writes `text` to `path` with mode 0644 whatever the umask, by [`Dir::replace`] as every
/// file dokku-certs writes: cron never reads half a file (nor the temporary one, whose name
/// has a dot), a failure leaves the old file as it was, and a link at `path` is replaced,
/// never written through.
fn write_file(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CronError::FileName(path.into()))?;
    let dir = Dir::open_top(dir).map_err(|source| Error::Write {
        path: path.into(),
        source,
    })?;
    dir.replace(name, text.as_bytes(), FILE_MODE)
}

/// Removes the cron file; `false` if there was none.
fn remove_file(path: &Path) -> Result<bool> {
    paths::remove_if_exists(path)
}

/// The first line of the block in a user's crontab; `--remove` takes out the lines
/// from here to [`END`] and nothing else.
pub const BEGIN: &str = "# BEGIN dokku-certs letsencrypt:cron-job (--add wrote the lines down to END; --remove takes them out)";
/// The last line of the block.
pub const END: &str = "# END dokku-certs letsencrypt:cron-job";

/// `crontab` as it takes out our block: `crontab` with everything but the lines from
/// [`BEGIN`] to [`END`] kept byte for byte, and whether there was a block.
fn without_block(crontab: &str) -> Result<(String, bool)> {
    let mut kept = String::with_capacity(crontab.len());
    let mut inside = false;
    let mut found = false;
    for line in crontab.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if !inside && bare == BEGIN {
            (inside, found) = (true, true);
        } else if inside && bare == END {
            inside = false;
        } else if !inside {
            kept.push_str(line);
        }
    }
    if inside {
        return Err(CronError::UnclosedBlock.into());
    }
    Ok((kept, found))
}

/// `crontab` with `block` (from [`user_job`]) in place of any earlier one, at the end: cron
/// applies a `NAME=value` line to the jobs below it, so ours must not stand above others.
fn with_block(crontab: &str, block: &str) -> Result<String> {
    let (mut text, _) = without_block(crontab)?;
    // crontab wants every line ended; only a missing last newline is added.
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(block);
    Ok(text)
}

/// The crontab of the user running this, as `crontab -l` prints it; empty if there is none.
fn read_crontab() -> Result<String> {
    let out = Command::new("crontab")
        .arg("-l")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Crontab {
            action: "read",
            why: format!("cannot run crontab -l: {e}"),
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        String::from_utf8(out.stdout).map_err(|_| Error::Crontab {
            action: "read",
            why: "it is not valid UTF-8".into(),
        })
    } else if stderr.starts_with("no crontab for ") {
        Ok(String::new())
    } else {
        Err(Error::Crontab {
            action: "read",
            why: format!("crontab -l: {}", stderr.trim()),
        })
    }
}

/// Installs `text` as the crontab of the user running this (`crontab -`, which replaces it
/// whole).
fn write_crontab(text: &str) -> Result<()> {
    let install = |why: String| Error::Crontab {
        action: "install",
        why,
    };
    let mut child = Command::new("crontab")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| install(format!("cannot run crontab -: {e}")))?;
    let written = child
        .stdin
        .take()
        .map(|mut pipe| pipe.write_all(text.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| install(e.to_string()))?;
    if !out.status.success() {
        return Err(install(format!(
            "crontab -: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    match written {
        Some(Err(e)) => Err(install(e.to_string())),
        _ => Ok(()),
    }
}

/// The absolute path of `name` in PATH, as the shell would find it.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|file| {
            std::fs::metadata(file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What keeps the cron job from being written: the environment, a user or a path that
/// cannot go into a cron line, or a crontab whose block cannot be told apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// dokku mode, and no `dokku` on PATH to run.
    #[error("dokku is not on PATH; the job runs dokku letsencrypt:auto-renew")]
    NoDokku,
    /// An environment variable whose name cron cannot read back.
    #[error(
        "the environment variable {0:?} cannot go into the cron file: a name may hold only letters, digits and _; unset it and run letsencrypt:cron-job --add again"
    )]
    VariableName(String),
    /// An environment variable whose value cron cannot read back; `why` says what is in it.
    #[error(
        "{name} cannot go into the cron file: its value {why}; fix or unset it and run letsencrypt:cron-job --add again"
    )]
    VariableValue {
        name: String,
        /// What is wrong with its value.
        why: &'static str,
    },
    /// A path of the job's command line that the shell or cron would read otherwise.
    #[error(
        "{what} {path:?} cannot be used in a cron line: it must be an absolute path without %, quotes or control characters"
    )]
    Path {
        /// Which path ("the log"...).
        what: String,
        /// The path, lossily.
        path: String,
    },
    /// The job's user has a uid but no (usable) name.
    #[error(
        "{what} belongs to uid {uid}, which has no user name; cron needs a user name to run the job as"
    )]
    NoUserName {
        /// What belongs to the uid (a path, a process).
        what: String,
        uid: u32,
    },
    /// Something other than a regular file where the job's log goes.
    #[error("{} is not a regular file; remove it or set {LOG_ENV}", .0.display())]
    LogNotAFile(PathBuf),
    /// The cron file's path has no file name.
    #[error("{} is not a file name for the cron job; set {FILE_ENV} to another", .0.display())]
    FileName(PathBuf),
    /// The crontab has our first line and not our last.
    #[error(
        "the crontab has the line {BEGIN:?} but not {END:?} after it, so what dokku-certs added cannot be told apart; fix it with crontab -e"
    )]
    UnclosedBlock,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn vars(pairs: &[(&[u8], &[u8])]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    OsString::from_vec(n.to_vec()),
                    OsString::from_vec(v.to_vec()),
                )
            })
            .collect()
    }

    #[test]
    fn only_dokku_variables_are_carried_and_other_bytes_are_ignored() {
        let env = vars(&[
            (b"DOKKU_ROOT", b"/home/dokku"),
            (b"HOME", b"\xff\xfe"),
            (b"SSL_CERT_FILE", b"/r.pem"),
        ]);
        let carried = carried_variables(env, Mode::Standalone).unwrap();
        assert_eq!(
            carried,
            [
                ("DOKKU_ROOT".into(), "/home/dokku".into()),
                ("SSL_CERT_FILE".into(), "/r.pem".into())
            ]
        );
    }

    #[test]
    fn names_and_values_that_would_change_the_file_are_refused() {
        let refused: [(&[u8], &[u8]); 6] = [
            (b"DOKKU_X\n17 * * * * root evil", b"1"),
            (b"DOKKU_X", b"a\nb"),
            (b"DOKKU_X", b"\xff"),
            (b"DOKKU_X", b" padded"),
            (b"DOKKU_X", b"\"quoted\""),
            (b"DOKKU_\xff", b"1"),
        ];
        for (name, value) in refused {
            assert!(
                carried_variables(vars(&[(name, value)]), Mode::Standalone).is_err(),
                "{name:?}={value:?}"
            );
        }
    }

    #[test]
    fn the_owner_is_found_by_uid() {
        let dir = tempfile::tempdir().unwrap();
        let uid = std::fs::metadata(dir.path()).unwrap().uid();
        let user = owner_of(dir.path()).unwrap();
        assert_eq!(user.uid, uid);
        assert_eq!(
            nix::unistd::User::from_name(&user.name)
                .unwrap()
                .unwrap()
                .uid
                .as_raw(),
            uid
        );
    }

    #[test]
    fn paths_that_would_break_the_cron_line_are_refused() {
        assert_eq!(
            quoted("x", Path::new("/usr/bin/dokku certs")).unwrap(),
            "'/usr/bin/dokku certs'"
        );
        for bad in ["relative", "/a%b", "/a'b", "/a\nb"] {
            assert!(quoted("x", Path::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_block_goes_last_and_comes_out_alone() {
        let block = format!(
            "{BEGIN}\nSHELL=/bin/sh\n1 2,14 * * * '/usr/bin/dokku' letsencrypt:auto-renew\n{END}\n"
        );
        let theirs = "MAILTO=ops\n# mine\n5 * * * * backup  \n";
        let added = with_block(theirs, &block).unwrap();
        assert_eq!(added, format!("{theirs}{block}"));
        // Again: one block, still last; a line added after ours moves above it.
        let again = with_block(&format!("{added}0 1 * * * later"), &block).unwrap();
        assert_eq!(again, format!("{theirs}0 1 * * * later\n{block}"));
        assert_eq!(
            without_block(&again).unwrap(),
            (format!("{theirs}0 1 * * * later\n"), true)
        );
        assert_eq!(without_block(theirs).unwrap(), (theirs.to_string(), false));
        // A BEGIN without END: nothing can be told apart, so nothing is touched.
        assert!(without_block(&format!("{BEGIN}\n{theirs}")).is_err());
    }

    #[test]
    fn dokku_mode_carries_only_what_dokku_does_not_set() {
        let env = vars(&[
            (b"DOKKU_ROOT", b"/home/dokku"),
            (b"DOKKU_PID", b"123"),
            (b"DOKKU_GLOBAL_RUN_ARGS", b"\"quoted"),
            (b"DOKKU_LETSENCRYPT_CA_CERTIFICATES", b"/ca.pem"),
        ]);
        let carried = carried_variables(env, Mode::Dokku).unwrap();
        assert_eq!(
            carried,
            [
                ("DOKKU_LETSENCRYPT_CA_CERTIFICATES".into(), "/ca.pem".into()),
                ("DOKKU_ROOT".into(), "/home/dokku".into())
            ]
        );
    }
}
