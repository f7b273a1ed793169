//! App names and domains, checked before any path or nginx.conf line is built from them.

use crate::error::{Error, Result};

/// Longest app name dokku accepts.
pub const MAX_APP_NAME: usize = 200;

/// Checks an app name against dokku's rules: a lowercase letter first, then lowercase
/// letters, digits, `-` and `.`, at most 200 characters. Such a name is one path
/// component that cannot climb out of DOKKU_ROOT and is a single nginx token.
pub fn check_app_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::NoApp);
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if first_ok && rest_ok && name.len() <= MAX_APP_NAME {
        Ok(())
    } else {
        Err(Error::BadAppName(name.to_string()))
    }
}

/// Checks that `domain` is a hostname nginx can take as a `server_name` token:
/// lowercase labels of letters, digits and inner hyphens, 1 to 63 characters each,
/// at most 253 in all, with an optional leading `*.` wildcard.
pub fn check_domain(domain: &str) -> Result<()> {
    domain_problem(domain).map_or(Ok(()), |why| Err(Error::BadDomain(domain.to_string(), why)))
}

fn domain_problem(domain: &str) -> Option<&'static str> {
    if domain.is_empty() {
        return Some("it is empty");
    }
    if domain.len() > 253 {
        return Some("it is longer than 253 characters");
    }
    let rest = domain.strip_prefix("*.").unwrap_or(domain);
    if rest.is_empty() {
        return Some("a wildcard needs a domain after '*.'");
    }
    for label in rest.split('.') {
        if let Some(why) = label_problem(label) {
            return Some(why);
        }
    }
    None
}

fn label_problem(label: &str) -> Option<&'static str> {
    if label.is_empty() {
        return Some("it has an empty label (two dots in a row, or a dot at an end)");
    }
    if label.len() > 63 {
        return Some("a label is longer than 63 characters");
    }
    if label == "*" {
        return Some("only the first label may be the wildcard '*'");
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Some("a label starts or ends with '-'");
    }
    if label.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("it has uppercase letters (write it in lowercase)");
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("only letters, digits, '-' and '.' are allowed");
    }
    None
}

/// Whether certificate name `pattern` (possibly `*.example.com`) covers `host`.
/// A wildcard stands for exactly one label, as browsers read it (RFC 6125).
pub fn name_covers(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(base) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && first != "*" && rest == base),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_follow_dokku_rules() {
        for ok in ["myapp", "a", "node-js-app", "app.v2", "a1"] {
            assert!(check_app_name(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(201);
        for bad in [
            "",
            "..",
            ".",
            "1app",
            "-app",
            "My",
            "a/b",
            "a b",
            "a;b",
            "a{b",
            "a$b",
            "a\nb",
            "a_b",
            long.as_str(),
        ] {
            assert!(check_app_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domains_are_hostnames_with_one_leading_wildcard() {
        for ok in [
            "example.com",
            "*.example.com",
            "a-b.c",
            "localhost",
            "x1.y2.z3",
        ] {
            assert!(check_domain(ok).is_ok(), "{ok}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        for bad in [
            "",
            "Example.com",
            "a..b",
            ".a",
            "a.",
            "*.*.a",
            "a.*.b",
            "*",
            "*.",
            "a b",
            "a;b",
            "a{b",
            "a}b",
            "a$b",
            "a\nb",
            "-a.b",
            "a-.b",
            "a/b",
            long_label.as_str(),
        ] {
            assert!(check_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_covers("*.example.com", "a.example.com"));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers("*.example.com", "a.b.example.com"));
        assert!(name_covers("Example.com", "example.com"));
        assert!(!name_covers("a.example.com", "b.example.com"));
    }
}
