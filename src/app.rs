//! dokku's file layout under DOKKU_ROOT, and the environment ([`Env`]) read once per run.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dir::{Dir, Kind};
use crate::dokku::Mode;
use crate::error::{Error, Result};
use crate::names::{check_app_name, check_domain};

/// Everything dokku-certs takes from the environment, read once per run.
#[derive(Debug, Clone)]
pub struct Env {
    /// DOKKU_ROOT (default /home/dokku).
    pub dokku_root: PathBuf,
    /// DOKKU_NGINX_CMD (default `nginx`): the prefix of `-t` and `-s reload`.
    pub nginx_cmd: String,
    /// DOKKU_NGINX_PORT (default 80).
    pub http_port: u16,
    /// DOKKU_NGINX_SSL_PORT (default 443).
    pub ssl_port: u16,
    /// DOKKU_NGINX_BIND: the one address to listen on (unset: all IPv4 and IPv6).
    pub bind: Option<IpAddr>,
    /// DOKKU_NGINX_LOG_DIR (default /var/log/nginx): where each app's access and error logs go.
    pub log_dir: PathBuf,
    /// DOKKU_LIB_ROOT (default /var/lib/dokku): dokku's property store lives under `config/`.
    pub lib_root: PathBuf,
    /// DOKKU_NGINX_GLOBAL_CONF (default /etc/nginx/conf.d/dokku-certs.conf): the file
    /// `nginx:setup` writes, with the TLS policy and the catch-all servers.
    pub global_conf: PathBuf,
    /// DOKKU_CERTS_MODE: who renders nginx.conf (dokku-certs itself, or dokku's proxy plugin).
    pub mode: Mode,
}

impl Env {
    /// Reads this process's environment.
    pub fn from_env() -> Result<Env> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the environment through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Env> {
        let port = |name: &'static str, default: u16| match lookup(name) {
            None => Ok(default),
            Some(value) => {
                value
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or(Error::BadSetting {
                        name,
                        value,
                        why: "a port number from 1 to 65535 is expected",
                    })
            }
        };
        let bind = match lookup("DOKKU_NGINX_BIND") {
            None => None,
            Some(value) => Some(
                value
                    .trim()
                    .parse::<IpAddr>()
                    .map_err(|_| Error::BadSetting {
                        name: "DOKKU_NGINX_BIND",
                        value,
                        why: "an IPv4 or IPv6 address is expected",
                    })?,
            ),
        };
        let log_dir =
            PathBuf::from(lookup("DOKKU_NGINX_LOG_DIR").unwrap_or_else(|| "/var/log/nginx".into()));
        check_plain_path("DOKKU_NGINX_LOG_DIR", &log_dir)?;
        let dokku_root =
            PathBuf::from(lookup("DOKKU_ROOT").unwrap_or_else(|| "/home/dokku".into()));
        check_plain_path("DOKKU_ROOT", &dokku_root)?;
        let lib_root =
            PathBuf::from(lookup("DOKKU_LIB_ROOT").unwrap_or_else(|| "/var/lib/dokku".into()));
        check_plain_path("DOKKU_LIB_ROOT", &lib_root)?;
        let global_conf = PathBuf::from(
            lookup("DOKKU_NGINX_GLOBAL_CONF")
                .unwrap_or_else(|| "/etc/nginx/conf.d/dokku-certs.conf".into()),
        );
        check_plain_path("DOKKU_NGINX_GLOBAL_CONF", &global_conf)?;
        Ok(Env {
            dokku_root,
            nginx_cmd: lookup("DOKKU_NGINX_CMD").unwrap_or_else(|| "nginx".into()),
            http_port: port("DOKKU_NGINX_PORT", 80)?,
            ssl_port: port("DOKKU_NGINX_SSL_PORT", 443)?,
            bind,
            log_dir,
            lib_root,
            global_conf,
            mode: Mode::from_setting(lookup("DOKKU_CERTS_MODE"))?,
        })
    }
}

/// Paths end up inside nginx.conf; characters nginx would read as syntax are refused.
fn check_plain_path(name: &'static str, path: &Path) -> Result<()> {
    let text = path.to_string_lossy();
    if !is_plain_path(&text) {
        return Err(Error::BadSetting {
            name,
            value: text.into_owned(),
            why: "an absolute path without spaces, quotes or any of ; { } $ # is expected",
        });
    }
    Ok(())
}

/// An absolute path that is one nginx.conf token: no spaces, quotes, control characters,
/// or any of `; { } $ #`.
pub fn is_plain_path(text: &str) -> bool {
    let bad = text.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, ';' | '{' | '}' | '$' | '"' | '\'' | '#' | '\\')
    });
    !bad && text.starts_with('/')
}

/// One app's directory under DOKKU_ROOT, opened once: every file of the app is reached
/// through this handle, never through a path (see [`crate::dir`]).
#[derive(Debug, Clone)]
pub struct App {
    /// The app's name (checked).
    pub name: String,
    /// DOKKU_ROOT/<app>: for messages and nginx.conf, never to reach a file.
    pub dir: PathBuf,
    handle: Arc<Dir>,
    /// What [`crate::store::settle`] said when this app was opened (an interrupted change
    /// resolved), until a command with a reporter takes it ([`App::take_settle_notes`]).
    settle_notes: Arc<std::sync::Mutex<Vec<String>>>,
}

/// An upstream server from LISTENERS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// `host:port` as nginx's `server` directive takes it.
    pub address: String,
}

/// The app's certificate directory.
pub const TLS: &str = "tls";
/// The certificate, leaf then chain.
pub const CRT: &str = "server.crt";
/// The private key.
pub const KEY: &str = "server.key";
/// The directory nginx includes `*.conf` from, in every server block of the app: found
/// by name through the app's handle ([`App::conf_d_path`] for its full path).
pub const CONF_D: &str = "nginx.conf.d";

impl App {
    /// Opens an existing app: the name is checked before any path is built from it, and
    /// the app directory is opened without following a link.
    pub fn open(env: &Env, name: &str) -> Result<App> {
        check_app_name(name)?;
        let root = open_root(env)?;
        match root.open_dir(name) {
            Ok(Some(handle)) => {
                let app = App::from_dir(name, handle);
                // Whatever the command, a change killed midway is resolved first.
                let notes = crate::transaction::settle(env, &app);
                app.settle_notes
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(notes);
                Ok(app)
            }
            Ok(None) | Err(Error::NotAFile(..)) => Err(Error::NoSuchApp(name.to_string())),
            Err(error) => Err(error),
        }
    }

    /// An app whose directory is already open (tests of rendering, mostly).
    pub fn from_dir(name: &str, handle: Dir) -> App {
        App {
            name: name.to_string(),
            dir: handle.path().to_path_buf(),
            handle: Arc::new(handle),
            settle_notes: Arc::default(),
        }
    }

    /// The notes of the settle done when the app was opened, once: a command that changes
    /// the app passes them to its reporter with those of its own recovery.
    pub(crate) fn take_settle_notes(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .settle_notes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// An app for rendering tests: `dir` is only a name, the handle is on `/` and never used.
    #[cfg(test)]
    pub(crate) fn unopened(name: &str, dir: &str) -> App {
        let handle = Dir::open_top(Path::new("/")).expect("/ opens");
        App {
            name: name.to_string(),
            dir: PathBuf::from(dir),
            handle: Arc::new(handle),
            settle_notes: Arc::default(),
        }
    }

    /// The open app directory.
    pub fn handle(&self) -> &Dir {
        &self.handle
    }

    /// DOKKU_ROOT/<app>/tls
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join(TLS)
    }

    /// DOKKU_ROOT/<app>/tls/server.crt
    pub fn crt_path(&self) -> PathBuf {
        self.tls_dir().join(CRT)
    }

    /// DOKKU_ROOT/<app>/tls/server.key
    pub fn key_path(&self) -> PathBuf {
        self.tls_dir().join(KEY)
    }

    /// DOKKU_ROOT/<app>/nginx.conf
    pub fn nginx_conf_path(&self) -> PathBuf {
        self.dir.join("nginx.conf")
    }

    /// DOKKU_ROOT/<app>/nginx.conf.d: the directory every server block of the app's
    /// nginx.conf includes `*.conf` from (the user's and dokku-letsencrypt's additions).
    pub fn conf_d_path(&self) -> PathBuf {
        self.dir.join(CONF_D)
    }

    /// DOKKU_ROOT/<app>/VHOST
    pub fn vhost_path(&self) -> PathBuf {
        self.dir.join("VHOST")
    }

    /// tls/, opened without following a link; `None` if the app has none.
    pub fn open_tls(&self) -> Result<Option<Dir>> {
        self.handle.open_dir(TLS)
    }

    /// Whether the app has an SSL endpoint: tls/server.crt and tls/server.key both exist,
    /// as dokku decides. Entries are looked at, not followed: a planted link counts as
    /// present, and reading it is then refused with a message naming it.
    pub fn has_cert(&self) -> bool {
        match self.open_tls() {
            Ok(Some(tls)) => [CRT, KEY]
                .iter()
                .all(|name| matches!(tls.kind(name), Ok(Some(_)))),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Reads tls/<name>; `None` if tls/ or the file is missing. Symbolic links and hard
    /// links (a file that also has another name) are refused.
    pub fn read_tls_file(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.open_tls()? {
            Some(tls) => tls.read_unshared(name),
            None => Ok(None),
        }
    }

    /// The app's domains from VHOST, each checked so that none can inject into nginx.conf.
    pub fn domains(&self) -> Result<Vec<String>> {
        let path = self.vhost_path();
        let lines = self.read_lines("VHOST")?;
        let mut domains: Vec<String> = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            let domain = line.trim();
            if domain.is_empty() {
                continue;
            }
            if let Err(Error::BadDomain(_, why)) = check_domain(domain) {
                return Err(Error::BadAppFile {
                    path,
                    line: index + 1,
                    value: domain.into(),
                    why: why.into(),
                });
            }
            if !domains.iter().any(|d| d == domain) {
                domains.push(domain.to_string());
            }
        }
        Ok(domains)
    }

    /// The app's upstream servers from LISTENERS (`host:port` per line).
    pub fn listeners(&self) -> Result<Vec<Listener>> {
        let path = self.dir.join("LISTENERS");
        let lines = self.read_lines("LISTENERS")?;
        let mut listeners = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            let value = line.trim();
            if value.is_empty() {
                continue;
            }
            match listener_problem(value) {
                None => listeners.push(Listener {
                    address: value.to_string(),
                }),
                Some(why) => {
                    return Err(Error::BadAppFile {
                        path,
                        line: index + 1,
                        value: value.into(),
                        why: why.into(),
                    });
                }
            }
        }
        Ok(listeners)
    }

    /// A file of the app as lines; a missing file reads as no lines (a new app has no VHOST
    /// yet). A link is refused before a byte is read, so no message can quote its target.
    fn read_lines(&self, name: &str) -> Result<Vec<String>> {
        let bytes = self.handle.read(name)?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect())
    }
}

/// Opens DOKKU_ROOT itself (it may be a link: the administrator sets it).
pub fn open_root(env: &Env) -> Result<Dir> {
    Dir::open_top(&env.dokku_root).map_err(|source| Error::Read {
        path: env.dokku_root.clone(),
        source,
    })
}

fn listener_problem(value: &str) -> Option<&'static str> {
    let Some((host, port)) = value.rsplit_once(':') else {
        return Some("host:port is expected");
    };
    if port.parse::<u16>().ok().filter(|p| *p > 0).is_none() {
        return Some("the port must be a number from 1 to 65535");
    }
    let bracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let host_ok = match bracketed {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host.parse::<std::net::Ipv4Addr>().is_ok() || check_domain(host).is_ok(),
    };
    if host_ok {
        None
    } else {
        Some("the host must be an IP address or a hostname")
    }
}

/// Every app under DOKKU_ROOT, sorted, as dokku lists them (directories, not hidden, not `tls`).
pub fn list_apps(env: &Env) -> Result<Vec<String>> {
    // Real directories only: a link in DOKKU_ROOT is not an app (App::open refuses it).
    let mut apps: Vec<String> = open_root(env)?
        .entries()?
        .into_iter()
        .filter(|(name, kind)| *kind == Kind::Dir && name != "tls" && check_app_name(name).is_ok())
        .map(|(name, _)| name)
        .collect();
    apps.sort();
    Ok(apps)
}

/// Every app under DOKKU_ROOT, opened, in [`list_apps`]'s order: what a command on all apps
/// walks. One that cannot be opened fails the whole list, as `list_apps(..).map(App::open)` did.
pub fn open_all(env: &Env) -> Result<Vec<App>> {
    list_apps(env)?
        .iter()
        .map(|name| App::open(env, name))
        .collect()
}

/// What [`open_each`] found.
#[derive(Debug, Default)]
pub struct Opened {
    /// The apps opened, in [`list_apps`]'s order.
    pub apps: Vec<App>,
    /// Each other app's name, and why it could not be opened.
    pub failed: Vec<(String, Error)>,
}

/// Every app under DOKKU_ROOT, for a command that goes on past an app it cannot open
/// (letsencrypt:enable --all).
pub fn open_each(env: &Env) -> Result<Opened> {
    let mut opened = Opened::default();
    for name in list_apps(env)? {
        match App::open(env, &name) {
            Ok(app) => opened.apps.push(app),
            Err(error) => opened.failed.push((name, error)),
        }
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_host_and_port() {
        assert_eq!(listener_problem("127.0.0.1:5000"), None);
        assert_eq!(listener_problem("[::1]:5000"), None);
        assert_eq!(listener_problem("web.internal:80"), None);
        assert!(listener_problem("127.0.0.1").is_some());
        assert!(listener_problem("127.0.0.1:0").is_some());
        assert!(listener_problem("1.2.3.4:80; include /etc/passwd").is_some());
        assert!(listener_problem("evil{}:80").is_some());
    }

    #[test]
    fn settings_default_as_dokku_and_refuse_nonsense() {
        let env = Env::from_lookup(|_| None).unwrap();
        assert_eq!(env.dokku_root, PathBuf::from("/home/dokku"));
        assert_eq!((env.http_port, env.ssl_port), (80, 443));
        assert!(Env::from_lookup(|n| (n == "DOKKU_NGINX_PORT").then(|| "x".into())).is_err());
        assert!(
            Env::from_lookup(|n| (n == "DOKKU_NGINX_BIND").then(|| "1.2.3.4;".into())).is_err()
        );
        assert!(Env::from_lookup(|n| (n == "DOKKU_ROOT").then(|| "/tmp/a b".into())).is_err());
    }
}
