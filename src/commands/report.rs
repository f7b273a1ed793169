//! certs:report [<app>] [--ssl-FIELD] [--format stdout|json|prometheus]: dokku's report, in-process.

use dokku_certs::app::Env;
use dokku_certs::metrics;
use dokku_certs::report;

use super::report_args::{self, Format};
use crate::cli_error::{CliError, Result};
use crate::output;

/// Arguments of certs:report, parsed by hand as dokku does (flags are its field names).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// [<app>] [--ssl-dir|--ssl-enabled|...] [--format stdout|json]
    #[arg(allow_hyphen_values = true, num_args = 0..)]
    words: Vec<String>,
}

/// Runs certs:report.
pub fn run(args: Args) -> Result<()> {
    let args = report_args::parse("certs:report", &args.words, true)?;
    let valid = report::flags(args.scope.as_deref());
    if let Some(flag) = &args.flag
        && !valid.contains(&flag.as_str())
    {
        return Err(CliError::InvalidFlag(valid.join(", ")));
    }
    let env = Env::from_env()?;
    if args.format == Format::Prometheus {
        // No apps is a valid scrape (no samples), not something to warn about.
        output::raw(&metrics::to_prometheus(&metrics::samples(
            &env,
            args.scope.as_deref(),
        )?));
        return Ok(());
    }
    let reports = report::reports(&env, args.scope.as_deref())?;
    if reports.is_empty() {
        // dokku's words, on stderr, and not an error.
        output::warn("You haven't deployed any applications yet");
        return Ok(());
    }
    let render = |(app, fields): &(String, report::Fields)| match &args.flag {
        Some(flag) => format!("{}\n", fields[flag.as_str()]),
        None if args.format == Format::Json => output::report_json(fields, "--ssl-"),
        None => output::report_text(&format!("{app} ssl information"), fields),
    };
    output::raw(&reports.iter().map(render).collect::<String>());
    Ok(())
}
