//! letsencrypt:disable <app>: remove our certificate, like certs:remove.

use crate::cli_error::Result;
use crate::output;
use dokku_certs::acme;

/// Arguments of letsencrypt:disable.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
}

/// Runs letsencrypt:disable. Whether the certificate is ours is decided under the app's
/// lock, so a certs:add that lands first keeps its certificate.
pub fn run(args: Args) -> Result<()> {
    let (env, app) = crate::commands::open_app(args.app.as_deref())?;
    output::step(&format!("Disabling Let's Encrypt for {}...", app.name));
    let applied = acme::disable(&env, &app, &output::event)?;
    crate::commands::report_reload(&applied);
    Ok(())
}
