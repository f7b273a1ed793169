//! letsencrypt:cron-job --add|--remove: letsencrypt:auto-renew twice a day, at a random
//! minute: a cron.d file, or in dokku mode the dokku user's own crontab.

use dokku_certs::app::Settings;
use dokku_certs::cron::{self, Job};
use dokku_certs::dokku::Mode;
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
    if !args.add && !args.remove {
        return Err(Error::Usage("usage: letsencrypt:cron-job --add|--remove".into()));
    }
    let mode = Mode::from_setting(std::env::var("DOKKU_CERTS_MODE").ok())?;
    match (mode, args.add) {
        (Mode::Standalone, true) => add_file(),
        (Mode::Standalone, false) => remove_file(),
        (Mode::Dokku, true) => add_to_crontab(),
        (Mode::Dokku, false) => remove_from_crontab(),
    }
}

fn add_file() -> Result<()> {
    // The environment first: a setting that cannot go into the file refuses the
    // command before anything is read through it.
    let variables = cron::carried_variables(std::env::vars_os(), Mode::Standalone)?;
    let settings = Settings::from_env()?;
    let exe = std::env::current_exe().map_err(|source| Error::Read { path: "the running binary".into(), source })?;
    let job = cron::job(&settings.dokku_root, &exe, &cron::log_path(Mode::Standalone), &variables)?;
    cron::prepare_log(&job)?;
    let path = cron::file_path();
    cron::write_file(&path, &job.text)?;
    added(&path.display().to_string(), &job);
    Ok(())
}

fn remove_file() -> Result<()> {
    let path = cron::file_path();
    if cron::remove_file(&path)? {
        output::step(&format!("Removed the auto-renew job ({})", path.display()));
    } else {
        output::step("No auto-renew job to remove");
    }
    Ok(())
}

/// dokku mode: the dokku user cannot write /etc/cron.d, so the job goes into its crontab
/// and runs `dokku letsencrypt:auto-renew`, as dokku-letsencrypt's does.
fn add_to_crontab() -> Result<()> {
    let variables = cron::carried_variables(std::env::vars_os(), Mode::Dokku)?;
    let settings = Settings::from_env()?;
    let dokku = cron::on_path("dokku")
        .ok_or_else(|| Error::Usage("dokku is not on PATH; the job runs dokku letsencrypt:auto-renew".into()))?;
    let job = cron::user_job(&settings.dokku_root, &dokku, &cron::log_path(Mode::Dokku), &variables)?;
    cron::prepare_log(&job)?;
    let text = cron::with_block(&cron::read_crontab()?, &job.text)?;
    cron::write_crontab(&text)?;
    added(&format!("{}'s crontab", job.user.name), &job);
    Ok(())
}

fn remove_from_crontab() -> Result<()> {
    let (text, found) = cron::without_block(&cron::read_crontab()?)?;
    if found {
        cron::write_crontab(&text)?;
        output::step("Removed the auto-renew job from the crontab");
    } else {
        output::step("No auto-renew job to remove");
    }
    Ok(())
}

fn added(place: &str, job: &Job) {
    output::step(&format!("Added the auto-renew job (twice a day) to {place}"));
    output::detail(&format!("runs as {}, appends its output to {}", job.user.name, job.log.display()));
    for warning in &job.warnings {
        output::warn(&format!("Warning: {warning}"));
    }
}
