//! letsencrypt:list: apps with a certificate from us, their domains, expiry and time left.

use crate::cli_error::Result;
use crate::output;
use dokku_certs::acme::{self, status};
use dokku_certs::app::Env;
use dokku_certs::cert::format_openssl_date;

/// Runs letsencrypt:list: dokku-letsencrypt's table, its header a step line.
pub fn run() -> Result<()> {
    let listed = status::list(&Env::from_env()?)?;
    let mut text = format!(
        "{}{:<24} {:<26} {:<22} {:<22} {:<12} {}\n",
        output::STEP,
        "App name",
        "Certificate Expiry",
        "Time before expiry",
        "Time before renewal",
        "Profile",
        "Domains"
    );
    for row in listed {
        // The app's column lines up with the header's first, after its prefix.
        text.push_str(&format!(
            "{:<width$} {:<26} {:<22} {:<22} {:<12} {}\n",
            row.app,
            format_openssl_date(row.expires_at),
            acme::format_span(row.expires_in),
            acme::format_span(row.renewal_in),
            row.profile.as_deref().unwrap_or("-"),
            row.domains.join(","),
            width = output::STEP.len() + 24,
        ));
    }
    output::raw(&text);
    Ok(())
}
