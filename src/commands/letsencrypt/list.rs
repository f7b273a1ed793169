//! letsencrypt:list: apps with a certificate from us, their domains, expiry and time left.

use dokku_certs::acme::{self, settings::SettingsFile};
use dokku_certs::app::{App, Settings, list_apps};
use dokku_certs::cert::{format_openssl_date, now};
use dokku_certs::{Result, output};

/// Runs letsencrypt:list.
pub fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    let store = SettingsFile::new(&settings);
    let mut text = format!(
        "-----> {:<24} {:<26} {:<22} {:<22} {:<12} {}\n",
        "App name", "Certificate Expiry", "Time before expiry", "Time before renewal", "Profile", "Domains"
    );
    for name in list_apps(&settings)? {
        let app = App::open(&settings, &name)?;
        let (Some(leaf), Some(marker)) = (acme::issued_leaf(&app), acme::marker(&app)) else { continue };
        let left = leaf.not_after - now();
        // From what is on disk: graceperiod, the last ARI answer, or a third of the lifetime.
        let plan = acme::planned_offline(&settings, &app, &store.resolve(&name)?, &leaf);
        text.push_str(&format!(
            "{:<31} {:<26} {:<22} {:<22} {:<12} {}\n",
            name,
            format_openssl_date(leaf.not_after),
            acme::format_span(left),
            acme::format_span(plan.due_at - now()),
            marker.profile.as_deref().unwrap_or("-"),
            leaf.hostnames().join(",")
        ));
    }
    output::raw(&text);
    Ok(())
}
