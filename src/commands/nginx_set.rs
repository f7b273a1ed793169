//! nginx:set [--global|<app>] KEY [VALUE]: dokku's nginx property, stored where dokku keeps
//! it, then every affected nginx.conf rendered again, tested and reloaded.

use dokku_certs::app::Env;
use dokku_certs::transaction::Applied;
use dokku_certs::{Error, vhost};

use crate::cli_error::{CliError, Result};
use crate::output;

/// Arguments of nginx:set.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// --global or an app, the key, and the value (none clears it).
    #[arg(allow_hyphen_values = true, num_args = 0..)]
    words: Vec<String>,
}

/// Runs nginx:set.
pub fn run(args: Args) -> Result<()> {
    let (scope, key, value) = match args.words.as_slice() {
        [] => return Err(Error::NoApp.into()),
        [_] => return Err(CliError::Usage("No key specified".into())),
        [scope, key] => (scope, key, None),
        [scope, key, value] => (scope, key, Some(value.as_str())),
        _ => {
            return Err(CliError::Usage(
                "nginx:set takes one value; quote it if it has spaces".into(),
            ));
        }
    };
    let env = Env::from_env()?;
    let set = vhost::set(&env, scope, key, value, &output::event)?;
    match value.filter(|v| !v.is_empty()) {
        Some(value) => output::heading(&format!("Setting {key} to {value}")),
        None => output::heading(&format!("Unsetting {key}")),
    }
    for (app, applied) in &set.apps {
        output::step(&format!("Rendered nginx.conf for {app}"));
        if set.reload.is_none() {
            super::report_reload(applied);
        }
    }
    // --global: one reload for every app, reported once.
    if let Some(reload) = set.reload {
        super::report_reload(&Applied {
            reload,
            proxy_messages: None,
        });
    }
    Ok(())
}
