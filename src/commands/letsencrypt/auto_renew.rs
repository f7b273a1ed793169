//! letsencrypt:auto-renew [<app>]: renew what is inside its grace period, most urgent first.

use crate::output;
use dokku_certs::acme::notify::Event;
use dokku_certs::acme::{self, Renewal, settings::SettingsFile};
use dokku_certs::app::{App, Settings, list_apps};
use dokku_certs::cert::{format_openssl_date, now};
use dokku_certs::{Error, Result};

/// Arguments of letsencrypt:auto-renew.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One app; without it, every app with a certificate from Let's Encrypt.
    app: Option<String>,
}

/// Runs letsencrypt:auto-renew. Every app is tried even if one fails (a stalled CA costs
/// that app its order deadline, no more); the exit code says whether all succeeded.
pub fn run(args: Args) -> Result<()> {
    let settings = Settings::from_env()?;
    // A dated first line: under cron this output is appended to a log.
    output::heading(&format!("letsencrypt:auto-renew, {}", format_openssl_date(now())));
    let apps = match &args.app {
        Some(name) => vec![App::open(&settings, name)?],
        None => list_apps(&settings)?.iter().map(|n| App::open(&settings, n)).collect::<Result<Vec<_>>>()?,
    };
    // Read without the lock only to put the most urgent first: acme::renew decides under it.
    let mut candidates: Vec<(i64, App)> =
        apps.into_iter().filter(|app| acme::marker(app).is_some()).map(|app| (acme::time_left(&app), app)).collect();
    candidates.sort_by_key(|(left, _)| *left);
    let store = SettingsFile::new(&settings);
    let mut failed = Vec::new();
    for (_, app) in &candidates {
        let renewal = store
            .resolve(&app.name)
            .and_then(|resolved| acme::renew(&settings, app, &resolved, &|step| output::step(step), &output::event));
        match renewal {
            Ok(Renewal::Renewed(installed)) => {
                super::report_installed(&installed);
                super::notify(&settings, app, Event::Renewed, "");
            }
            Ok(Renewal::NotDue(left, plan)) => output::step(&format!(
                "{}: no renewal needed (expires in {}; {})",
                app.name,
                acme::format_span(left),
                acme::describe_plan(&plan)
            )),
            Ok(Renewal::BackingOff(wait, failures)) => output::step(&format!(
                "{}: {failures} renewal(s) failed in a row; the next attempt waits {} (backoff)",
                app.name,
                acme::format_span(wait)
            )),
            Ok(Renewal::NotOurs) => {
                output::step(&format!("{}: its certificate is no longer from Let's Encrypt; left alone", app.name))
            }
            Err(error) => {
                output::warn(&format!("{}: {error}", app.name));
                super::notify(&settings, app, Event::Failed, &error.to_string());
                failed.push(app.name.clone());
            }
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(Error::Acme(format!("renewal failed for {}", failed.join(", ")))) }
}
