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

use crate::output;
use dokku_certs::acme;
use dokku_certs::acme::notify::Event;
use dokku_certs::app::{App, Settings};
use dokku_certs::endpoint::Installed;

/// Runs the notify-command, if one is set, for `event` on `app`, and in dokku mode fires the
/// post-letsencrypt-renew trigger; either failing is a warning: the renewal's outcome stands.
pub fn notify(settings: &Settings, app: &App, event: Event, error: &str) {
    // The listeners' own warnings, as dokku shows a trigger's stderr.
    output::relay_stderr(&acme::notify::tell(settings, app, event, error, &output::event));
}

/// The closing lines of an issuance: nginx reloaded.
pub fn report_installed(installed: &Installed) {
    super::report_reload(&installed.applied);
}
