//! certs:generate <app> DOMAIN: a key, a CSR and a self-signed certificate, installed.

use dokku_certs::endpoint::{Generated, KeyType, Subject, generate};

use crate::cli_error::{CliError, Result};
use crate::output;

/// Arguments of certs:generate.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
    /// The domain the certificate is for (added to the app's VHOST if missing).
    domain: Option<String>,
    /// Country (C), two letters.
    #[arg(long)]
    country: Option<String>,
    /// State or province (ST).
    #[arg(long)]
    state: Option<String>,
    /// Locality or city (L).
    #[arg(long)]
    locality: Option<String>,
    /// Organization (O).
    #[arg(long)]
    organization: Option<String>,
    /// Organizational unit (OU).
    #[arg(long)]
    organizational_unit: Option<String>,
    /// The key to generate: ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096.
    #[arg(long, value_parser = KeyType::from_name, default_value = "ecdsa-p256")]
    key_type: KeyType,
}

/// Runs certs:generate.
pub fn run(args: Args) -> Result<()> {
    let (env, app) = super::open_app(args.app.as_deref())?;
    let domain = args.domain.ok_or(CliError::Usage(
        "Please specify a domain: certs:generate <app> DOMAIN".into(),
    ))?;
    let subject = Subject {
        country: args.country,
        state: args.state,
        locality: args.locality,
        organization: args.organization,
        organizational_unit: args.organizational_unit,
    };
    match generate(&env, &app, &domain, args.key_type, &subject, &output::event)? {
        Generated::AlreadyDefined => {
            output::step(&format!("{} has an SSL endpoint already defined", app.name))
        }
        Generated::Installed {
            csr,
            domain_added,
            applied,
        } => {
            output::step("Installing certificate and key...");
            if domain_added {
                output::step(&format!("Added {domain} to {}", app.name));
            }
            super::report_reload(&applied);
            output::step("The following is a certificate signing request that can be used");
            output::step(&format!(
                "to generate an 'officially' signed SSL certificate for {} at {domain}",
                app.name
            ));
            output::step("by a CA of your choosing.");
            output::raw(&csr);
        }
    }
    Ok(())
}
