//! dokku's line prefixes: `-----> ` steps, `=====> ` headings, 7-space details, ` !     ` errors.

use std::io::Write;

/// Prefix of a step line (dokku_log_info1).
pub const STEP: &str = "-----> ";
/// Prefix of a heading line (dokku_log_info2).
pub const HEADING: &str = "=====> ";
/// Prefix of a detail line (dokku_log_verbose).
pub const DETAIL: &str = "       ";
/// Prefix of an error or warning line on stderr (dokku_log_fail / dokku_log_warn).
pub const FAIL: &str = " !     ";

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

/// Prints lines on stdout exactly as given (a report, a certificate, a CSR).
pub fn raw(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn line(prefix: &str, text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{prefix}{text}");
}

/// Folds a message to one line, so every error is exactly one line on stderr.
pub fn one_line(text: &str) -> String {
    text.split(['\n', '\r']).map(str::trim).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ")
}
