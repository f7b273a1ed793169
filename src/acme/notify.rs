//! `letsencrypt:set --global notify-command CMD`: run after every renewal or enable, success
//! or failure, so that someone hears of it now that Let's Encrypt sends no expiry e-mail.
//! In dokku mode the plugin trigger [`TRIGGER`] is fired too, for other dokku plugins.

use std::process::{Command, Stdio};

use super::settings::SettingsFile;
use crate::app::{App, Env};
use crate::dokku::Mode;
use crate::event::{self, Reporter};

/// The plugn trigger fired in dokku mode after every renewal or enable: `APP EVENT`, with
/// the notify-command's LETSENCRYPT_* variables in its environment. dokku-letsencrypt has
/// no such trigger; the name follows dokku's `post-certs-update`.
pub const TRIGGER: &str = "post-letsencrypt-renew";

/// What happened, as the command's LETSENCRYPT_EVENT says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A certificate was obtained and installed (enable or renewal).
    Renewed,
    /// An attempt failed; the old certificate stays.
    Failed,
}

impl Event {
    /// The name in LETSENCRYPT_EVENT.
    pub fn name(self) -> &'static str {
        match self {
            Event::Renewed => "renewed",
            Event::Failed => "failed",
        }
    }
}

/// What the command is told, in its environment.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// LETSENCRYPT_APP.
    pub app: &'a str,
    /// LETSENCRYPT_DOMAINS, space-separated.
    pub domains: &'a [String],
    /// LETSENCRYPT_EVENT.
    pub event: Event,
    /// LETSENCRYPT_ERROR: the failure's message (empty on success).
    pub error: &'a str,
    /// LETSENCRYPT_EXPIRY: notAfter of the installed certificate, Unix seconds (empty if none).
    pub expiry: Option<i64>,
}

impl Notice<'_> {
    /// The LETSENCRYPT_* variables, the same for the command and the trigger.
    fn environment(&self) -> [(&'static str, String); 5] {
        [
            ("LETSENCRYPT_APP", self.app.to_string()),
            ("LETSENCRYPT_DOMAINS", self.domains.join(" ")),
            ("LETSENCRYPT_EVENT", self.event.name().to_string()),
            ("LETSENCRYPT_ERROR", self.error.to_string()),
            (
                "LETSENCRYPT_EXPIRY",
                self.expiry.map(|t| t.to_string()).unwrap_or_default(),
            ),
        ]
    }
}

/// Runs `sh -c CMD` with the notice in its environment, stdin closed and its output going
/// where ours goes; an error says why it could not run or how it exited.
pub fn run(command: &str, notice: &Notice<'_>) -> Result<(), String> {
    let status = Command::new("/bin/sh")
        .args(["-c", command])
        .envs(notice.environment())
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run the notify-command: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the notify-command exited with {status}"))
    }
}

/// Fires [`TRIGGER`] `APP EVENT` through plugn. Returns what the listeners wrote on stderr;
/// an error says why plugn could not run or that a listener failed (with its stderr).
pub fn fire_trigger(notice: &Notice<'_>) -> Result<String, String> {
    let fired = crate::dokku::fire_with(
        TRIGGER,
        &[notice.app, notice.event.name()],
        &notice.environment(),
    )
    .map_err(|e| e.to_string())?;
    if fired.success {
        Ok(fired.stderr)
    } else {
        Err(format!(
            "the {TRIGGER} trigger failed: {}",
            fired.stderr.trim()
        ))
    }
}

/// Tells whoever listens that `event` happened to `app` (`error`: the failure's message):
/// runs the notify-command if one is set, and in dokku mode fires [`TRIGGER`]. Either
/// failing is a warning told to `reporter`: the renewal's outcome stands. Returns what the
/// trigger's listeners wrote on stderr, for the caller to pass on as dokku shows it.
pub fn tell(env: &Env, app: &App, event: Event, error: &str, reporter: &dyn Reporter) -> String {
    let command = SettingsFile::new(env)
        .resolve(&app.name)
        .ok()
        .and_then(|resolved| resolved.notify_command);
    let dokku = env.mode == Mode::Dokku;
    if command.is_none() && !dokku {
        return String::new();
    }
    let domains = app.domains().unwrap_or_default();
    let expiry = super::issued_leaf(app).map(|leaf| leaf.not_after);
    let notice = Notice {
        app: &app.name,
        domains: &domains,
        event,
        error,
        expiry,
    };
    let warn = |why: String| reporter.report(event::Event::Warning(format!("{}: {why}", app.name)));
    if let Some(command) = command
        && let Err(why) = run(&command, &notice)
    {
        warn(why);
    }
    if !dokku {
        return String::new();
    }
    fire_trigger(&notice).unwrap_or_else(|why| {
        warn(why);
        String::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::settings::GLOBAL;
    use crate::event::Collected;

    #[test]
    fn a_failing_notify_command_is_a_warning_naming_the_app_and_sees_the_notice() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("myapp")).unwrap();
        let env =
            Env::from_lookup(|n| (n == "DOKKU_ROOT").then(|| root.path().display().to_string()))
                .unwrap();
        let command = r#"test "$LETSENCRYPT_APP $LETSENCRYPT_EVENT $LETSENCRYPT_ERROR" = "myapp failed boom" && exit 3"#;
        SettingsFile::new(&env)
            .set(GLOBAL, "notify-command", Some(command))
            .unwrap();
        let app = App::open(&env, "myapp").unwrap();
        let collected = Collected::default();
        assert_eq!(tell(&env, &app, Event::Failed, "boom", &collected), "");
        let warning = "myapp: the notify-command exited with exit status: 3".to_string();
        assert_eq!(collected.events(), [event::Event::Warning(warning)]);
    }
}
