//! letsencrypt:list: apps with a certificate from us, their domains, expiry and time left.

use dokku_certs::acme::{self, settings::Store};
use dokku_certs::app::{App, Settings, list_apps};
use dokku_certs::cert::{format_openssl_date, now};
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
        let Some(leaf) = acme::issued_leaf(&App::open(&settings, &name)?) else { continue };
        let left = leaf.not_after - now();
        let grace = store.resolve(&name)?.grace_period;
        text.push_str(&format!(
            "{:<31} {:<26} {:<22} {:<22} {}\n",
            name,
            format_openssl_date(leaf.not_after),
            acme::format_span(left),
            acme::format_span(left - grace),
            leaf.hostnames().join(",")
        ));
    }
    output::raw(&text);
    Ok(())
}
