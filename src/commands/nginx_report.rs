//! nginx:report [<app>|--global] [--nginx-FLAG] [--format stdout|json]: dokku's report of the
//! nginx properties dokku-certs renders.

use dokku_certs::app::Env;
use dokku_certs::properties;

use super::report_args::{self, Format};
use crate::cli_error::{CliError, Result};
use crate::output;

/// Arguments of nginx:report, parsed by hand as dokku does (flags are its field names).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// [<app>|--global] [--nginx-FLAG] [--format stdout|json]
    #[arg(allow_hyphen_values = true, num_args = 0..)]
    words: Vec<String>,
}

/// Runs nginx:report.
pub fn run(args: Args) -> Result<()> {
    let args = report_args::parse("nginx:report", &args.words, false)?;
    let env = Env::from_env()?;
    let reports = properties::reports(&env, args.scope.as_deref())?;
    if reports.is_empty() {
        // dokku's nginx-vhosts CommandReport: its words, on stderr, and not an error (as certs:report).
        output::warn("You haven't deployed any applications yet");
        return Ok(());
    }
    let mut text = String::new();
    for (scope, fields) in reports {
        match &args.flag {
            Some(flag) => match fields.get(flag) {
                Some(value) => text.push_str(&format!("{value}\n")),
                None => {
                    let flags: Vec<&str> = fields.keys().map(String::as_str).collect();
                    return Err(CliError::InvalidFlag(flags.join(", ")));
                }
            },
            None if args.format == Format::Json => {
                text.push_str(&output::report_json(&fields, "--nginx-"))
            }
            None => text.push_str(&output::report_text(
                &format!("{scope} nginx information"),
                &fields,
            )),
        }
    }
    output::raw(&text);
    Ok(())
}
