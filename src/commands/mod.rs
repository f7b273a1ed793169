//! One module per certs:* command: parse its arguments, call the library, print.

pub mod add;
pub mod generate;
pub mod help;
pub mod info;
pub mod letsencrypt;
pub mod nginx_report;
pub mod nginx_set;
pub mod nginx_setup;
pub mod remove;
pub mod report;
mod report_args;
pub mod show;
pub mod trigger;

use dokku_certs::app::{App, Env};
use dokku_certs::transaction::Applied;
use dokku_certs::{Error, Result};

use crate::output;

/// Reads the environment and opens the named app (its name checked first).
pub fn open_app(app: Option<&str>) -> Result<(Env, App)> {
    let name = app.ok_or(Error::NoApp)?;
    let env = Env::from_env()?;
    let app = App::open(&env, name)?;
    Ok((env, app))
}

/// Prints dokku's closing lines of a change: nginx reloaded, or why it was not. The
/// change's warnings were printed as they happened.
pub fn report_reload(applied: &Applied) {
    if let Some(messages) = &applied.proxy_messages {
        // dokku mode: dokku's proxy plugin reloaded nginx and printed its own lines; its
        // warnings (stderr) were kept to find nginx's reason, so they are passed on here.
        output::relay_stderr(messages);
        return;
    }
    match &applied.reload {
        Ok(()) => output::detail("Reloading nginx"),
        Err(why) => output::warn(&format!(
            "nginx was not reloaded ({why}); the new configuration passed nginx -t and will be served once nginx is started or reloaded"
        )),
    }
}
