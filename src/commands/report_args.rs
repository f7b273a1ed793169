//! The arguments of dokku's *:report commands, parsed by hand as dokku does (the flags are
//! the report's field names): `[<app>|--global] [--FLAG] [--format stdout|json]`.

use crate::cli_error::{CliError, Result};

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// dokku's `=====> ` report (`--format stdout`, the default).
    Text,
    /// One JSON object per app (`--format json`).
    Json,
    /// Metrics for node_exporter's textfile collector (`--format prometheus`, certs:report only).
    Prometheus,
}

/// A parsed *:report command line.
#[derive(Debug)]
pub struct ReportArgs {
    /// The app, `--global`, or none (every app).
    pub scope: Option<String>,
    /// The one field asked for.
    pub flag: Option<String>,
    /// How to print.
    pub format: Format,
}

/// Parses `words` for `command` (its name, for the messages); `prometheus` says whether
/// `--format prometheus` is one of its formats.
pub fn parse(command: &'static str, words: &[String], prometheus: bool) -> Result<ReportArgs> {
    let mut args = ReportArgs {
        scope: None,
        flag: None,
        format: Format::Text,
    };
    // dokku's ParseReportArgs takes --global as a switch wherever it stands, and then the
    // report is the global one whatever app is named too.
    let mut global = false;
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if word == "--format" {
            args.format = match words.next().map(String::as_str) {
                Some("json") => Format::Json,
                Some("stdout") => Format::Text,
                Some("prometheus") if prometheus => Format::Prometheus,
                other => return Err(CliError::BadFormat(other.unwrap_or("").to_string())),
            };
        } else if word == "--global" {
            global = true;
        } else if word.starts_with("--") {
            if args.flag.replace(word.clone()).is_some() {
                return Err(CliError::OneFlagOnly(command));
            }
        } else if args.scope.replace(word.clone()).is_some() {
            return Err(CliError::Usage(format!(
                "unexpected argument {word:?}; usage: {command} [<app>] [<flag>]"
            )));
        }
    }
    if args.format != Format::Text && args.flag.is_some() {
        return Err(CliError::FormatWithFlag);
    }
    if global {
        // Every metric is one app's ({app="..."}) and certs has no global properties, so
        // --global has no metrics. Printing every app's would make --global mean "all apps"
        // here only (its text and JSON reports are the empty global one), and printing none
        // would leave a textfile collector with a scrape that silently lost every alert.
        if args.format == Format::Prometheus {
            return Err(CliError::Usage(format!(
                "--global has no metrics (each metric is one app's); for every app's run: {command} --format prometheus"
            )));
        }
        args.scope = Some("--global".into());
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn reads_scope_flag_and_format_in_any_order() {
        let args = parse("certs:report", &words("--format json myapp"), true).unwrap();
        assert_eq!(
            (args.scope.as_deref(), args.flag, args.format),
            (Some("myapp"), None, Format::Json)
        );
        let args = parse("nginx:report", &words("--nginx-hsts --global"), false).unwrap();
        assert_eq!(
            (args.scope.as_deref(), args.flag.as_deref()),
            (Some("--global"), Some("--nginx-hsts"))
        );
        for line in ["--global myapp", "myapp --global"] {
            assert_eq!(
                parse("certs:report", &words(line), true)
                    .unwrap()
                    .scope
                    .as_deref(),
                Some("--global")
            );
        }
    }

    #[test]
    fn refuses_as_dokku_does() {
        let refusal = |command, line, prometheus| {
            parse(command, &words(line), prometheus)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refusal("nginx:report", "--a --b", false),
            "nginx:report command allows only a single flag"
        );
        assert!(
            refusal("nginx:report", "--format prometheus", false)
                .starts_with("Invalid --format value")
        );
        assert!(
            refusal("certs:report", "--ssl-dir --format json", true)
                .starts_with("--format flag cannot")
        );
        assert!(
            refusal("certs:report", "a b", true).contains("usage: certs:report [<app>] [<flag>]")
        );
    }
}
