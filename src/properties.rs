//! dokku's nginx properties (`nginx:set`): the names, defaults and store of dokku's
//! nginx-vhosts plugin, so that a dokku user's settings carry over in both directions.
//!
//! A value is kept as dokku keeps it: one file, `DOKKU_LIB_ROOT/config/nginx/<app>/<name>`
//! (`--global` is the app name of the global default), holding the bare value. Every value
//! becomes an nginx.conf token, so it is checked on the way in and again on the way out:
//! a file edited by hand cannot inject into nginx.conf either.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::app::{Env, is_plain_path};
use crate::error::{Error, Result};
use crate::paths;

/// The scope name of the global defaults, as dokku spells it.
pub const GLOBAL: &str = "--global";

/// What a property's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `true` or `false`.
    Bool,
    /// A whole number of seconds.
    Seconds,
    /// An nginx size: digits with an optional k, m or g.
    Size,
    /// An nginx time: digits with an optional unit, possibly several (`1m30s`).
    Time,
    /// `on` or `off`.
    OnOff,
    /// proxy_buffers: a count and a size (`8 4k`).
    Buffers,
    /// A header value: one nginx variable (`$remote_addr`) or a plain word (`https`, `443`).
    HeaderValue,
    /// An absolute log path; `off` too where `allows_off`.
    LogPath {
        /// access_log takes `off`; error_log would read it as a file name.
        allows_off: bool,
    },
}

impl Kind {
    /// What the value should be, for the refusal message.
    fn expected(self) -> &'static str {
        match self {
            Kind::Bool => "true or false",
            Kind::Seconds => "a whole number of seconds",
            Kind::Size => "a size such as 512k, 10m or 1g",
            Kind::Time => "a time such as 60s, 5m or 1m30s",
            Kind::OnOff => "on or off",
            Kind::Buffers => "a count and a size such as 8 4k",
            Kind::HeaderValue => {
                "one nginx variable such as $remote_addr, or a word of letters, digits and . _ : / -"
            }
            Kind::LogPath { allows_off: true } => {
                "off or an absolute path without spaces, quotes or any of ; { } $ #"
            }
            Kind::LogPath { allows_off: false } => {
                "an absolute path without spaces, quotes or any of ; { } $ #"
            }
        }
    }

    fn accepts(self, value: &str) -> bool {
        match self {
            Kind::Bool => matches!(value, "true" | "false"),
            Kind::Seconds => !value.is_empty() && value.len() <= 10 && digits(value),
            Kind::Size => is_size(value),
            Kind::Time => is_time(value),
            Kind::OnOff => matches!(value, "on" | "off"),
            Kind::Buffers => value
                .split_once(' ')
                .is_some_and(|(n, size)| is_count(n) && is_size(size)),
            Kind::HeaderValue => is_header_value(value),
            Kind::LogPath { allows_off } => (allows_off && value == "off") || is_plain_path(value),
        }
    }
}

/// How a property's built-in default is found.
#[derive(Debug, Clone, Copy)]
enum Fallback {
    /// A fixed value.
    Fixed(&'static str),
    /// `<DOKKU_NGINX_LOG_DIR>/<app><suffix>`.
    LogFile(&'static str),
}

/// One property: dokku's name, its value's shape, its default.
#[derive(Debug, Clone, Copy)]
struct Property {
    name: &'static str,
    kind: Kind,
    default: Fallback,
}

const fn property(name: &'static str, kind: Kind, default: Fallback) -> Property {
    Property {
        name,
        kind,
        default,
    }
}

/// dokku's defaults; the buffer sizes are dokku's "one memory page" (4 KiB on Linux x86-64 and arm64).
const PROPERTIES: [Property; 18] = [
    property(
        "access-log-path",
        Kind::LogPath { allows_off: true },
        Fallback::LogFile("-access.log"),
    ),
    property("client-max-body-size", Kind::Size, Fallback::Fixed("1m")),
    property(
        "error-log-path",
        Kind::LogPath { allows_off: false },
        Fallback::LogFile("-error.log"),
    ),
    property("hsts", Kind::Bool, Fallback::Fixed("true")),
    property(
        "hsts-include-subdomains",
        Kind::Bool,
        Fallback::Fixed("true"),
    ),
    property("hsts-max-age", Kind::Seconds, Fallback::Fixed("15724800")),
    property("hsts-preload", Kind::Bool, Fallback::Fixed("false")),
    property("proxy-buffer-size", Kind::Size, Fallback::Fixed("4k")),
    property("proxy-buffering", Kind::OnOff, Fallback::Fixed("on")),
    property("proxy-buffers", Kind::Buffers, Fallback::Fixed("8 4k")),
    property("proxy-busy-buffers-size", Kind::Size, Fallback::Fixed("8k")),
    property("proxy-connect-timeout", Kind::Time, Fallback::Fixed("60s")),
    property("proxy-read-timeout", Kind::Time, Fallback::Fixed("60s")),
    property("proxy-send-timeout", Kind::Time, Fallback::Fixed("60s")),
    property(
        "x-forwarded-for-value",
        Kind::HeaderValue,
        Fallback::Fixed("$remote_addr"),
    ),
    property(
        "x-forwarded-port-value",
        Kind::HeaderValue,
        Fallback::Fixed("$server_port"),
    ),
    property(
        "x-forwarded-proto-value",
        Kind::HeaderValue,
        Fallback::Fixed("$scheme"),
    ),
    property("x-forwarded-ssl", Kind::HeaderValue, Fallback::Fixed("")),
];

/// Every property name dokku-certs knows, sorted as dokku lists them.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROPERTIES.iter().map(|p| p.name)
}

fn find(name: &str) -> Result<&'static Property> {
    PROPERTIES
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| Error::UnknownProperty(names().collect::<Vec<_>>().join(", ")))
}

/// Checks that `value` may be stored under `name` (and so become nginx.conf tokens).
pub fn check(name: &str, value: &str) -> Result<()> {
    let property = find(name)?;
    if property.kind.accepts(value) {
        return Ok(());
    }
    Err(Error::BadProperty {
        name: name.to_string(),
        value: value.to_string(),
        expected: property.kind.expected(),
    })
}

fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_count(text: &str) -> bool {
    digits(text) && text.len() <= 6
}

fn is_size(text: &str) -> bool {
    let number = text
        .strip_suffix(['k', 'K', 'm', 'M', 'g', 'G'])
        .unwrap_or(text);
    digits(number) && number.len() <= 12
}

/// nginx's time syntax without spaces: `30`, `500ms`, `1h30m`.
fn is_time(text: &str) -> bool {
    const UNITS: [&str; 9] = ["ms", "s", "m", "h", "d", "w", "M", "y", ""];
    let mut rest = text;
    if rest.is_empty() || text.len() > 32 {
        return false;
    }
    while !rest.is_empty() {
        let count = rest.bytes().take_while(u8::is_ascii_digit).count();
        if count == 0 {
            return false;
        }
        rest = &rest[count..];
        let Some(unit) = UNITS.iter().find(|unit| rest.starts_with(**unit)) else {
            return false;
        };
        rest = &rest[unit.len()..];
        if unit.is_empty() && !rest.is_empty() {
            return false;
        }
    }
    true
}

/// One `$variable`, or one word that nginx reads as a literal.
fn is_header_value(text: &str) -> bool {
    if text.is_empty() || text.len() > 128 {
        return false;
    }
    match text.strip_prefix('$') {
        Some(variable) => {
            !variable.is_empty()
                && variable
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        None => text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-')),
    }
}

/// A property's three values, as `nginx:report` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    /// Set for the app ("" when not).
    pub app: String,
    /// Set with `--global` ("" when not).
    pub global: String,
    /// What nginx.conf uses: the app's, else the global, else the default.
    pub computed: String,
}

/// Every property of one app (or of `--global`), by name.
#[derive(Debug, Clone)]
pub struct Resolved(BTreeMap<&'static str, Values>);

impl Resolved {
    /// The value nginx.conf uses for `name` (a name from the table; "" if unknown).
    pub fn computed(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |v| v.computed.as_str())
    }

    /// Each property with its values, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Values)> {
        self.0.iter().map(|(name, values)| (*name, values))
    }

    /// The Strict-Transport-Security value, as dokku builds it; `None` when hsts is false.
    pub fn hsts_header(&self) -> Option<String> {
        if self.computed("hsts") != "true" {
            return None;
        }
        let mut header = format!("max-age={}", self.computed("hsts-max-age"));
        if self.computed("hsts-include-subdomains") == "true" {
            header.push_str("; includeSubdomains");
        }
        if self.computed("hsts-preload") == "true" {
            header.push_str("; preload");
        }
        Some(header)
    }
}

/// nginx:report: the fields of `--global`, of one app, or (`None`) of every app, each with
/// its scope's name.
pub fn reports(env: &Env, scope: Option<&str>) -> Result<Vec<(String, BTreeMap<String, String>)>> {
    let scopes = match scope {
        Some(GLOBAL) => vec![GLOBAL.to_string()],
        Some(name) => vec![crate::app::App::open(env, name)?.name],
        None => crate::app::list_apps(env)?,
    };
    let store = Store::new(env);
    scopes
        .into_iter()
        .map(|scope| {
            let fields = report_fields(&scope, &store.resolve(&scope)?);
            Ok((scope, fields))
        })
        .collect()
}

/// nginx:report's fields for `scope`: `--nginx-<name>`, `--nginx-computed-<name>` and
/// `--nginx-global-<name>` for an app; only the global ones for `--global`, as dokku.
pub fn report_fields(scope: &str, resolved: &Resolved) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for (name, values) in resolved.iter() {
        fields.insert(format!("--nginx-global-{name}"), values.global.clone());
        if scope != GLOBAL {
            fields.insert(format!("--nginx-{name}"), values.app.clone());
            fields.insert(format!("--nginx-computed-{name}"), values.computed.clone());
        }
    }
    fields
}

/// The property store under DOKKU_LIB_ROOT.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    log_dir: PathBuf,
}

/// A property file's content before a change, to put back if nginx refuses the result.
#[derive(Debug)]
pub struct Previous {
    path: PathBuf,
    bytes: Option<Vec<u8>>,
    /// Whether the scope's directory was there: one made for the change goes too.
    dir_existed: bool,
}

impl Store {
    /// The store of these settings: DOKKU_LIB_ROOT/config/nginx.
    pub fn new(env: &Env) -> Store {
        Store {
            root: env.lib_root.join("config/nginx"),
            log_dir: env.log_dir.clone(),
        }
    }

    /// DOKKU_LIB_ROOT/config/nginx/<scope>/<name>; `scope` is a checked app name or `--global`.
    fn path(&self, scope: &str, name: &str) -> PathBuf {
        self.root.join(scope).join(name)
    }

    /// The value stored for `scope`, checked; `None` when unset or empty (dokku's "unset").
    fn get(&self, scope: &str, property: &Property) -> Result<Option<String>> {
        let path = self.path(scope, property.name);
        let Some(bytes) = paths::read_if_exists(&path)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if text.is_empty() {
            return Ok(None);
        }
        if !property.kind.accepts(&text) {
            let why = format!(
                "{} expects {}; set it again with nginx:set",
                property.name,
                property.kind.expected()
            );
            return Err(Error::BadAppFile {
                path,
                line: 1,
                value: text,
                why,
            });
        }
        Ok(Some(text))
    }

    /// Every property of `scope` (an app, or `--global`) with its app, global and computed values.
    pub fn resolve(&self, scope: &str) -> Result<Resolved> {
        let mut resolved = BTreeMap::new();
        for property in &PROPERTIES {
            let global = self.get(GLOBAL, property)?.unwrap_or_default();
            let app = if scope == GLOBAL {
                String::new()
            } else {
                self.get(scope, property)?.unwrap_or_default()
            };
            let computed = [&app, &global]
                .into_iter()
                .find(|v| !v.is_empty())
                .cloned()
                .unwrap_or_else(|| self.default_of(scope, property));
            resolved.insert(
                property.name,
                Values {
                    app,
                    global,
                    computed,
                },
            );
        }
        Ok(Resolved(resolved))
    }

    fn default_of(&self, scope: &str, property: &Property) -> String {
        match property.default {
            Fallback::Fixed(value) => value.to_string(),
            Fallback::LogFile(suffix) => format!("{}/{scope}{suffix}", self.log_dir.display()),
        }
    }

    /// Checks and stores `value` for `scope` (`None` or "" clears it, as dokku's nginx:set
    /// without a value). Returns what was there, for [`Store::restore`].
    pub fn set(&self, scope: &str, name: &str, value: Option<&str>) -> Result<Previous> {
        let value = value.filter(|v| !v.is_empty());
        match value {
            Some(value) => check(name, value)?,
            None => {
                find(name)?;
            }
        }
        let path = self.path(scope, name);
        let bytes = paths::read_if_exists(&path)?;
        let dir_existed = path.parent().is_some_and(Path::is_dir);
        let previous = Previous {
            path,
            bytes,
            dir_existed,
        };
        match value {
            Some(value) => write(&previous.path, value.as_bytes())?,
            None => {
                paths::remove_if_exists(&previous.path)?;
            }
        }
        Ok(previous)
    }

    /// Puts a property file back as it was before [`Store::set`].
    pub fn restore(&self, previous: &Previous) -> Result<()> {
        match &previous.bytes {
            Some(bytes) => write(&previous.path, bytes)?,
            None => {
                paths::remove_if_exists(&previous.path)?;
            }
        }
        if !previous.dir_existed
            && let Some(dir) = previous.path.parent()
        {
            // Only if empty: another property may have been set in the meantime.
            let _ = fs::remove_dir(dir);
        }
        Ok(())
    }
}

/// Writes a property file as dokku does (0600 in a 0755 directory), by rename.
fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    paths::write_by_rename(path, bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_could_inject_are_refused() {
        for (name, good) in [
            ("client-max-body-size", "10m"),
            ("proxy-read-timeout", "1m30s"),
            ("proxy-buffers", "16 8k"),
            ("x-forwarded-for-value", "$http_x_forwarded_for"),
            ("x-forwarded-proto-value", "https"),
            ("access-log-path", "off"),
            ("error-log-path", "/var/log/nginx/x.log"),
            ("hsts-max-age", "31536000"),
        ] {
            assert!(check(name, good).is_ok(), "{name} {good}");
            for bad in [
                " ",
                "1m;",
                "1m; include /etc/passwd",
                "{",
                "}",
                "\"x\"",
                "'x'",
                "a\nb",
                "$a b",
                "#",
                "\\",
            ] {
                let value = format!("{good}{bad}");
                assert!(check(name, &value).is_err(), "{name} accepted {value:?}");
            }
        }
        assert!(check("error-log-path", "off").is_err());
        assert!(check("hsts", "yes").is_err());
        assert!(check("proxy-read-timeout", "s").is_err());
        assert!(check("proxy-read-timeout", "60x").is_err());
        assert!(check("x-forwarded-for-value", "$").is_err());
        assert!(matches!(
            check("no-such-key", "1"),
            Err(Error::UnknownProperty(_))
        ));
    }

    #[test]
    fn hsts_header_follows_dokku() {
        let values = |pairs: &[(&'static str, &str)]| {
            Resolved(
                PROPERTIES
                    .iter()
                    .map(|p| {
                        let computed = pairs.iter().find(|(n, _)| *n == p.name).map_or(
                            match p.default {
                                Fallback::Fixed(v) => v.to_string(),
                                Fallback::LogFile(_) => String::new(),
                            },
                            |(_, v)| v.to_string(),
                        );
                        (
                            p.name,
                            Values {
                                app: String::new(),
                                global: String::new(),
                                computed,
                            },
                        )
                    })
                    .collect(),
            )
        };
        assert_eq!(
            values(&[]).hsts_header().unwrap(),
            "max-age=15724800; includeSubdomains"
        );
        assert_eq!(
            values(&[("hsts-preload", "true"), ("hsts-max-age", "63072000")])
                .hsts_header()
                .unwrap(),
            "max-age=63072000; includeSubdomains; preload"
        );
        assert_eq!(
            values(&[("hsts-include-subdomains", "false")])
                .hsts_header()
                .unwrap(),
            "max-age=15724800"
        );
        assert_eq!(values(&[("hsts", "false")]).hsts_header(), None);
    }
}
