//! letsencrypt:cron-job --add|--remove: letsencrypt:auto-renew twice a day, at a random
//! minute: a cron.d file, or in dokku mode the dokku user's own crontab.

use crate::cli_error::{CliError, Result};
use crate::output;
use dokku_certs::cron::{self, Place};

/// Arguments of letsencrypt:cron-job.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the entry.
    #[arg(long, conflicts_with = "remove")]
    add: bool,
    /// Remove it.
    #[arg(long)]
    remove: bool,
}

/// Runs letsencrypt:cron-job.
pub fn run(args: Args) -> Result<()> {
    if args.add {
        let added = cron::add(&output::event)?;
        let place = match &added.place {
            Place::File(path) => path.display().to_string(),
            Place::Crontab => format!("{}'s crontab", added.user),
        };
        output::step(&format!(
            "Added the auto-renew job (twice a day) to {place}"
        ));
        output::detail(&format!(
            "runs as {}, appends its output to {}",
            added.user,
            added.log.display()
        ));
        return Ok(());
    }
    if !args.remove {
        return Err(CliError::Usage(
            "usage: letsencrypt:cron-job --add|--remove".into(),
        ));
    }
    match cron::remove()? {
        Some(Place::File(path)) => {
            output::step(&format!("Removed the auto-renew job ({})", path.display()))
        }
        Some(Place::Crontab) => output::step("Removed the auto-renew job from the crontab"),
        None => output::step("No auto-renew job to remove"),
    }
    Ok(())
}
