//! letsencrypt:enable <app>|--all [--force]: a certificate for every domain in VHOST,
//! installed like certs:add; the CA is contacted only when something changed or a renewal is due.

use crate::cli_error::{CliError, Result};
use crate::output;
use dokku_certs::acme::{self, AcmeError, Enabled, batch};
use dokku_certs::app::{App, Env, Opened, open_each};

/// Arguments of letsencrypt:enable.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
    /// Every app.
    #[arg(long, conflicts_with = "app")]
    all: bool,
    /// Order even if nothing changed since the installed certificate.
    #[arg(long)]
    force: bool,
}

/// Runs letsencrypt:enable. With --all every app is tried even if one fails, and nginx
/// reloads once for all of them; the exit code says whether all succeeded.
pub fn run(args: Args) -> Result<()> {
    if !args.all {
        let (env, app) = crate::commands::open_app(args.app.as_deref())?;
        output::heading(&format!("Let's Encrypt {}...", app.name));
        let outcome =
            acme::enable(&env, std::slice::from_ref(&app), args.force, &output::event).pop();
        let outcome = outcome.expect("one outcome per app");
        if let Ok(enabled) = &outcome.result {
            show(&app, enabled);
        }
        // The trigger's listeners' own warnings, as dokku shows a trigger's stderr.
        output::relay_stderr(&outcome.listeners);
        return outcome.result.map(drop).map_err(Into::into);
    }
    let env = Env::from_env()?;
    let Opened {
        apps,
        failed: unopened,
    } = open_each(&env)?;
    let mut failed = Vec::new();
    for (name, error) in unopened {
        output::warn(&format!("{name}: {error}"));
        failed.push(name);
    }
    output::heading(&format!("Let's Encrypt {} app(s)...", apps.len()));
    let outcomes = acme::enable(&env, &apps, args.force, &output::event);
    for (app, outcome) in apps.iter().zip(&outcomes) {
        match &outcome.result {
            Ok(enabled) => show(app, enabled),
            Err(error) => output::warn(&format!("{}: {error}", app.name)),
        }
        output::relay_stderr(&outcome.listeners);
    }
    failed.extend(batch::failed(&outcomes).into_iter().map(str::to_string));
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Lib(
            AcmeError::Apps {
                what: "letsencrypt:enable",
                apps: failed,
            }
            .into(),
        ))
    }
}

/// The closing lines of one app that did not fail.
fn show(app: &App, enabled: &Enabled) {
    match enabled {
        Enabled::Issued(installed) => {
            output::step(&format!("{}: certificate installed", app.name));
            super::report_installed(installed);
        }
        Enabled::Unchanged(why) => output::step(&format!(
            "{}: nothing to do, {why} (--force orders anyway)",
            app.name
        )),
    }
}
