//! certs:generate <app> DOMAIN: a key, a CSR and a self-signed certificate, installed.

use dokku_certs::endpoint::{Generated, KeyType, Subject, generate};
use dokku_certs::{Error, Result, output};

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
    /// The key to generate.
    #[arg(long, value_enum, default_value = "ecdsa-p256")]
    key_type: KeyTypeArg,
}

/// --key-type values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KeyTypeArg {
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// RSA 2048 bits.
    Rsa2048,
    /// RSA 3072 bits.
    Rsa3072,
    /// RSA 4096 bits.
    Rsa4096,
}

impl From<KeyTypeArg> for KeyType {
    fn from(arg: KeyTypeArg) -> KeyType {
        match arg {
            KeyTypeArg::EcdsaP256 => KeyType::EcdsaP256,
            KeyTypeArg::EcdsaP384 => KeyType::EcdsaP384,
            KeyTypeArg::Rsa2048 => KeyType::Rsa2048,
            KeyTypeArg::Rsa3072 => KeyType::Rsa3072,
            KeyTypeArg::Rsa4096 => KeyType::Rsa4096,
        }
    }
}

/// Runs certs:generate.
pub fn run(args: Args) -> Result<()> {
    let (settings, app) = super::open_app(args.app.as_deref())?;
    let domain = args.domain.ok_or(Error::Usage(
        "Please specify a domain: certs:generate <app> DOMAIN".into(),
    ))?;
    let subject = Subject {
        country: args.country,
        state: args.state,
        locality: args.locality,
        organization: args.organization,
        organizational_unit: args.organizational_unit,
    };
    match generate(&settings, &app, &domain, args.key_type.into(), &subject)? {
        Generated::AlreadyDefined => output::step(&format!("{} has an SSL endpoint already defined", app.name)),
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
