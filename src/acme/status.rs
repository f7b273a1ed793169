//! What letsencrypt:list and letsencrypt:report show, as values: the commands choose how
//! each looks. Read from what is on disk only; the CA is never asked.

use super::settings::{GLOBAL, SettingsFile};
use super::{issued_leaf, marker, planned_offline, state};
use crate::app::{App, Env, open_all};
use crate::error::Result;
use crate::util::now;

/// One app with a certificate from us, as letsencrypt:list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub app: String,
    /// The certificate's notAfter, Unix seconds.
    pub expires_at: i64,
    /// Seconds until it expires (negative once it has).
    pub expires_in: i64,
    /// Seconds until auto-renew will renew it (negative: due now), from the graceperiod,
    /// the last ARI answer or a third of the lifetime.
    pub renewal_in: i64,
    /// The ACME profile the order named, if any.
    pub profile: Option<String>,
    /// The names the certificate covers.
    pub domains: Vec<String>,
}

/// Every app whose installed certificate is from us, in app order.
pub fn list(env: &Env) -> Result<Vec<Listed>> {
    let file = SettingsFile::new(env);
    let now = now();
    let mut listed = Vec::new();
    for app in open_all(env)? {
        let (Some(leaf), Some(marker)) = (issued_leaf(&app), marker(&app)) else {
            continue;
        };
        let plan = planned_offline(env, &app, &file.resolve(&app.name)?, &leaf);
        listed.push(Listed {
            expires_at: leaf.not_after,
            expires_in: leaf.not_after - now,
            renewal_in: plan.due_at - now,
            profile: marker.profile,
            domains: leaf.hostnames(),
            app: app.name,
        });
    }
    Ok(listed)
}

/// What letsencrypt:report shows for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// An app's name, or `None` for the global values.
    pub app: Option<String>,
    /// The values letsencrypt:set stored for this scope, secrets as `****`.
    pub values: Vec<(String, String)>,
    /// For an app: its certificate and renewal state.
    pub status: Option<AppStatus>,
}

/// Whether an app's certificate is ours, and where its renewals stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStatus {
    /// The installed certificate came from letsencrypt:enable (letsencrypt:active).
    pub active: bool,
    /// The ACME profile its order named.
    pub profile: Option<String>,
    /// How it was validated: `http-01` or `dns-01/<provider>`.
    pub challenge: Option<String>,
    /// Unix seconds of the last successful renewal or enable.
    pub last_renewal: Option<i64>,
    /// Renewals that failed in a row.
    pub failures: u32,
    /// No renewal is tried before this (backoff), Unix seconds.
    pub next_attempt: Option<i64>,
}

/// The reports for `scope`: [`GLOBAL`], one app (its name checked and the app opened), or
/// with `None` the global values and then every app.
pub fn report(env: &Env, scope: Option<&str>) -> Result<Vec<Report>> {
    let apps = match scope {
        Some(GLOBAL) => return Ok(vec![global_report(env)?]),
        Some(name) => vec![App::open(env, name)?],
        None => open_all(env)?,
    };
    let global = if scope.is_none() {
        Some(global_report(env)?)
    } else {
        None
    };
    let file = SettingsFile::new(env);
    let apps = apps.iter().map(|app| {
        Ok(Report {
            app: Some(app.name.clone()),
            values: file.report(&app.name)?,
            status: Some(status(env, app)),
        })
    });
    global.map(Ok).into_iter().chain(apps).collect()
}

fn global_report(env: &Env) -> Result<Report> {
    Ok(Report {
        app: None,
        values: SettingsFile::new(env).report(GLOBAL)?,
        status: None,
    })
}

/// The app's marker and renewal state.
fn status(env: &Env, app: &App) -> AppStatus {
    let marker = marker(app);
    let state = state::load(env, &app.name);
    AppStatus {
        active: marker.is_some(),
        profile: marker.as_ref().and_then(|m| m.profile.clone()),
        challenge: marker.and_then(|m| m.challenge),
        last_renewal: state.last_success,
        failures: state.failures,
        next_attempt: state.next_attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_without_our_certificate_is_reported_inactive_and_not_listed() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("myapp")).unwrap();
        let env =
            Env::from_lookup(|n| (n == "DOKKU_ROOT").then(|| root.path().display().to_string()))
                .unwrap();
        SettingsFile::new(&env)
            .set(GLOBAL, "email", Some("ops@example.com"))
            .unwrap();
        assert_eq!(list(&env).unwrap(), []);
        let reports = report(&env, None).unwrap();
        let scopes: Vec<_> = reports.iter().map(|r| r.app.as_deref()).collect();
        assert_eq!(scopes, [None, Some("myapp")]);
        assert_eq!(
            reports[0].values,
            [("email".to_string(), "ops@example.com".to_string())]
        );
        let status = reports[1].status.as_ref().unwrap();
        assert_eq!(
            (status.active, status.failures, status.last_renewal),
            (false, 0, None)
        );
        assert_eq!(report(&env, Some(GLOBAL)).unwrap(), reports[..1]);
        assert!(report(&env, Some("missing")).is_err());
    }
}
