//! The one error type: every variant is something the person at the terminal can act on.

use std::path::PathBuf;

/// Everything that can stop a command, worded for the person who ran it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command was given without the app it works on.
    #[error("Please specify an app to run the command on")]
    NoApp,

    /// The app name breaks dokku's naming rules.
    #[error(
        "App name must begin with a lowercase letter, and contain only lowercase letters, digits, '-' and '.' (at most 200 characters): {0:?}"
    )]
    BadAppName(String),

    /// No directory for the app under DOKKU_ROOT.
    #[error("App {0} does not exist")]
    NoSuchApp(String),

    /// A domain that is not a hostname (and could break or inject into nginx.conf).
    #[error(
        "{0:?} is not a valid domain: {1}; use a hostname such as app.example.com or *.example.com"
    )]
    BadDomain(String, &'static str),

    /// A line of a file dokku keeps (VHOST, LISTENERS) that cannot be used safely.
    #[error("{path}: line {line} ({value:?}) is not valid: {why}; fix or remove that line")]
    BadAppFile {
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending text.
        value: String,
        /// What is wrong with it.
        why: String,
    },

    /// An environment variable holds a value that cannot be used.
    #[error("{name}={value:?} is not valid: {why}")]
    BadSetting {
        name: &'static str,
        value: String,
        /// What it should be.
        why: &'static str,
    },

    /// A file named on the command line that is missing, unreadable for the caller, not a
    /// regular file, or where dokku keeps keys: one message for all, so that it tells
    /// nothing about what exists. dokku's own words come first.
    #[error(
        "{} file specified not found, please check file paths (cannot read {}: it does not exist or may not be read by you; keys are never taken from an app's tls directories)",
        if matches!(role, crate::caller::FileRole::Certificate) { "CRT" } else { "KEY" },
        path.display()
    )]
    FileUnreadable {
        /// Which of the two files.
        role: crate::caller::FileRole,
        /// The path as given.
        path: PathBuf,
    },

    /// A file under the directory of `certs:add APP DIR` that is unreadable for the caller,
    /// or lies (links followed) where dokku keeps keys: the whole directory is refused, with
    /// the same words as for a file argument.
    #[error(
        "cannot read {}: it does not exist or may not be read by you; keys are never taken from an app's tls directories",
        .0.display()
    )]
    DirEntryUnreadable(PathBuf),

    /// File arguments from a command that came over ssh for a dokku user.
    #[error(
        "file paths name files on the server, not on your machine; pipe the certificate in: dokku certs:add {0} < cert-key.tar (or a PEM file holding the certificate, its chain and the key)"
    )]
    RemoteFiles(String),

    /// Nothing usable on stdin (a terminal, or empty).
    #[error("Tar archive containing server.crt and server.key expected on stdin")]
    NoArchive,

    /// stdin held something that is not a tar archive.
    #[error(
        "stdin is not a tar archive ({0}); send a tar or tar.gz holding the certificate and key"
    )]
    NotAnArchive(String),

    /// The archive holds an entry that is refused whatever else it holds.
    #[error(
        "the archive entry {entry:?} is {what}; refusing the whole archive, nothing was extracted"
    )]
    HostileEntry {
        /// The entry's path as the archive names it.
        entry: String,
        /// What kind of entry it is.
        what: &'static str,
    },

    /// The archive is over one of the reading limits.
    #[error("the archive is too large: {0}; send only the certificate, its chain and the key")]
    ArchiveTooLarge(String),

    /// The input holds more certificates or keys than any real bundle.
    #[error(
        "the input holds more than {max} {what}; send only the server certificate, its intermediates and its key"
    )]
    TooManyObjects {
        /// "certificates" or "private keys".
        what: &'static str,
        max: usize,
    },

    /// The server certificate's chain is longer than any real one.
    #[error(
        "the certificate chain is longer than {max} certificates; send the server certificate and only the intermediates up to its CA"
    )]
    ChainTooLong {
        /// The cap, server certificate included.
        max: usize,
    },

    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A file could not be written (the app dir is left as it was).
    #[error("cannot write {path}: {source}; nothing was changed")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A symbolic link where dokku-certs reads or writes: refused, never followed.
    #[error("{0} is a symbolic link; dokku-certs never follows links inside an app, remove it")]
    Symlink(PathBuf),

    /// Something other than a regular file (or directory) where one is expected.
    #[error(
        "{0} is {1}; dokku-certs expected a regular file or directory there, remove or replace it"
    )]
    NotAFile(PathBuf, &'static str),

    /// A change failed after it had started and could not be undone completely.
    #[error("{error}; {left}")]
    PartlyChanged {
        /// What went wrong first.
        error: String,
        /// What is left changed, and how to fix it.
        left: String,
    },

    /// A leftover of an earlier run that this user cannot remove.
    #[error(
        "{path} is left from an earlier run and cannot be removed ({source}); nothing was changed; remove it as its owner (root): rm -rf {path}"
    )]
    StaleLeftover {
        path: PathBuf,
        /// Why it cannot be removed.
        source: std::io::Error,
    },

    /// The input holds no certificate at all.
    #[error("no certificate found in {0}; expected a PEM or DER X.509 certificate")]
    NoCertificate(String),

    /// The input holds no usable private key.
    #[error("no private key found in {0}; expected a PEM or DER private key (PKCS#8, RSA or EC)")]
    NoKey(String),

    /// A private key is protected by a passphrase; nginx would hang asking for it.
    #[error(
        "the private key in {0} is encrypted (nginx would wait for a passphrase); decrypt it with: openssl pkey -in {0} -out server.key"
    )]
    EncryptedKey(String),

    /// A PKCS#12 bundle was offered.
    #[error(
        "{0} is a PKCS#12 (.pfx/.p12) bundle; convert it first: openssl pkcs12 -in {0} -nokeys -out server.crt && openssl pkcs12 -in {0} -nocerts -nodes -out server.key"
    )]
    Pkcs12(String),

    /// A file holds the wrong kind of object (a CSR, a public key, a key where a certificate belongs...).
    #[error("{file} holds {got}, not {wanted}; {hint}")]
    WrongKind {
        file: String,
        /// What it holds.
        got: String,
        /// What was expected there.
        wanted: &'static str,
        /// What to do.
        hint: &'static str,
    },

    /// The key cannot be used by nginx or browsers.
    #[error("the private key in {file} is {what}; {}", what.what_to_do())]
    UnsupportedKey {
        file: String,
        /// What kind of key it is.
        what: crate::key::KeyError,
    },

    /// A certificate whose bytes do not parse.
    #[error(
        "{file} holds a certificate that cannot be parsed ({why}); check that the file is complete"
    )]
    BadCertificate {
        file: String,
        /// The parser's reason.
        why: crate::cert::CertError,
    },

    /// The key does not belong to the certificate.
    #[error(
        "the private key does not match the certificate (certificate: {certs}; key: {keys}); use the key the certificate was issued for"
    )]
    KeyMismatch {
        /// Where the certificates came from.
        certs: String,
        /// Where the keys came from.
        keys: String,
    },

    /// Several certificate/key pairs and no way to choose.
    #[error(
        "found {count} certificate/key pairs ({pairs}); put only one certificate and its key in the archive"
    )]
    Ambiguous {
        /// How many pairs.
        count: usize,
        /// The pairs, by file.
        pairs: String,
    },

    /// The server certificate is a CA certificate issued by another CA.
    #[error(
        "the certificate in {file} is a CA certificate (CA:TRUE) issued by {issuer}, not a server certificate; send the server certificate it issued"
    )]
    CaAsLeaf { file: String, issuer: String },

    /// The app has no certificate.
    #[error("{0} doesn't have an SSL endpoint defined")]
    NoEndpoint(String),

    /// certs:remove on an app without a certificate.
    #[error("An app-specific SSL endpoint is not defined")]
    NoAppEndpoint,

    /// `nginx -t` refused the staged configuration; everything was restored.
    #[error(
        "nginx rejected the new configuration ({0}); the previous certificate, key and nginx.conf are back in place"
    )]
    NginxTest(String),

    /// dokku's proxy rebuild (nginx-vhosts runs `nginx -t`) failed; the previous tls/ is back.
    #[error(
        "dokku could not rebuild the proxy config with the new certificate ({reason}); the previous certificate and key are back in place{}",
        again.as_ref().map(|again| format!(", but rebuilding with them failed too ({again}), so nginx keeps serving its last loaded configuration")).unwrap_or_default()
    )]
    ProxyRebuild {
        /// nginx's most telling line (or the trigger that failed).
        reason: String,
        /// Why the rebuild with the previous pair failed too, if it did.
        again: Option<String>,
    },

    /// dokku mode, a certificate whose names nginx.conf already has: nginx refused the reload
    /// that was to serve it; the previous tls/ is back (nginx.conf was never touched).
    #[error(
        "nginx refused to reload with the new certificate ({reason}); the previous certificate and key are back in place{}",
        again.as_ref().map(|again| format!(" and nginx keeps serving them, but post-certs-update failed with them ({again})")).unwrap_or_else(|| " and nginx keeps serving them".into())
    )]
    ProxyReload {
        /// nginx's most telling line (or what the reload command said).
        reason: String,
        /// Why `post-certs-update` failed with the previous pair, if it did.
        again: Option<String>,
    },

    /// `crontab -l` or `crontab -` failed (dokku mode's renewal job).
    #[error("cannot {action} the crontab of the user running this: {why}")]
    Crontab {
        /// `read` or `install`.
        action: &'static str,
        /// crontab's own words, or why it did not start.
        why: String,
    },

    /// `plugn` (dokku's trigger runner) could not be started.
    #[error(
        "cannot run `plugn trigger {trigger}`: {source}; dokku mode needs dokku's plugn on PATH"
    )]
    PlugnCommand {
        trigger: String,
        source: std::io::Error,
    },

    /// The running master refused the configuration the one-app test had passed (something
    /// only the whole configuration shows); every file was restored.
    #[error(
        "nginx refused to reload with the new configuration ({0}); the previous certificate, key and nginx.conf are back in place and nginx keeps serving them"
    )]
    NginxReloadRefused(String),

    /// The master gave no sign of taking or refusing the change in time; the files were
    /// restored and the master asked to read them again.
    #[error(
        "nginx did not confirm the reload ({0}); the previous certificate, key and nginx.conf are back in place; check nginx's error log"
    )]
    NginxReloadUnconfirmed(String),

    /// `nginx -t` could not even be started.
    #[error("cannot run `{cmd}`: {source}; set DOKKU_NGINX_CMD to the nginx command")]
    NginxCommand {
        /// The command line.
        cmd: String,
        source: std::io::Error,
    },

    /// Let's Encrypt (the ACME exchange, or the CA's answer) failed; the old certificate stays.
    #[error("Let's Encrypt: {0}; the previous certificate is still in place")]
    Acme(#[from] crate::acme::AcmeError),

    /// No e-mail is set for the app or globally: a setting is missing, not a usage error.
    #[error(
        "no email set for Let's Encrypt; run: dokku-certs letsencrypt:set {0} email you@example.com (or --global)"
    )]
    NoEmail(String),

    /// The app's certificate did not come from letsencrypt:enable.
    #[error("{0} does not have a certificate from Let's Encrypt; run letsencrypt:enable {0} first")]
    NotLetsEncrypt(String),

    /// A settings or account file of letsencrypt:* cannot be read.
    #[error("{0} is damaged ({1}); fix or remove it")]
    BadLetsEncryptFile(PathBuf, String),

    /// Generating a key or certificate failed.
    #[error("cannot generate the certificate: {0}")]
    Generate(String),

    /// nginx:set or nginx:report with a property dokku-certs does not know.
    #[error("Invalid key specified, valid keys include: {0}")]
    UnknownProperty(String),

    /// An nginx property value that would not be one safe nginx.conf token.
    #[error("Invalid value for {name}: {value:?}; {expected} is expected")]
    BadProperty {
        name: String,
        /// The value given.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },

    /// `nginx -t` refused the configuration nginx:setup wrote; the old file is back.
    #[error("nginx rejected {path} ({complaint}){hint}; the previous {path} is back in place")]
    PolicyRejected {
        /// The global file.
        path: PathBuf,
        /// nginx's own words.
        complaint: String,
        /// What to do about a known cause ("" if none).
        hint: &'static str,
    },

    /// The staging directory was swapped for something else between its writing and the
    /// swap (someone who may write the app directory); what went in was undone.
    #[error(
        "{0} was replaced by another process while dokku-certs was installing the certificate; run the command again"
    )]
    StagingReplaced(PathBuf),

    /// letsencrypt:set with a key or value that cannot be stored.
    #[error(transparent)]
    Setting(#[from] crate::acme::settings::SettingError),

    /// letsencrypt:enable on an app without a domain to order for.
    #[error("{0} has no domains in VHOST; add one before letsencrypt:enable")]
    NoDomains(String),

    /// The app's dns-provider settings are incomplete or wrong.
    #[error("{why}; see letsencrypt:report {app}")]
    DnsProvider {
        app: String,
        /// What is missing or wrong.
        why: String,
    },

    /// A wildcard in VHOST and no DNS provider to validate it.
    #[error(
        "{wildcard} is a wildcard domain: HTTP-01 cannot validate it; set a dns-provider (letsencrypt:set {app} dns-provider rfc2136) or remove it from VHOST"
    )]
    WildcardNeedsDns {
        /// The wildcard domain.
        wildcard: String,
        app: String,
    },

    /// The eab-hmac-key in settings.json is not base64url (set by hand).
    #[error("eab-hmac-key is not base64url; set it again as the CA gave it")]
    StoredEabKey,

    /// The profile set is not in the CA directory's `meta.profiles`.
    #[error(
        "profile {profile:?} is not offered by {server}; it offers: {offers} (letsencrypt:set ... profile NAME)"
    )]
    ProfileNotOffered {
        /// The profile set.
        profile: String,
        /// The ACME directory URL.
        server: String,
        /// What it offers, comma-separated, or `no profiles`.
        offers: String,
    },
    /// letsencrypt:cron-job cannot write the job.
    #[error(transparent)]
    Cron(#[from] crate::cron::CronError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
