//! nginx:set: store one of dokku's nginx properties and re-render every app it reaches, each
//! through [`store::apply`], so a value nginx refuses puts back both the property file and
//! every nginx.conf, exactly as a refused certificate does.

use crate::app::{App, Settings, list_apps};
use crate::error::Result;
use crate::event::Reporter;
use crate::properties::{self, GLOBAL, Previous, Store};
use crate::store::{self, Applied, Change, TlsChange};

/// Sets (`Some`) or clears (`None`) `name` for `scope` (an app, or `--global` for every
/// app), then re-renders and reloads. Returns each re-rendered app with how its change
/// ended; warnings go to `reporter`.
pub fn set(
    settings: &Settings,
    scope: &str,
    name: &str,
    value: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<Vec<(String, Applied)>> {
    // Refused before any app is looked at; Store::set checks again before it writes.
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        properties::check(name, value)?;
    }
    let store = Store::new(settings);
    if scope != GLOBAL {
        let app = App::open(settings, scope)?;
        // Under the app's lock from the write to the reload: a concurrent nginx:set or certs
        // command on the app sees the old value or the new one, and a roll-back is ours only.
        let _lock = store::lock(&app)?;
        let previous = store.set(scope, name, value)?;
        let applied = rerender_locked(settings, &app, reporter).inspect_err(|_| restore(&store, &previous))?;
        return Ok(vec![(app.name, applied)]);
    }
    let apps = list_apps(settings)?.iter().map(|app| App::open(settings, app)).collect::<Result<Vec<_>>>()?;
    let previous = store.set(scope, name, value)?;
    let mut done = Vec::new();
    for app in &apps {
        match rerender(settings, app, reporter) {
            Ok(applied) => done.push((app.name.clone(), applied)),
            Err(error) => {
                // Put the property back, then the apps already rendered with it (nginx
                // accepted their old config before).
                restore(&store, &previous);
                // (best effort, quietly: the error that made us restore is the one to show).
                for (app, _) in apps.iter().zip(&done) {
                    let _ = rerender(settings, app, &crate::event::Quiet);
                }
                return Err(error);
            }
        }
    }
    Ok(done)
}

/// Best effort: the error that made us restore is the one the user needs.
fn restore(store: &Store, previous: &Previous) {
    let _ = store.restore(previous);
}

/// Renders the app's nginx.conf again under its lock, tested and reloaded like a certificate change.
pub fn rerender(settings: &Settings, app: &App, reporter: &dyn Reporter) -> Result<Applied> {
    let _lock = store::lock(app)?;
    rerender_locked(settings, app, reporter)
}

fn rerender_locked(settings: &Settings, app: &App, reporter: &dyn Reporter) -> Result<Applied> {
    let change = Change { tls: TlsChange::Keep, vhost: None, domains: app.domains()?, listeners: app.listeners()? };
    store::apply(settings, app, &change, reporter)
}
