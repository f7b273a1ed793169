//! letsencrypt:disable <app>: remove our certificate, like certs:remove.

use dokku_certs::acme;
use dokku_certs::endpoint::remove;
use dokku_certs::{Error, Result, output};

/// Arguments of letsencrypt:disable.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
}

/// Runs letsencrypt:disable.
pub fn run(args: Args) -> Result<()> {
    let (settings, app) = crate::commands::open_app(args.app.as_deref())?;
    if acme::marker(&app).is_none() {
        return Err(Error::NotLetsEncrypt(app.name));
    }
    output::step(&format!("Disabling Let's Encrypt for {}...", app.name));
    let applied = remove(&settings, &app)?;
    output::step(&format!("Removing SSL endpoint from {}", app.name));
    crate::commands::report_reload(&applied);
    Ok(())
}
