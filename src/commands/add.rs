//! certs:add <app> [CRT KEY | DIR] (and certs:update, its alias): install a certificate and key.

use std::io::IsTerminal;
use std::path::PathBuf;

use dokku_certs::Error;
use dokku_certs::caller::{Caller, is_dir};
use dokku_certs::endpoint::{Input, add};

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
    let (env, app) = super::open_app(args.app.as_deref())?;
    let installed = add(&env, &app, input(&args)?, &output::event)?;
    output::step(&format!(
        "Installed the certificate for {} ({})",
        app.name,
        installed.hostnames.join(", ")
    ));
    super::report_reload(&installed.applied);
    Ok(())
}

/// What the arguments name: two files, a directory, or stdin (which must not be a terminal).
fn input(args: &Args) -> Result<Input<'_>> {
    match (&args.crt, &args.key) {
        (Some(crt), Some(key)) => Ok(Input::Files {
            caller: Caller::from_env()?,
            crt,
            key,
        }),
        (Some(dir), None) => {
            let caller = Caller::from_env()?;
            if !matches!(caller, Caller::Remote) && !is_dir(&caller, dir) {
                return Err(CliError::OneFileOnly);
            }
            Ok(Input::Dir { caller, dir })
        }
        _ => {
            let stdin = std::io::stdin().lock();
            if stdin.is_terminal() {
                return Err(Error::NoArchive.into());
            }
            Ok(Input::Archive(Box::new(stdin)))
        }
    }
}
