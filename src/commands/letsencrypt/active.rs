//! letsencrypt:active <app>: `true` if the app's certificate came from letsencrypt:enable.

use crate::cli_error::Result;
use crate::output;
use dokku_certs::acme;

/// Arguments of letsencrypt:active.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
}

/// Runs letsencrypt:active.
pub fn run(args: Args) -> Result<()> {
    let (_, app) = crate::commands::open_app(args.app.as_deref())?;
    output::raw(if acme::marker(&app).is_some() {
        "true\n"
    } else {
        "false\n"
    });
    Ok(())
}
