//! nginx:report [<app>|--global] [--nginx-FLAG] [--format stdout|json]: dokku's report of the
//! nginx properties dokku-certs renders.

use dokku_certs::app::{App, Settings, list_apps};
use dokku_certs::properties::{GLOBAL, Store, report_fields};

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
    let settings = Settings::from_env()?;
    let scopes = match &args.scope {
        Some(scope) if scope == GLOBAL => vec![GLOBAL.to_string()],
        Some(name) => vec![App::open(&settings, name)?.name],
        None => list_apps(&settings)?,
    };
    let store = Store::new(&settings);
    let mut text = String::new();
    for scope in &scopes {
        let fields = report_fields(scope, &store.resolve(scope)?);
        match &args.flag {
            Some(flag) => match fields.get(flag) {
                Some(value) => text.push_str(&format!("{value}\n")),
                None => {
                    let flags: Vec<&str> = fields.keys().map(String::as_str).collect();
                    return Err(CliError::InvalidFlag(flags.join(", ")));
                }
            },
            None if args.format == Format::Json => text.push_str(&output::report_json(&fields, "--nginx-")),
            None => text.push_str(&output::report_text(&format!("{scope} nginx information"), &fields)),
        }
    }
    output::raw(&text);
    Ok(())
}
