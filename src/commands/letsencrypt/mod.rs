//! letsencrypt:* commands, with dokku-letsencrypt's names.

pub mod active;
pub mod auto_renew;
pub mod cron_job;
pub mod disable;
pub mod enable;
pub mod list;
pub mod report;
pub mod revoke;
pub mod set;

use dokku_certs::acme;
use dokku_certs::acme::notify::Event;
use dokku_certs::app::{App, Settings};
use dokku_certs::endpoint::Installed;
use dokku_certs::event::Event as Told;
use dokku_certs::output;

/// Runs the notify-command, if one is set, for `event` on `app`, and in dokku mode fires the
/// post-letsencrypt-renew trigger; either failing is a warning: the renewal's outcome stands.
pub fn notify(settings: &Settings, app: &App, event: Event, error: &str) {
    // The listeners' own warnings, as dokku shows a trigger's stderr.
    eprint!("{}", acme::notify::tell(settings, app, event, error, &show));
}

/// The closing lines of an issuance: warnings, nginx reloaded, challenge removed.
pub fn report_installed(installed: &Installed) {
    for warning in &installed.warnings {
        output::warn(&format!("Warning: {warning}"));
    }
    super::report_reload(&installed.applied);
    output::step("Removed the ACME challenge from nginx.conf.d");
}

/// Prints what the library tells while it works, in dokku's style.
pub fn show(event: Told) {
    match event {
        Told::Step(text) => output::step(&text),
        Told::Detail(text) => output::detail(&text),
        Told::Warning(text) => output::warn(&format!("Warning: {text}")),
        // A kind this binary does not know yet is still worth a line.
        other => output::detail(&format!("{other:?}")),
    }
}
