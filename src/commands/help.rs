//! certs:help: dokku's usage text for the plugin.

use crate::output;

const COMMANDS: [(&str, &str); 8] = [
    (
        "certs:add <app> CRT KEY",
        "Add an ssl endpoint to an app. Can also import from a tarball on stdin",
    ),
    (
        "certs:generate <app> DOMAIN",
        "Generate a key and certificate signing request (and self-signed certificate)",
    ),
    ("certs:help", "Show this help"),
    (
        "certs:info <app>",
        "Show certificate information for an ssl endpoint",
    ),
    ("certs:remove <app>", "Remove an SSL Endpoint from an app"),
    (
        "certs:report [<app>] [<flag>]",
        "Displays an ssl report for one or more apps",
    ),
    (
        "certs:show <app> crt|key",
        "Show the server.crt or server.key of an app",
    ),
    (
        "certs:update <app> CRT KEY",
        "Update an SSL Endpoint on an app. Can also import from a tarball on stdin",
    ),
];

/// The help text.
pub fn text() -> String {
    let width = COMMANDS
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
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

/// The lines of dokku's certs plugin help (`fn-help-content`), with certs:info added:
/// `command, description`, as dokku's `column -t -s,` takes them.
const DOKKU_COMMANDS: [&str; 10] = [
    "    certs:add <app> CRT KEY, Add an ssl endpoint to an app. Can also import from a tarball on stdin",
    "    certs:chain CRT [CRT ...], [NOT IMPLEMENTED] Print the ordered and complete chain for the given certificate",
    "    certs:generate <app> DOMAIN, Generate a key and certificate signing request (and self-signed certificate)",
    "    certs:info <app>, Show certificate information for an ssl endpoint",
    "    certs:key <app> CRT KEY [KEY ...], [NOT IMPLEMENTED] Print the correct key for the given certificate",
    "    certs:remove <app>, Remove an SSL Endpoint from an app",
    "    certs:report [<app>] [<flag>], Displays an ssl report for one or more apps",
    "    certs:rollback <app>, [NOT IMPLEMENTED] Rollback an SSL Endpoint for an app",
    "    certs:show <app> <crt|key>, Show the server.crt or server.key on stdout",
    "    certs:update <app> CRT KEY, Update an SSL Endpoint on an app. Can also import from a tarball on stdin",
];

/// dokku's `certs:help`: usage, then the commands aligned as `column -c2 -t -s,` aligns them
/// (first column padded to the widest, two spaces, the rest as written after the comma).
pub fn dokku_text() -> String {
    let split: Vec<(&str, &str)> = DOKKU_COMMANDS
        .iter()
        .filter_map(|line| line.split_once(','))
        .collect();
    let width = split.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut text = String::from(
        "Usage: dokku certs[:COMMAND]\n\nManage SSL (TLS) certs\n\nAdditional commands:\n",
    );
    for (name, what) in split {
        text.push_str(&format!("{name:<width$}  {what}\n"));
    }
    text
}

/// What `certs:help` prints in each place dokku asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `dokku certs:help` (or `dokku-certs certs:help`).
    Full,
    /// `dokku help`: the plugin's one line.
    Summary,
    /// `dokku help --all`: every command line, unaligned, as dokku collects them.
    List,
}

/// Runs certs:help; in dokku mode with dokku's words and shapes.
pub fn run(dokku: bool, shape: Shape) {
    match (dokku, shape) {
        (_, Shape::Summary) => output::raw("    certs, Manage SSL (TLS) certs\n"),
        (_, Shape::List) => output::raw(&DOKKU_COMMANDS.map(|line| format!("{line}\n")).concat()),
        (true, Shape::Full) => output::raw(&dokku_text()),
        (false, Shape::Full) => output::raw(&text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dokku_help_is_aligned_like_column() {
        let text = dokku_text();
        // Measured on dokku's plugin: `fn-help-content | sort | column -c2 -t -s,`.
        assert!(text.contains(
            "\n    certs:add <app> CRT KEY             Add an ssl endpoint to an app. Can also import from a tarball on stdin\n"
        ));
        assert!(text.starts_with(
            "Usage: dokku certs[:COMMAND]\n\nManage SSL (TLS) certs\n\nAdditional commands:\n"
        ));
        let mut sorted = DOKKU_COMMANDS;
        sorted.sort();
        assert_eq!(sorted, DOKKU_COMMANDS, "dokku sorts the lines");
    }
}
