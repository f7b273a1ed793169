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

/// `text` with every character a terminal would act on or hide written out as an escape:
/// control characters (`ESC`, newline, C1 codes...) as `\x1B`, invisible formatting and
/// bidirectional overrides (U+200B..U+200F, U+202A..U+202E, U+2066..U+2069, U+FEFF...) as
/// `\u{202E}`, and the backslash itself as `\\`, so an escape shown is always ours. A
/// certificate's names are attacker-chosen text that reaches the admin's terminal and
/// JSON consumers; what is printable is left alone (accented letters, CJK...).
pub fn printable(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            c if c.is_ascii_control() => escaped.push_str(&format!("\\x{:02X}", c as u32)),
            c if needs_escape(c) => escaped.push_str(&format!("\\u{{{:X}}}", c as u32)),
            c => escaped.push(c),
        }
    }
    escaped
}

fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(c,
            '\u{AD}' | '\u{61C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Prints lines on stdout exactly as given (a report, a certificate, a CSR).
pub fn raw(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A line is one line: whatever reaches it (an archive entry's name, a path the user typed,
/// a library message quoting one) cannot start another or drive the terminal.
fn line(prefix: &str, text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{prefix}{}", escape_controls(text));
}

/// Folds a message to one line, so every error is exactly one line on stderr, with no
/// control character left (nginx's multi-line errors fold; an ESC is written out).
pub fn one_line(text: &str) -> String {
    let folded = text.split(['\n', '\r']).map(str::trim).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ");
    escape_controls(&folded)
}

/// Like [`printable`] but leaves backslashes alone: a line printer's second line of defence
/// for text that was not escaped at its source (certificate names always are).
fn escape_controls(text: &str) -> String {
    if !text.chars().any(|c| c != '\\' && needs_escape(c)) {
        return text.to_string();
    }
    text.split('\\').map(printable).collect::<Vec<_>>().join("\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_a_terminal_acts_on() {
        assert_eq!(printable("plain é 証明書"), "plain é 証明書");
        assert_eq!(printable("a\x1b[31mb\nSSL"), "a\\x1B[31mb\\x0ASSL");
        assert_eq!(printable("\u{202E}moc.evil\u{9b}"), "\\u{202E}moc.evil\\u{9B}");
        assert_eq!(printable("a\\x1B"), "a\\\\x1B");
    }

    #[test]
    fn one_line_folds_lines_and_escapes_the_rest() {
        assert_eq!(one_line("nginx: [emerg] x\n  nginx: test failed\n"), "nginx: [emerg] x nginx: test failed");
        assert_eq!(one_line("entry \x1b]0;title\x07 a\\b"), "entry \\x1B]0;title\\x07 a\\b");
    }
}
