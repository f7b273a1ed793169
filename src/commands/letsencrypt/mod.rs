//! letsencrypt:* commands, with dokku-letsencrypt's names.

pub mod active;
pub mod auto_renew;
pub mod cron_job;
pub mod disable;
pub mod enable;
pub mod list;
pub mod revoke;
pub mod set;

use dokku_certs::acme::{self, settings::Store};
use dokku_certs::app::{App, Settings};
use dokku_certs::endpoint::Installed;
use dokku_certs::{Result, output};

/// Gets and installs a certificate for `app`, printing each step as dokku-letsencrypt does.
pub fn issue_and_report(settings: &Settings, app: &App) -> Result<Installed> {
    let resolved = Store::new(settings).resolve(&app.name)?;
    output::heading(&format!("Let's Encrypt {}...", app.name));
    let installed = acme::issue(settings, app, &resolved, &|step| output::step(step))?;
    report_installed(&installed);
    Ok(installed)
}

/// The closing lines of an issuance: warnings, nginx reloaded, challenge removed.
pub fn report_installed(installed: &Installed) {
    for warning in &installed.warnings {
        output::warn(&format!("Warning: {warning}"));
    }
    super::report_reload(&installed.applied);
    output::step("Removed the ACME challenge from nginx.conf.d");
}
