//! certs:show <app> crt|key: print the installed certificate or key (the one place a key is printed).

use dokku_certs::{Error, Result, output};

/// Arguments of certs:show.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app.
    app: Option<String>,
    /// crt or key.
    what: Option<String>,
}

/// Runs certs:show.
pub fn run(args: Args) -> Result<()> {
    let (_, app) = super::open_app(args.app.as_deref())?;
    let path = match args.what.as_deref() {
        Some("crt") => app.crt_path(),
        Some("key") => app.key_path(),
        _ => return Err(Error::ShowWhat),
    };
    if !app.has_cert() {
        return Err(Error::NoEndpoint(app.name));
    }
    let bytes = std::fs::read(&path).map_err(|source| Error::Read { path, source })?;
    output::raw(&String::from_utf8_lossy(&bytes));
    Ok(())
}
