//! letsencrypt:active <app>: `true` if the app's certificate came from letsencrypt:enable.

use dokku_certs::acme;
use dokku_certs::{Result, output};

/// Arguments of letsencrypt:active.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
}

/// Runs letsencrypt:active.
pub fn run(args: Args) -> Result<()> {
    let (_, app) = crate::commands::open_app(args.app.as_deref())?;
    output::raw(if acme::marker(&app).is_some() { "true\n" } else { "false\n" });
    Ok(())
}
