//! nginx:setup: writes the host-wide file (TLS policy, catch-all servers, the apps' include),
//! tests it with nginx -t, reloads, and prints the one include line nginx's http block needs.

use dokku_certs::app::Env;
use dokku_certs::policy;
use dokku_certs::transaction::Applied;

use crate::cli_error::Result;
use crate::output;

/// Runs nginx:setup.
pub fn run() -> Result<()> {
    let env = Env::from_env()?;
    let setup = policy::install(&env)?;
    let (n, o) = (setup.host.nginx, setup.host.openssl);
    output::step(&format!(
        "Wrote {}: Mozilla intermediate TLS for nginx {}.{}.{} with OpenSSL {}.{}.{}, catch-all servers, every app",
        setup.path.display(),
        n.0,
        n.1,
        n.2,
        o.0,
        o.1,
        o.2
    ));
    super::report_reload(&Applied {
        reload: setup.reload.clone(),
        proxy_messages: None,
    });
    output::heading(
        "nginx's http block needs this one line (Debian's nginx.conf has it through conf.d/*.conf):",
    );
    output::raw(&format!("{}\n", setup.include_line()));
    Ok(())
}
