//! nginx:report [<app>|--global] [--nginx-FLAG] [--format stdout|json]: dokku's report of the
//! nginx properties dokku-certs renders.

use dokku_certs::app::{App, Settings, list_apps};
use dokku_certs::properties::{GLOBAL, Store, report_fields, report_json, report_text};
use dokku_certs::{Error, Result, output};

/// Arguments of nginx:report, parsed by hand as dokku does (flags are its field names).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// [<app>|--global] [--nginx-FLAG] [--format stdout|json]
    #[arg(allow_hyphen_values = true, num_args = 0..)]
    words: Vec<String>,
}

#[derive(Default)]
struct Request {
    scope: Option<String>,
    flag: Option<String>,
    json: bool,
}

fn parse(words: &[String]) -> Result<Request> {
    let mut request = Request::default();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if word == "--format" {
            match words.next().map(String::as_str) {
                Some("json") => request.json = true,
                Some("stdout") => request.json = false,
                other => return Err(Error::BadFormat(other.unwrap_or("").to_string())),
            }
        } else if word.starts_with("--") && word != GLOBAL {
            if request.flag.replace(word.clone()).is_some() {
                return Err(Error::Usage("nginx:report command allows only a single flag".into()));
            }
        } else if request.scope.replace(word.clone()).is_some() {
            return Err(Error::Usage(format!("unexpected argument {word:?}; usage: nginx:report [<app>] [<flag>]")));
        }
    }
    if request.json && request.flag.is_some() {
        return Err(Error::FormatWithFlag);
    }
    Ok(request)
}

/// Runs nginx:report.
pub fn run(args: Args) -> Result<()> {
    let request = parse(&args.words)?;
    let settings = Settings::from_env()?;
    let scopes = match &request.scope {
        Some(scope) if scope == GLOBAL => vec![GLOBAL.to_string()],
        Some(name) => vec![App::open(&settings, name)?.name],
        None => list_apps(&settings)?,
    };
    let store = Store::new(&settings);
    let mut text = String::new();
    for scope in &scopes {
        let fields = report_fields(scope, &store.resolve(scope)?);
        match &request.flag {
            Some(flag) => match fields.get(flag) {
                Some(value) => text.push_str(&format!("{value}\n")),
                None => {
                    let flags: Vec<&str> = fields.keys().map(String::as_str).collect();
                    return Err(Error::InvalidFlag(flags.join(", ")));
                }
            },
            None if request.json => text.push_str(&report_json(&fields)),
            None => text.push_str(&report_text(scope, &fields)),
        }
    }
    output::raw(&text);
    Ok(())
}
