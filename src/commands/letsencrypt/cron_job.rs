//! letsencrypt:cron-job --add|--remove: a daily letsencrypt:auto-renew in a cron.d file.

use std::path::PathBuf;

use dokku_certs::{Error, Result, output};

/// Where the cron entry goes, unless DOKKU_LETSENCRYPT_CRON_FILE says otherwise.
pub const DEFAULT_CRON_FILE: &str = "/etc/cron.d/dokku-certs-letsencrypt";

/// Arguments of letsencrypt:cron-job.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the daily entry.
    #[arg(long, conflicts_with = "remove")]
    add: bool,
    /// Remove it.
    #[arg(long)]
    remove: bool,
}

/// The environment the renewal must run with: the same DOKKU_* settings as now.
fn cron_text(exe: &str) -> String {
    let mut text = String::from("# Written by dokku-certs letsencrypt:cron-job --add; renews certificates daily.\n");
    text.push_str("SHELL=/bin/sh\n");
    for (name, value) in std::env::vars() {
        let safe = !value.contains(['\n', '\r', '%']);
        if (name.starts_with("DOKKU_") || name == "SSL_CERT_FILE") && safe {
            text.push_str(&format!("{name}={value}\n"));
        }
    }
    text.push_str(&format!("17 3 * * * root {exe} letsencrypt:auto-renew\n"));
    text
}

/// Runs letsencrypt:cron-job.
pub fn run(args: Args) -> Result<()> {
    let path = PathBuf::from(std::env::var("DOKKU_LETSENCRYPT_CRON_FILE").unwrap_or_else(|_| DEFAULT_CRON_FILE.into()));
    if args.add {
        let exe =
            std::env::current_exe().map_err(|source| Error::Read { path: "the running binary".into(), source })?;
        let text = cron_text(&exe.display().to_string());
        std::fs::write(&path, text).map_err(|source| Error::Write { path: path.clone(), source })?;
        output::step(&format!("Added the daily auto-renew job to {}", path.display()));
    } else if args.remove {
        match std::fs::remove_file(&path) {
            Ok(()) => output::step(&format!("Removed the auto-renew job ({})", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => output::step("No auto-renew job to remove"),
            Err(source) => return Err(Error::Write { path, source }),
        }
    } else {
        return Err(Error::Usage("usage: letsencrypt:cron-job --add|--remove".into()));
    }
    Ok(())
}
