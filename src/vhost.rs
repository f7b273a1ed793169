//! nginx:set: store one of dokku's nginx properties and re-render every app it reaches, each
//! through [`transaction::apply`] (`--global`: tested app by app, then one reload for all), so a
//! value nginx refuses puts back both the property file and every nginx.conf, exactly as a
//! refused certificate does.

use crate::app::{App, Env, list_apps};
use crate::dokku::Mode;
use crate::error::Result;
use crate::event::{Quiet, Reporter};
use crate::nginx::{self, NotReloaded};
use crate::properties::{self, GLOBAL, Previous, Store};
use crate::transaction::{self, Applied, Change};

/// What nginx:set did.
#[derive(Debug)]
pub struct Set {
    /// Each re-rendered app, with how its change ended.
    pub apps: Vec<(String, Applied)>,
    /// `--global` in standalone mode: the one reload for every app (`Err`: nginx is not
    /// running). `None` when each app's change reloaded on its own.
    pub reload: Option<std::result::Result<(), NotReloaded>>,
}

/// Sets (`Some`) or clears (`None`) `name` for `scope` (an app, or `--global` for every
/// app), then re-renders and reloads: `--global` tests every app's nginx.conf and reloads
/// nginx once, not once per app. Warnings go to `reporter`.
pub fn set(
    env: &Env,
    scope: &str,
    name: &str,
    value: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<Set> {
    // Refused before any app is looked at; Store::set checks again before it writes.
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        properties::check(name, value)?;
    }
    let store = Store::new(env);
    if scope != GLOBAL {
        let app = App::open(env, scope)?;
        // Under the app's lock from the write to the reload: a concurrent nginx:set or certs
        // command on the app sees the old value or the new one, and a roll-back is ours only.
        let _lock = transaction::lock(&app)?;
        let previous = store.set(scope, name, value)?;
        let applied =
            rerender_locked(env, &app, reporter).inspect_err(|_| restore(&store, &previous))?;
        return Ok(Set {
            apps: vec![(app.name, applied)],
            reload: None,
        });
    }
    let apps = list_apps(env)?
        .iter()
        .map(|app| App::open(env, app))
        .collect::<Result<Vec<_>>>()?;
    let previous = store.set(scope, name, value)?;
    let mut done = Vec::new();
    for app in &apps {
        match rerender_unreloaded(env, app, reporter) {
            Ok(applied) => done.push((app.name.clone(), applied)),
            Err(error) => {
                // nginx still runs the old configuration: put the property back, and the
                // apps already rendered with it.
                undo_global(env, &store, &previous, &apps[..done.len()]);
                return Err(error);
            }
        }
    }
    if env.mode == Mode::Dokku {
        return Ok(Set {
            apps: done,
            reload: None,
        });
    }
    match nginx::reload_confirmed(env) {
        Ok(reload) => Ok(Set {
            apps: done,
            reload: Some(reload),
        }),
        Err(error) => {
            undo_global(env, &store, &previous, &apps);
            nginx::reload_after_roll_back(env, &error);
            Err(error)
        }
    }
}

/// Puts the global property back and renders `apps` again with it (each tested; no reload:
/// nginx never took the new value). Best effort, quietly: the error that made us undo is
/// the one to show.
fn undo_global(env: &Env, store: &Store, previous: &Previous, apps: &[App]) {
    restore(store, previous);
    for app in apps {
        let _ = rerender_unreloaded(env, app, &Quiet);
    }
}

/// Best effort: the error that made us restore is the one the user needs.
fn restore(store: &Store, previous: &Previous) {
    let _ = store.restore(previous);
}

fn rerender_unreloaded(env: &Env, app: &App, reporter: &dyn Reporter) -> Result<Applied> {
    let _lock = transaction::lock(app)?;
    transaction::apply_unreloaded(env, app, &Change::keep(app)?, reporter)
}

fn rerender_locked(env: &Env, app: &App, reporter: &dyn Reporter) -> Result<Applied> {
    transaction::apply(env, app, &Change::keep(app)?, reporter)
}
