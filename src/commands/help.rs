//! certs:help: dokku's usage text for the plugin.

use dokku_certs::output;

const COMMANDS: [(&str, &str); 8] = [
    ("certs:add <app> CRT KEY", "Add an ssl endpoint to an app. Can also import from a tarball on stdin"),
    ("certs:generate <app> DOMAIN", "Generate a key and certificate signing request (and self-signed certificate)"),
    ("certs:help", "Show this help"),
    ("certs:info <app>", "Show certificate information for an ssl endpoint"),
    ("certs:remove <app>", "Remove an SSL Endpoint from an app"),
    ("certs:report [<app>] [<flag>]", "Displays an ssl report for one or more apps"),
    ("certs:show <app> crt|key", "Show the server.crt or server.key of an app"),
    ("certs:update <app> CRT KEY", "Update an SSL Endpoint on an app. Can also import from a tarball on stdin"),
];

/// The help text.
pub fn text() -> String {
    let width = COMMANDS.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut text = String::from(
        "Usage: dokku-certs certs[:COMMAND]\n\nManage Dokku apps SSL (TLS) certs.\n\nAdditional commands:\n",
    );
    for (name, what) in COMMANDS {
        text.push_str(&format!("    {name:<width$}  {what}\n"));
    }
    text.push_str(
        "\ncerts:generate flags: --country --state --locality --organization --organizational-unit\n\
         \x20                     --key-type ecdsa-p256|ecdsa-p384|rsa2048|rsa3072|rsa4096\n\
         Environment: DOKKU_ROOT, DOKKU_NGINX_CMD, DOKKU_NGINX_PORT, DOKKU_NGINX_SSL_PORT,\n\
         \x20            DOKKU_NGINX_BIND, DOKKU_NGINX_LOG_DIR, DOKKU_LIB_ROOT, DOKKU_NGINX_GLOBAL_CONF\n\
         Also: nginx:setup (once per host), nginx:set <app>|--global KEY [VALUE], nginx:report [<app>|--global]\n",
    );
    text
}

/// Runs certs:help.
pub fn run() {
    output::raw(&text());
}
