//! letsencrypt:set's values, global and per app, and the account files, all under
//! DOKKU_ROOT/.letsencrypt/ (a hidden directory, so dokku never lists it as an app).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::app::{Settings, open_root};
use crate::dir::Dir;
use crate::endpoint::KeyType;
use crate::error::{Error, Result};

/// Let's Encrypt's production directory.
pub const PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory.
pub const STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// Renew this long before expiry, in seconds (30 days), as dokku-letsencrypt.
pub const DEFAULT_GRACE_PERIOD: i64 = 2_592_000;
/// The keys letsencrypt:set takes.
pub const KEYS: [&str; 4] = ["email", "server", "graceperiod", "key-type"];
/// The scope name of the global values.
pub const GLOBAL: &str = "--global";

/// The values in force for one app: the app's own, else the global ones, else defaults.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Contact email for the ACME account.
    pub email: Option<String>,
    /// ACME directory URL.
    pub server: String,
    /// Seconds before expiry at which auto-renew renews.
    pub grace_period: i64,
    /// The certificate key to generate.
    pub key_type: KeyType,
}

/// The settings file and account directory.
#[derive(Debug, Clone)]
pub struct Store {
    settings: Settings,
    dir: PathBuf,
}

/// The directory's name under DOKKU_ROOT.
const DIR: &str = ".letsencrypt";
/// The settings file in it.
const SETTINGS: &str = "settings.json";
/// The account directory in it.
const ACCOUNTS: &str = "accounts";
/// Mode of the directories: only the owner may list the account keys.
const DIR_MODE: u32 = 0o700;
/// Mode of the settings and account files (an account file holds its private key).
const FILE_MODE: u32 = 0o600;
/// Temp files: `.settings.json.tmp.<random>`, unique per writer.
const TEMP_MARK: &str = ".tmp.";

type Table = BTreeMap<String, BTreeMap<String, String>>;

impl Store {
    /// The store of this DOKKU_ROOT.
    pub fn new(settings: &Settings) -> Store {
        Store { settings: settings.clone(), dir: settings.dokku_root.join(DIR) }
    }

    #[cfg(test)]
    fn settings_path(&self) -> PathBuf {
        self.dir.join(SETTINGS)
    }

    /// DOKKU_ROOT/.letsencrypt, opened without following a link; `None` if missing.
    fn open(&self) -> Result<Option<Dir>> {
        open_root(&self.settings)?.open_dir(DIR)
    }

    /// DOKKU_ROOT/.letsencrypt, made if missing, its mode 0700 set on the open directory.
    fn open_or_create(&self) -> Result<Dir> {
        let (dir, _) = open_root(&self.settings)?.open_or_create_dir(DIR, DIR_MODE)?;
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
        let value = value.map(|v| normalize(key, v)).transpose()?;
        if !KEYS.contains(&key) {
            return Err(Error::Usage(format!("Invalid key {key:?}, valid keys: {}", KEYS.join(", "))));
        }
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
        let text = serde_json::to_string_pretty(&table).expect("a map of strings serializes") + "\n";
        replace_private(&dir, SETTINGS, text.as_bytes())
    }

    /// The values in force for `app`.
    pub fn resolve(&self, app: &str) -> Result<Resolved> {
        let table = self.load()?;
        let get = |key: &str| {
            table.get(app).and_then(|v| v.get(key)).or_else(|| table.get(GLOBAL).and_then(|v| v.get(key))).cloned()
        };
        Ok(Resolved {
            email: get("email"),
            server: get("server").unwrap_or_else(|| PRODUCTION.to_string()),
            grace_period: get("graceperiod").and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_GRACE_PERIOD),
            key_type: get("key-type").and_then(|v| KeyType::from_name(&v).ok()).unwrap_or(KeyType::EcdsaP256),
        })
    }

    /// Where the account for this email and server is kept (0600).
    pub fn account_path(&self, email: &str, server: &str) -> PathBuf {
        self.dir.join(ACCOUNTS).join(account_file(email, server))
    }

    /// The account file at `path` (from [`Store::account_path`]); `None` if there is none.
    /// Read through directory handles: a link anywhere under DOKKU_ROOT is refused.
    pub fn read_account(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        let name = self.account_name(path)?;
        match self.open()?.map(|dir| dir.open_dir(ACCOUNTS)).transpose()?.flatten() {
            Some(accounts) => accounts.read(name),
            None => Ok(None),
        }
    }

    /// Writes the account file at `path` (from [`Store::account_path`]), 0600 in 0700 directories.
    pub fn write_account(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let name = self.account_name(path)?;
        let dir = self.open_or_create()?;
        let _lock = dir.lock()?;
        let (accounts, _) = dir.open_or_create_dir(ACCOUNTS, DIR_MODE)?;
        accounts.set_mode(DIR_MODE)?;
        remove_temps(&accounts, name)?;
        replace_private(&accounts, name, bytes)
    }

    /// The file name of an account path; anything else is a bug, refused.
    fn account_name<'a>(&self, path: &'a Path) -> Result<&'a str> {
        path.strip_prefix(self.dir.join(ACCOUNTS))
            .ok()
            .and_then(|rest| rest.to_str())
            .filter(|name| !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| Error::Usage(format!("{} is not an account file", path.display())))
    }

    /// The directory everything lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The account file's name: a digest of the server and email.
fn account_file(email: &str, server: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, format!("{server}\n{email}").as_bytes());
    let name: String = digest.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}.json")
}

fn load_from(dir: &Dir) -> Result<Table> {
    match dir.read(SETTINGS)? {
        Some(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| Error::BadLetsEncryptFile(dir.join(SETTINGS), e.to_string()))
        }
        None => Ok(Table::new()),
    }
}

/// Writes `name` whole under a unique temp name (mode set on the open file), then renames
/// it into place: a reader sees the old file or the new one, never a part.
fn replace_private(dir: &Dir, name: &str, bytes: &[u8]) -> Result<()> {
    let temp = dir.write_temp(&format!(".{name}{TEMP_MARK}"), bytes, FILE_MODE)?;
    if let Err(error) = dir.rename(&temp, name) {
        let _ = dir.remove_file(&temp);
        return Err(error);
    }
    dir.sync();
    Ok(())
}

/// Removes the temp files of `name` a killed writer left (called under the lock).
fn remove_temps(dir: &Dir, name: &str) -> Result<()> {
    let prefix = format!(".{name}{TEMP_MARK}");
    for (entry, _) in dir.entries()? {
        if entry.starts_with(&prefix) {
            dir.remove_file(&entry)?;
        }
    }
    Ok(())
}

/// Checks a value and puts it in its stored form (`staging` becomes the staging URL...).
fn normalize(key: &str, value: &str) -> Result<String> {
    let bad = |why: &str| Error::Usage(format!("{value:?} is not a valid {key}: {why}"));
    match key {
        "email" => {
            let ok = value.len() <= 254
                && value.split_once('@').is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
                && !value.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"'`;".contains(c));
            if ok { Ok(value.to_string()) } else { Err(bad("an address such as ops@example.com is expected")) }
        }
        "server" => match value {
            "production" => Ok(PRODUCTION.to_string()),
            "staging" => Ok(STAGING.to_string()),
            url if url.starts_with("https://") && !url.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                Ok(url.to_string())
            }
            _ => Err(bad("an https:// ACME directory URL, staging or production is expected")),
        },
        "graceperiod" => match value.parse::<i64>() {
            Ok(seconds) if seconds >= 0 => Ok(seconds.to_string()),
            _ => Err(bad("a number of seconds is expected")),
        },
        "key-type" => KeyType::from_name(value).map(|_| value.to_string()).map_err(|why| bad(&why.to_string())),
        _ => Ok(value.to_string()),
    }
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
        let settings =
            Settings::from_lookup(|n| (n == "DOKKU_ROOT").then(|| dir.path().display().to_string())).unwrap();
        let store = Store::new(&settings);
        store.set(GLOBAL, "email", Some("ops@example.com")).unwrap();
        store.set(GLOBAL, "graceperiod", Some("100")).unwrap();
        store.set("myapp", "email", Some("me@example.com")).unwrap();
        assert_eq!(store.resolve("myapp").unwrap().email.as_deref(), Some("me@example.com"));
        assert_eq!(store.resolve("other").unwrap().email.as_deref(), Some("ops@example.com"));
        assert_eq!(store.resolve("myapp").unwrap().grace_period, 100);
        store.set("myapp", "email", None).unwrap();
        assert_eq!(store.resolve("myapp").unwrap().email.as_deref(), Some("ops@example.com"));
        assert_eq!(store.resolve("myapp").unwrap().server, PRODUCTION);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.settings_path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
