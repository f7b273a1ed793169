//! dokku mode: dokku-certs running as dokku's own `certs` plugin.
//!
//! There nginx.conf belongs to dokku's proxy plugin (nginx-vhosts, or whichever proxy the
//! app uses). After tls/ is swapped, dokku-certs fires the triggers dokku's certs plugin
//! fires (`post-certs-update` or `post-certs-remove`, then `post-domains-update`) and the
//! proxy renders, tests and reloads its configuration. If that rebuild fails, [`crate::store`]
//! puts the previous tls/ back and [`rebuild_after_roll_back`] rebuilds again, so the proxy
//! ends up with a configuration made from the files that are really in place.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::app::{App, Settings};
use crate::error::{Error, Result};

/// Who renders nginx.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// dokku-certs renders, tests and reloads nginx.conf itself (hosts without dokku).
    Standalone,
    /// dokku's proxy plugin does, when dokku fires its triggers (the plugin's shims set this).
    Dokku,
}

impl Mode {
    /// The mode named by DOKKU_CERTS_MODE: unset or `standalone`, or `dokku`.
    pub fn from_setting(value: Option<String>) -> Result<Mode> {
        match value.as_deref().map(str::trim) {
            None | Some("standalone") => Ok(Mode::Standalone),
            Some("dokku") => Ok(Mode::Dokku),
            Some(_) => Err(Error::BadSetting {
                name: "DOKKU_CERTS_MODE",
                value: value.unwrap_or_default(),
                why: "standalone or dokku is expected",
            }),
        }
    }
}

/// The trigger dokku's certs plugin fires after tls/ changed: the proxy and the ports plugin
/// (which adds or drops the https:443 mapping) listen to it.
fn certs_event(has_tls: bool) -> &'static str {
    if has_tls { "post-certs-update" } else { "post-certs-remove" }
}

/// What a trigger run left: its exit status and what it wrote on stderr.
#[derive(Debug)]
pub struct Fired {
    /// Whether every listener of the trigger succeeded.
    pub success: bool,
    /// The listeners' stderr (dokku's warnings, nginx's complaints); stdout went to ours.
    pub stderr: String,
}

/// Runs `plugn trigger NAME ARGS...` as dokku's bash plugins do. stdout is passed through
/// (dokku's `-----> Configuring ...` lines), stderr is kept to find nginx's reason in it.
pub fn fire(trigger: &str, args: &[&str]) -> Result<Fired> {
    fire_with(trigger, args, &[])
}

/// [`fire`] with `env` added to the listeners' environment.
pub fn fire_with(trigger: &str, args: &[&str], env: &[(&str, String)]) -> Result<Fired> {
    let mut child = Command::new("plugn")
        .arg("trigger")
        .arg(trigger)
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::PlugnCommand { trigger: trigger.to_string(), source })?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        stderr = String::from_utf8_lossy(&bytes).into_owned();
    }
    let status = child.wait().map_err(|source| Error::PlugnCommand { trigger: trigger.to_string(), source })?;
    Ok(Fired { success: status.success(), stderr })
}

/// Lets dokku rebuild the app's proxy config from the tls/ now in place. Returns the
/// proxy's warnings; a failure carries nginx's most telling line.
pub fn rebuild(app: &App, has_tls: bool) -> Result<String> {
    let mut messages = String::new();
    for trigger in [certs_event(has_tls), "post-domains-update"] {
        let fired = fire(trigger, &[&app.name])?;
        messages.push_str(&fired.stderr);
        if !fired.success {
            let reason = crate::nginx::telling_line(&messages).unwrap_or_else(|| format!("{trigger} failed"));
            return Err(Error::ProxyRebuild { reason, again: None });
        }
    }
    Ok(messages)
}

/// Has nginx pick up a change in the app's nginx.conf.d/ (the ACME challenge): `nginx -t`
/// and a reload in standalone mode; in dokku mode dokku's rebuild, which does both.
pub fn reload_app_proxy(settings: &Settings, app: &App) -> Result<()> {
    if settings.mode == Mode::Dokku {
        return rebuild(app, app.has_cert()).map(|_| ());
    }
    crate::nginx::test(settings)?;
    crate::nginx::reload(settings)
        .map_err(|why| Error::Acme(format!("nginx must be running to answer the challenge ({why})").into()))
}

/// After the previous tls/ was put back: rebuild again so the proxy's nginx.conf matches it.
/// The original error is what the user needs; a second failure is added to it.
pub fn rebuild_after_roll_back(app: &App, error: Error) -> Error {
    let Error::ProxyRebuild { reason, .. } = error else { return error };
    let again = rebuild(app, app.has_cert()).err().map(|second| match second {
        Error::ProxyRebuild { reason, .. } => reason,
        other => other.to_string(),
    });
    Error::ProxyRebuild { reason, again }
}

/// post-app-clone-setup: a cloned app must not serve the original's certificate. The clone
/// has no proxy config yet, so tls/ simply goes (under the app's lock).
pub fn forget_cloned_tls(app: &App) -> Result<()> {
    let _lock = crate::store::lock(app)?;
    // Entry by entry through the app's handle: a link in or at tls/ is unlinked, never followed.
    app.handle().remove_tree(crate::app::TLS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_is_explicit() {
        assert_eq!(Mode::from_setting(None).unwrap(), Mode::Standalone);
        assert_eq!(Mode::from_setting(Some("dokku".into())).unwrap(), Mode::Dokku);
        assert!(Mode::from_setting(Some("nginx".into())).is_err());
    }

    #[test]
    fn the_certs_event_follows_tls() {
        assert_eq!(certs_event(true), "post-certs-update");
        assert_eq!(certs_event(false), "post-certs-remove");
    }
}
