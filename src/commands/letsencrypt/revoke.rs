//! letsencrypt:revoke <app>: revoke the app's certificate at the CA.

use crate::cli_error::Result;
use crate::output;
use dokku_certs::acme;

/// Arguments of letsencrypt:revoke.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
}

/// Runs letsencrypt:revoke.
pub fn run(args: Args) -> Result<()> {
    let (env, app) = crate::commands::open_app(args.app.as_deref())?;
    output::step(&format!(
        "Revoking the Let's Encrypt certificate of {}...",
        app.name
    ));
    acme::revoke(&env, &app)?;
    output::step("Certificate revoked.");
    output::warn(&format!(
        "the revoked certificate is still installed: run letsencrypt:enable {0} for a new one, or letsencrypt:disable {0}",
        app.name
    ));
    Ok(())
}
