//! The `dokku-certs` binary: dokku's certs:* command names, dispatched to `commands`.

mod cli_error;
mod commands;
mod output;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dokku-certs",
    version,
    disable_help_subcommand = true,
    disable_help_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(name = "certs:add", alias = "add")]
    Add(commands::add::Args),
    #[command(name = "certs:update", alias = "update")]
    Update(commands::add::Args),
    #[command(name = "certs:generate", alias = "generate")]
    Generate(commands::generate::Args),
    #[command(name = "certs:info", alias = "info")]
    Info(commands::info::Args),
    #[command(name = "certs:report", alias = "report")]
    Report(commands::report::Args),
    #[command(name = "certs:show", alias = "show")]
    Show(commands::show::Args),
    #[command(name = "certs:remove", alias = "remove")]
    Remove(commands::remove::Args),
    #[command(name = "certs:help", aliases = ["help", "certs", "--help", "-h"])]
    Help(HelpArgs),
    #[command(name = "nginx:set")]
    NginxSet(commands::nginx_set::Args),
    #[command(name = "nginx:report")]
    NginxReport(commands::nginx_report::Args),
    #[command(name = "nginx:setup")]
    NginxSetup,
    /// The plugn triggers of dokku's certs plugin (called by the dokku plugin's shims).
    #[command(name = "trigger", hide = true)]
    Trigger(commands::trigger::Args),
    #[command(name = "letsencrypt:set")]
    LetsEncryptSet(commands::letsencrypt::set::Args),
    #[command(name = "letsencrypt:enable", alias = "letsencrypt")]
    LetsEncryptEnable(commands::letsencrypt::enable::Args),
    #[command(name = "letsencrypt:auto-renew")]
    LetsEncryptAutoRenew(commands::letsencrypt::auto_renew::Args),
    #[command(name = "letsencrypt:list", alias = "letsencrypt:ls")]
    LetsEncryptList,
    #[command(name = "letsencrypt:active")]
    LetsEncryptActive(commands::letsencrypt::active::Args),
    #[command(name = "letsencrypt:revoke")]
    LetsEncryptRevoke(commands::letsencrypt::revoke::Args),
    #[command(name = "letsencrypt:disable")]
    LetsEncryptDisable(commands::letsencrypt::disable::Args),
    #[command(name = "letsencrypt:report")]
    LetsEncryptReport(commands::letsencrypt::report::Args),
    #[command(name = "letsencrypt:cron-job")]
    LetsEncryptCronJob(commands::letsencrypt::cron_job::Args),
}

/// Options of certs:help, for the dokku plugin's `commands` shim.
#[derive(Debug, clap::Args)]
struct HelpArgs {
    /// The one line `dokku help` shows.
    #[arg(long, hide = true)]
    summary: bool,
    /// The command lines `dokku help --all` collects.
    #[arg(long, hide = true)]
    list: bool,
}

impl HelpArgs {
    fn shape(&self) -> commands::help::Shape {
        use commands::help::Shape;
        if self.list {
            Shape::List
        } else if self.summary {
            Shape::Summary
        } else {
            Shape::Full
        }
    }
}

/// Whether the dokku plugin's shims started us (DOKKU_CERTS_MODE=dokku).
fn dokku_mode() -> bool {
    let mode = dokku_certs::dokku::Mode::from_setting(std::env::var("DOKKU_CERTS_MODE").ok());
    mode.is_ok_and(|mode| mode == dokku_certs::dokku::Mode::Dokku)
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => e.exit(),
        Err(e) => output::fail(&format!(
            "{}; see dokku-certs certs:help",
            e.to_string().trim_start_matches("error: ")
        )),
    };
    let result = match cli.command {
        Some(Command::Add(args) | Command::Update(args)) => commands::add::run(args),
        Some(Command::Generate(args)) => commands::generate::run(args),
        Some(Command::Info(args)) => commands::info::run(args),
        Some(Command::Report(args)) => commands::report::run(args),
        Some(Command::Show(args)) => commands::show::run(args),
        Some(Command::Remove(args)) => commands::remove::run(args),
        Some(Command::NginxSet(args)) => commands::nginx_set::run(args),
        Some(Command::NginxReport(args)) => commands::nginx_report::run(args),
        Some(Command::NginxSetup) => commands::nginx_setup::run(),
        Some(Command::Trigger(args)) => commands::trigger::run(args),
        Some(Command::LetsEncryptSet(args)) => commands::letsencrypt::set::run(args),
        Some(Command::LetsEncryptEnable(args)) => commands::letsencrypt::enable::run(args),
        Some(Command::LetsEncryptAutoRenew(args)) => commands::letsencrypt::auto_renew::run(args),
        Some(Command::LetsEncryptList) => commands::letsencrypt::list::run(),
        Some(Command::LetsEncryptActive(args)) => commands::letsencrypt::active::run(args),
        Some(Command::LetsEncryptRevoke(args)) => commands::letsencrypt::revoke::run(args),
        Some(Command::LetsEncryptDisable(args)) => commands::letsencrypt::disable::run(args),
        Some(Command::LetsEncryptReport(args)) => commands::letsencrypt::report::run(args),
        Some(Command::LetsEncryptCronJob(args)) => commands::letsencrypt::cron_job::run(args),
        Some(Command::Help(args)) => {
            commands::help::run(dokku_mode(), args.shape());
            Ok(())
        }
        None => {
            commands::help::run(dokku_mode(), commands::help::Shape::Full);
            Ok(())
        }
    };
    if let Err(error) = result {
        output::fail(&error.to_string());
    }
}
