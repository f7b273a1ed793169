//! Text the library returns that will reach a terminal or a JSON consumer: escaped at its
//! source, so that an attacker-chosen certificate name cannot drive the admin's terminal.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_a_terminal_acts_on() {
        assert_eq!(printable("plain é 証明書"), "plain é 証明書");
        assert_eq!(printable("a\x1b[31mb\nSSL"), "a\\x1B[31mb\\x0ASSL");
        assert_eq!(
            printable("\u{202E}moc.evil\u{9b}"),
            "\\u{202E}moc.evil\\u{9B}"
        );
        assert_eq!(printable("a\\x1B"), "a\\\\x1B");
    }
}
