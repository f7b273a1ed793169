//! Stage, lock, swap, test, roll back: the only code that changes an app's files.
//!
//! Every step goes through the app's directory handle ([`crate::dir`]): nothing is reached
//! by path, no link is followed. The new tls/ is written whole into a staging directory and
//! swapped with the old one in a single `renameat2(RENAME_EXCHANGE)`, so at every instant
//! tls/ holds exactly the old pair or exactly the new pair. nginx.conf and VHOST are swapped
//! the same way with a new file, which keeps the old entry itself for the roll back.
//!
//! Ordering keeps one rule at every instant: an nginx.conf that serves TLS never exists
//! without tls/ (nginx -t, and nginx's next start, would fail). tls/ arrives before the TLS
//! nginx.conf; a plain nginx.conf arrives before tls/ goes. The one state in between, tls/
//! beside a plain nginx.conf, is marked by a journal file; the next command on the app
//! resolves it (tls/ is set aside as tls.previous/) before doing anything else.

use crate::app::{App, CRT, Env, KEY, Listener, TLS};
use crate::dir::{Dir, Kind};
use crate::dokku::{self, Mode};
use crate::error::{Error, Result};
use crate::event::{Event, Reporter};
use crate::nginx::{self, Site};

/// Mode of tls/ (dokku's `chmod 750`).
pub const TLS_DIR_MODE: u32 = 0o750;
/// Mode of the files in tls/ (dokku's `chmod 640`).
pub const TLS_FILE_MODE: u32 = 0o640;
/// Mode of a new nginx.conf or VHOST (an existing one keeps its own).
const PLAIN_FILE_MODE: u32 = 0o644;

const STAGING_TLS: &str = ".tls.staging";
const PREVIOUS_TLS: &str = "tls.previous";
const NGINX_CONF: &str = "nginx.conf";
const VHOST: &str = "VHOST";
/// Present while a change is under way: a command killed midway leaves it for the next one.
const JOURNAL: &str = ".dokku-certs-journal";
/// Marks temporary files: `.nginx.conf.dokku-certs-tmp.<random>`.
const TEMP_MARK: &str = ".dokku-certs-tmp";
/// A leftover another user owns, moved out of the way: `.dokku-certs-stale.<random>`.
const STALE_PREFIX: &str = ".dokku-certs-stale.";

/// Holds the app's lock: an flock on the app directory itself, so taking it writes
/// nothing and a refused command leaves the directory byte-identical. The kernel drops
/// it when the process dies, so a killed command never leaves a stale lock.
#[derive(Debug)]
pub struct AppLock {
    _lock: crate::dir::DirLock,
}

/// Waits for and takes the app's lock.
pub fn lock(app: &App) -> Result<AppLock> {
    Ok(AppLock {
        _lock: app.handle().lock()?,
    })
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

impl Change {
    /// nginx.conf rendered again from what the app holds now, tls/ and VHOST kept.
    pub fn keep(app: &App) -> Result<Change> {
        Ok(Change {
            tls: TlsChange::Keep,
            vhost: None,
            domains: app.domains()?,
            listeners: app.listeners()?,
        })
    }
}

/// How a change that landed ended.
#[derive(Debug)]
pub struct Applied {
    /// `Err` says why nginx was not reloaded (the files stay, as tested).
    pub reload: std::result::Result<(), nginx::NotReloaded>,
    /// dokku mode: what dokku's proxy rebuild wrote on stderr (its warnings), to be shown;
    /// `None` in standalone mode.
    pub proxy_messages: Option<String>,
}

/// One step taken, so that it can be undone in reverse order.
#[derive(Debug)]
enum Step {
    /// A file was put in place; `backup` is the old entry itself, kept under a temp name
    /// (`None`: there was none).
    File {
        name: &'static str,
        backup: Option<String>,
    },
    /// The new tls/ went in by exchange: the old one sits in the staging dir.
    TlsSwapped,
    /// The new tls/ went in where there was none.
    TlsAdded,
    /// tls/ was moved to the staging dir (certs:remove).
    TlsRemoved,
}

/// Applies `change` to `app` under its lock: stage, swap, `nginx -t`, then commit and
/// reload, or put every entry back and return nginx's complaint. What the user should know
/// although the change goes on (an earlier interrupted change resolved, a leftover another
/// user owns) goes to `reporter` as a warning when it happens.
pub fn apply(env: &Env, app: &App, change: &Change, reporter: &dyn Reporter) -> Result<Applied> {
    apply_with(env, app, change, reporter, true)
}

/// [`apply`] without the reload, for a caller that changes many apps and then reloads once
/// (nginx:set --global): the change is tested and committed, and the caller's reload (with
/// its roll back of every app if the master refuses) decides.
pub fn apply_unreloaded(
    env: &Env,
    app: &App,
    change: &Change,
    reporter: &dyn Reporter,
) -> Result<Applied> {
    apply_with(env, app, change, reporter, false)
}

fn apply_with(
    env: &Env,
    app: &App,
    change: &Change,
    reporter: &dyn Reporter,
    reload_now: bool,
) -> Result<Applied> {
    warn_all(reporter, recover(env, app)?);
    let dir = app.handle();
    refuse_links(dir, change.vhost.is_some())?;
    dir.write_new(JOURNAL, b"a dokku-certs change is under way\n", 0o600)?;
    let mut steps = Vec::new();
    // The old pair moves to tls.previous/ only once the master took the new one: a refused
    // reload rolls back like a refused test.
    let reloaded =
        stage_and_test(env, app, change, &mut steps, reporter).and_then(|proxy_messages| {
            // In dokku mode the proxy plugin has reloaded nginx already.
            let reload = if env.mode == Mode::Dokku || !reload_now {
                Ok(())
            } else {
                nginx::reload_confirmed(env)?
            };
            Ok((proxy_messages, reload))
        });
    match reloaded {
        Ok((proxy_messages, reload)) => {
            warn_all(reporter, commit(app, &steps));
            // dokku mode: the proxy plugin reloaded (and confirms) on its own.
            if let (true, Ok(()), Mode::Standalone, TlsChange::Install(files)) =
                (reload_now, &reload, env.mode, &change.tls)
            {
                warn_all(
                    reporter,
                    nginx::confirm_served(env, &change.domains, &files.crt)
                        .into_iter()
                        .collect(),
                );
            }
            end_journal(dir);
            Ok(Applied {
                reload,
                proxy_messages,
            })
        }
        Err(error) => match roll_back(dir, &steps) {
            Ok(()) => {
                // dokku mode: the proxy rebuilds again, from the files now back in place.
                let error = dokku::rebuild_after_roll_back(app, error);
                nginx::reload_after_roll_back(env, &error);
                end_journal(dir);
                Err(error)
            }
            // The journal stays: the next command on the app resolves what is left.
            Err(left) => Err(Error::PartlyChanged {
                error: what_failed(&error),
                left,
            }),
        },
    }
}

/// A change staged, swapped in and tested (`nginx -t`, or dokku's rebuild), its journal
/// still there: [`Staged::commit`] once nginx took it, [`Staged::roll_back`] if it refused.
/// Unlike [`apply_unreloaded`], nothing is committed before the caller's one reload, so a
/// refused reload puts every app's entries back (letsencrypt's batches).
#[derive(Debug)]
#[must_use = "a staged change is committed or rolled back"]
pub struct Staged<'a> {
    app: &'a App,
    steps: Vec<Step>,
    proxy_messages: Option<String>,
    /// The domains and the new chain, for the handshake that confirms nginx serves it.
    installed: Option<(Vec<String>, String)>,
}

/// Stages `change` (the app's lock held): on a failed test every entry is back and the
/// error says why, as with [`apply`]. What an earlier killed command left is resolved first.
pub fn stage<'a>(
    env: &Env,
    app: &'a App,
    change: &Change,
    reporter: &dyn Reporter,
) -> Result<Staged<'a>> {
    warn_all(reporter, recover(env, app)?);
    let dir = app.handle();
    refuse_links(dir, change.vhost.is_some())?;
    dir.write_new(JOURNAL, b"a dokku-certs change is under way\n", 0o600)?;
    let installed = match &change.tls {
        TlsChange::Install(files) => Some((change.domains.clone(), files.crt.clone())),
        _ => None,
    };
    let mut staged = Staged {
        app,
        steps: Vec::new(),
        proxy_messages: None,
        installed,
    };
    match stage_and_test(env, app, change, &mut staged.steps, reporter) {
        Ok(proxy_messages) => {
            staged.proxy_messages = proxy_messages;
            Ok(staged)
        }
        Err(error) => Err(staged.roll_back(error)),
    }
}

impl Staged<'_> {
    /// nginx took the change (`reload`: `Err` if it was not running): the old pair moves to
    /// tls.previous/ only now, the journal ends, and a handshake confirms nginx serves it.
    pub fn commit(
        self,
        env: &Env,
        reload: std::result::Result<(), nginx::NotReloaded>,
        reporter: &dyn Reporter,
    ) -> Applied {
        warn_all(reporter, commit(self.app, &self.steps));
        if let (Ok(()), Mode::Standalone, Some((domains, crt))) =
            (&reload, env.mode, &self.installed)
        {
            warn_all(
                reporter,
                nginx::confirm_served(env, domains, crt)
                    .into_iter()
                    .collect(),
            );
        }
        end_journal(self.app.handle());
        Applied {
            reload,
            proxy_messages: self.proxy_messages,
        }
    }

    /// Puts every entry back because of `error`, which is returned to be shown (in dokku
    /// mode with the proxy rebuilt from the files back in place). If an undo fails, the
    /// journal stays and the error says what is left where.
    pub fn roll_back(self, error: Error) -> Error {
        let dir = self.app.handle();
        match roll_back(dir, &self.steps) {
            Ok(()) => {
                let error = dokku::rebuild_after_roll_back(self.app, error);
                end_journal(dir);
                error
            }
            // The journal stays: the next command on the app resolves what is left.
            Err(left) => Error::PartlyChanged {
                error: what_failed(&error),
                left,
            },
        }
    }
}

/// Sends each of `warnings` to `reporter`, in order.
pub(crate) fn warn_all(reporter: &dyn Reporter, warnings: Vec<String>) {
    for warning in warnings {
        reporter.report(Event::Warning(warning));
    }
}

/// Refuses, before anything changes, a link where the change will read or write.
fn refuse_links(dir: &Dir, vhost_changes: bool) -> Result<()> {
    for name in [NGINX_CONF, VHOST, TLS, PREVIOUS_TLS] {
        dir.refuse_link(name)?;
    }
    if let Some(Kind::File | Kind::Other) = dir.kind(TLS)? {
        return Err(Error::NotAFile(dir.join(TLS), "not a directory"));
    }
    // Reading them now refuses a fifo or a huge file before the journal is written.
    dir.read(NGINX_CONF)?;
    if vhost_changes {
        dir.read(VHOST)?;
    }
    Ok(())
}

/// What went wrong, without the "nothing was changed" or "back in place" that the error
/// says when the roll back worked: here it did not.
fn what_failed(error: &Error) -> String {
    match error {
        Error::NginxTest(complaint) => {
            format!("nginx rejected the new configuration ({complaint})")
        }
        Error::NginxReloadRefused(complaint) => {
            format!("nginx refused to reload with the new configuration ({complaint})")
        }
        Error::NginxReloadUnconfirmed(why) => format!("nginx did not confirm the reload ({why})"),
        Error::Write { path, source } => format!("cannot write {}: {source}", path.display()),
        other => other.to_string(),
    }
}

fn end_journal(dir: &Dir) {
    let _ = dir.remove_file(JOURNAL);
    dir.sync();
}

/// Stages and swaps the files, then has them tested: by `nginx -t` on our nginx.conf, or in
/// dokku mode by dokku's own rebuild (which writes nginx.conf), or by nginx's reload alone
/// when the new certificate leaves nginx.conf as it is ([`dokku::refresh_for`]). Returns the
/// proxy's warnings in dokku mode.
fn stage_and_test(
    env: &Env,
    app: &App,
    change: &Change,
    steps: &mut Vec<Step>,
    reporter: &dyn Reporter,
) -> Result<Option<String>> {
    let dir = app.handle();
    // Decided before the swap: it compares the certificate in place with the new one.
    let refresh = if env.mode == Mode::Dokku {
        dokku::refresh_for(app, change)
    } else {
        dokku::Refresh::Rebuild
    };
    let has_tls = match &change.tls {
        TlsChange::Install(_) => true,
        TlsChange::Remove => false,
        TlsChange::Keep => app.has_cert(),
    };
    // Rendered before anything moves: the first render of a process runs `nginx -V`, and a
    // child process holds a copy of the lock's descriptor until it execs. Started between
    // the swap of tls/ and that of nginx.conf, it outlives a SIGKILL of this command for a
    // moment, so the next command's settle finds the lock taken and leaves tls/ beside the
    // plain nginx.conf.
    let conf = match env.mode {
        Mode::Standalone => {
            let site = Site {
                app,
                domains: &change.domains,
                listeners: &change.listeners,
                has_tls,
            };
            Some(nginx::render(env, &site)?)
        }
        Mode::Dokku => None,
    };
    if let TlsChange::Install(files) = &change.tls {
        let staging = write_staging_tls(dir, files)?;
        swap_in_tls(dir, &staging, steps)?;
    }
    if let Some(vhost) = &change.vhost {
        replace_file(dir, VHOST, vhost.as_bytes(), steps)?;
    }
    let Some(conf) = conf else {
        // dokku's proxy asks certs-exists while it rebuilds: tls/ must be gone by then.
        set_tls_aside(dir, change, steps)?;
        return dokku::take_tls(env, app, has_tls, refresh, reporter).map(Some);
    };
    replace_file(dir, NGINX_CONF, conf.as_bytes(), steps)?;
    // After the plain nginx.conf: never a TLS nginx.conf without tls/.
    set_tls_aside(dir, change, steps)?;
    nginx::test_app(env, app).map(|()| None)
}

/// certs:remove: moves tls/ into the staging dir (undone by [`roll_back`], kept as
/// tls.previous/ by [`commit`]).
fn set_tls_aside(dir: &Dir, change: &Change, steps: &mut Vec<Step>) -> Result<()> {
    if matches!(change.tls, TlsChange::Remove) && dir.kind(TLS)?.is_some() {
        dir.rename_new(TLS, STAGING_TLS)?;
        steps.push(Step::TlsRemoved);
        dir.sync();
    }
    Ok(())
}

/// Removes what a killed earlier run left behind; a leftover this user cannot remove
/// (another user's, say root's) is moved out of the way, and a note says how to remove it.
fn clean_leftovers(dir: &Dir) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    notes.extend(discard(dir, STAGING_TLS)?);
    for (name, _) in dir.entries()? {
        // `.nginx.conf.dokku-certs-tmp` (older versions) and `.nginx.conf.dokku-certs-tmp.<random>`.
        if name.starts_with('.') && name.contains(TEMP_MARK) {
            notes.extend(discard(dir, &name)?);
        }
    }
    Ok(notes)
}

/// Removes `name` (a tree, a file or a link); if this user may not, renames it to a stale
/// name that is never used again, so that it blocks nothing, and says how to remove it.
fn discard(dir: &Dir, name: &str) -> Result<Option<String>> {
    let source = match dir.remove_tree(name) {
        Ok(()) => return Ok(None),
        Err(Error::Write { source, .. } | Error::Read { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            source
        }
        Err(error) => return Err(error),
    };
    let stale = Dir::unique_name(&format!("{STALE_PREFIX}{}.", name.trim_start_matches('.')));
    match dir.rename_new(name, &stale).map(|()| stale) {
        Ok(stale) => Ok(Some(format!(
            "{} is left from an earlier run and belongs to another user ({source}); it was moved to {} and is harmless; remove it as root: rm -rf {}",
            dir.join(name).display(),
            dir.join(&stale).display(),
            dir.join(&stale).display()
        ))),
        Err(_) => Err(Error::StaleLeftover {
            path: dir.join(name),
            source,
        }),
    }
}

/// Finishes what a command killed midway left (it left the journal): leftovers go, tls/
/// beside an nginx.conf that does not serve it is set aside as tls.previous/, nginx.conf is
/// rendered again for what tls/ holds and tested, and nginx reloaded. Called under the
/// lock at the start of every change; without a journal it only removes leftovers.
pub fn recover(env: &Env, app: &App) -> Result<Vec<String>> {
    let dir = app.handle();
    // What the settle at App::open resolved comes first, told by the command that changes.
    let mut notes = app.take_settle_notes();
    notes.extend(clean_leftovers(dir)?);
    if dir.kind(JOURNAL)?.is_none() {
        return Ok(notes);
    }
    refuse_links(dir, false)?;
    let conf = dir.read(NGINX_CONF)?;
    let conf_serves_tls = conf.as_deref().is_some_and(serves_tls);
    if !conf_serves_tls && dir.kind(TLS)?.is_some() {
        // Killed between the two renames of a change to or from no certificate: the
        // nginx.conf in place, tested, does not serve tls/; the command never said it
        // succeeded, so the certificate goes aside (certs:generate or certs:add can be run again).
        dir.rename_new(TLS, STAGING_TLS)?;
        notes.extend(retire(dir)?);
        notes.push(format!(
            "an earlier command on {} was interrupted; its certificate was not in use and was moved to {}",
            app.name,
            dir.join(PREVIOUS_TLS).display()
        ));
    }
    if conf.is_some() {
        let change = Change::keep(app)?;
        let mut steps = Vec::new();
        // Keep rebuilds, so nothing is reported from there.
        match stage_and_test(env, app, &change, &mut steps, &crate::event::Quiet) {
            // The same one-app test as a change, then the same reload: the master's verdict
            // covers the rest of the configuration. A refusal keeps the old configuration
            // served, so it is reported, not undone (these files were in place before).
            Ok(_) => {
                notes.extend(commit(app, &steps));
                if env.mode == Mode::Standalone
                    && let Err(error) = nginx::reload_confirmed(env)
                {
                    notes.push(format!(
                        "after resolving an interrupted change on {}: {}",
                        app.name,
                        what_failed(&error)
                    ));
                }
            }
            Err(error) => {
                roll_back(dir, &steps).map_err(|left| Error::PartlyChanged {
                    error: what_failed(&error),
                    left,
                })?;
                notes.push(format!(
                    "an earlier command on {} was interrupted, and its nginx.conf does not pass nginx -t: {}; nginx was not reloaded",
                    app.name,
                    what_failed(&error)
                ));
            }
        }
    }
    end_journal(dir);
    Ok(notes)
}

/// [`recover`] for any command, without waiting: if another command holds the app's lock,
/// it is at work and will recover itself. Best effort (a reader may not be allowed to write):
/// returns what recovery had to say (or why it failed), nothing if it did not run.
pub fn settle(env: &Env, app: &App) -> Vec<String> {
    if !matches!(app.handle().kind(JOURNAL), Ok(Some(_))) {
        return Vec::new();
    }
    match app.handle().try_lock() {
        Ok(Some(_lock)) => recover(env, app).unwrap_or_else(|error| {
            vec![format!(
                "an earlier command on {} was interrupted, and what it left could not be resolved: {error}",
                app.name
            )]
        }),
        _ => Vec::new(),
    }
}

/// Whether a rendered nginx.conf serves the app's tls/.
fn serves_tls(conf: &[u8]) -> bool {
    memchr::memmem::find(conf, b"ssl_certificate").is_some()
}

fn write_staging_tls(dir: &Dir, files: &TlsFiles) -> Result<Dir> {
    let staging = dir.create_dir(STAGING_TLS, TLS_DIR_MODE)?;
    staging.write_new(CRT, files.crt.as_bytes(), TLS_FILE_MODE)?;
    staging.write_new(KEY, files.key.as_bytes(), TLS_FILE_MODE)?;
    if let Some(csr) = &files.csr {
        staging.write_new("server.csr", csr.as_bytes(), TLS_FILE_MODE)?;
    }
    for (name, content) in &files.extra {
        staging.write_new(name, content.as_bytes(), TLS_FILE_MODE)?;
    }
    staging.sync();
    Ok(staging)
}

/// Puts the staged tls/ in place, by exchange if there is an old one.
fn swap_in_tls(dir: &Dir, staging: &Dir, steps: &mut Vec<Step>) -> Result<()> {
    if dir.kind(TLS)?.is_some() {
        dir.exchange(STAGING_TLS, TLS)?;
        steps.push(Step::TlsSwapped);
    } else {
        dir.rename_new(STAGING_TLS, TLS)?;
        steps.push(Step::TlsAdded);
    }
    dir.sync();
    // Someone who may write the app dir could have put something else under the staging
    // name between its writing and the swap: then what went in is not ours, and is undone.
    if !dir.is_same(TLS, staging)? {
        return Err(Error::StagingReplaced(dir.join(STAGING_TLS)));
    }
    Ok(())
}

/// After a successful test: the old pair becomes tls.previous/ (certs:rollback's input) and
/// the old nginx.conf/VHOST entries go. The change has landed: what fails here is a warning.
fn commit(app: &App, steps: &[Step]) -> Vec<String> {
    let dir = app.handle();
    let mut warnings = Vec::new();
    for step in steps {
        match step {
            Step::File { backup: Some(backup), .. } => {
                if let Err(error) = discard(dir, backup) {
                    warnings.push(error.to_string());
                }
            }
            Step::TlsSwapped | Step::TlsRemoved => match retire(dir) {
                Ok(note) => warnings.extend(note),
                Err(error) => warnings.push(format!(
                    "the change is in place, but the old certificate could not be kept in {}: {error}",
                    dir.join(PREVIOUS_TLS).display()
                )),
            },
            Step::File { backup: None, .. } | Step::TlsAdded => {}
        }
    }
    dir.sync();
    warnings
}

/// Moves the old tls/ (in the staging dir) to tls.previous/, replacing the one before.
fn retire(dir: &Dir) -> Result<Option<String>> {
    let note = if dir.kind(PREVIOUS_TLS)?.is_some() {
        dir.exchange(STAGING_TLS, PREVIOUS_TLS)?;
        discard(dir, STAGING_TLS)?
    } else {
        dir.rename_new(STAGING_TLS, PREVIOUS_TLS)?;
        None
    };
    dir.sync();
    Ok(note)
}

/// Undoes in reverse order. `Err` says exactly what could not be put back, and how to fix it.
fn roll_back(dir: &Dir, steps: &[Step]) -> std::result::Result<(), String> {
    let mut left = Vec::new();
    for step in steps.iter().rev() {
        let undone = match step {
            Step::File {
                name,
                backup: Some(backup),
            } => dir
                .exchange(backup, name)
                .and_then(|()| dir.remove_file(backup).map(drop)),
            Step::File { name, backup: None } => dir.remove_file(name).map(drop),
            Step::TlsSwapped => dir.exchange(STAGING_TLS, TLS),
            Step::TlsAdded => dir.rename_new(TLS, STAGING_TLS),
            Step::TlsRemoved => dir.rename_new(STAGING_TLS, TLS),
        };
        if let Err(error) = undone {
            left.push(describe_failed_undo(dir, step, &error));
        }
    }
    if left.is_empty() {
        let _ = dir.remove_tree(STAGING_TLS);
    }
    dir.sync();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the change could not be undone completely: {}; the next dokku-certs command on this app finishes or undoes it",
            left.join("; ")
        ))
    }
}

fn describe_failed_undo(dir: &Dir, step: &Step, error: &Error) -> String {
    let error = what_failed(error);
    match step {
        Step::File {
            name,
            backup: Some(backup),
        } => format!(
            "{} holds the new version and the old one is {} ({error})",
            dir.join(name).display(),
            dir.join(backup).display()
        ),
        Step::File { name, backup: None } => {
            format!("{} is new ({error})", dir.join(name).display())
        }
        Step::TlsSwapped => format!(
            "{} holds the new certificate and the old one is in {} ({error})",
            dir.join(TLS).display(),
            dir.join(STAGING_TLS).display()
        ),
        Step::TlsAdded => format!(
            "{} holds the new certificate ({error})",
            dir.join(TLS).display()
        ),
        Step::TlsRemoved => {
            format!(
                "the certificate was moved from {} to {} ({error})",
                dir.join(TLS).display(),
                dir.join(STAGING_TLS).display()
            )
        }
    }
}

/// Puts a new file in place of `name` by exchange, keeping the old entry itself (its bytes,
/// mode and owner) under a temp name for [`roll_back`]. A link there was refused up front;
/// one planted since is moved aside by the exchange, never followed.
fn replace_file(dir: &Dir, name: &'static str, bytes: &[u8], steps: &mut Vec<Step>) -> Result<()> {
    let old = dir.read_with_mode(name)?;
    if old.as_ref().is_some_and(|(old, _)| old == bytes) {
        return Ok(());
    }
    // Data files: never executable or setuid, whatever the old one was.
    let mode = old
        .as_ref()
        .map_or(PLAIN_FILE_MODE, |(_, mode)| mode & 0o666);
    let temp = dir.write_temp(&format!(".{name}{TEMP_MARK}."), bytes, mode)?;
    let placed = if old.is_some() {
        dir.exchange(&temp, name)
    } else {
        dir.rename_new(&temp, name)
    };
    if let Err(error) = placed {
        let _ = dir.remove_file(&temp);
        return Err(error);
    }
    steps.push(Step::File {
        name,
        backup: old.is_some().then_some(temp),
    });
    dir.sync();
    Ok(())
}
