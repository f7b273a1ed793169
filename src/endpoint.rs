//! An app's SSL endpoint: install a bundle, generate a self-signed one, remove it,
//! inspect it. These are the operations behind the certs:* commands.

use std::io::Read;
use std::path::Path;

use crate::app::{App, Env};
use crate::bundle::{Bundle, Origin, assemble, sources_from_reader};
use crate::caller::{Caller, FileRole, read_dir, read_file};
use crate::cert::{CertError, Certificate, Trust, format_openssl_date, trust_of};
use crate::dokku;
use crate::error::{Error, Result};
use crate::event::{Event, Reporter};
use crate::names::{check_domain, name_covers};
use crate::transaction::{self, Applied, Change, TlsChange, TlsFiles, warn_all};
use crate::util::now;

// Keys are made in `key`; the operations here and in `acme` name them through `endpoint`.
pub use crate::key::{KeyType, generate_key};

/// A bundle that landed.
#[derive(Debug)]
pub struct Installed {
    /// The names the installed certificate is for, as certs:add prints them.
    pub hostnames: Vec<String>,
    /// How the change ended (whether nginx reloaded).
    pub applied: Applied,
}

/// Where certs:add's certificate, chain and key come from.
pub enum Input<'a> {
    /// `certs:add <app> CRT KEY`: two files, read with `caller`'s rights.
    Files {
        caller: Caller,
        /// The certificate file (leaf first, then its chain).
        crt: &'a Path,
        /// The key file.
        key: &'a Path,
    },
    /// `certs:add <app> DIR`: every file under it, read as an archive with `caller`'s rights.
    Dir { caller: Caller, dir: &'a Path },
    /// A tar archive (plain or gzip) or a PEM bundle, on stdin.
    Archive(Box<dyn Read + 'a>),
}

/// certs:add: reads `input`, finds the one certificate/key pair in it, and installs it like
/// [`install`]. Nothing changes if the input is refused.
pub fn add(env: &Env, app: &App, input: Input<'_>, reporter: &dyn Reporter) -> Result<Installed> {
    let root = &env.dokku_root;
    let (sources, origin) = match input {
        Input::Files { caller, crt, key } => {
            let crt = read_file(&caller, root, &app.name, crt, FileRole::Certificate)?;
            let key = read_file(&caller, root, &app.name, key, FileRole::Key)?;
            (vec![crt, key], Origin::Files)
        }
        Input::Dir { caller, dir } => (read_dir(&caller, root, &app.name, dir)?, Origin::Archive),
        Input::Archive(reader) => (sources_from_reader(reader)?, Origin::Archive),
    };
    install(env, app, &assemble(&sources, origin)?, reporter)
}

/// Checks `bundle` against the app and installs it, atomically, under the app's lock.
/// Problems that do not stop the install (expired, names not covered...) go to `reporter`
/// as warnings before anything changes.
pub fn install(
    env: &Env,
    app: &App,
    bundle: &Bundle,
    reporter: &dyn Reporter,
) -> Result<Installed> {
    let _lock = transaction::lock(app)?;
    install_locked(env, app, bundle, Vec::new(), reporter)
}

/// [`install`] for a caller that already holds the app's lock; `extra` files go into tls/
/// with the pair.
pub fn install_locked(
    env: &Env,
    app: &App,
    bundle: &Bundle,
    extra: Vec<(&'static str, String)>,
    reporter: &dyn Reporter,
) -> Result<Installed> {
    let (change, warnings) = install_change(app, bundle, extra)?;
    let applied = transaction::apply(env, app, &change, reporter)?;
    // Only now: a refused change is one line on stderr, and these describe what is installed.
    warn_all(reporter, warnings);
    Ok(Installed {
        hostnames: bundle.leaf().hostnames(),
        applied,
    })
}

/// [`install_locked`] up to nginx's test, without the reload: for many apps installed with
/// one reload ([`transaction::Staged::commit`] or [`transaction::Staged::roll_back`] finishes it).
/// Returns the staged change and the bundle's warnings, to report once the pair is live.
pub fn stage_install<'a>(
    env: &Env,
    app: &'a App,
    bundle: &Bundle,
    extra: Vec<(&'static str, String)>,
    reporter: &dyn Reporter,
) -> Result<(transaction::Staged<'a>, Vec<String>)> {
    let (change, warnings) = install_change(app, bundle, extra)?;
    Ok((transaction::stage(env, app, &change, reporter)?, warnings))
}

/// The change that installs `bundle`, and what the user should know about the bundle
/// (expired, names not covered...).
fn install_change(
    app: &App,
    bundle: &Bundle,
    extra: Vec<(&'static str, String)>,
) -> Result<(Change, Vec<String>)> {
    let domains = app.domains()?;
    let listeners = app.listeners()?;
    let mut warnings = bundle.notes.clone();
    warnings.extend(validity_warnings(bundle.leaf(), now()));
    warnings.extend(coverage_warning(bundle.leaf(), &domains));
    let files = TlsFiles {
        crt: bundle.chain_pem(),
        key: bundle.key.to_pem(),
        csr: None,
        extra,
    };
    Ok((
        Change {
            tls: TlsChange::Install(files),
            vhost: None,
            domains,
            listeners,
        },
        warnings,
    ))
}

fn validity_warnings(leaf: &Certificate, now: i64) -> Vec<String> {
    let mut warnings = Vec::new();
    if leaf.not_after < now {
        warnings.push(format!(
            "the certificate expired on {}; browsers will refuse it until it is renewed",
            format_openssl_date(leaf.not_after)
        ));
    }
    if leaf.not_before > now {
        warnings.push(format!(
            "the certificate is not valid until {}; browsers will refuse it until then",
            format_openssl_date(leaf.not_before)
        ));
    }
    warnings
}

/// A VHOST entry `*.example.com` is covered by the same wildcard in the certificate.
fn coverage_warning(leaf: &Certificate, domains: &[String]) -> Option<String> {
    let names = leaf.names_for_matching();
    let uncovered: Vec<&str> = domains
        .iter()
        .filter(|domain| {
            !names
                .iter()
                .any(|name| name.eq_ignore_ascii_case(domain) || name_covers(name, domain))
        })
        .map(String::as_str)
        .collect();
    if uncovered.is_empty() {
        return None;
    }
    Some(format!(
        "the certificate does not cover {} (it names {}); browsers will show an error for those domains",
        uncovered.join(", "),
        if names.is_empty() {
            "no domain".to_string()
        } else {
            names.join(", ")
        }
    ))
}

/// The subject fields of a generated certificate (the questions openssl req would ask).
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// C
    pub country: Option<String>,
    /// ST
    pub state: Option<String>,
    /// L
    pub locality: Option<String>,
    /// O
    pub organization: Option<String>,
    /// OU
    pub organizational_unit: Option<String>,
}

/// What certs:generate did.
#[derive(Debug)]
pub enum Generated {
    /// The app already has a certificate: nothing was changed (dokku's behaviour).
    AlreadyDefined,
    /// A new key, CSR and self-signed certificate are installed.
    Installed {
        /// The CSR, PEM, to get signed by a CA.
        csr: String,
        /// Whether the domain was added to VHOST.
        domain_added: bool,
        /// How the change ended.
        applied: Applied,
    },
}

/// Validity of a generated certificate, as dokku's `openssl x509 -days 365`.
pub const GENERATED_DAYS: i64 = 365;

/// Generates a key, a CSR and a self-signed certificate for `domain`, adds `domain` to
/// VHOST if missing, and installs them like certs:add. Warnings go to `reporter`.
pub fn generate(
    env: &Env,
    app: &App,
    domain: &str,
    key_type: KeyType,
    subject: &Subject,
    reporter: &dyn Reporter,
) -> Result<Generated> {
    check_domain(domain)?;
    let _lock = transaction::lock(app)?;
    // A generate killed midway must not read as "already defined" forever.
    warn_all(reporter, transaction::recover(env, app)?);
    if app.has_cert() {
        return Ok(Generated::AlreadyDefined);
    }
    let mut domains = app.domains()?;
    let listeners = app.listeners()?;
    let (files, csr) = self_signed_files(domain, key_type, subject)?;
    let domain_added = !domains.iter().any(|d| d == domain);
    let vhost = domain_added.then(|| {
        domains.push(domain.to_string());
        domains.iter().map(|d| format!("{d}\n")).collect::<String>()
    });
    let change = Change {
        tls: TlsChange::Install(files),
        vhost,
        domains,
        listeners,
    };
    let applied = transaction::apply(env, app, &change, reporter)?;
    Ok(Generated::Installed {
        csr,
        domain_added,
        applied,
    })
}

fn self_signed_files(
    domain: &str,
    key_type: KeyType,
    subject: &Subject,
) -> Result<(TlsFiles, String)> {
    let failed = |e: rcgen::Error| Error::Generate(e.to_string());
    let key = generate_key(key_type)?;
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()]).map_err(failed)?;
    let fields = [
        (rcgen::DnType::CountryName, &subject.country),
        (rcgen::DnType::StateOrProvinceName, &subject.state),
        (rcgen::DnType::LocalityName, &subject.locality),
        (rcgen::DnType::OrganizationName, &subject.organization),
        (
            rcgen::DnType::OrganizationalUnitName,
            &subject.organizational_unit,
        ),
    ];
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (kind, value) in fields {
        if let Some(value) = value {
            params.distinguished_name.push(kind, value.as_str());
        }
    }
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, domain);
    let start = time::OffsetDateTime::now_utc();
    params.not_before = start;
    params.not_after = start + time::Duration::days(GENERATED_DAYS);
    let csr = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    let files = TlsFiles {
        crt: cert.pem(),
        key: key.serialize_pem(),
        csr: Some(csr.clone()),
        extra: Vec::new(),
    };
    Ok((files, csr))
}

/// Removes the app's certificate: nginx.conf goes back to plain HTTP, tested, then tls/
/// is moved aside (to tls.previous/) and nginx reloaded. Warnings go to `reporter`.
pub fn remove(env: &Env, app: &App, reporter: &dyn Reporter) -> Result<Applied> {
    let _lock = transaction::lock(app)?;
    remove_locked(env, app, reporter)
}

/// [`remove`] for a caller that already holds the app's lock.
pub fn remove_locked(env: &Env, app: &App, reporter: &dyn Reporter) -> Result<Applied> {
    warn_all(reporter, transaction::recover(env, app)?);
    if app.open_tls()?.is_none() {
        return Err(Error::NoAppEndpoint);
    }
    // Said before anything changes, as dokku does before its proxy rebuild prints anything.
    reporter.report(Event::Step(format!(
        "Removing SSL endpoint from {}",
        app.name
    )));
    let change = Change {
        tls: TlsChange::Remove,
        vhost: None,
        domains: app.domains()?,
        listeners: app.listeners()?,
    };
    transaction::apply(env, app, &change, reporter)
}

/// dokku's post-app-clone-setup for the clone `app`: it does not keep the original's
/// certificate ([`dokku::forget_cloned_tls`]), and dokku's post-certs-remove listeners are
/// told, as dokku's certs plugin does. Their exit status and stderr are the caller's to pass on.
pub fn forget_clone(app: &App) -> Result<dokku::Fired> {
    dokku::forget_cloned_tls(app)?;
    dokku::fire("post-certs-remove", &[&app.name])
}

/// What certs:info and certs:report show of an installed certificate.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// server.crt, leaf first.
    pub chain: Vec<Certificate>,
    /// Self-signed, verified, or why neither.
    pub trust: Trust,
}

impl Inspection {
    /// The server certificate.
    pub fn leaf(&self) -> &Certificate {
        &self.chain[0]
    }
}

/// Reads and inspects the app's installed certificate; `None` if it has none.
pub fn inspect(app: &App) -> Result<Option<Inspection>> {
    let Some(chain) = installed_chain(app)? else {
        return Ok(None);
    };
    let trust = trust_of(&chain, now());
    Ok(Some(Inspection { chain, trust }))
}

/// certs:show: the installed [`CRT`](crate::app::CRT) or [`KEY`](crate::app::KEY) as it is
/// on disk, read through the app's directory handle (a link at tls/ or at the file is
/// refused); [`Error::NoEndpoint`] unless both files exist.
pub fn installed_file(app: &App, name: &str) -> Result<Vec<u8>> {
    if !app.has_cert() {
        return Err(Error::NoEndpoint(app.name.clone()));
    }
    app.read_tls_file(name)?
        .ok_or_else(|| Error::NoEndpoint(app.name.clone()))
}

/// The app's tls/server.crt, leaf first; `None` if the app has no SSL endpoint.
pub fn installed_chain(app: &App) -> Result<Option<Vec<Certificate>>> {
    if !app.has_cert() {
        return Ok(None);
    }
    let path = app.crt_path();
    let Some(bytes) = app.read_tls_file(crate::app::CRT)? else {
        return Ok(None);
    };
    let chain = read_chain(&bytes).map_err(|why| Error::BadCertificate {
        file: path.display().to_string(),
        why,
    })?;
    Ok(Some(chain))
}

/// Every certificate of a PEM file, in order.
fn read_chain(bytes: &[u8]) -> std::result::Result<Vec<Certificate>, CertError> {
    let chain = crate::pem::certificates(bytes)?
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        return Err(CertError::Empty);
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Origin, Source, assemble};

    #[test]
    fn generated_files_pair_up_and_name_the_domain() {
        let subject = Subject {
            country: Some("US".into()),
            organization: Some("dokku.me".into()),
            ..Subject::default()
        };
        let (files, csr) =
            self_signed_files("test.dokku.me", KeyType::EcdsaP256, &subject).unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        let sources = [
            Source {
                name: "server.crt".into(),
                bytes: files.crt.into_bytes(),
            },
            Source {
                name: "server.key".into(),
                bytes: files.key.into_bytes(),
            },
        ];
        let bundle = assemble(&sources, Origin::Files).unwrap();
        let leaf = bundle.leaf();
        assert_eq!(leaf.subject, "C=US; O=dokku.me; CN=test.dokku.me");
        assert_eq!(leaf.hostnames(), vec!["test.dokku.me"]);
        assert!(leaf.self_signed);
        assert_eq!(leaf.not_after - leaf.not_before, GENERATED_DAYS * 86_400);
    }

    #[test]
    fn warnings_name_expiry_and_uncovered_domains() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["*.example.com".to_string()]).unwrap();
        let cert = Certificate::from_der(params.self_signed(&key).unwrap().der()).unwrap();
        let domains = vec![
            "a.example.com".to_string(),
            "example.com".to_string(),
            "other.org".to_string(),
        ];
        let warning = coverage_warning(&cert, &domains).unwrap();
        assert!(
            warning.contains("does not cover example.com, other.org"),
            "{warning}"
        );
        assert!(validity_warnings(&cert, cert.not_after + 1)[0].contains("expired"));
        assert!(validity_warnings(&cert, cert.not_before - 1)[0].contains("not valid until"));
        assert!(validity_warnings(&cert, cert.not_before + 1).is_empty());
    }
}
