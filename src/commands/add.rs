//! certs:add <app> [CRT KEY | DIR] (and certs:update, its alias): install a certificate and key.

use std::io::IsTerminal;
use std::path::PathBuf;

use dokku_certs::Error;
use dokku_certs::bundle::assemble;
use dokku_certs::bundle::{Origin, sources_from_reader};
use dokku_certs::caller::{Caller, FileRole, is_dir, read_dir, read_file};
use dokku_certs::endpoint::install;

use crate::cli_error::{CliError, Result};
use crate::output;

/// Arguments of certs:add and certs:update.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
    /// The certificate file (leaf first, then its chain), or a directory holding the certificate,
    /// chain and key in any files; without it, a tar archive is read from stdin.
    crt: Option<PathBuf>,
    /// The private key file.
    key: Option<PathBuf>,
}

/// Runs certs:add.
pub fn run(args: Args) -> Result<()> {
    let (settings, app) = super::open_app(args.app.as_deref())?;
    let (sources, origin) = match (&args.crt, &args.key) {
        (Some(crt), Some(key)) => {
            let caller = Caller::from_env()?;
            let crt = read_file(&caller, &settings.dokku_root, &app.name, crt, FileRole::Certificate)?;
            let key = read_file(&caller, &settings.dokku_root, &app.name, key, FileRole::Key)?;
            (vec![crt, key], Origin::Files)
        }
        (Some(dir), None) => {
            let caller = Caller::from_env()?;
            if !matches!(caller, Caller::Remote) && !is_dir(&caller, dir) {
                return Err(CliError::OneFileOnly);
            }
            (read_dir(&caller, &settings.dokku_root, &app.name, dir)?, Origin::Archive)
        }
        _ => {
            let mut stdin = std::io::stdin().lock();
            if stdin.is_terminal() {
                return Err(Error::NoArchive.into());
            }
            (sources_from_reader(&mut stdin)?, Origin::Archive)
        }
    };
    let bundle = assemble(&sources, origin)?;
    let installed = install(&settings, &app, &bundle, &output::event)?;
    output::step(&format!("Installed the certificate for {} ({})", app.name, bundle.leaf().hostnames().join(", ")));
    super::report_reload(&installed.applied);
    Ok(())
}
