//! Many apps at once (`letsencrypt:enable --all`, `auto-renew`): a few orders run at a time,
//! each app's new certificate is validated, staged and tested under the app's lock, then
//! ONE nginx reload serves them all. If the master refuses that reload, every staged app
//! goes back and fails with nginx's reason; one app's failure before that stops no other.
//! A single app goes the same way, a batch of one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::app::{App, Env};
use crate::dokku::Mode;
use crate::endpoint::Installed;
use crate::error::{Error, Result};
use crate::event::{Event, Reporter};
use crate::nginx;
use crate::transaction::{AppLock, Staged};

/// How many apps talk to the CA at once. Let's Encrypt allows 20 requests a second per IP
/// on its order endpoints and Pebble answers each order in tens of milliseconds: four
/// orders in flight keep well under both while the validations (which wait on the CA)
/// overlap. Installs are cheap in comparison; the reload is shared.
pub const PARALLEL_ORDERS: usize = 4;

/// One app's outcome in a batch.
#[derive(Debug)]
pub struct Outcome<T> {
    /// The app's name.
    pub app: String,
    /// What happened to it.
    pub result: Result<T>,
    /// What the listeners of dokku's post-letsencrypt-renew trigger wrote on stderr when
    /// they were told of the outcome (see [`super::notify::tell`]), for the caller to pass
    /// on as dokku shows a trigger's stderr; empty if nobody was told or nothing was written.
    pub listeners: String,
}

/// The apps whose outcome is an error, in the batch's order.
pub fn failed<T>(outcomes: &[Outcome<T>]) -> Vec<&str> {
    outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.app.as_str())
        .collect()
}

/// What one app's job leaves for the shared reload.
pub(crate) enum Pending<'a, T> {
    /// Nothing to install (not due, unchanged...): the job's answer.
    Done(T),
    /// A certificate staged and tested; the app's lock is held until it is finished.
    Staged(StagedIssue<'a, T>),
}

/// Turns an install's outcome into the job's answer (recording it if need be).
pub(crate) type Finish<'a, T> =
    Box<dyn FnOnce(Result<Installed>, &dyn Reporter) -> Result<T> + Send + 'a>;

/// A staged certificate waiting for the reload.
pub(crate) struct StagedIssue<'a, T> {
    /// The app's lock, released once `finish` has run.
    pub lock: AppLock,
    /// The change in place, not committed yet.
    pub staged: Staged<'a>,
    /// The names the new certificate is for.
    pub hostnames: Vec<String>,
    /// The bundle's warnings (expired, names not covered...), reported once it is live.
    pub warnings: Vec<String>,
    /// Turns the install's outcome into the job's answer (and records it), under the lock.
    pub finish: Finish<'a, T>,
}

/// Runs `job` for every app, `parallel` at a time (in dokku mode one at a time: dokku's
/// proxy rebuilds and reloads per app), then reloads nginx once for every staged app and
/// commits or rolls back each. Outcomes come in the order of `apps`. With more than one
/// app, each event names its app.
pub(crate) fn run<'a, T: Send>(
    env: &Env,
    apps: &'a [App],
    parallel: usize,
    report: &dyn Reporter,
    job: impl Fn(&'a App, &dyn Reporter) -> Result<Pending<'a, T>> + Sync,
) -> Vec<Outcome<T>> {
    if env.mode != Mode::Dokku && apps.len() > 1 {
        add_challenge_locations(env, apps, parallel, report);
    }
    run_once(env, apps, parallel, report, job)
}

/// Before a batch's orders: every nginx.conf without the challenge location (none yet, or
/// rendered by an older version) is rendered again, all of them with one reload, instead of
/// one reload per app when its order prepares. An app this fails for tries again alone.
fn add_challenge_locations(env: &Env, apps: &[App], parallel: usize, report: &dyn Reporter) {
    let outcomes = run_once(env, apps, parallel, report, |app, report| {
        let lock = crate::transaction::lock(app)?;
        // An app without domains is refused by its own job; nothing is rendered for it here.
        let change = if app.domains()?.is_empty() {
            None
        } else {
            super::challenge::location_change(app)?
        };
        let Some(change) = change else {
            return Ok(Pending::Done(false));
        };
        let staged = crate::transaction::stage(env, app, &change, report)?;
        let finish: Finish<'_, bool> = Box::new(|installed, _| installed.map(|_| true));
        Ok(Pending::Staged(StagedIssue {
            lock,
            staged,
            hostnames: Vec::new(),
            warnings: Vec::new(),
            finish,
        }))
    });
    let rendered = outcomes
        .iter()
        .filter(|o| matches!(o.result, Ok(true)))
        .count();
    if rendered > 0 {
        report.report(Event::Detail(format!(
            "{rendered} app(s) had no ACME challenge location in nginx.conf: rendered again (nginx reloaded once)"
        )));
        // nginx's old workers, without the location, accept connections for another 100 ms.
        std::thread::sleep(super::challenge::STEADY_AFTER_RELOAD);
    }
}

/// [`run`] without the challenge locations: the jobs, one reload, commit or roll back.
fn run_once<'a, T: Send>(
    env: &Env,
    apps: &'a [App],
    parallel: usize,
    report: &dyn Reporter,
    job: impl Fn(&'a App, &dyn Reporter) -> Result<Pending<'a, T>> + Sync,
) -> Vec<Outcome<T>> {
    let results = prepare_all(env, apps, parallel, report, &job);
    let staged = results
        .iter()
        .filter(|r| matches!(r, Ok(Pending::Staged(_))))
        .count();
    let reload = match staged {
        0 => Ok(Ok(())),
        _ if env.mode == Mode::Dokku => Ok(Ok(())),
        _ => nginx::reload_confirmed(env),
    };
    let named = apps.len() > 1;
    let outcomes = apps
        .iter()
        .zip(results)
        .map(|(app, result)| {
            let tell = |event: Event| {
                report.report(if named {
                    naming(&app.name, event)
                } else {
                    event
                })
            };
            let result = result.and_then(|p| finish(env, p, &reload, &tell));
            Outcome {
                app: app.name.clone(),
                result,
                listeners: String::new(),
            }
        })
        .collect();
    if let Err(error) = &reload {
        // Every staged app is back: nginx may keep its old configuration (once, for all).
        nginx::reload_after_roll_back(env, error);
    }
    outcomes
}

/// Every app's job, on `parallel` threads taking the next app in turn.
fn prepare_all<'a, T: Send>(
    env: &Env,
    apps: &'a [App],
    parallel: usize,
    report: &dyn Reporter,
    job: &(impl Fn(&'a App, &dyn Reporter) -> Result<Pending<'a, T>> + Sync),
) -> Vec<Result<Pending<'a, T>>> {
    let parallel = if env.mode == Mode::Dokku {
        1
    } else {
        parallel.clamp(1, apps.len().max(1))
    };
    let slots: Vec<Mutex<Option<Result<Pending<'a, T>>>>> =
        apps.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let named = apps.len() > 1;
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(app) = apps.get(index) else { break };
                    let tell = |event: Event| {
                        report.report(if named {
                            naming(&app.name, event)
                        } else {
                            event
                        })
                    };
                    let result = job(app, &tell);
                    *slots[index].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every app ran")
        })
        .collect()
}

/// The event with the app's name in front, as auto-renew's lines have it.
fn naming(app: &str, event: Event) -> Event {
    let named = |text: String| {
        if text.starts_with(&format!("{app}: ")) {
            text
        } else {
            format!("{app}: {text}")
        }
    };
    match event {
        Event::Step(text) => Event::Step(named(text)),
        Event::Detail(text) => Event::Detail(named(text)),
        Event::Warning(text) => Event::Warning(named(text)),
    }
}

/// Commits a staged app if nginx took the reload, rolls it back if not; then its answer.
fn finish<T>(
    env: &Env,
    pending: Pending<'_, T>,
    reload: &Result<std::result::Result<(), nginx::NotReloaded>>,
    report: &dyn Reporter,
) -> Result<T> {
    let StagedIssue {
        lock,
        staged,
        hostnames,
        warnings,
        finish,
    } = match pending {
        Pending::Done(answer) => return Ok(answer),
        Pending::Staged(staged) => staged,
    };
    let installed = match reload {
        Ok(reload) => {
            let applied = staged.commit(env, reload.clone(), report);
            warnings
                .into_iter()
                .for_each(|warning| report.report(Event::Warning(warning)));
            Ok(Installed { hostnames, applied })
        }
        Err(error) => Err(staged.roll_back(again(error))),
    };
    let answer = finish(installed, report);
    drop(lock);
    answer
}

/// The reload's error once more, for each app it rolled back.
fn again(error: &Error) -> Error {
    match error {
        Error::NginxReloadRefused(why) => Error::NginxReloadRefused(why.clone()),
        Error::NginxReloadUnconfirmed(why) => Error::NginxReloadUnconfirmed(why.clone()),
        other => Error::NginxReloadUnconfirmed(other.to_string()),
    }
}
