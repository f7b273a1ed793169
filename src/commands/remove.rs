//! certs:remove <app>: back to plain HTTP, tested before tls/ goes.

use dokku_certs::endpoint::remove;
use dokku_certs::{Result, output};

/// Arguments of certs:remove.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
}

/// Runs certs:remove.
pub fn run(args: Args) -> Result<()> {
    let (settings, app) = super::open_app(args.app.as_deref())?;
    let applied = remove(&settings, &app)?;
    output::step(&format!("Removing SSL endpoint from {}", app.name));
    super::report_reload(&applied);
    Ok(())
}
