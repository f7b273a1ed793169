//! letsencrypt:auto-renew [<app>]: renew what is due, most urgent first, with one nginx reload.

use crate::cli_error::{CliError, Result};
use crate::output;
use dokku_certs::acme::{self, AcmeError, Renewal, batch};
use dokku_certs::app::Env;
use dokku_certs::cert::format_openssl_date;
use dokku_certs::util::now;

/// Arguments of letsencrypt:auto-renew.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One app; without it, every app with a certificate from Let's Encrypt.
    app: Option<String>,
}

/// Runs letsencrypt:auto-renew. Every app is tried even if one fails (a stalled CA costs
/// that app its order deadline, no more); the exit code says whether all succeeded.
pub fn run(args: Args) -> Result<()> {
    let env = Env::from_env()?;
    // A dated first line: under cron this output is appended to a log.
    output::heading(&format!(
        "letsencrypt:auto-renew, {}",
        format_openssl_date(now())
    ));
    let outcomes = acme::auto_renew(&env, args.app.as_deref(), &output::event)?;
    for outcome in &outcomes {
        let app = &outcome.app;
        match &outcome.result {
            Ok(Renewal::Renewed(installed)) => {
                output::step(&format!("{app}: renewed"));
                super::report_installed(installed);
            }
            Ok(Renewal::NotDue(left, plan)) => output::step(&format!(
                "{app}: no renewal needed (expires in {}; {})",
                acme::format_span(*left),
                acme::describe_plan(plan)
            )),
            Ok(Renewal::BackingOff(wait, failures)) => output::step(&format!(
                "{app}: {failures} renewal(s) failed in a row; the next attempt waits {} (backoff)",
                acme::format_span(*wait)
            )),
            Ok(Renewal::NotOurs) => output::step(&format!(
                "{app}: its certificate is no longer from Let's Encrypt; left alone"
            )),
            Err(error) => output::warn(&format!("{app}: {error}")),
        }
        // The trigger's listeners' own warnings, as dokku shows a trigger's stderr.
        output::relay_stderr(&outcome.listeners);
    }
    let failed = batch::failed(&outcomes);
    if failed.is_empty() {
        Ok(())
    } else {
        let apps = failed.into_iter().map(str::to_string).collect();
        Err(CliError::Lib(
            AcmeError::Apps {
                what: "renewal",
                apps,
            }
            .into(),
        ))
    }
}
