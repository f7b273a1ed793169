//! letsencrypt:report [<app>|--global]: the values letsencrypt:set stored, secrets as `****`,
//! and for an app its certificate's profile and renewal state.

use crate::cli_error::Result;
use crate::output;
use dokku_certs::acme::status::{self, AppStatus, Report};
use dokku_certs::app::Env;
use dokku_certs::cert::format_openssl_date;

/// Arguments of letsencrypt:report.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An app or --global; without it, the global values and every app.
    #[arg(allow_hyphen_values = true)]
    scope: Option<String>,
}

/// Runs letsencrypt:report.
pub fn run(args: Args) -> Result<()> {
    let reports = status::report(&Env::from_env()?, args.scope.as_deref())?;
    output::raw(&reports.iter().map(to_text).collect::<String>());
    Ok(())
}

/// One scope: a heading, then one `Key: value` line per value.
fn to_text(report: &Report) -> String {
    let title = report.app.as_deref().unwrap_or("global");
    let mut text = format!("{}{title} letsencrypt information\n", output::HEADING);
    for (key, value) in &report.values {
        text.push_str(&line(key, value));
    }
    if let Some(status) = &report.status {
        text.push_str(&status_lines(status));
    }
    text
}

/// Whether the app's certificate is ours, its profile, and its renewal state.
fn status_lines(status: &AppStatus) -> String {
    let date = |t: Option<i64>| t.map(format_openssl_date).unwrap_or_default();
    [
        line("Active", &status.active.to_string()),
        line("Profile", status.profile.as_deref().unwrap_or_default()),
        line("Challenge", status.challenge.as_deref().unwrap_or_default()),
        line("Last renewal", &date(status.last_renewal)),
        line("Failures in a row", &status.failures.to_string()),
        line("Next attempt", &date(status.next_attempt)),
    ]
    .concat()
}

/// A detail line, its key padded to dokku's report column.
fn line(key: &str, value: &str) -> String {
    format!("{}{:<40}{}\n", output::DETAIL, format!("{key}:"), value)
}
