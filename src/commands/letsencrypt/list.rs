//! letsencrypt:list: apps with a certificate from us, their domains, expiry and time left.

use dokku_certs::acme::{self, settings::Store};
use dokku_certs::app::{App, Settings, list_apps};
use dokku_certs::cert::format_openssl_date;
use dokku_certs::{Result, output};

/// Runs letsencrypt:list.
pub fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    let store = Store::new(&settings);
    let mut text = format!(
        "-----> {:<24} {:<26} {:<22} {:<22} {}\n",
        "App name", "Certificate Expiry", "Time before expiry", "Time before renewal", "Domains"
    );
    for name in list_apps(&settings)? {
        let app = App::open(&settings, &name)?;
        if acme::marker(&app).is_none() {
            continue;
        }
        let Some(left) = acme::seconds_left(&app) else { continue };
        let grace = store.resolve(&name)?.grace_period;
        let domains = std::fs::read_to_string(app.vhost_path())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(",");
        text.push_str(&format!(
            "{:<31} {:<26} {:<22} {:<22} {}\n",
            name,
            format_openssl_date(dokku_certs::cert::now() + left),
            super::format_span(left),
            super::format_span(left - grace),
            domains
        ));
    }
    output::raw(&text);
    Ok(())
}
