//! The host-wide nginx file that `nginx:setup` writes: Mozilla's intermediate TLS policy for
//! the host's nginx and OpenSSL, `server_tokens off`, a catch-all default server on every
//! address dokku-certs renders, and the include of every app's nginx.conf.

use std::path::PathBuf;

use askama::Template;

use crate::app::Env;
use crate::error::{Error, Result};
use crate::nginx::{self, Host, listens};
use crate::paths::{self, remove_if_exists, write_by_rename};

/// Mozilla guideline 6.0, intermediate: the TLS 1.2 suites (all ECDHE with AEAD; TLS 1.3's
/// are OpenSSL's defaults). 6.0 dropped the DHE suites, so no dhparam file is needed.
const CIPHERS: [&str; 6] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];

#[derive(Template)]
#[template(path = "policy.conf", escape = "none")]
struct PolicyConf {
    nginx: String,
    openssl: String,
    curves: String,
    ciphers: String,
    tickets_off: bool,
    http_listens: Vec<String>,
    ssl_listens: Vec<String>,
    http2_directive: bool,
    dokku_root: String,
}

/// Mozilla's curves for this OpenSSL: the post-quantum hybrid needs OpenSSL 3.5.
fn curves(host: Host) -> Vec<&'static str> {
    let hybrid = (host.openssl >= (3, 5, 0)).then_some("X25519MLKEM768");
    hybrid
        .into_iter()
        .chain(["X25519", "prime256v1", "secp384r1"])
        .collect()
}

fn dotted((a, b, c): nginx::Version) -> String {
    format!("{a}.{b}.{c}")
}

/// The global file's text for this environment and host.
pub fn render(env: &Env, host: Host) -> String {
    let conf = PolicyConf {
        nginx: dotted(host.nginx),
        openssl: dotted(host.openssl),
        curves: curves(host).join(":"),
        ciphers: CIPHERS.join(":"),
        // Mozilla: nginx from 1.23.2 rotates its ticket keys; before, tickets stay off.
        tickets_off: host.nginx < (1, 23, 2),
        http_listens: listens(env.bind, env.http_port),
        ssl_listens: listens(env.bind, env.ssl_port),
        http2_directive: host.http2_directive(),
        dokku_root: env.dokku_root.display().to_string(),
    };
    let mut text = conf
        .render()
        .expect("the policy template renders from plain strings");
    text.push('\n');
    text
}

/// What nginx:setup did.
#[derive(Debug)]
pub struct Setup {
    /// The file written.
    pub path: PathBuf,
    /// The versions the policy was chosen for.
    pub host: Host,
    /// `Err` says why nginx was not reloaded (the tested file stays).
    pub reload: std::result::Result<(), nginx::NotReloaded>,
}

impl Setup {
    /// The one line the host's nginx needs inside `http { }` (Debian's nginx.conf already
    /// includes /etc/nginx/conf.d/*.conf).
    pub fn include_line(&self) -> String {
        format!("include {};", self.path.display())
    }
}

/// Writes the global file, runs `nginx -t`, and reloads; if nginx refuses, the previous
/// file (or none) is put back.
pub fn install(env: &Env) -> Result<Setup> {
    let host = nginx::host(env);
    let path = env.global_conf.clone();
    let previous = paths::read_if_exists(&path)?;
    write_by_rename(&path, render(env, host).as_bytes(), 0o644)?;
    if let Err(error) = nginx::test(env) {
        let _ = match &previous {
            Some(bytes) => write_by_rename(&path, bytes, 0o644),
            None => remove_if_exists(&path).map(drop),
        };
        return Err(match error {
            Error::NginxTest(complaint) => {
                let hint = hint_for(&complaint);
                Error::PolicyRejected {
                    path,
                    complaint,
                    hint,
                }
            }
            other => other,
        });
    }
    Ok(Setup {
        path,
        host,
        reload: nginx::reload(env),
    })
}

/// What to do about the refusals a stock host gives.
fn hint_for(complaint: &str) -> &'static str {
    if complaint.contains("duplicate default server") {
        "; another server is the default one for that port (Debian's /etc/nginx/sites-enabled/default): remove it, as the README's host set-up says"
    } else if complaint.contains("is duplicate") {
        "; the host's nginx.conf sets it already: comment it out there, as the README's host set-up says"
    } else if complaint.contains("conflicting server name") || complaint.contains("nginx.conf") {
        "; if /etc/nginx/conf.d/dokku.conf (or another file) also includes the apps' nginx.conf, remove that include"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        let mut env = Env::from_lookup(|_| None).unwrap();
        env.bind = Some("127.0.0.1".parse().unwrap());
        env
    }

    #[test]
    fn debian_12_gets_mozilla_intermediate_with_tickets_off() {
        let text = render(
            &env(),
            Host {
                nginx: (1, 22, 1),
                openssl: (3, 0, 19),
            },
        );
        assert!(
            text.contains("ssl_ecdh_curve      X25519:prime256v1:secp384r1;\n"),
            "{text}"
        );
        assert!(text.contains(&format!("ssl_ciphers         {};\n", CIPHERS.join(":"))));
        assert!(text.contains("ssl_session_cache   shared:DokkuCerts:10m;\n"));
        assert!(text.contains("\nssl_session_tickets off;\n"));
        assert!(text.contains("server_tokens       off;"));
        assert!(text.contains("  listen      127.0.0.1:80 default_server;\n"));
        assert!(text.contains("  listen      127.0.0.1:443 ssl http2 default_server;\n"));
        assert!(text.contains("ssl_reject_handshake      on;"));
        assert!(text.contains("return      444;"));
        assert!(!text.contains("http2       on;"));
        assert!(text.ends_with("include /home/dokku/*/nginx.conf;\n"));
    }

    #[test]
    fn newer_nginx_and_openssl_get_http2_on_tickets_and_the_hybrid_curve() {
        let text = render(
            &env(),
            Host {
                nginx: (1, 27, 4),
                openssl: (3, 5, 1),
            },
        );
        assert!(text.contains("ssl_ecdh_curve      X25519MLKEM768:X25519:prime256v1:secp384r1;\n"));
        assert!(!text.contains("ssl_session_tickets"));
        assert!(
            text.contains("  listen      127.0.0.1:443 ssl default_server;\n  http2       on;\n")
        );
    }
}
