//! certs:remove <app>: back to plain HTTP, tested before tls/ goes.

use dokku_certs::Error;
use dokku_certs::app::{App, Settings};
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
    let (settings, app) = super::open_app(args.app.as_deref())?;
    announce_and_remove(&settings, &app)
}

/// Says what is about to happen, as dokku does before its proxy rebuild prints anything,
/// then removes the app's certificate (`remove` checks again under the lock).
pub fn announce_and_remove(settings: &Settings, app: &App) -> Result<()> {
    if !app.tls_dir().is_dir() {
        return Err(Error::NoAppEndpoint.into());
    }
    output::step(&format!("Removing SSL endpoint from {}", app.name));
    let applied = remove(settings, app, &output::event)?;
    super::report_reload(&applied);
    Ok(())
}
