//! Let's Encrypt built in: RFC 8555 through instant-acme, HTTP-01 answered by nginx itself
//! from the app's nginx.conf.d/, the result installed exactly like certs:add.

pub mod ari;
pub mod batch;
pub mod challenge;
pub mod dns;
pub mod error;
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
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType,
    ExternalAccountKey, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};

use crate::app::{App, Env};
use crate::bundle::{Origin, Source, assemble};
use crate::cert::Certificate;
use crate::endpoint::{self, Installed, generate_key};
use crate::error::{Error, Result};
use crate::event::{Event, Reporter};
use crate::transaction::{self, Applied};
use crate::util::now;
use batch::{Outcome, Pending, StagedIssue};
use challenge::{Answer, Responder};
use dns::{Provider, Txt};
pub use error::{AcmeError, Problem};
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
    let Some(value) = std::env::var_os(name) else {
        return Ok(Duration::from_secs(default));
    };
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
        tokio::time::timeout(limits.order, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(AcmeError::Deadline {
                    seconds: limits.order.as_secs(),
                }
                .into())
            })
    })
}

/// A single-threaded runtime: one command drives one ACME exchange at a time.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AcmeError::Local(format!("cannot start the ACME client: {e}")).into())
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
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(25))
        .backoff(1.5)
        .timeout(Duration::from_secs(90))
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
    let domains = value["domains"].as_array().map(|d| {
        d.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    });
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
    resolved
        .dns_provider
        .as_deref()
        .map_or_else(|| "http-01".to_string(), |p| format!("dns-01/{p}"))
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
    format!(
        "{sign}{}d, {}h, {}m, {}s",
        s / 86_400,
        s % 86_400 / 3_600,
        s % 3_600 / 60,
        s % 60
    )
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

/// letsencrypt:enable for each of `apps`: orders only if the names, profile, key type,
/// server or challenge changed since the installed certificate, or its renewal is due;
/// `force` always orders. A few orders run at once; every new certificate is served after
/// one nginx reload (see [`batch`]). Each app's settings are resolved from settings.json.
/// Then each app issued or failed is told to the listeners ([`notify::tell`]).
pub fn enable(
    env: &Env,
    apps: &[App],
    force: bool,
    report: &dyn Reporter,
) -> Vec<Outcome<Enabled>> {
    let outcomes = batch::run(env, apps, batch::PARALLEL_ORDERS, report, |app, report| {
        let resolved = SettingsFile::new(env).resolve(&app.name)?;
        let lock = transaction::lock(app)?;
        if !force && let Some(why) = unchanged(env, app, &resolved)? {
            // A challenge file a killed run left goes, ordering or not.
            challenge::remove_leftover(app);
            return Ok(Pending::Done(Enabled::Unchanged(why)));
        }
        let StagedPair {
            staged,
            hostnames,
            warnings,
        } = stage_issue(env, app, &resolved, None, report)?;
        let finish = Box::new(|installed: Result<Installed>, _: &dyn Reporter| {
            installed.map(Enabled::Issued)
        });
        Ok(Pending::Staged(StagedIssue {
            lock,
            staged,
            hostnames,
            warnings,
            finish,
        }))
    });
    tell_listeners(
        env,
        apps,
        outcomes,
        |enabled| matches!(enabled, Enabled::Issued(_)),
        report,
    )
}

/// Tells the notify-command and dokku's trigger (see [`notify::tell`]) of every app that
/// got a new certificate (`issued`) or failed; an app left as it was is not told. Their
/// failures are warnings: each outcome stands.
fn tell_listeners<T>(
    env: &Env,
    apps: &[App],
    mut outcomes: Vec<Outcome<T>>,
    issued: impl Fn(&T) -> bool,
    report: &dyn Reporter,
) -> Vec<Outcome<T>> {
    for (app, outcome) in apps.iter().zip(&mut outcomes) {
        let (event, error) = match &outcome.result {
            Ok(answer) if issued(answer) => (notify::Event::Renewed, String::new()),
            Ok(_) => continue,
            Err(error) => (notify::Event::Failed, error.to_string()),
        };
        outcome.listeners = notify::tell(env, app, event, &error, report);
    }
    outcomes
}

/// `Some(why)` if the installed certificate from us matches these settings, is not due and
/// was not revoked.
fn unchanged(env: &Env, app: &App, resolved: &Resolved) -> Result<Option<String>> {
    let (Some(marker), Some(leaf)) = (marker(app), issued_leaf(app)) else {
        return Ok(None);
    };
    if state::load(env, &app.name).is_revoked(leaf.der()) {
        return Ok(None);
    }
    let mut wanted = app.domains()?;
    let mut had = marker.domains.clone();
    wanted.sort();
    had.sort();
    let same = wanted == had
        && marker.server == resolved.server
        && marker.profile == resolved.profile
        && marker.key_type.as_deref() == Some(format!("{:?}", resolved.key_type).as_str())
        && marker.challenge.as_deref() == Some(challenge_kind(resolved).as_str());
    let plan = planned_offline(env, app, resolved, &leaf);
    Ok((same && !plan.is_due(now())).then(|| {
        format!(
            "the certificate matches the settings; its renewal is due in {}",
            format_span(plan.due_at - now())
        )
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

/// The apps auto-renew looks at: `only`, or every app with a certificate from us, the
/// least time left first (read without the locks, only to order them: [`renew`] decides
/// under each app's lock).
pub fn renewal_candidates(env: &Env, only: Option<&str>) -> Result<Vec<App>> {
    let apps = match only {
        Some(name) => return Ok(vec![App::open(env, name)?]),
        None => crate::app::open_all(env)?,
    };
    let mut candidates: Vec<(i64, App)> = apps
        .into_iter()
        .filter(|app| marker(app).is_some())
        .map(|app| (time_left(&app), app))
        .collect();
    candidates.sort_by_key(|(left, _)| *left);
    Ok(candidates.into_iter().map(|(_, app)| app).collect())
}

/// letsencrypt:auto-renew: [`renew`] for the [`renewal_candidates`], most urgent first.
pub fn auto_renew(
    env: &Env,
    only: Option<&str>,
    report: &dyn Reporter,
) -> Result<Vec<Outcome<Renewal>>> {
    let apps = renewal_candidates(env, only)?;
    Ok(renew(env, &apps, report))
}

/// Renews each app's certificate if it is ours and due (see [`plan_renewal`]). Both are
/// decided under the app's lock, so a certs:add that lands first is never overwritten.
/// After failures, no attempt is made before the backoff allows it; a failure extends the
/// backoff, a success ends it. Due apps are ordered a few at a time and served after one
/// nginx reload (see [`batch`]). Then each app renewed or failed is told to the listeners
/// ([`notify::tell`]).
pub fn renew(env: &Env, apps: &[App], report: &dyn Reporter) -> Vec<Outcome<Renewal>> {
    let outcomes = batch::run(env, apps, batch::PARALLEL_ORDERS, report, |app, report| {
        let resolved = SettingsFile::new(env).resolve(&app.name)?;
        let lock = transaction::lock(app)?;
        let Some(marker) = marker(app) else {
            return Ok(Pending::Done(Renewal::NotOurs));
        };
        let mut state = state::load(env, &app.name);
        if let Some(wait) = state.backing_off(now()) {
            return Ok(Pending::Done(Renewal::BackingOff(wait, state.failures)));
        }
        let leaf = issued_leaf(app);
        let left = leaf
            .as_ref()
            .map_or(i64::MIN, |leaf| leaf.not_after - now());
        let (plan, replaces) = match leaf {
            Some(leaf) if state.is_revoked(leaf.der()) => (
                Plan {
                    due_at: i64::MIN,
                    basis: Basis::Revoked,
                },
                None,
            ),
            Some(leaf) => plan_renewal(env, &marker, &resolved, &leaf, &mut state, report),
            // Ours but unreadable: due now.
            None => (
                Plan {
                    due_at: i64::MIN,
                    basis: Basis::ThirdOfLifetime,
                },
                None,
            ),
        };
        if !plan.is_due(now()) {
            // The cached ARI answer is kept for the next run.
            let _ = state::save(env, &app.name, &state);
            return Ok(Pending::Done(Renewal::NotDue(left, plan)));
        }
        report.report(Event::Step(format!(
            "{}: renewing (expires in {}; {})",
            app.name,
            format_span(left),
            describe_plan(&plan)
        )));
        let staged = stage_issue(env, app, &resolved, replaces, report);
        let StagedPair {
            staged,
            hostnames,
            warnings,
        } = staged.inspect_err(|error| record(env, app, Err(error), report))?;
        let finish = Box::new(move |installed: Result<Installed>, report: &dyn Reporter| {
            record(env, app, installed.as_ref().map(drop), report);
            installed.map(Renewal::Renewed)
        });
        Ok(Pending::Staged(StagedIssue {
            lock,
            staged,
            hostnames,
            warnings,
            finish,
        }))
    });
    tell_listeners(
        env,
        apps,
        outcomes,
        |renewal| matches!(renewal, Renewal::Renewed(_)),
        report,
    )
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
        Basis::Revoked => "the certificate was revoked: due now".into(),
    }
}

/// When the certificate is due: an explicit graceperiod wins; else the CA's ARI window,
/// asked at most once per its Retry-After (the answer is kept in the app's state); else
/// when a third of the lifetime is left. With ARI, the certificate's id is returned for
/// the new order's `replaces`.
fn plan_renewal(
    env: &Env,
    marker: &Marker,
    resolved: &Resolved,
    leaf: &Certificate,
    state: &mut State,
    report: &dyn Reporter,
) -> (Plan, Option<CertificateIdentifier<'static>>) {
    let lifetime = Lifetime {
        not_before: leaf.not_before,
        not_after: leaf.not_after,
    };
    let id = ari::certificate_id(leaf.der());
    let seed = schedule::seed(leaf.der());
    if resolved.grace_period.is_some() {
        return (
            schedule::plan(lifetime, resolved.grace_period, None, seed),
            id,
        );
    }
    let Some(id) = id else {
        return (schedule::plan(lifetime, None, None, seed), None);
    };
    let key = id.to_string();
    let window = match state.cached_window(&key, now()) {
        Some(window) => Some(window),
        None => match ask_renewal_info(env, marker, &id) {
            Ok(Some(answer)) => {
                state.ari_certificate = Some(key);
                state.ari_window = Some(answer.window);
                state.ari_next_check = Some(now() + answer.retry_after.as_secs() as i64);
                Some(answer.window)
            }
            Ok(None) => None,
            Err(error) => {
                report.report(Event::Step(format!(
                    "The CA's renewal information is unavailable ({error}); using a third of the lifetime"
                )));
                None
            }
        },
    };
    let replaces = window.is_some().then_some(id);
    (schedule::plan(lifetime, None, window, seed), replaces)
}

/// The CA's ARI answer for the certificate, with the account that obtained it.
fn ask_renewal_info(
    env: &Env,
    marker: &Marker,
    id: &CertificateIdentifier<'_>,
) -> Result<Option<ari::Answer>> {
    let limits = Limits::from_env()?;
    let store = SettingsFile::new(env);
    let path = store.account_path(&marker.email, &marker.server);
    within_deadline(limits, async {
        let account = open_account(&store, &path, limits).await?;
        ari::renewal_window(&account, id).await.map_err(|why| {
            AcmeError::Unreachable {
                doing: "cannot ask for the renewal window",
                why,
            }
            .into()
        })
    })
}

/// The plan from what is on disk only (graceperiod, the cached ARI window, the lifetime),
/// for letsencrypt:list and an unchanged enable: no request to the CA.
pub fn planned_offline(env: &Env, app: &App, resolved: &Resolved, leaf: &Certificate) -> Plan {
    let lifetime = Lifetime {
        not_before: leaf.not_before,
        not_after: leaf.not_after,
    };
    let state = state::load(env, &app.name);
    let id = ari::certificate_id(leaf.der()).map(|id| id.to_string());
    let window = state
        .ari_window
        .filter(|_| id.is_some() && state.ari_certificate == id);
    schedule::plan(
        lifetime,
        resolved.grace_period,
        window,
        schedule::seed(leaf.der()),
    )
}

/// A renewal's outcome, kept in the app's renewal state: a success ends the backoff, a
/// failure extends it. (A failed enable is the user's to see and holds back no renewal.)
fn record(env: &Env, app: &App, outcome: std::result::Result<(), &Error>, report: &dyn Reporter) {
    let mut state = state::load(env, &app.name);
    match outcome {
        Ok(()) => state.succeeded(now()),
        Err(error) => state.failed(&app.name, now(), &error.to_string()),
    }
    if let Err(error) = state::save(env, &app.name, &state) {
        report.report(Event::Warning(format!(
            "cannot record the renewal state: {error}"
        )));
    }
}

/// Removes the app's certificate if it is ours, deciding under the app's lock: a
/// certificate that certs:add installed meanwhile is never removed.
pub fn disable(env: &Env, app: &App, reporter: &dyn Reporter) -> Result<Applied> {
    let _lock = transaction::lock(app)?;
    if marker(app).is_none() {
        return Err(Error::NotLetsEncrypt(app.name.clone()));
    }
    // A challenge file left by a killed enable goes too.
    challenge::remove_leftover(app);
    endpoint::remove_locked(env, app, reporter)
}

/// A new pair staged and tested, waiting for nginx's reload.
struct StagedPair<'a> {
    staged: transaction::Staged<'a>,
    /// The names the certificate is for.
    hostnames: Vec<String>,
    /// What the user should know about it, reported once it is live.
    warnings: Vec<String>,
}

/// What an order needs, all checked before the CA is contacted.
struct Preflight {
    email: String,
    limits: Limits,
    domains: Vec<String>,
    provider: Option<Provider>,
}

/// The checks that need neither the CA nor nginx: an e-mail, domains in VHOST, a usable
/// DNS provider, no wildcard without one.
fn preflight(app: &App, resolved: &Resolved) -> Result<Preflight> {
    let email = resolved
        .email
        .clone()
        .ok_or_else(|| Error::NoEmail(app.name.clone()))?;
    let limits = Limits::from_env()?;
    let domains = app.domains()?;
    if domains.is_empty() {
        return Err(Error::NoDomains(app.name.clone()));
    }
    let provider = Provider::from_settings(resolved.dns_provider.as_deref(), &resolved.dns_values)
        .map_err(|why| Error::DnsProvider {
            app: app.name.clone(),
            why,
        })?;
    if provider.is_none()
        && let Some(wildcard) = domains.iter().find(|d| d.starts_with("*."))
    {
        return Err(Error::WildcardNeedsDns {
            wildcard: wildcard.clone(),
            app: app.name.clone(),
        });
    }
    Ok(Preflight {
        email,
        limits,
        domains,
        provider,
    })
}

/// For a caller that holds the app's lock: preflight, order, then the new pair staged and
/// tested like certs:add, waiting for nginx's reload ([`batch`] does it, once for all apps).
fn stage_issue<'a>(
    env: &Env,
    app: &'a App,
    resolved: &Resolved,
    replaces: Option<CertificateIdentifier<'static>>,
    report: &dyn Reporter,
) -> Result<StagedPair<'a>> {
    let checked = preflight(app, resolved)?;
    let key = generate_key(resolved.key_type)?;
    let csr = csr_der(&checked.domains, &key)?;
    let chain_pem = obtain(env, app, resolved, &checked, &csr, replaces, report)?;
    report.report(Event::Step("Certificate retrieved successfully.".into()));
    stage_certificate(env, app, resolved, &checked, chain_pem, &key, report)
}

/// Orders the certificate and returns its chain (PEM). The challenge's guard (files, or
/// nginx.conf.d in dokku mode) and the DNS records' guard clean up when they go out of
/// scope here, whatever happened, the order deadline included.
fn obtain(
    env: &Env,
    app: &App,
    resolved: &Resolved,
    checked: &Preflight,
    csr: &[u8],
    replaces: Option<CertificateIdentifier<'static>>,
    report: &dyn Reporter,
) -> Result<String> {
    let mut responder = match checked.provider {
        Some(_) => None,
        None => Some(Responder::prepare(env, app, &checked.domains, report)?),
    };
    let records = checked
        .provider
        .as_ref()
        .map(|provider| Records::new(provider, report));
    let request = OrderRequest {
        resolved,
        limits: checked.limits,
        email: &checked.email,
        domains: &checked.domains,
        csr,
        replaces,
        dns: records.as_ref(),
    };
    let chain = within_deadline(
        checked.limits,
        order_certificate(env, &request, responder.as_mut(), report),
    )?;
    if let Some(responder) = &mut responder {
        responder.installing();
    }
    Ok(chain)
}

/// Stages the chain with the new key exactly as certs:add would install it, the marker
/// beside them, tested by nginx; not yet reloaded.
fn stage_certificate<'a>(
    env: &Env,
    app: &'a App,
    resolved: &Resolved,
    checked: &Preflight,
    chain_pem: String,
    key: &rcgen::KeyPair,
    report: &dyn Reporter,
) -> Result<StagedPair<'a>> {
    let sources = [
        Source {
            name: "the certificate from the CA".into(),
            bytes: chain_pem.into_bytes(),
        },
        Source {
            name: "the new key".into(),
            bytes: key.serialize_pem().into_bytes(),
        },
    ];
    let bundle = assemble(&sources, Origin::Files)?;
    let marker = serde_json::json!({
        "server": resolved.server,
        "email": checked.email,
        "domains": checked.domains,
        "issued-at": now(),
        "profile": resolved.profile,
        "key-type": format!("{:?}", resolved.key_type),
        "challenge": challenge_kind(resolved),
    });
    report.report(Event::Step(format!(
        "Installing the certificate for {}",
        checked.domains.join(", ")
    )));
    let extra = vec![(MARKER, marker.to_string() + "\n")];
    let (staged, warnings) = endpoint::stage_install(env, app, &bundle, extra, report)?;
    Ok(StagedPair {
        staged,
        hostnames: bundle.leaf().hostnames(),
        warnings,
    })
}

fn csr_der(domains: &[String], key: &rcgen::KeyPair) -> Result<Vec<u8>> {
    let failed = |e: rcgen::Error| Error::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(domains.to_vec()).map_err(failed)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, domains[0].as_str());
    Ok(params
        .serialize_request(key)
        .map_err(failed)?
        .der()
        .to_vec())
}

/// Opens the account kept in `path`.
async fn open_account(
    store: &SettingsFile,
    path: &std::path::Path,
    limits: Limits,
) -> Result<Account> {
    let bytes = store.read_account(path)?.ok_or_else(|| Error::Read {
        path: path.into(),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let credentials: AccountCredentials = serde_json::from_slice(&bytes)
        .map_err(|e| Error::BadLetsEncryptFile(path.into(), e.to_string()))?;
    account_builder(limits)?
        .from_credentials(credentials)
        .await
        .map_err(|e| acme_error("cannot reach the CA", &e))
}

/// The account for this email and server: created once, then reused from its 0600 file.
// The creation lock is held across the CA's answer on purpose: each thread's runtime runs
// this one future, so the wait blocks only threads that would create the same account.
#[allow(clippy::await_holding_lock)]
async fn account(
    env: &Env,
    resolved: &Resolved,
    limits: Limits,
    email: &str,
    report: &dyn Reporter,
) -> Result<Account> {
    let store = SettingsFile::new(env);
    let path = store.account_path(email, &resolved.server);
    if store.read_account(&path)?.is_none() {
        // Apps of one batch order in parallel: the first creates the account, the others
        // wait and use it, instead of each creating one (and overwriting the file).
        static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _creating = CREATING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if store.read_account(&path)?.is_none() {
            return create_account(&store, &path, resolved, limits, email, report).await;
        }
    }
    let account = open_account(&store, &path, limits).await?;
    report.report(Event::Step(format!(
        "Using the account of {email} on {}",
        resolved.server
    )));
    Ok(account)
}

/// Creates the account at the CA and keeps its credentials in `path` (0600).
async fn create_account(
    store: &SettingsFile,
    path: &std::path::Path,
    resolved: &Resolved,
    limits: Limits,
    email: &str,
    report: &dyn Reporter,
) -> Result<Account> {
    let contact = format!("mailto:{email}");
    let new_account = NewAccount {
        contact: &[&contact],
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let eab = external_account(resolved)?;
    let (account, credentials) = account_builder(limits)?
        .create(&new_account, resolved.server.clone(), eab.as_ref())
        .await
        .map_err(|e| acme_error("cannot create the account", &e))?;
    let text = serde_json::to_string(&credentials).expect("credentials serialize");
    store.write_account(path, text.as_bytes())?;
    report.report(Event::Step(format!(
        "Created an account for {email} on {}",
        resolved.server
    )));
    Ok(account)
}

/// The external account binding set with eab-kid and eab-hmac-key, if any.
fn external_account(resolved: &Resolved) -> Result<Option<ExternalAccountKey>> {
    use base64::Engine;
    let Some((kid, key)) = &resolved.eab else {
        return Ok(None);
    };
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key)
        .map_err(|_| Error::StoredEabKey)?;
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
    /// With a DNS provider, every name is validated over DNS-01 and its records go here.
    dns: Option<&'a Records<'a>>,
}

/// The DNS-01 TXT records published for one order: removed when dropped, whatever happened
/// (success, the CA's refusal, a provider error, the order deadline). Only ours are deleted.
struct Records<'a> {
    provider: &'a Provider,
    published: RefCell<Vec<Txt>>,
    report: &'a dyn Reporter,
}

impl<'a> Records<'a> {
    fn new(provider: &'a Provider, report: &'a dyn Reporter) -> Records<'a> {
        Records {
            provider,
            published: RefCell::new(Vec::new()),
            report,
        }
    }
}

impl Drop for Records<'_> {
    /// A record that cannot be removed is a warning, not a failure.
    fn drop(&mut self) {
        let records = self.published.take();
        if records.is_empty() {
            return;
        }
        for txt in &records {
            if let Err(why) = self.provider.cleanup(txt) {
                self.report.report(Event::Warning(format!(
                    "the TXT record {} could not be removed: {why}",
                    txt.fqdn
                )));
            }
        }
        self.report.report(Event::Detail(format!(
            "Removed {} DNS-01 TXT record(s)",
            records.len()
        )));
    }
}

/// The profile named in the settings, checked against the directory's `meta.profiles`
/// before any order: a typo is the user's to fix, not an order the CA refuses.
fn check_profile(account: &Account, resolved: &Resolved) -> Result<()> {
    let Some(profile) = &resolved.profile else {
        return Ok(());
    };
    let mut offered: Vec<&str> = account.profiles().map(|p| p.name).collect();
    offered.sort_unstable();
    if offered.contains(&profile.as_str()) {
        return Ok(());
    }
    let offers = if offered.is_empty() {
        "no profiles".to_string()
    } else {
        offered.join(", ")
    };
    Err(Error::ProfileNotOffered {
        profile: profile.clone(),
        server: resolved.server.clone(),
        offers,
    })
}

/// Places the order; a `replaces` the CA answers with alreadyReplaced (the old certificate
/// was replaced already, e.g. it came back from a backup) is ordered again without it.
async fn place_order(
    account: &Account,
    request: &OrderRequest<'_>,
    report: &dyn Reporter,
) -> Result<instant_acme::Order> {
    let identifiers: Vec<Identifier> = request
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let new_order = || {
        let order = NewOrder::new(&identifiers);
        match &request.resolved.profile {
            Some(profile) => order.profile(profile),
            None => order,
        }
    };
    let mut details: Vec<String> = request
        .resolved
        .profile
        .iter()
        .map(|p| format!("profile {p}"))
        .collect();
    let result = match &request.replaces {
        Some(id) => {
            let first = account.new_order(&new_order().replaces(id.clone())).await;
            match first {
                Err(instant_acme::Error::Api(problem))
                    if problem
                        .r#type
                        .as_deref()
                        .is_some_and(|t| t.ends_with(":alreadyReplaced")) =>
                {
                    report.report(Event::Step(format!(
                        "The CA refused to replace {id} ({}); ordering without replaces",
                        Problem::from_acme(&problem)
                    )));
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
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(" ({})", details.join(", "))
    };
    report.report(Event::Step(format!(
        "Ordered a certificate for {}{details}",
        request.domains.join(", ")
    )));
    Ok(order)
}

/// Publishes the DNS-01 TXT record of every pending authorization, waits until the
/// authoritative server answers them, then asks the CA to validate.
async fn answer_over_dns(
    order: &mut instant_acme::Order,
    dns: &Records<'_>,
    report: &dyn Reporter,
) -> Result<()> {
    let records = pending_challenges(order, ChallengeType::Dns01, |domain, challenge| {
        Txt::for_domain(&domain, challenge.key_authorization().dns_value())
    })
    .await?;
    if records.is_empty() {
        return Ok(());
    }
    for txt in &records {
        dns.provider.present(txt).map_err(|why| {
            AcmeError::Local(format!("cannot publish the TXT record {}: {why}", txt.fqdn))
        })?;
        dns.published.borrow_mut().push(txt.clone());
    }
    report.report(Event::Detail(format!(
        "Published {} DNS-01 TXT record(s); waiting until the name server answers them",
        records.len()
    )));
    dns.provider
        .wait_propagated(&records)
        .map_err(AcmeError::Local)?;
    mark_ready(order, ChallengeType::Dns01).await
}

/// Account, profile check, order, challenges answered, validation, finalization: the
/// certificate chain (PEM).
async fn order_certificate(
    env: &Env,
    request: &OrderRequest<'_>,
    responder: Option<&mut Responder<'_>>,
    report: &dyn Reporter,
) -> Result<String> {
    let OrderRequest {
        resolved,
        limits,
        email,
        csr,
        ..
    } = *request;
    let account = account(env, resolved, limits, email, report).await?;
    check_profile(&account, resolved)?;
    let mut order = place_order(&account, request, report).await?;

    if let Some(dns) = request.dns {
        answer_over_dns(&mut order, dns, report).await?;
    } else if let Some(responder) = responder
        && let answers = pending_answers(&mut order, &account).await?
        && !answers.is_empty()
    {
        responder.answer(&answers, report)?;
        mark_ready(&mut order, ChallengeType::Http01).await?;
    }
    let status = order.poll_ready(&retry_policy()).await;
    report_authorizations(&mut order, report).await;
    if !matches!(status, Ok(OrderStatus::Ready)) {
        // An invalid order comes back as Ok(Invalid) or as the CA's problem: either way the
        // authorizations say which domain failed and why.
        let problems = order_problems(&mut order).await;
        return Err(match (problems, status) {
            (Some(problems), _) => AcmeError::NotValidated(problems).into(),
            (None, Err(e)) => acme_error("cannot follow the order", &e),
            (None, Ok(status)) => AcmeError::OrderEnded(format!("{status:?}")).into(),
        });
    }
    report.report(Event::Step("Finalizing the order".into()));
    order
        .finalize_csr(csr)
        .await
        .map_err(|e| acme_error("the CA refused the certificate request", &e))?;
    order
        .poll_certificate(&retry_policy())
        .await
        .map_err(|e| acme_error("cannot download the certificate", &e))
}

/// The HTTP-01 answer of every authorization still pending.
async fn pending_answers(
    order: &mut instant_acme::Order,
    account: &Account,
) -> Result<Vec<Answer>> {
    let thumbprint = account.key_thumbprint().to_string();
    pending_challenges(order, ChallengeType::Http01, |domain, challenge| {
        let token = challenge.token.clone();
        Answer {
            domain,
            key_authorization: format!("{token}.{thumbprint}"),
            token,
        }
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
        let mut authorization =
            authorization.map_err(|e| acme_error("cannot read an authorization", &e))?;
        if authorization.status != AuthorizationStatus::Pending {
            continue;
        }
        let domain = authorization.identifier().to_string();
        let challenge = authorization.challenge(kind.clone()).ok_or_else(|| {
            AcmeError::Local(format!(
                "the CA offers no {} challenge for {domain}",
                challenge_label(&kind)
            ))
        })?;
        answers.push(answer(domain, &challenge));
    }
    Ok(answers)
}

async fn mark_ready(order: &mut instant_acme::Order, kind: ChallengeType) -> Result<()> {
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization =
            authorization.map_err(|e| acme_error("cannot read an authorization", &e))?;
        if authorization.status != AuthorizationStatus::Pending {
            continue;
        }
        if let Some(mut challenge) = authorization.challenge(kind.clone()) {
            challenge
                .set_ready()
                .await
                .map_err(|e| acme_error("cannot start the validation", &e))?;
        }
    }
    Ok(())
}

/// One progress line per authorization: its domain and status.
async fn report_authorizations(order: &mut instant_acme::Order, report: &dyn Reporter) {
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        let status = format!("{:?}", authorization.status).to_lowercase();
        report.report(Event::Step(format!(
            "Authorization for {}: {status}",
            authorization.identifier()
        )));
    }
}

/// The CA's problem documents for the failed challenges, by domain.
async fn order_problems(order: &mut instant_acme::Order) -> Option<Vec<(String, Problem)>> {
    let mut problems = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        let domain = authorization.identifier().to_string();
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                problems.push((domain.clone(), Problem::from_acme(problem)));
            }
        }
    }
    (!problems.is_empty()).then_some(problems)
}

fn acme_error(doing: &'static str, error: &instant_acme::Error) -> Error {
    AcmeError::from_acme(doing, error).into()
}

/// Revokes the app's certificate with the account that obtained it, and remembers it in
/// the app's state so that the next letsencrypt:enable replaces it. Under the app's lock,
/// like every other writer of the state.
pub fn revoke(env: &Env, app: &App) -> Result<()> {
    let _lock = transaction::lock(app)?;
    let marker = marker(app).ok_or_else(|| Error::NotLetsEncrypt(app.name.clone()))?;
    let store = SettingsFile::new(env);
    let path = store.account_path(&marker.email, &marker.server);
    let chain =
        endpoint::installed_chain(app)?.ok_or_else(|| Error::NotLetsEncrypt(app.name.clone()))?;
    let leaf = rustls_pki_types::CertificateDer::from(chain[0].der());
    let limits = Limits::from_env()?;
    within_deadline(limits, async {
        let account = open_account(&store, &path, limits).await?;
        let request = instant_acme::RevocationRequest {
            certificate: &leaf,
            reason: None,
        };
        account
            .revoke(&request)
            .await
            .map_err(|e| acme_error("the CA refused to revoke", &e))
    })?;
    let mut state = state::load(env, &app.name);
    state.revoked(chain[0].der());
    state::save(env, &app.name, &state)
}

/// The server certificate of an app whose certificate came from us; `None` otherwise.
pub fn issued_leaf(app: &App) -> Option<Certificate> {
    marker(app)?;
    endpoint::installed_chain(app)
        .ok()
        .flatten()
        .map(|mut chain| chain.swap_remove(0))
}

/// A challenge type as RFC 8555 names it.
fn challenge_label(kind: &ChallengeType) -> &'static str {
    match kind {
        ChallengeType::Http01 => "HTTP-01",
        ChallengeType::Dns01 => "DNS-01",
        _ => "requested",
    }
}
