//! nginx:set: store one of dokku's nginx properties and re-render every app it reaches, each
//! through [`store::apply`], so a value nginx refuses puts back both the property file and
//! every nginx.conf, exactly as a refused certificate does.

use crate::app::{App, Settings, list_apps};
use crate::error::Result;
use crate::properties::{self, GLOBAL, Store};
use crate::store::{self, Applied, Change, TlsChange};

/// Sets (`Some`) or clears (`None`) `name` for `scope` (an app, or `--global` for every
/// app), then re-renders and reloads. Returns each re-rendered app with how its change ended.
pub fn set(settings: &Settings, scope: &str, name: &str, value: Option<&str>) -> Result<Vec<(String, Applied)>> {
    // Refused before any app is looked at; Store::set checks again before it writes.
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        properties::check(name, value)?;
    }
    let apps = if scope == GLOBAL {
        list_apps(settings)?.iter().map(|app| App::open(settings, app)).collect::<Result<Vec<_>>>()?
    } else {
        vec![App::open(settings, scope)?]
    };
    let store = Store::new(settings);
    let previous = store.set(scope, name, value)?;
    let mut done = Vec::new();
    for app in &apps {
        match rerender(settings, app) {
            Ok(applied) => done.push((app.name.clone(), applied)),
            Err(error) => {
                // Put the property back, then the apps already rendered with it (best effort:
                // nginx accepted their old config before).
                let _ = store.restore(&previous);
                for (name, _) in &done {
                    if let Ok(app) = App::open(settings, name) {
                        let _ = rerender(settings, &app);
                    }
                }
                return Err(error);
            }
        }
    }
    Ok(done)
}

/// Renders the app's nginx.conf again under its lock, tested and reloaded like a certificate change.
pub fn rerender(settings: &Settings, app: &App) -> Result<Applied> {
    let _lock = store::lock(app)?;
    let change = Change { tls: TlsChange::Keep, vhost: None, domains: app.domains()?, listeners: app.listeners()? };
    store::apply(settings, app, &change)
}
