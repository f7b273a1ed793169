//! Everything the binary prints goes through here, in dokku's shapes: `-----> ` steps,
//! `=====> ` headings, 7-space details on stdout, ` !     ` warnings and errors on stderr.
//! The library never prints: it returns values and sends [`Event`]s, and [`event`] is the
//! reporter every command hands it.

use std::collections::BTreeMap;
use std::io::Write;

use dokku_certs::event::Event;
/// Escapes attacker-chosen text (a certificate's names) for a terminal; the library's.
pub use dokku_certs::text::printable;

/// Prefix of a step line (dokku_log_info1).
pub const STEP: &str = "-----> ";
/// Prefix of a heading line (dokku_log_info2).
pub const HEADING: &str = "=====> ";
/// Prefix of a detail line (dokku_log_verbose).
pub const DETAIL: &str = "       ";
/// Prefix of an error or warning line on stderr (dokku_log_fail / dokku_log_warn).
const FAIL: &str = " !     ";

/// Prints a step line on stdout.
pub fn step(text: &str) {
    line(STEP, text);
}

/// Prints a heading line on stdout.
pub fn heading(text: &str) {
    line(HEADING, text);
}

/// Prints a detail line on stdout.
pub fn detail(text: &str) {
    line(DETAIL, text);
}

/// Prints a warning on stderr; the command goes on.
pub fn warn(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{FAIL}{}", one_line(text));
}

/// dokku_log_fail: one line on stderr, exit 1.
pub fn fail(message: &str) -> ! {
    warn(message);
    std::process::exit(1)
}

/// The reporter of every command: prints each library event as it happens. A warning reads
/// `Warning: ...`, as dokku-certs has always shown what did not stop a change.
pub fn event(event: Event) {
    match event {
        Event::Step(text) => step(&text),
        Event::Detail(text) => detail(&text),
        Event::Warning(text) => warn(&format!("Warning: {text}")),
        // Event is non_exhaustive; a new kind is shown as a detail until it gets its own shape.
        other => detail(&format!("{other:?}")),
    }
}

/// Prints lines on stdout exactly as given (a report, a certificate, a CSR).
pub fn raw(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Passes on what another program (dokku's proxy, a trigger's listeners) wrote on stderr,
/// as dokku shows it: unchanged.
pub fn relay_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// dokku's text report (`certs:report`, `nginx:report`): `=====> <title>`, then each flag
/// as a capitalized key (`--ssl-expires-at` -> `Ssl expires at:`), padded to the longest
/// flag and at least 31 columns, in the map's order.
pub fn report_text<V: AsRef<str>>(title: &str, fields: &BTreeMap<impl AsRef<str>, V>) -> String {
    let width = fields
        .keys()
        .map(|flag| flag.as_ref().len())
        .max()
        .unwrap_or(0)
        .max(31);
    let mut text = format!("{HEADING}{title}\n");
    for (flag, value) in fields {
        let mut key = flag.as_ref().trim_start_matches("--").replace('-', " ");
        key[..1].make_ascii_uppercase();
        text.push_str(&format!(
            "{DETAIL}{:<width$}{}\n",
            format!("{key}:"),
            value.as_ref()
        ));
    }
    text
}

/// dokku's JSON report: one object, keys without `prefix` (`--ssl-`, `--nginx-`), every
/// value a string.
pub fn report_json<V: AsRef<str>>(fields: &BTreeMap<impl AsRef<str>, V>, prefix: &str) -> String {
    let object: BTreeMap<&str, &str> = fields
        .iter()
        .map(|(flag, value)| (flag.as_ref().trim_start_matches(prefix), value.as_ref()))
        .collect();
    serde_json::to_string(&object).expect("a map of strings always serializes") + "\n"
}

/// A line is one line: whatever reaches it (an archive entry's name, a path the user typed,
/// a library message quoting one) cannot start another or drive the terminal.
fn line(prefix: &str, text: &str) {
    let _ = writeln!(
        std::io::stdout().lock(),
        "{prefix}{}",
        escape_controls(text)
    );
}

/// Folds a message to one line, so every error is exactly one line on stderr, with no
/// control character left (nginx's multi-line errors fold; an ESC is written out).
fn one_line(text: &str) -> String {
    let folded = text
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    escape_controls(&folded)
}

/// Like [`printable`] but leaves backslashes alone: a line printer's second line of defence
/// for text that was not escaped at its source (certificate names always are).
fn escape_controls(text: &str) -> String {
    text.split('\\')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_folds_lines_and_escapes_the_rest() {
        assert_eq!(
            one_line("nginx: [emerg] x\n  nginx: test failed\n"),
            "nginx: [emerg] x nginx: test failed"
        );
        assert_eq!(
            one_line("entry \x1b]0;title\x07 a\\b"),
            "entry \\x1B]0;title\\x07 a\\b"
        );
    }

    #[test]
    fn text_report_pads_like_dokku() {
        let fields: BTreeMap<&str, &str> =
            [("--ssl-enabled", "false"), ("--ssl-expires-at", "")].into();
        let text = report_text("myapp ssl information", &fields);
        assert_eq!(
            text,
            "=====> myapp ssl information\n       Ssl enabled:                   false\n       Ssl expires at:                \n"
        );
    }

    #[test]
    fn json_report_keys_drop_the_prefix() {
        let fields: BTreeMap<&str, &str> = [("--ssl-dir", "/d"), ("--ssl-verified", "v")].into();
        assert_eq!(
            report_json(&fields, "--ssl-"),
            "{\"dir\":\"/d\",\"verified\":\"v\"}\n"
        );
    }
}
