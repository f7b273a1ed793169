//! letsencrypt:report [<app>|--global]: the values letsencrypt:set stored, secrets as `****`,
//! and for an app its certificate's profile and renewal state.

use dokku_certs::acme::settings::{GLOBAL, SettingsFile};
use dokku_certs::acme::{self, state};
use dokku_certs::app::{App, Settings, list_apps};
use dokku_certs::cert::format_openssl_date;
use dokku_certs::{Result, output};

/// Arguments of letsencrypt:report.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An app or --global; without it, the global values and every app.
    #[arg(allow_hyphen_values = true)]
    scope: Option<String>,
}

/// Runs letsencrypt:report.
pub fn run(args: Args) -> Result<()> {
    let settings = Settings::from_env()?;
    let scopes = match args.scope {
        Some(scope) if scope == GLOBAL => vec![scope],
        Some(app) => vec![App::open(&settings, &app)?.name],
        None => std::iter::once(GLOBAL.to_string()).chain(list_apps(&settings)?).collect(),
    };
    let store = SettingsFile::new(&settings);
    let mut text = String::new();
    for scope in scopes {
        let title = if scope == GLOBAL { "global".to_string() } else { scope.clone() };
        text.push_str(&format!("=====> {title} letsencrypt information\n"));
        for (key, value) in store.report(&scope)? {
            text.push_str(&format!("       {:<40}{}\n", format!("{key}:"), value));
        }
        if scope != GLOBAL {
            text.push_str(&app_lines(&settings, &App::open(&settings, &scope)?));
        }
    }
    output::raw(&text);
    Ok(())
}

/// Whether the app's certificate is ours, its profile, and its renewal state.
fn app_lines(settings: &Settings, app: &App) -> String {
    let line = |key: &str, value: String| format!("       {:<40}{}\n", format!("{key}:"), value);
    let marker = acme::marker(app);
    let state = state::load(settings, &app.name);
    let date = |t: Option<i64>| t.map(format_openssl_date).unwrap_or_default();
    [
        line("Active", marker.is_some().to_string()),
        line("Profile", marker.as_ref().and_then(|m| m.profile.clone()).unwrap_or_default()),
        line("Challenge", marker.as_ref().and_then(|m| m.challenge.clone()).unwrap_or_default()),
        line("Last renewal", date(state.last_success)),
        line("Failures in a row", state.failures.to_string()),
        line("Next attempt", date(state.next_attempt)),
    ]
    .concat()
}
