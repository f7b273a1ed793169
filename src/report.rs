//! certs:report's fields, computed in-process; the binary prints them in dokku's two shapes.

use std::collections::BTreeMap;

use crate::app::{App, Env, open_all};
use crate::cert::format_openssl_date;
use crate::endpoint::inspect;
use crate::error::Result;

/// The report's flags, as dokku names them (sorted, as dokku sorts them).
pub const FLAGS: [&str; 8] = [
    "--ssl-dir",
    "--ssl-enabled",
    "--ssl-expires-at",
    "--ssl-hostnames",
    "--ssl-issuer",
    "--ssl-starts-at",
    "--ssl-subject",
    "--ssl-verified",
];

/// certs:report's global scope: dokku's certs plugin has no global properties, so its
/// report has no fields (and no flag is valid for it).
pub const GLOBAL: &str = "--global";

/// The flags a report of `scope` has: none for [`GLOBAL`], else [`FLAGS`].
pub fn flags(scope: Option<&str>) -> &'static [&'static str] {
    if scope == Some(GLOBAL) { &[] } else { &FLAGS }
}

/// One app's report: flag to value, every value a string as dokku prints it.
pub type Fields = BTreeMap<&'static str, String>;

/// Computes the report of one app. A certificate that cannot be read leaves the
/// certificate fields empty and says why under `--ssl-verified`.
pub fn fields(app: &App) -> Fields {
    let mut fields: Fields = FLAGS.iter().map(|flag| (*flag, String::new())).collect();
    fields.insert("--ssl-dir", app.tls_dir().display().to_string());
    let inspection = inspect(app);
    // inspect() already asked whether server.crt and server.key exist: None means no.
    fields.insert(
        "--ssl-enabled",
        (!matches!(inspection, Ok(None))).to_string(),
    );
    match inspection {
        Ok(None) => {}
        Ok(Some(inspection)) => {
            let leaf = inspection.leaf();
            fields.insert("--ssl-expires-at", format_openssl_date(leaf.not_after));
            fields.insert("--ssl-hostnames", leaf.hostnames().join(" "));
            fields.insert("--ssl-issuer", leaf.issuer.clone());
            fields.insert("--ssl-starts-at", format_openssl_date(leaf.not_before));
            fields.insert("--ssl-subject", leaf.subject.clone());
            fields.insert("--ssl-verified", inspection.trust.describe());
        }
        Err(error) => {
            fields.insert("--ssl-verified", format!("not verified: {error}"));
        }
    }
    fields
}

/// The named app, or (`None`) every app, opened.
pub fn open_apps(env: &Env, name: Option<&str>) -> Result<Vec<App>> {
    match name {
        Some(name) => Ok(vec![App::open(env, name)?]),
        None => open_all(env),
    }
}

/// certs:report: the named app's name and fields, or every app's in [`open_all`]'s order,
/// computed on every core; for [`GLOBAL`], its one report without fields.
pub fn reports(env: &Env, name: Option<&str>) -> Result<Vec<(String, Fields)>> {
    if name == Some(GLOBAL) {
        return Ok(vec![(GLOBAL.to_string(), Fields::new())]);
    }
    let apps = open_apps(env, name)?;
    Ok(crate::util::in_parallel(&apps, |app| {
        (app.name.clone(), fields(app))
    }))
}
