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

use dokku_certs::endpoint::Installed;

/// The closing lines of an issuance: nginx reloaded.
pub fn report_installed(installed: &Installed) {
    super::report_reload(&installed.applied);
}
