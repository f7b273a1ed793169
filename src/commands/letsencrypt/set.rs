//! letsencrypt:set [--global|<app>] KEY [VALUE]: set or clear email, server, graceperiod, key-type.

use crate::cli_error::{CliError, Result};
use crate::output;
use dokku_certs::acme::settings;
use dokku_certs::app::Env;

/// Arguments of letsencrypt:set.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// --global or an app, the key, and the value (none clears it).
    #[arg(allow_hyphen_values = true, num_args = 0..)]
    words: Vec<String>,
}

/// Runs letsencrypt:set.
pub fn run(args: Args) -> Result<()> {
    let [scope, key, rest @ ..] = args.words.as_slice() else {
        return Err(CliError::Usage(
            "usage: letsencrypt:set [--global|<app>] KEY [VALUE]".into(),
        ));
    };
    let value = match rest {
        [] => None,
        [value] => Some(value.as_str()),
        _ => {
            return Err(CliError::Usage(
                "letsencrypt:set takes one value; quote it if it has spaces".into(),
            ));
        }
    };
    settings::set(&Env::from_env()?, scope, key, value)?;
    match value {
        // A secret is never echoed: it would land in shell logs and CI output.
        Some(_) if settings::is_secret(key) => {
            output::step(&format!("Setting {key} to **** for {scope}"))
        }
        Some(value) => output::step(&format!("Setting {key} to {value} for {scope}")),
        None => output::step(&format!("Unsetting {key} for {scope}")),
    }
    Ok(())
}
