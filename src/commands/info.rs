//! certs:info <app>: the installed certificate, in the format of dokku's documentation.

use dokku_certs::cert::format_openssl_date;
use dokku_certs::endpoint::inspect;

use crate::cli_error::Result;
use crate::output;

/// Arguments of certs:info.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
}

/// Runs certs:info.
pub fn run(args: Args) -> Result<()> {
    let (_, app) = super::open_app(args.app.as_deref())?;
    let Some(inspection) = inspect(&app)? else {
        output::step(&format!("{} does not have an SSL endpoint", app.name));
        return Ok(());
    };
    let leaf = inspection.leaf();
    output::step(&format!("Fetching SSL Endpoint info for {}...", app.name));
    output::step("Certificate details:");
    output::heading("Common Name(s):");
    for name in leaf.hostnames() {
        output::heading(&format!("   {name}"));
    }
    output::heading(&format!(
        "Expires At: {}",
        format_openssl_date(leaf.not_after)
    ));
    output::heading(&format!("Issuer: {}", leaf.issuer));
    output::heading(&format!(
        "Starts At: {}",
        format_openssl_date(leaf.not_before)
    ));
    output::heading(&format!("Subject: {}", leaf.subject));
    output::heading(&format!(
        "SSL certificate is {}.",
        inspection.trust.describe()
    ));
    Ok(())
}
