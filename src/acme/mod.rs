//! Let's Encrypt built in: RFC 8555 through instant-acme, HTTP-01 answered by nginx itself
//! from the app's nginx.conf.d/, the result installed exactly like certs:add.

pub mod ari;
pub mod challenge;
pub mod dns;
pub mod http;
pub mod notify;
pub mod schedule;
pub mod settings;
pub mod state;
pub mod status;

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};

use crate::app::{App, Settings};
use crate::bundle::{Origin, Source, assemble};
use crate::cert::{Certificate, now};
use crate::endpoint::{self, Installed, generate_key};
use crate::error::{Error, Result};
use crate::event::Reporter;
use crate::nginx;
use crate::store::{self, Applied, Change, TlsChange};
use challenge::{Answer, ChallengeFile};
use dns::{Provider, Txt};
use schedule::{Basis, Lifetime, Plan};
use settings::{Resolved, SettingsFile};
use state::State;

/// The marker kept in tls/ beside a certificate from us: it moves with the pair in the
/// same swap, so another certs:add makes the app no longer "active" by itself.
pub const MARKER: &str = "letsencrypt.json";

/// Environment variable naming a PEM root to trust for the ACME server's own HTTPS.
pub const CA_CERTIFICATES_ENV: &str = "DOKKU_LETSENCRYPT_CA_CERTIFICATES";

/// Environment variable: seconds one HTTP request to the CA may take (default 30).
pub const HTTP_TIMEOUT_ENV: &str = "DOKKU_LETSENCRYPT_HTTP_TIMEOUT";
/// Environment variable: seconds one whole order may take, account to certificate (default 300).
pub const ORDER_TIMEOUT_ENV: &str = "DOKKU_LETSENCRYPT_ORDER_TIMEOUT";

/// How long to wait for nginx to serve a challenge after its reload.
const SELF_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The time limits of an ACME exchange: a CA that stops answering costs at most `order`,
/// and each request at most `request`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One HTTP request, connect to last byte of the body.
    pub request: Duration,
    /// One order (or revocation), from opening the account to the certificate.
    pub order: Duration,
}

impl Limits {
    /// The limits from DOKKU_LETSENCRYPT_HTTP_TIMEOUT and DOKKU_LETSENCRYPT_ORDER_TIMEOUT.
    pub fn from_env() -> Result<Limits> {
        let order = seconds_from_env(ORDER_TIMEOUT_ENV, 300)?;
        let request = seconds_from_env(HTTP_TIMEOUT_ENV, 30)?;
        Ok(Limits { request, order })
    }
}

fn seconds_from_env(name: &'static str, default: u64) -> Result<Duration> {
    let Some(value) = std::env::var_os(name) else { return Ok(Duration::from_secs(default)) };
    match value.to_str().and_then(|v| v.parse::<u64>().ok()) {
        Some(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
        _ => Err(Error::BadSetting {
            name,
            value: value.to_string_lossy().into_owned(),
            why: "a whole number of seconds above 0 is expected",
        }),
    }
}

/// Runs `exchange` on a fresh runtime, giving up after `limits.order`: a CA that stalls
/// fails this app's command instead of holding it (and every app after it) forever.
fn within_deadline<T>(limits: Limits, exchange: impl Future<Output = Result<T>>) -> Result<T> {
    runtime()?.block_on(async {
        tokio::time::timeout(limits.order, exchange).await.unwrap_or_else(|_| {
            Err(Error::Acme(format!(
                "the CA did not complete the exchange within {} s ({ORDER_TIMEOUT_ENV})",
                limits.order.as_secs()
            )))
        })
    })
}

/// A single-threaded runtime: one command drives one ACME exchange at a time.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Acme(format!("cannot start the ACME client: {e}")))
}

/// The ACME client's HTTPS, every request limited to `limits.request`: the system's roots,
/// or only DOKKU_LETSENCRYPT_CA_CERTIFICATES.
fn account_builder(limits: Limits) -> Result<instant_acme::AccountBuilder> {
    let roots = std::env::var_os(CA_CERTIFICATES_ENV).map(std::path::PathBuf::from);
    let client = http::client(roots.as_deref(), limits.request)?;
    Ok(Account::builder_with_http(Box::new(client)))
}

/// Short polls with backoff: a CA that validates at once is not made to wait seconds.
fn retry_policy() -> RetryPolicy {
    RetryPolicy::new().initial_delay(Duration::from_millis(25)).backoff(1.5).timeout(Duration::from_secs(90))
}

/// What the marker records.
#[derive(Debug, Clone)]
pub struct Marker {
    /// The ACME directory the certificate came from.
    pub server: String,
    /// The account's email.
    pub email: String,
    /// The names ordered, as VHOST had them.
    pub domains: Vec<String>,
    /// The profile the order named, if any.
    pub profile: Option<String>,
    /// The key type, as [`settings::Resolved::key_type`] prints it (`EcdsaP256`...).
    pub key_type: Option<String>,
    /// `http-01` or `dns-01/<provider>`.
    pub challenge: Option<String>,
}

/// Reads the app's marker: `Some` iff the installed certificate is one we obtained.
pub fn marker(app: &App) -> Option<Marker> {
    if !app.has_cert() {
        return None;
    }
    let bytes = app.read_tls_file(MARKER).ok()??;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let text = |key: &str| value[key].as_str().map(str::to_string);
    let domains =
        value["domains"].as_array().map(|d| d.iter().filter_map(|v| v.as_str().map(str::to_string)).collect());
    Some(Marker {
        server: text("server")?,
        email: text("email")?,
        domains: domains.unwrap_or_default(),
        profile: text("profile"),
        key_type: text("key-type"),
        challenge: text("challenge"),
    })
}

/// How the names are validated with these settings: `http-01`, or `dns-01/<provider>`.
fn challenge_kind(resolved: &Resolved) -> String {
    resolved.dns_provider.as_deref().map_or_else(|| "http-01".to_string(), |p| format!("dns-01/{p}"))
}

/// Seconds until the app's certificate from us expires; an unreadable one counts as long
/// expired, so that it is renewed first.
pub fn time_left(app: &App) -> i64 {
    issued_leaf(app).map_or(i64::MIN, |leaf| leaf.not_after - now())
}

/// Formats a duration in seconds as dokku-letsencrypt does: `89d, 23h, 59m, 59s`.
pub fn format_span(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    format!("{sign}{}d, {}h, {}m, {}s", s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60)
}

/// Gets a certificate for every domain in the app's VHOST and installs it like certs:add.
/// `progress` is told each step. The app's lock is held throughout.
pub fn issue(
    settings: &Settings,
    app: &App,
    resolved: &Resolved,
    progress: &dyn Fn(&str),
    reporter: &dyn Reporter,
) -> Result<Installed> {
    let _lock = store::lock(app)?;
    issue_recorded(settings, app, resolved, None, false, progress, reporter)
}

/// What [`enable`] did.
#[derive(Debug)]
pub enum Enabled {
    /// A new certificate is installed.
    Issued(Installed),
    /// Nothing changed since the installed certificate was ordered and it is not due: the
    /// CA was not contacted. The text says until when.
    Unchanged(String),
}

/// letsencrypt:enable: orders only if the names, profile, key type, server or challenge
/// changed since the installed certificate, or its renewal is due; `force` always orders.
pub fn enable(
    settings: &Settings,
    app: &App,
    resolved: &Resolved,
    force: bool,
    progress: &dyn Fn(&str),
    reporter: &dyn Reporter,
) -> Result<Enabled> {
    let _lock = store::lock(app)?;
    if !force && let Some(why) = unchanged(settings, app, resolved)? {
        // A challenge file a killed run left goes, ordering or not.
        challenge::remove_leftover(app);
        return Ok(Enabled::Unchanged(why));
    }
    issue_recorded(settings, app, resolved, None, false, progress, reporter).map(Enabled::Issued)
}

/// `Some(why)` if the installed certificate from us matches these settings and is not due.
fn unchanged(settings: &Settings, app: &App, resolved: &Resolved) -> Result<Option<String>> {
    let (Some(marker), Some(leaf)) = (marker(app), issued_leaf(app)) else { return Ok(None) };
    let mut wanted = app.domains()?;
    let mut had = marker.domains.clone();
    wanted.sort();
    had.sort();
    let same = wanted == had
        && marker.server == resolved.server
        && marker.profile == resolved.profile
        && marker.key_type.as_deref() == Some(format!("{:?}", resolved.key_type).as_str())
        && marker.challenge.as_deref() == Some(challenge_kind(resolved).as_str());
    let plan = planned_offline(settings, app, resolved, &leaf);
    Ok((same && !plan.is_due(now())).then(|| {
        format!("the certificate matches the settings; its renewal is due in {}", format_span(plan.due_at - now()))
    }))
}

/// What [`renew`] found, decided under the app's lock.
#[derive(Debug)]
pub enum Renewal {
    /// A new certificate is installed.
    Renewed(Installed),
    /// Not due: seconds left before expiry, and the plan.
    NotDue(i64, Plan),
    /// Earlier renewals failed: the next attempt waits this many seconds (failures in a row).
    BackingOff(i64, u32),
    /// The app's certificate is not (or no longer) one from us: left alone.
    NotOurs,
}

/// Renews the app's certificate if it is ours and due (see [`plan_renewal`]). Both are
/// decided under the app's lock, so a certs:add that lands first is never overwritten.
/// After failures, no attempt is made before the backoff allows it.
pub fn renew(
    settings: &Settings,
    app: &App,
    resolved: &Resolved,
    progress: &dyn Fn(&str),
    reporter: &dyn Reporter,
) -> Result<Renewal> {
    let _lock = store::lock(app)?;
    let Some(marker) = marker(app) else { return Ok(Renewal::NotOurs) };
    let mut state = state::load(settings, &app.name);
    if let Some(wait) = state.backing_off(now()) {
        return Ok(Renewal::BackingOff(wait, state.failures));
    }
    let left = time_left(app);
    let (plan, replaces) = match issued_leaf(app) {
        Some(leaf) => plan_renewal(settings, &marker, resolved, &leaf, &mut state, progress),
        // Ours but unreadable: due now.
        None => (Plan { due_at: i64::MIN, basis: Basis::ThirdOfLifetime }, None),
    };
    if !plan.is_due(now()) {
        // The cached ARI answer is kept for the next run.
        let _ = state::save(settings, &app.name, &state);
        return Ok(Renewal::NotDue(left, plan));
    }
    progress(&format!("{}: renewing (expires in {}; {})", app.name, format_span(left), describe_plan(&plan)));
    issue_recorded(settings, app, resolved, replaces, true, progress, reporter).map(Renewal::Renewed)
}

/// Says what a plan is based on, for the user.
pub fn describe_plan(plan: &Plan) -> String {
    let at = crate::cert::format_openssl_date(plan.due_at.max(0));
    match plan.basis {
        Basis::GracePeriod(grace) => format!("graceperiod {grace} s: due {at}"),
        Basis::Ari(window) => format!(
            "ARI window {} to {}: due {at}",
            crate::cert::format_openssl_date(window.start),
            crate::cert::format_openssl_date(window.end)
        ),
        Basis::ThirdOfLifetime => format!("a third of the lifetime left: due {at}"),
    }
}

/// When the certificate is due: an explicit graceperiod wins; else the CA's ARI window,
/// asked at most once per its Retry-After (the answer is kept in the app's state); else
/// when a third of the lifetime is left. With ARI, the certificate's id is returned for
/// the new order's `replaces`.
fn plan_renewal(
    settings: &Settings,
    marker: &Marker,
    resolved: &Resolved,
    leaf: &Certificate,
    state: &mut State,
    progress: &dyn Fn(&str),
) -> (Plan, Option<CertificateIdentifier<'static>>) {
    let lifetime = Lifetime { not_before: leaf.not_before, not_after: leaf.not_after };
    let id = ari::certificate_id(leaf.der());
    let seed = schedule::seed(leaf.der());
    if resolved.grace_period.is_some() {
        return (schedule::plan(lifetime, resolved.grace_period, None, seed), id);
    }
    let Some(id) = id else { return (schedule::plan(lifetime, None, None, seed), None) };
    let key = id.to_string();
    let window = match state.cached_window(&key, now()) {
        Some(window) => Some(window),
        None => match ask_renewal_info(settings, marker, &id) {
            Ok(Some(answer)) => {
                state.ari_certificate = Some(key);
                state.ari_window = Some(answer.window);
                state.ari_next_check = Some(now() + answer.retry_after.as_secs() as i64);
                Some(answer.window)
            }
            Ok(None) => None,
            Err(error) => {
                progress(&format!(
                    "The CA's renewal information is unavailable ({error}); using a third of the lifetime"
                ));
                None
            }
        },
    };
    let replaces = window.is_some().then_some(id);
    (schedule::plan(lifetime, None, window, seed), replaces)
}

/// The CA's ARI answer for the certificate, with the account that obtained it.
fn ask_renewal_info(
    settings: &Settings,
    marker: &Marker,
    id: &CertificateIdentifier<'_>,
) -> Result<Option<ari::Answer>> {
    let limits = Limits::from_env()?;
    let store = SettingsFile::new(settings);
    let path = store.account_path(&marker.email, &marker.server);
    within_deadline(limits, async {
        let account = open_account(&store, &path, limits).await?;
        ari::renewal_window(&account, id).await.map_err(Error::Acme)
    })
}

/// The plan from what is on disk only (graceperiod, the cached ARI window, the lifetime),
/// for letsencrypt:list and an unchanged enable: no request to the CA.
pub fn planned_offline(settings: &Settings, app: &App, resolved: &Resolved, leaf: &Certificate) -> Plan {
    let lifetime = Lifetime { not_before: leaf.not_before, not_after: leaf.not_after };
    let state = state::load(settings, &app.name);
    let id = ari::certificate_id(leaf.der()).map(|id| id.to_string());
    let window = state.ari_window.filter(|_| id.is_some() && state.ari_certificate == id);
    schedule::plan(lifetime, resolved.grace_period, window, schedule::seed(leaf.der()))
}

/// [`issue_locked`], its outcome recorded in the app's renewal state: a success ends the
/// backoff; a failure extends it if `renewal` (a failed enable is the user's to see and
/// does not hold back the next renewal).
fn issue_recorded(
    settings: &Settings,
    app: &App,
    resolved: &Resolved,
    replaces: Option<CertificateIdentifier<'static>>,
    renewal: bool,
    progress: &dyn Fn(&str),
    reporter: &dyn Reporter,
) -> Result<Installed> {
    let result = issue_locked(settings, app, resolved, replaces, progress, reporter);
    let mut state = state::load(settings, &app.name);
    match &result {
        Ok(_) => state.succeeded(now()),
        Err(error) if renewal => state.failed(&app.name, now(), &error.to_string()),
        Err(_) => return result,
    }
    if let Err(error) = state::save(settings, &app.name, &state) {
        progress(&format!("Warning: cannot record the renewal state: {error}"));
    }
    result
}

/// Removes the app's certificate if it is ours, deciding under the app's lock: a
/// certificate that certs:add installed meanwhile is never removed.
pub fn disable(settings: &Settings, app: &App, reporter: &dyn Reporter) -> Result<Applied> {
    let _lock = store::lock(app)?;
    if marker(app).is_none() {
        return Err(Error::NotLetsEncrypt(app.name.clone()));
    }
    // A challenge file left by a killed enable goes too.
    challenge::remove_leftover(app);
    endpoint::remove_locked(settings, app, reporter)
}

/// [`issue`] for a caller that holds the app's lock.
fn issue_locked(
    settings: &Settings,
    app: &App,
    resolved: &Resolved,
    replaces: Option<CertificateIdentifier<'static>>,
    progress: &dyn Fn(&str),
    reporter: &dyn Reporter,
) -> Result<Installed> {
    let email = resolved.email.clone().ok_or_else(|| {
        Error::Usage(format!(
            "no email set for Let's Encrypt; run: dokku-certs letsencrypt:set {} email you@example.com (or --global)",
            app.name
        ))
    })?;
    let limits = Limits::from_env()?;
    let domains = app.domains()?;
    if domains.is_empty() {
        return Err(Error::Usage(format!("{} has no domains in VHOST; add one before letsencrypt:enable", app.name)));
    }
    let provider = Provider::from_settings(resolved.dns_provider.as_deref(), &resolved.dns_values)
        .map_err(|why| Error::Usage(format!("{why}; see letsencrypt:report {}", app.name)))?;
    if provider.is_none()
        && let Some(wildcard) = domains.iter().find(|d| d.starts_with("*."))
    {
        return Err(Error::Usage(format!(
            "{wildcard} is a wildcard domain: HTTP-01 cannot validate it; set a dns-provider (letsencrypt:set {} dns-provider rfc2136) or remove it from VHOST",
            app.name
        )));
    }
    // A challenge file left by a killed run is stale: it goes before anything else.
    challenge::remove_leftover(app);
    ensure_nginx_conf(settings, app)?;
    nginx_preflight(settings)?;
    let key = generate_key(resolved.key_type)?;
    let csr = csr_der(&domains, &key)?;
    let mut challenge_file = ChallengeFile::new(app)?;
    let published = RefCell::new(Vec::new());
    let request = OrderRequest {
        resolved,
        limits,
        email: &email,
        domains: &domains,
        csr: &csr,
        replaces,
        provider: provider.as_ref(),
        published: &published,
    };
    let result = within_deadline(limits, order_certificate(settings, &request, &mut challenge_file, progress));
    challenge_file.remove();
    // The TXT records go whatever happened, a deadline included (the order's future is gone).
    if let Some(provider) = &provider {
        remove_records(provider, &published.into_inner(), progress);
    }
    let chain_pem = match result {
        Ok(chain_pem) => chain_pem,
        Err(error) => {
            // nginx must forget the challenge location too.
            let _ = crate::dokku::reload_app_proxy(settings, app);
            return Err(error);
        }
    };
    progress("Certificate retrieved successfully.");
    let sources = [
        Source { name: "the certificate from the CA".into(), bytes: chain_pem.into_bytes() },
        Source { name: "the new key".into(), bytes: key.serialize_pem().into_bytes() },
    ];
    let bundle = assemble(&sources, Origin::Files)?;
    let marker = serde_json::json!({
        "server": resolved.server,
        "email": email,
        "domains": domains,
        "issued-at": now(),
        "profile": resolved.profile,
        "key-type": format!("{:?}", resolved.key_type),
        "challenge": challenge_kind(resolved),
    });
    progress(&format!("Installing the certificate for {}", domains.join(", ")));
    endpoint::install_locked(settings, app, &bundle, vec![(MARKER, marker.to_string() + "\n")], reporter)
}

/// An app that never had a certs command has no nginx.conf: render it so that nginx
/// serves the app (and so the challenge) over plain HTTP.
fn ensure_nginx_conf(settings: &Settings, app: &App) -> Result<()> {
    if app.handle().kind("nginx.conf")?.is_some() {
        return Ok(());
    }
    let change = Change { tls: TlsChange::Keep, vhost: None, domains: app.domains()?, listeners: app.listeners()? };
    // Its warnings were never shown here: only whether nginx runs matters.
    let applied = store::apply(settings, app, &change, &crate::event::Quiet)?;
    applied.reload.map_err(|why| Error::Acme(format!("nginx must be running to answer the challenge ({why})")))
}

/// nginx must pass `nginx -t` and listen on the HTTP port before an order is placed: an
/// order that cannot be answered stays behind at the CA as an abandoned authorization
/// (under cron without /usr/sbin in PATH, every renewal did exactly that).
fn nginx_preflight(settings: &Settings) -> Result<()> {
    nginx::test(settings).map_err(|error| match error {
        Error::NginxTest(why) => Error::Acme(format!("nginx -t fails, so no certificate was ordered: {why}")),
        other => other,
    })?;
    // Right after the reload that gave the app its first nginx.conf, the master opens the
    // port a moment later: wait for it as the self-check waits for the challenge.
    let address = std::net::SocketAddr::new(challenge::local_address(settings.bind), settings.http_port);
    let deadline = std::time::Instant::now() + SELF_CHECK_TIMEOUT;
    loop {
        match std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(Error::Acme(format!(
                    "nginx does not listen on {address} ({e}), so no certificate was ordered; start nginx, then run this again"
                )));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn csr_der(domains: &[String], key: &rcgen::KeyPair) -> Result<Vec<u8>> {
    let failed = |e: rcgen::Error| Error::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(domains.to_vec()).map_err(failed)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, domains[0].as_str());
    Ok(params.serialize_request(key).map_err(failed)?.der().to_vec())
}

/// Opens the account kept in `path`.
async fn open_account(store: &SettingsFile, path: &std::path::Path, limits: Limits) -> Result<Account> {
    let bytes = store
        .read_account(path)?
        .ok_or_else(|| Error::Read { path: path.into(), source: std::io::ErrorKind::NotFound.into() })?;
    let credentials: AccountCredentials =
        serde_json::from_slice(&bytes).map_err(|e| Error::BadLetsEncryptFile(path.into(), e.to_string()))?;
    account_builder(limits)?.from_credentials(credentials).await.map_err(|e| acme_error("cannot reach the CA", &e))
}

/// The account for this email and server: created once, then reused from its 0600 file.
async fn account(
    settings: &Settings,
    resolved: &Resolved,
    limits: Limits,
    email: &str,
    progress: &dyn Fn(&str),
) -> Result<Account> {
    let store = SettingsFile::new(settings);
    let path = store.account_path(email, &resolved.server);
    if store.read_account(&path)?.is_some() {
        let account = open_account(&store, &path, limits).await?;
        progress(&format!("Using the account of {email} on {}", resolved.server));
        return Ok(account);
    }
    let contact = format!("mailto:{email}");
    let new_account = NewAccount { contact: &[&contact], terms_of_service_agreed: true, only_return_existing: false };
    let eab = external_account(resolved)?;
    let (account, credentials) = account_builder(limits)?
        .create(&new_account, resolved.server.clone(), eab.as_ref())
        .await
        .map_err(|e| acme_error("cannot create the account", &e))?;
    let text = serde_json::to_string(&credentials).expect("credentials serialize");
    store.write_account(&path, text.as_bytes())?;
    progress(&format!("Created an account for {email} on {}", resolved.server));
    Ok(account)
}

/// The external account binding set with eab-kid and eab-hmac-key, if any.
fn external_account(resolved: &Resolved) -> Result<Option<ExternalAccountKey>> {
    use base64::Engine;
    let Some((kid, key)) = &resolved.eab else { return Ok(None) };
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key)
        .map_err(|_| Error::Usage("eab-hmac-key is not base64url; set it again as the CA gave it".into()))?;
    Ok(Some(ExternalAccountKey::new(kid.clone(), &key)))
}

/// What one order asks the CA for, and with which account and limits.
struct OrderRequest<'a> {
    resolved: &'a Resolved,
    limits: Limits,
    email: &'a str,
    domains: &'a [String],
    csr: &'a [u8],
    /// The certificate this one replaces (ARI).
    replaces: Option<CertificateIdentifier<'static>>,
    /// With a provider, every name is validated over DNS-01.
    provider: Option<&'a Provider>,
    /// TXT records published so far: the caller removes them, whatever happens.
    published: &'a RefCell<Vec<Txt>>,
}

/// Removes the TXT records; a record that cannot be removed is a warning, not a failure.
fn remove_records(provider: &Provider, records: &[Txt], progress: &dyn Fn(&str)) {
    if records.is_empty() {
        return;
    }
    for txt in records {
        if let Err(why) = provider.cleanup(txt) {
            progress(&format!("Warning: the TXT record {} could not be removed: {why}", txt.fqdn));
        }
    }
    progress(&format!("Removed {} DNS-01 TXT record(s)", records.len()));
}

/// The profile named in the settings, checked against the directory's `meta.profiles`
/// before any order: a typo is the user's to fix, not an order the CA refuses.
fn check_profile(account: &Account, resolved: &Resolved) -> Result<()> {
    let Some(profile) = &resolved.profile else { return Ok(()) };
    let mut offered: Vec<&str> = account.profiles().map(|p| p.name).collect();
    offered.sort_unstable();
    if offered.contains(&profile.as_str()) {
        return Ok(());
    }
    let offers = if offered.is_empty() { "no profiles".to_string() } else { offered.join(", ") };
    Err(Error::Usage(format!(
        "profile {profile:?} is not offered by {}; it offers: {offers} (letsencrypt:set ... profile NAME)",
        resolved.server
    )))
}

/// Places the order; a `replaces` the CA answers with alreadyReplaced (the old certificate
/// was replaced already, e.g. it came back from a backup) is ordered again without it.
async fn place_order(
    account: &Account,
    request: &OrderRequest<'_>,
    progress: &dyn Fn(&str),
) -> Result<instant_acme::Order> {
    let identifiers: Vec<Identifier> = request.domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
    let new_order = || {
        let order = NewOrder::new(&identifiers);
        match &request.resolved.profile {
            Some(profile) => order.profile(profile),
            None => order,
        }
    };
    let mut details: Vec<String> = request.resolved.profile.iter().map(|p| format!("profile {p}")).collect();
    let result = match &request.replaces {
        Some(id) => {
            let first = account.new_order(&new_order().replaces(id.clone())).await;
            match first {
                Err(instant_acme::Error::Api(problem))
                    if problem.r#type.as_deref().is_some_and(|t| t.ends_with(":alreadyReplaced")) =>
                {
                    progress(&format!(
                        "The CA refused to replace {id} ({}); ordering without replaces",
                        describe_problem(&problem)
                    ));
                    account.new_order(&new_order()).await
                }
                // A CA without ARI (Debian's Pebble 2.4): a plain order.
                Err(instant_acme::Error::Unsupported(_)) => account.new_order(&new_order()).await,
                other => {
                    details.push(format!("replaces {id}"));
                    other
                }
            }
        }
        None => account.new_order(&new_order()).await,
    };
    let order = result.map_err(|e| acme_error("cannot place the order", &e))?;
    let details = if details.is_empty() { String::new() } else { format!(" ({})", details.join(", ")) };
    progress(&format!("Ordered a certificate for {}{details}", request.domains.join(", ")));
    Ok(order)
}

/// Publishes the DNS-01 TXT record of every pending authorization, waits until the
/// authoritative server answers them, then asks the CA to validate.
async fn answer_over_dns(
    order: &mut instant_acme::Order,
    provider: &Provider,
    published: &RefCell<Vec<Txt>>,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let records = pending_challenges(order, ChallengeType::Dns01, |domain, challenge| {
        Txt::for_domain(&domain, challenge.key_authorization().dns_value())
    })
    .await?;
    if records.is_empty() {
        return Ok(());
    }
    for txt in &records {
        provider
            .present(txt)
            .map_err(|why| Error::Acme(format!("cannot publish the TXT record {}: {why}", txt.fqdn)))?;
        published.borrow_mut().push(txt.clone());
    }
    progress(&format!("Published {} DNS-01 TXT record(s); waiting until the name server answers them", records.len()));
    provider.wait_propagated(&records).map_err(Error::Acme)?;
    mark_ready(order, ChallengeType::Dns01).await
}

async fn order_certificate(
    settings: &Settings,
    request: &OrderRequest<'_>,
    challenge_file: &mut ChallengeFile<'_>,
    progress: &dyn Fn(&str),
) -> Result<String> {
    let OrderRequest { resolved, limits, email, csr, .. } = *request;
    let account = account(settings, resolved, limits, email, progress).await?;
    check_profile(&account, resolved)?;
    let mut order = place_order(&account, request, progress).await?;

    if let Some(provider) = request.provider {
        answer_over_dns(&mut order, provider, request.published, progress).await?;
    } else if let answers = pending_answers(&mut order, &account).await?
        && !answers.is_empty()
    {
        challenge_file.write(&answers)?;
        crate::dokku::reload_app_proxy(settings, challenge_file.app())?;
        progress("Answering the HTTP-01 challenges from nginx.conf.d/letsencrypt.conf");
        challenge::wait_until_served(settings, &answers, SELF_CHECK_TIMEOUT)?;
        mark_ready(&mut order, ChallengeType::Http01).await?;
    }
    let status = order.poll_ready(&retry_policy()).await;
    report_authorizations(&mut order, progress).await;
    if !matches!(status, Ok(OrderStatus::Ready)) {
        // An invalid order comes back as Ok(Invalid) or as the CA's problem: either way the
        // authorizations say which domain failed and why.
        let problems = order_problems(&mut order).await;
        return Err(match (problems, status) {
            (Some(problems), _) => Error::Acme(format!("the CA did not validate the order: {problems}")),
            (None, Err(e)) => acme_error("cannot follow the order", &e),
            (None, Ok(status)) => Error::Acme(format!("the order ended {status:?}")),
        });
    }
    progress("Finalizing the order");
    order.finalize_csr(csr).await.map_err(|e| acme_error("the CA refused the certificate request", &e))?;
    order.poll_certificate(&retry_policy()).await.map_err(|e| acme_error("cannot download the certificate", &e))
}

/// The HTTP-01 answer of every authorization still pending.
async fn pending_answers(order: &mut instant_acme::Order, account: &Account) -> Result<Vec<Answer>> {
    let thumbprint = account.key_thumbprint().to_string();
    pending_challenges(order, ChallengeType::Http01, |domain, challenge| {
        let token = challenge.token.clone();
        Answer { domain, key_authorization: format!("{token}.{thumbprint}"), token }
    })
    .await
}

/// `answer(domain, challenge)` for the challenge of `kind` of every pending authorization;
/// an authorization without that kind fails the order (the CA's other types are skipped).
async fn pending_challenges<T>(
    order: &mut instant_acme::Order,
    kind: ChallengeType,
    answer: impl Fn(String, &instant_acme::ChallengeHandle<'_>) -> T,
) -> Result<Vec<T>> {
    let mut answers = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| acme_error("cannot read an authorization", &e))?;
        if authorization.status != AuthorizationStatus::Pending {
            continue;
        }
        let domain = authorization.identifier().to_string();
        let challenge = authorization.challenge(kind.clone()).ok_or_else(|| {
            Error::Acme(format!("the CA offers no {} challenge for {domain}", challenge_label(&kind)))
        })?;
        answers.push(answer(domain, &challenge));
    }
    Ok(answers)
}

async fn mark_ready(order: &mut instant_acme::Order, kind: ChallengeType) -> Result<()> {
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| acme_error("cannot read an authorization", &e))?;
        if authorization.status != AuthorizationStatus::Pending {
            continue;
        }
        if let Some(mut challenge) = authorization.challenge(kind.clone()) {
            challenge.set_ready().await.map_err(|e| acme_error("cannot start the validation", &e))?;
        }
    }
    Ok(())
}

/// One progress line per authorization: its domain and status.
async fn report_authorizations(order: &mut instant_acme::Order, progress: &dyn Fn(&str)) {
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        let status = format!("{:?}", authorization.status).to_lowercase();
        progress(&format!("Authorization for {}: {status}", authorization.identifier()));
    }
}

/// The CA's problem documents for the failed challenges: domain, type and detail.
async fn order_problems(order: &mut instant_acme::Order) -> Option<String> {
    let mut problems = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        let domain = authorization.identifier().to_string();
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                problems.push(format!("{domain}: {}", describe_problem(problem)));
            }
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn describe_problem(problem: &instant_acme::Problem) -> String {
    let kind = problem.r#type.as_deref().unwrap_or("unknown").trim_start_matches("urn:ietf:params:acme:error:");
    format!("{kind}: {}", problem.detail.as_deref().unwrap_or("no detail"))
}

fn acme_error(doing: &str, error: &instant_acme::Error) -> Error {
    match error {
        instant_acme::Error::Api(problem) => Error::Acme(format!("{doing}: {}", describe_problem(problem))),
        other => Error::Acme(format!("{doing}: {other}")),
    }
}

/// Revokes the app's certificate with the account that obtained it.
pub fn revoke(settings: &Settings, app: &App) -> Result<()> {
    let marker = marker(app).ok_or_else(|| Error::NotLetsEncrypt(app.name.clone()))?;
    let store = SettingsFile::new(settings);
    let path = store.account_path(&marker.email, &marker.server);
    let chain = endpoint::installed_chain(app)?.ok_or_else(|| Error::NotLetsEncrypt(app.name.clone()))?;
    let leaf = rustls_pki_types::CertificateDer::from(chain[0].der());
    let limits = Limits::from_env()?;
    within_deadline(limits, async {
        let account = open_account(&store, &path, limits).await?;
        let request = instant_acme::RevocationRequest { certificate: &leaf, reason: None };
        account.revoke(&request).await.map_err(|e| acme_error("the CA refused to revoke", &e))
    })
}

/// The server certificate of an app whose certificate came from us; `None` otherwise.
pub fn issued_leaf(app: &App) -> Option<Certificate> {
    marker(app)?;
    endpoint::installed_chain(app).ok().flatten().map(|mut chain| chain.swap_remove(0))
}

/// A challenge type as RFC 8555 names it.
fn challenge_label(kind: &ChallengeType) -> &'static str {
    match kind {
        ChallengeType::Http01 => "HTTP-01",
        ChallengeType::Dns01 => "DNS-01",
        _ => "requested",
    }
}
