//! letsencrypt:enable <app>: a certificate for every domain in VHOST, installed like certs:add.

use dokku_certs::Result;

/// Arguments of letsencrypt:enable.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
}

/// Runs letsencrypt:enable.
pub fn run(args: Args) -> Result<()> {
    let (settings, app) = crate::commands::open_app(args.app.as_deref())?;
    super::issue_and_report(&settings, &app)?;
    Ok(())
}
