//! letsencrypt:set's values, global and per app, and the account files, all under
//! DOKKU_ROOT/.letsencrypt/ (a hidden directory, so dokku never lists it as an app).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::app::{App, Env, open_root};
use crate::dir::Dir;
use crate::endpoint::KeyType;
use crate::error::{Error, Result};

use super::dns;

/// Let's Encrypt's production directory.
pub const PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory.
pub const STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// The keys letsencrypt:set takes, besides `dns-provider-<KEY>` for the provider's variables.
pub const KEYS: [&str; 9] = [
    "email",
    "server",
    "graceperiod",
    "key-type",
    "profile",
    "dns-provider",
    "eab-kid",
    "eab-hmac-key",
    "notify-command",
];
/// The prefix of a DNS provider's variables, as dokku-letsencrypt names them.
pub const DNS_PREFIX: &str = "dns-provider-";
/// Values never printed: letsencrypt:report shows `****`.
pub const SECRETS: [&str; 2] = ["eab-hmac-key", "dns-provider-RFC2136_TSIG_SECRET"];
/// The scope name of the global values.
pub const GLOBAL: &str = "--global";

/// The values in force for one app: the app's own, else the global ones, else defaults.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Contact email for the ACME account.
    pub email: Option<String>,
    /// ACME directory URL.
    pub server: String,
    /// Seconds before expiry at which auto-renew renews, if set; otherwise the CA's ARI
    /// window, or a third of the lifetime left, decides.
    pub grace_period: Option<i64>,
    /// The certificate key to generate.
    pub key_type: KeyType,
    /// The ACME profile the order names (`classic`, `tlsserver`, `shortlived`...).
    pub profile: Option<String>,
    /// `rfc2136`, `exec` or `none`: with a provider, every name is validated over DNS-01.
    pub dns_provider: Option<String>,
    /// The provider's variables, `dns-provider-` taken off (`RFC2136_NAMESERVER`...).
    pub dns_values: BTreeMap<String, String>,
    /// External account binding: key id and base64url HMAC key.
    pub eab: Option<(String, String)>,
    /// A command run after every renewal success or failure.
    pub notify_command: Option<String>,
}

/// DOKKU_ROOT/.letsencrypt: settings.json (letsencrypt:set's values), the account files and
/// the renewal state. Not [`crate::transaction`], the stage/swap/roll back transaction.
#[derive(Debug, Clone)]
pub struct SettingsFile {
    env: Env,
    dir: PathBuf,
}

/// The directory's name under DOKKU_ROOT.
const DIR: &str = ".letsencrypt";
/// The settings file in it.
const SETTINGS: &str = "settings.json";
/// The account directory in it.
const ACCOUNTS: &str = "accounts";
/// The renewal state directory in it: one APP.json per app.
const STATE: &str = "state";
/// Mode of the directories: only the owner may list the account keys.
const DIR_MODE: u32 = 0o700;
/// Mode of the settings and account files (an account file holds its private key).
const FILE_MODE: u32 = 0o600;

type Table = BTreeMap<String, BTreeMap<String, String>>;

impl SettingsFile {
    /// The store of this DOKKU_ROOT.
    pub fn new(env: &Env) -> SettingsFile {
        SettingsFile {
            env: env.clone(),
            dir: env.dokku_root.join(DIR),
        }
    }

    #[cfg(test)]
    fn settings_path(&self) -> PathBuf {
        self.dir.join(SETTINGS)
    }

    /// DOKKU_ROOT/.letsencrypt, opened without following a link; `None` if missing.
    fn open(&self) -> Result<Option<Dir>> {
        open_root(&self.env)?.open_dir(DIR)
    }

    /// DOKKU_ROOT/.letsencrypt, made if missing, its mode 0700 set on the open directory.
    fn open_or_create(&self) -> Result<Dir> {
        let (dir, _) = open_root(&self.env)?.open_or_create_dir(DIR, DIR_MODE)?;
        dir.set_mode(DIR_MODE)?;
        Ok(dir)
    }

    fn load(&self) -> Result<Table> {
        match self.open()? {
            Some(dir) => load_from(&dir),
            None => Ok(Table::new()),
        }
    }

    /// Sets (or with `None`, clears) `key` for `scope` (an app name, or [`GLOBAL`]).
    pub fn set(&self, scope: &str, key: &str, value: Option<&str>) -> Result<()> {
        if !KEYS.contains(&key) && !is_dns_key(key) {
            return Err(SettingError::UnknownKey(key.to_string()).into());
        }
        let value = value.map(|v| normalize(key, v)).transpose()?;
        // Read, modify and write under an flock on the directory: concurrent calls queue
        // up and each sees the one before, so no value set is lost.
        let dir = self.open_or_create()?;
        let _lock = dir.lock()?;
        remove_temps(&dir, SETTINGS)?;
        let mut table = load_from(&dir)?;
        let values = table.entry(scope.to_string()).or_default();
        match value {
            Some(value) => values.insert(key.to_string(), value),
            None => values.remove(key),
        };
        table.retain(|_, values| !values.is_empty());
        let text =
            serde_json::to_string_pretty(&table).expect("a map of strings serializes") + "\n";
        dir.replace(SETTINGS, text.as_bytes(), FILE_MODE)
    }

    /// The values in force for `app`.
    pub fn resolve(&self, app: &str) -> Result<Resolved> {
        let table = self.load()?;
        let get = |key: &str| {
            table
                .get(app)
                .and_then(|v| v.get(key))
                .or_else(|| table.get(GLOBAL).and_then(|v| v.get(key)))
                .cloned()
        };
        let dns_values = dns::RFC2136_KEYS
            .iter()
            .chain(&dns::EXEC_KEYS)
            .filter_map(|key| get(&format!("{DNS_PREFIX}{key}")).map(|v| (key.to_string(), v)))
            .collect();
        Ok(Resolved {
            email: get("email"),
            server: get("server").unwrap_or_else(|| PRODUCTION.to_string()),
            grace_period: get("graceperiod").and_then(|v| v.parse().ok()),
            key_type: get("key-type")
                .and_then(|v| KeyType::from_name(&v).ok())
                .unwrap_or(KeyType::EcdsaP256),
            profile: get("profile"),
            dns_provider: get("dns-provider").filter(|p| p != "none"),
            dns_values,
            eab: get("eab-kid").zip(get("eab-hmac-key")),
            notify_command: get("notify-command"),
        })
    }

    /// The values set for `scope` (an app or [`GLOBAL`]), secrets as `****`, for
    /// letsencrypt:report.
    pub fn report(&self, scope: &str) -> Result<Vec<(String, String)>> {
        let table = self.load()?;
        let values = table.get(scope).cloned().unwrap_or_default();
        Ok(values
            .into_iter()
            .map(|(key, value)| {
                let shown = if is_secret(&key) {
                    "****".to_string()
                } else {
                    value
                };
                (key, shown)
            })
            .collect())
    }

    /// The renewal state of `app` (see [`super::state`]); `None` if there is none.
    pub fn read_state(&self, app: &str) -> Result<Option<Vec<u8>>> {
        match self
            .open()?
            .map(|dir| dir.open_dir(STATE))
            .transpose()?
            .flatten()
        {
            Some(states) => states.read(&state_file(app)),
            None => Ok(None),
        }
    }

    /// Writes the renewal state of `app`, 0600 in 0700 directories, under the lock.
    pub fn write_state(&self, app: &str, bytes: &[u8]) -> Result<()> {
        let name = state_file(app);
        let dir = self.open_or_create()?;
        let _lock = dir.lock()?;
        let (states, _) = dir.open_or_create_dir(STATE, DIR_MODE)?;
        states.set_mode(DIR_MODE)?;
        remove_temps(&states, &name)?;
        states.replace(&name, bytes, FILE_MODE)
    }

    /// Where the account for this email and server is kept (0600).
    pub fn account_path(&self, email: &str, server: &str) -> PathBuf {
        self.dir.join(ACCOUNTS).join(account_file(email, server))
    }

    /// The account file at `path` (from [`SettingsFile::account_path`]); `None` if there is none.
    /// Read through directory handles: a link anywhere under DOKKU_ROOT is refused.
    pub fn read_account(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        let name = self.account_name(path)?;
        match self
            .open()?
            .map(|dir| dir.open_dir(ACCOUNTS))
            .transpose()?
            .flatten()
        {
            Some(accounts) => accounts.read(name),
            None => Ok(None),
        }
    }

    /// Writes the account file at `path` (from [`SettingsFile::account_path`]), 0600 in 0700 directories.
    pub fn write_account(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let name = self.account_name(path)?;
        let dir = self.open_or_create()?;
        let _lock = dir.lock()?;
        let (accounts, _) = dir.open_or_create_dir(ACCOUNTS, DIR_MODE)?;
        accounts.set_mode(DIR_MODE)?;
        remove_temps(&accounts, name)?;
        accounts.replace(name, bytes, FILE_MODE)
    }

    /// The file name of an account path; anything else is a bug, refused.
    fn account_name<'a>(&self, path: &'a Path) -> Result<&'a str> {
        path.strip_prefix(self.dir.join(ACCOUNTS))
            .ok()
            .and_then(|rest| rest.to_str())
            .filter(|name| !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| SettingError::NotAnAccountFile(path.into()).into())
    }

    /// The directory everything lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// letsencrypt:set: sets (or with `None`, clears) `key` for `scope`, [`GLOBAL`] or an app,
/// which must exist: a value set for a misspelt app would never be used.
pub fn set(env: &Env, scope: &str, key: &str, value: Option<&str>) -> Result<()> {
    if scope != GLOBAL {
        App::open(env, scope)?;
    }
    SettingsFile::new(env).set(scope, key, value)
}

/// Whether `key`'s value is a secret: never printed, `****` in letsencrypt:report.
pub fn is_secret(key: &str) -> bool {
    SECRETS.contains(&key)
}

/// An app's state file name (app names are dokku's: no slash, no leading dot).
fn state_file(app: &str) -> String {
    format!("{app}.json")
}

/// True for `dns-provider-<KEY>` with a KEY one of the providers reads.
fn is_dns_key(key: &str) -> bool {
    key.strip_prefix(DNS_PREFIX)
        .is_some_and(|k| dns::RFC2136_KEYS.contains(&k) || dns::EXEC_KEYS.contains(&k))
}

/// The account file's name: a digest of the server and email.
fn account_file(email: &str, server: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{server}\n{email}").as_bytes(),
    );
    let name: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{name}.json")
}

fn load_from(dir: &Dir) -> Result<Table> {
    match dir.read(SETTINGS)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadLetsEncryptFile(dir.join(SETTINGS), e.to_string())),
        None => Ok(Table::new()),
    }
}

/// Removes the temp files of `name` a killed writer left (called under the lock).
fn remove_temps(dir: &Dir, name: &str) -> Result<()> {
    let prefix = Dir::temp_prefix(name);
    for (entry, _) in dir.entries()? {
        if entry.starts_with(&prefix) {
            dir.remove_file(&entry)?;
        }
    }
    Ok(())
}

/// Checks a value and puts it in its stored form (`staging` becomes the staging URL...).
fn normalize(key: &str, value: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::from(SettingError::BadValue {
            key: key.into(),
            value: value.into(),
            why: why.into(),
        })
    };
    match key {
        "email" => {
            let ok = value.len() <= 254
                && value
                    .split_once('@')
                    .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
                && !value
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>\"'`;".contains(c));
            if ok {
                Ok(value.to_string())
            } else {
                Err(bad("an address such as ops@example.com is expected"))
            }
        }
        "server" => match value {
            "production" => Ok(PRODUCTION.to_string()),
            "staging" => Ok(STAGING.to_string()),
            url if url.starts_with("https://")
                && !url.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Ok(url.to_string())
            }
            _ => Err(bad(
                "an https:// ACME directory URL, staging or production is expected",
            )),
        },
        "graceperiod" => match value.parse::<i64>() {
            Ok(seconds) if seconds >= 0 => Ok(seconds.to_string()),
            _ => Err(bad("a number of seconds is expected")),
        },
        "key-type" => KeyType::from_name(value)
            .map(|_| value.to_string())
            .map_err(|why| bad(&why.to_string())),
        "profile" if is_token(value) => Ok(value.to_string()),
        "profile" => Err(bad(
            "a profile name such as classic, tlsserver or shortlived is expected",
        )),
        "dns-provider" => match value {
            "rfc2136" | "exec" | "none" => Ok(value.to_string()),
            _ => Err(bad("rfc2136, exec or none is expected")),
        },
        "eab-kid" if is_token(value) => Ok(value.to_string()),
        "eab-kid" => Err(bad("the key identifier the CA gave you is expected")),
        "eab-hmac-key" => {
            use base64::Engine;
            match base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(value.trim_end_matches('='))
            {
                Ok(key) if !key.is_empty() => Ok(value.trim_end_matches('=').to_string()),
                // The value itself is a secret: never repeated in the message.
                _ => Err(SettingError::NotBase64Url(key.into()).into()),
            }
        }
        _ if value.chars().any(char::is_control) => {
            Err(SettingError::ControlCharacter(key.into()).into())
        }
        k if k.ends_with("_TIMEOUT") && value.parse::<u64>().is_err() => {
            Err(bad("a number of seconds is expected"))
        }
        _ => Ok(value.to_string()),
    }
}

/// A name or identifier: letters, digits, `.`, `_`, `-`, at most 128.
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A letsencrypt:set that cannot be stored, or an account path that is not one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingError {
    /// A key letsencrypt:set does not know.
    #[error(
        "Invalid key {0:?}, valid keys: {keys}, and dns-provider-KEY for {dns_keys}",
        keys = KEYS.join(", "),
        dns_keys = dns::RFC2136_KEYS.iter().chain(&dns::EXEC_KEYS).copied().collect::<Vec<_>>().join(", ")
    )]
    UnknownKey(String),
    /// A value that is not what the key takes.
    #[error("{value:?} is not a valid {key}: {why}")]
    BadValue {
        key: String,
        /// The value given.
        value: String,
        /// What is expected instead.
        why: String,
    },
    /// A secret that is not base64url; the value itself is never repeated.
    #[error("the {0} is not base64url; paste the HMAC key the CA gave you")]
    NotBase64Url(String),
    /// A value on more than one line.
    #[error("the value of {0} holds a control character; give it on one line")]
    ControlCharacter(String),
    /// A path outside the accounts directory where an account file was expected (a bug).
    #[error("{} is not an account file", .0.display())]
    NotAnAccountFile(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_normalized() {
        assert_eq!(normalize("server", "staging").unwrap(), STAGING);
        assert!(normalize("server", "http://insecure").is_err());
        assert!(normalize("email", "not-an-email").is_err());
        assert!(normalize("email", "a@b.c\nX: y").is_err());
        assert_eq!(normalize("graceperiod", "86400").unwrap(), "86400");
        assert!(normalize("graceperiod", "-1").is_err());
        assert!(normalize("key-type", "rsa2048").is_ok());
        assert!(normalize("key-type", "dsa").is_err());
    }

    #[test]
    fn app_values_win_over_global_ones() {
        let dir = tempfile::tempdir().unwrap();
        let env =
            Env::from_lookup(|n| (n == "DOKKU_ROOT").then(|| dir.path().display().to_string()))
                .unwrap();
        let store = SettingsFile::new(&env);
        store.set(GLOBAL, "email", Some("ops@example.com")).unwrap();
        store.set(GLOBAL, "graceperiod", Some("100")).unwrap();
        store.set("myapp", "email", Some("me@example.com")).unwrap();
        assert_eq!(
            store.resolve("myapp").unwrap().email.as_deref(),
            Some("me@example.com")
        );
        assert_eq!(
            store.resolve("other").unwrap().email.as_deref(),
            Some("ops@example.com")
        );
        assert_eq!(store.resolve("myapp").unwrap().grace_period, Some(100));
        assert_eq!(store.resolve("other").unwrap().profile, None);
        store
            .set(GLOBAL, "dns-provider-RFC2136_TSIG_SECRET", Some("c2VjcmV0"))
            .unwrap();
        assert_eq!(
            store.resolve("myapp").unwrap().dns_values["RFC2136_TSIG_SECRET"],
            "c2VjcmV0"
        );
        assert_eq!(
            store.report(GLOBAL).unwrap().last().unwrap(),
            &("graceperiod".to_string(), "100".to_string())
        );
        assert!(
            store
                .report(GLOBAL)
                .unwrap()
                .contains(&("dns-provider-RFC2136_TSIG_SECRET".into(), "****".into()))
        );
        assert!(
            store
                .set(GLOBAL, "dns-provider-CLOUDFLARE_TOKEN", Some("x"))
                .is_err()
        );
        store.set("myapp", "email", None).unwrap();
        assert_eq!(
            store.resolve("myapp").unwrap().email.as_deref(),
            Some("ops@example.com")
        );
        assert_eq!(store.resolve("myapp").unwrap().server, PRODUCTION);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.settings_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
