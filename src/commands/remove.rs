//! certs:remove <app>: back to plain HTTP, tested before tls/ goes.

use dokku_certs::endpoint::remove;

use crate::cli_error::Result;
use crate::output;

/// Arguments of certs:remove.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
}

/// Runs certs:remove.
pub fn run(args: Args) -> Result<()> {
    let (env, app) = super::open_app(args.app.as_deref())?;
    let applied = remove(&env, &app, &output::event)?;
    super::report_reload(&applied);
    Ok(())
}
