//! letsencrypt:enable <app>|--all [--force]: a certificate for every domain in VHOST,
//! installed like certs:add; the CA is contacted only when something changed or a renewal is due.

use crate::output;
use dokku_certs::acme::notify::Event;
use dokku_certs::acme::{self, Enabled, settings::SettingsFile};
use dokku_certs::app::{App, Settings, list_apps};
use dokku_certs::{Error, Result};

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

/// Runs letsencrypt:enable. With --all every app is tried even if one fails; the exit code
/// says whether all succeeded.
pub fn run(args: Args) -> Result<()> {
    if !args.all {
        let (settings, app) = crate::commands::open_app(args.app.as_deref())?;
        return enable_one(&settings, &app, args.force);
    }
    let settings = Settings::from_env()?;
    let mut failed = Vec::new();
    for name in list_apps(&settings)? {
        let result = App::open(&settings, &name).and_then(|app| enable_one(&settings, &app, args.force));
        if let Err(error) = result {
            output::warn(&format!("{name}: {error}"));
            failed.push(name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Acme(format!("letsencrypt:enable failed for {}", failed.join(", "))))
    }
}

fn enable_one(settings: &Settings, app: &App, force: bool) -> Result<()> {
    let resolved = SettingsFile::new(settings).resolve(&app.name)?;
    output::heading(&format!("Let's Encrypt {}...", app.name));
    match acme::enable(settings, app, &resolved, force, &|step| output::step(step), &output::event) {
        Ok(Enabled::Issued(installed)) => {
            super::report_installed(&installed);
            super::notify(settings, app, Event::Renewed, "");
            Ok(())
        }
        Ok(Enabled::Unchanged(why)) => {
            output::step(&format!("{}: nothing to do, {why} (--force orders anyway)", app.name));
            Ok(())
        }
        Err(error) => {
            super::notify(settings, app, Event::Failed, &error.to_string());
            Err(error)
        }
    }
}
