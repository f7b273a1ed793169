//! `dokku-certs trigger NAME ARGS...`: the plugn triggers dokku's certs plugin answers, for
//! the dokku plugin's trigger shims (dokku-plugin/). Names, arguments, messages and exit
//! codes are those of dokku's plugin.

use std::path::PathBuf;

use dokku_certs::Error;
use dokku_certs::app::{CRT, KEY};
use dokku_certs::caller::Caller;
use dokku_certs::endpoint::{self, Input, add};
use dokku_certs::report;

use crate::cli_error::{CliError, Result};
use crate::output;

/// The triggers.
#[derive(Debug, clap::Subcommand)]
pub enum Trigger {
    /// certs-exists <app>: prints true or false.
    #[command(name = "certs-exists")]
    Exists { app: Option<String> },
    /// certs-get <app> crt|key: prints the file, or fails silently.
    #[command(name = "certs-get")]
    Get {
        app: Option<String>,
        what: Option<String>,
    },
    /// certs-set <app> CRT KEY: installs a pair, as certs:add does.
    #[command(name = "certs-set")]
    Set {
        app: Option<String>,
        crt: Option<PathBuf>,
        key: Option<PathBuf>,
    },
    /// certs-remove <app>: removes the pair, as certs:remove does.
    #[command(name = "certs-remove")]
    Remove { app: Option<String> },
    /// post-app-clone-setup <old> <new>: a clone does not keep the original's certificate.
    #[command(name = "post-app-clone-setup")]
    PostAppCloneSetup {
        old: Option<String>,
        new: Option<String>,
    },
    /// report <app>: the app's ssl section of `dokku report`.
    #[command(name = "report")]
    Report { app: Option<String> },
}

/// Arguments of `trigger`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    trigger: Trigger,
}

/// Runs a trigger.
pub fn run(args: Args) -> Result<()> {
    match args.trigger {
        Trigger::Exists { app } => {
            // As dokku's is_ssl_enabled: an app that does not exist has no certificate.
            let exists = super::open_app(app.as_deref()).is_ok_and(|(_, app)| app.has_cert());
            output::raw(&format!("{exists}\n"));
        }
        Trigger::Get { app, what } => {
            let (_, app) = super::open_app(app.as_deref())?;
            let name = match what.as_deref() {
                Some("crt") => CRT,
                Some("key") => KEY,
                // dokku's certs-get returns 1 without a word: callers test the status.
                _ => std::process::exit(1),
            };
            // As certs:show reads it; no certificate is a silent 1 too.
            let bytes = match endpoint::installed_file(&app, name) {
                Err(Error::NoEndpoint(_)) => std::process::exit(1),
                read => read?,
            };
            output::raw(&String::from_utf8_lossy(&bytes));
        }
        Trigger::Set { app, crt, key } => {
            let (env, app) = super::open_app(app.as_deref())?;
            let (Some(crt), Some(key)) = (crt, key) else {
                return Err(CliError::Usage(
                    "Both CRT and KEY file paths are required".into(),
                ));
            };
            // Read as certs:add reads file arguments: only what the caller could read.
            let input = Input::Files {
                caller: Caller::from_env()?,
                crt: &crt,
                key: &key,
            };
            let installed = add(&env, &app, input, &output::event)?;
            super::report_reload(&installed.applied);
        }
        Trigger::Remove { app } => {
            let (env, app) = super::open_app(app.as_deref())?;
            let applied = endpoint::remove(&env, &app, &output::event)?;
            super::report_reload(&applied);
        }
        Trigger::PostAppCloneSetup { new, .. } => {
            let (_, app) = super::open_app(new.as_deref())?;
            let fired = endpoint::forget_clone(&app)?;
            output::relay_stderr(&fired.stderr);
            if !fired.success {
                std::process::exit(1);
            }
        }
        Trigger::Report { app } => {
            let (_, app) = super::open_app(app.as_deref())?;
            output::raw(&output::report_text(
                &format!("{} ssl information", app.name),
                &report::fields(&app),
            ));
        }
    }
    Ok(())
}
