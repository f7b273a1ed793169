//! certs:report [<app>] [--ssl-FIELD] [--format stdout|json]: dokku's report, in-process.

use dokku_certs::app::{App, Settings, list_apps};
use dokku_certs::report::{self, FLAGS};
use dokku_certs::{Error, Result, output};

/// Arguments of certs:report, parsed by hand as dokku does (flags are its field names).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// [<app>] [--ssl-dir|--ssl-enabled|...] [--format stdout|json]
    #[arg(allow_hyphen_values = true, num_args = 0..)]
    words: Vec<String>,
}

struct Request {
    app: Option<String>,
    flag: Option<String>,
    json: bool,
    /// `--format prometheus`: metrics for node_exporter's textfile collector.
    prometheus: bool,
    /// `--global`: dokku's certs plugin has no global properties, so an empty report.
    global: bool,
}

fn parse(words: &[String]) -> Result<Request> {
    let mut request = Request { app: None, flag: None, json: false, prometheus: false, global: false };
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if word == "--format" {
            match words.next().map(String::as_str) {
                Some("json") => request.json = true,
                Some("stdout") => request.json = false,
                Some("prometheus") => request.prometheus = true,
                other => return Err(Error::BadFormat(other.unwrap_or("").to_string())),
            }
        } else if word == "--global" {
            request.global = true;
        } else if word.starts_with("--") {
            if request.flag.replace(word.clone()).is_some() {
                return Err(Error::OneFlagOnly);
            }
        } else if request.app.replace(word.clone()).is_some() {
            return Err(Error::Usage(format!("unexpected argument {word:?}; usage: certs:report [<app>] [<flag>]")));
        }
    }
    if (request.json || request.prometheus) && request.flag.is_some() {
        return Err(Error::FormatWithFlag);
    }
    let valid: &[&str] = if request.global { &[] } else { &FLAGS };
    if let Some(flag) = &request.flag
        && !valid.contains(&flag.as_str())
    {
        return Err(Error::InvalidFlag(valid.join(", ")));
    }
    Ok(request)
}

/// The `--global` report, as dokku prints it for a plugin without global properties.
fn global_report(json: bool) -> String {
    if json { "{}\n".into() } else { "=====> --global ssl information\n".into() }
}

/// Runs certs:report.
pub fn run(args: Args) -> Result<()> {
    let request = parse(&args.words)?;
    if request.global {
        output::raw(&global_report(request.json));
        return Ok(());
    }
    let settings = Settings::from_env()?;
    let apps = match &request.app {
        Some(name) => vec![App::open(&settings, name)?],
        None => list_apps(&settings)?.iter().map(|name| App::open(&settings, name)).collect::<Result<_>>()?,
    };
    if request.prometheus {
        // No apps is a valid scrape (no samples), not something to warn about.
        let samples = report::in_parallel(&apps, |app| sample(&settings, app));
        output::raw(&dokku_certs::metrics::to_prometheus(&samples));
        return Ok(());
    }
    if apps.is_empty() {
        // dokku's words, on stderr, and not an error.
        output::warn("You haven't deployed any applications yet");
        return Ok(());
    }
    let render = |app: &App| {
        let fields = report::fields(app);
        match &request.flag {
            Some(flag) => format!("{}\n", fields[flag.as_str()]),
            None if request.json => report::to_json(&fields),
            None => report::to_text(&app.name, &fields),
        }
    };
    output::raw(&report::in_parallel(&apps, render).concat());
    Ok(())
}

/// One app's metrics: its certificate's dates, and its renewal state if Let's Encrypt manages it.
fn sample(settings: &Settings, app: &App) -> dokku_certs::metrics::Sample {
    let dates = dokku_certs::endpoint::inspect(app).ok().flatten().map(|i| (i.leaf().not_before, i.leaf().not_after));
    let letsencrypt = dokku_certs::acme::marker(app).is_some();
    let state = dokku_certs::acme::state::load(settings, &app.name);
    dokku_certs::metrics::Sample {
        app: app.name.clone(),
        dates,
        letsencrypt,
        last_renewal: state.last_success,
        failures: state.failures,
        last_failure: state.last_failure,
    }
}
