//! letsencrypt:cron-job --add|--remove: letsencrypt:auto-renew twice a day, at a random minute, in a cron.d file.

use dokku_certs::app::Settings;
use dokku_certs::cron;
use dokku_certs::{Error, Result, output};

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
    let path = cron::file_path();
    if args.add {
        // The environment first: a setting that cannot go into the file refuses the
        // command before anything is read through it.
        let variables = cron::carried_variables(std::env::vars_os())?;
        let settings = Settings::from_env()?;
        let exe =
            std::env::current_exe().map_err(|source| Error::Read { path: "the running binary".into(), source })?;
        let job = cron::job(&settings.dokku_root, &exe, &cron::log_path(), &variables)?;
        cron::prepare_log(&job)?;
        cron::write_file(&path, &job.text)?;
        output::step(&format!("Added the auto-renew job (twice a day) to {}", path.display()));
        output::detail(&format!("runs as {}, appends its output to {}", job.user.name, job.log.display()));
        for warning in &job.warnings {
            output::warn(&format!("Warning: {warning}"));
        }
    } else if args.remove {
        if cron::remove_file(&path)? {
            output::step(&format!("Removed the auto-renew job ({})", path.display()));
        } else {
            output::step("No auto-renew job to remove");
        }
    } else {
        return Err(Error::Usage("usage: letsencrypt:cron-job --add|--remove".into()));
    }
    Ok(())
}
