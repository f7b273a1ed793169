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

use dokku_certs::acme::notify::{Event, Notice};
use dokku_certs::acme::{self, settings::SettingsFile};
use dokku_certs::app::{App, Settings};
use dokku_certs::dokku::Mode;
use dokku_certs::endpoint::Installed;
use dokku_certs::event::Event as Told;
use dokku_certs::output;

/// Runs the notify-command, if one is set, for `event` on `app`, and in dokku mode fires the
/// post-letsencrypt-renew trigger; either failing is a warning: the renewal's outcome stands.
pub fn notify(settings: &Settings, app: &App, event: Event, error: &str) {
    let command = SettingsFile::new(settings).resolve(&app.name).ok().and_then(|resolved| resolved.notify_command);
    let dokku = settings.mode == Mode::Dokku;
    if command.is_none() && !dokku {
        return;
    }
    let domains = app.domains().unwrap_or_default();
    let expiry = acme::issued_leaf(app).map(|leaf| leaf.not_after);
    let notice = Notice { app: &app.name, domains: &domains, event, error, expiry };
    if let Some(command) = command
        && let Err(why) = acme::notify::run(&command, &notice)
    {
        output::warn(&format!("{}: {why}", app.name));
    }
    if dokku {
        match acme::notify::fire_trigger(&notice) {
            // The listeners' own warnings, as dokku shows a trigger's stderr.
            Ok(stderr) => eprint!("{stderr}"),
            Err(why) => output::warn(&format!("{}: {why}", app.name)),
        }
    }
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
