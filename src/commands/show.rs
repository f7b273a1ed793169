//! certs:show <app> crt|key: print the installed certificate or key (the one place a key is printed).

use dokku_certs::app::{CRT, KEY};
use dokku_certs::endpoint::installed_file;

use crate::cli_error::{CliError, Result};
use crate::output;

/// Arguments of certs:show.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
    /// crt or key.
    what: Option<String>,
}

/// Runs certs:show.
pub fn run(args: Args) -> Result<()> {
    let (_, app) = super::open_app(args.app.as_deref())?;
    let name = match args.what.as_deref() {
        Some("crt") => CRT,
        Some("key") => KEY,
        _ => return Err(CliError::ShowWhat),
    };
    let bytes = installed_file(&app, name)?;
    output::raw(&String::from_utf8_lossy(&bytes));
    Ok(())
}
