//! letsencrypt:auto-renew [<app>]: renew what is inside its grace period, most urgent first.

use dokku_certs::acme::{self, settings::Store};
use dokku_certs::app::{App, Settings, list_apps};
use dokku_certs::{Error, Result, output};

/// Arguments of letsencrypt:auto-renew.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One app; without it, every app with a certificate from Let's Encrypt.
    app: Option<String>,
}

/// Runs letsencrypt:auto-renew. Every app is tried even if one fails; the exit code says
/// whether all succeeded.
pub fn run(args: Args) -> Result<()> {
    let settings = Settings::from_env()?;
    let apps = match &args.app {
        Some(name) => vec![App::open(&settings, name)?],
        None => list_apps(&settings)?.iter().map(|n| App::open(&settings, n)).collect::<Result<Vec<_>>>()?,
    };
    let store = Store::new(&settings);
    let mut due = Vec::new();
    for app in apps.into_iter().filter(|app| acme::marker(app).is_some()) {
        // Ours but unreadable: as good as expired, renew it first.
        let left = acme::issued_leaf(&app).map_or(i64::MIN, |leaf| leaf.not_after - dokku_certs::cert::now());
        let grace = store.resolve(&app.name)?.grace_period;
        if left < grace {
            due.push((left, app));
        } else {
            output::step(&format!("{}: no renewal needed (expires in {})", app.name, super::format_span(left)));
        }
    }
    due.sort_by_key(|(left, _)| *left);
    let mut failed = Vec::new();
    for (left, app) in &due {
        output::step(&format!("{}: renewing (expires in {})", app.name, super::format_span(*left)));
        if let Err(error) = super::issue_and_report(&settings, app) {
            output::warn(&error.to_string());
            failed.push(app.name.clone());
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(Error::Acme(format!("renewal failed for {}", failed.join(", ")))) }
}
