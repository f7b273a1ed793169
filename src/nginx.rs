//! nginx: render an app's nginx.conf from the askama templates, test it, reload it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use askama::Template;

use crate::app::{App, Env, Listener};
use crate::error::{Error, Result};
use crate::properties::Resolved;
use crate::{master, scoped};

#[derive(Template)]
#[template(path = "nginx.conf", escape = "none")]
struct NginxConf<'a> {
    app: &'a str,
    app_dir: String,
    /// The app's nginx.conf.d, included by every server block.
    conf_d: String,
    http_listens: Vec<String>,
    ssl_listens: Vec<String>,
    /// nginx >= 1.25.1: `http2 on;` instead of the deprecated `listen ... http2`.
    http2_directive: bool,
    server_name: String,
    has_tls: bool,
    redirect_port: String,
    upstreams: Vec<&'a str>,
    /// The app's nginx properties (nginx:set), every value already checked.
    p: &'a Resolved,
    hsts: Option<String>,
}

/// What an app's nginx.conf is made of; every part is already checked (see [`crate::app`]).
#[derive(Debug, Clone)]
pub struct Site<'a> {
    pub app: &'a App,
    /// Its domains (server_name); none gives `_`.
    pub domains: &'a [String],
    /// Its upstream servers; none gives 502.
    pub listeners: &'a [Listener],
    /// Whether tls/server.crt and server.key are (about to be) in place.
    pub has_tls: bool,
}

/// Renders the app's nginx.conf with its nginx properties and the host nginx's syntax.
pub fn render(env: &Env, site: &Site<'_>) -> Result<String> {
    let properties = crate::properties::Store::new(env).resolve(&site.app.name)?;
    Ok(render_with(env, site, &properties, host(env)))
}

/// [`render`] with the properties and the host's versions given.
pub fn render_with(env: &Env, site: &Site<'_>, properties: &Resolved, host: Host) -> String {
    let conf = NginxConf {
        app: &site.app.name,
        app_dir: site.app.dir.display().to_string(),
        conf_d: site.app.conf_d_path().display().to_string(),
        http_listens: listens(env.bind, env.http_port),
        ssl_listens: listens(env.bind, env.ssl_port),
        http2_directive: host.http2_directive(),
        server_name: if site.domains.is_empty() {
            "_".into()
        } else {
            site.domains.join(" ")
        },
        has_tls: site.has_tls,
        redirect_port: if env.ssl_port == 443 {
            String::new()
        } else {
            format!(":{}", env.ssl_port)
        },
        upstreams: site.listeners.iter().map(|l| l.address.as_str()).collect(),
        p: properties,
        hsts: properties.hsts_header(),
    };
    let mut text = conf
        .render()
        .expect("the nginx.conf template renders from plain strings");
    text.push('\n');
    text
}

/// A version as three numbers (`1.22.1`, OpenSSL `3.0.19`).
pub type Version = (u32, u32, u32);

/// The host's nginx and the OpenSSL it runs with, as `nginx -V` tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// nginx's version.
    pub nginx: Version,
    /// OpenSSL's version (the one nginx runs with).
    pub openssl: Version,
}

impl Host {
    /// What is assumed when `nginx -V` cannot be read: Debian 12's nginx and OpenSSL, whose
    /// syntax every later nginx still accepts.
    pub const FALLBACK: Host = Host {
        nginx: (1, 22, 1),
        openssl: (3, 0, 0),
    };

    /// `http2 on;` exists from nginx 1.25.1, which deprecates `listen ... http2`.
    pub fn http2_directive(&self) -> bool {
        self.nginx >= (1, 25, 1)
    }
}

/// Reads `$DOKKU_NGINX_CMD -V` once per process.
pub fn host(env: &Env) -> Host {
    parse_host(version_text(env)).unwrap_or(Host::FALLBACK)
}

/// What `$DOKKU_NGINX_CMD -V` prints (versions, `--prefix=`, `--conf-path=`...), run once.
fn version_text(env: &Env) -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        run(env, "-V")
            .map(|out| {
                String::from_utf8_lossy(&out.stderr).into_owned()
                    + &String::from_utf8_lossy(&out.stdout)
            })
            .unwrap_or_default()
    })
}

/// Where the host's nginx keeps what a one-app test and a reload by pid need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The command words before the first flag (`nginx`, `sudo nginx`).
    program: Vec<String>,
    /// `-p`, `-e` and `-g` as given in DOKKU_NGINX_CMD, passed on unchanged.
    flags: Vec<String>,
    /// The main config (`-c`, else `--conf-path=`).
    pub conf: PathBuf,
    /// The directory relative includes are resolved against: the main config's.
    pub conf_prefix: PathBuf,
    /// The master's pid file (`pid` in the main config, else `--pid-path=`).
    pub pid: PathBuf,
    /// The master's error log, when it is a file (`error_log`, else `-e`, else `--error-log-path=`).
    pub error_log: Option<PathBuf>,
}

/// The host's [`Layout`], once per process; `None` when DOKKU_NGINX_CMD is not a plain
/// `nginx [-p P] [-c C] [-e E]` or names no main config (`true` in benchmarks): then every
/// change uses the full `nginx -t` and `nginx -s reload`.
pub fn layout(env: &Env) -> Option<&'static Layout> {
    static LAYOUT: std::sync::OnceLock<Option<Layout>> = std::sync::OnceLock::new();
    LAYOUT
        .get_or_init(|| parse_layout(&env.nginx_cmd, version_text(env)))
        .as_ref()
}

fn parse_layout(cmd: &str, version: &str) -> Option<Layout> {
    if cmd.contains(['\'', '"', '`', '$', ';', '|', '&', '<', '>', '(', ')', '\\']) {
        return None;
    }
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let first_flag = words
        .iter()
        .position(|w| w.starts_with('-'))
        .unwrap_or(words.len());
    let program: Vec<String> = words[..first_flag].iter().map(|w| w.to_string()).collect();
    let (mut given, mut flags) = (HashMap::new(), Vec::new());
    for pair in words[first_flag..].chunks(2) {
        let [flag, value] = pair else { return None };
        match *flag {
            "-p" | "-e" | "-g" => flags.extend([flag.to_string(), value.to_string()]),
            "-c" => {}
            _ => return None,
        }
        given.insert(*flag, *value);
    }
    let configured = |name: &str| {
        version
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
    };
    let prefix = PathBuf::from(
        given
            .get("-p")
            .copied()
            .or_else(|| configured("--prefix="))?,
    );
    let conf = prefix.join(
        given
            .get("-c")
            .copied()
            .or_else(|| configured("--conf-path="))?,
    );
    let conf_prefix = conf.parent()?.to_path_buf();
    let main = std::fs::read_to_string(&conf).ok()?;
    let main_directives = scoped::directives(&main)?;
    let main_arg = |name: &str| {
        main_directives
            .iter()
            .rfind(|d| d.depth == 0 && d.words.len() >= 2 && d.words[0] == name)
            .map(|d| d.words[1].clone())
    };
    let pid = prefix.join(main_arg("pid").or_else(|| configured("--pid-path=").map(String::from))?);
    let error_log = main_arg("error_log")
        .or_else(|| given.get("-e").map(|e| e.to_string()))
        .or_else(|| configured("--error-log-path=").map(String::from))
        .filter(|log| log != "stderr" && !log.contains(':'))
        .map(|log| prefix.join(log));
    (!program.is_empty()).then_some(Layout {
        program,
        flags,
        conf,
        conf_prefix,
        pid,
        error_log,
    })
}

/// Parses `nginx version: nginx/1.22.1` and `built with OpenSSL 3.0.9 ... (running with OpenSSL 3.0.19 ...)`.
fn parse_host(text: &str) -> Option<Host> {
    let after = |marker: &str| {
        text.find(marker)
            .and_then(|at| parse_version(&text[at + marker.len()..]))
    };
    let nginx = after("nginx/")?;
    let openssl = after("running with OpenSSL ")
        .or_else(|| after("built with OpenSSL "))
        .unwrap_or(Host::FALLBACK.openssl);
    Some(Host { nginx, openssl })
}

fn parse_version(text: &str) -> Option<Version> {
    let word: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = word.split('.').map(|part| part.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// The `listen` addresses: the bind address, or every IPv6 and IPv4 address.
pub fn listens(bind: Option<IpAddr>, port: u16) -> Vec<String> {
    match bind {
        Some(IpAddr::V4(v4)) => vec![format!("{v4}:{port}")],
        Some(IpAddr::V6(v6)) => vec![format!("[{v6}]:{port}")],
        None => vec![format!("[::]:{port}"), port.to_string()],
    }
}

/// Runs `$DOKKU_NGINX_CMD -t`; on failure the error carries nginx's own complaint.
pub fn test(env: &Env) -> Result<()> {
    let output = run(env, "-t")?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::NginxTest(complaint(&output)))
}

/// `nginx -t` for one app's change: the host's config with only this app's nginx.conf in
/// place of every app's (see [`crate::scoped`]); the full test when the host's config cannot
/// be scoped that way.
pub fn test_app(env: &Env, app: &App) -> Result<()> {
    let apps_pattern = env.dokku_root.join("*").join("nginx.conf");
    let Some(layout) = layout(env) else {
        return test(env);
    };
    let Some(scoped) = scoped::build(
        &layout.conf,
        &layout.conf_prefix,
        &apps_pattern,
        &app.nginx_conf_path(),
    ) else {
        return test(env);
    };
    let output = Command::new(&layout.program[0])
        .args(&layout.program[1..])
        .args(&layout.flags)
        .arg("-c")
        .arg(&scoped.main)
        .arg("-t")
        .stdin(Stdio::null())
        .output();
    // Not startable (not on PATH, say under cron): the full test through the shell says so
    // in the words users know (`nginx: not found`).
    let Ok(output) = output else { return test(env) };
    if output.status.success() {
        return Ok(());
    }
    Err(Error::NginxTest(scoped.explain(&complaint(&output))))
}

/// Why nginx was not reloaded although the change passed its test: the tested files stay,
/// and nginx serves them once it is started or reloaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReloaded {
    /// No running master to signal (no pid file, a stale one, a signal not allowed).
    #[error("{0}")]
    NotRunning(String),
    /// `nginx -s reload` failed (a host whose nginx command cannot be scoped): nginx's words.
    #[error("{0}")]
    Failed(String),
}

/// Reloads nginx and waits until its master accepted or refused the change, and its old
/// workers stopped accepting connections (see [`crate::master`]). `Ok(Err(_))`: nginx is not
/// running, so there is nothing to confirm; `Err`: the master refused it or never answered,
/// and the caller puts the files back.
pub fn reload_confirmed(env: &Env) -> Result<std::result::Result<(), NotReloaded>> {
    let Some(layout) = layout(env) else {
        return Ok(reload(env));
    };
    match master::reload(
        &layout.pid,
        layout.error_log.as_deref(),
        master::RELOAD_TIMEOUT,
    ) {
        master::Reload::Accepted => Ok(Ok(())),
        master::Reload::NotRunning(why) => Ok(Err(NotReloaded::NotRunning(why))),
        master::Reload::Refused(why) => Err(Error::NginxReloadRefused(why)),
        master::Reload::Unconfirmed(why) => Err(Error::NginxReloadUnconfirmed(why)),
    }
}

/// The longest a command waits, after the master took the change, for the new certificate
/// to be served: at 10,000 apps the new workers need seconds before they answer
/// (BENCHMARKS.md, section 7).
pub const SERVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// After a reload the master took: waits until nginx serves `crt_pem`'s leaf for the app's
/// first domain on the app's TLS address ([`probe_address`]). `Some(warning)` when it did
/// not within [`SERVE_TIMEOUT`]: the change has landed, but this command cannot say clients
/// see it. `None` also when there is nothing to ask: no domain, no certificate in `crt_pem`,
/// or a host whose master is not known ([`layout`] is `None`: `DOKKU_NGINX_CMD=true` has
/// no nginx to ask, and the reload went through `nginx -s reload`, which confirms nothing).
pub fn confirm_served(env: &Env, domains: &[String], crt_pem: &str) -> Option<String> {
    layout(env)?;
    let sni = probe_name(domains.first()?);
    let leaf = crate::pem::certificates(crt_pem.as_bytes())
        .ok()?
        .into_iter()
        .next()?;
    confirm_served_at(probe_address(env.bind, env.ssl_port), &sni, &leaf)
}

/// Waits up to [`SERVE_TIMEOUT`] until `addr` serves the leaf `leaf` for `sni`; `Some(warning)`
/// when it did not, with what it served instead and the command to look.
pub fn confirm_served_at(addr: std::net::SocketAddr, sni: &str, leaf: &[u8]) -> Option<String> {
    let deadline = std::time::Instant::now() + SERVE_TIMEOUT;
    let not_served = master::confirm_served(addr, sni, leaf, deadline).err()?;
    Some(format!(
        "nginx took the new configuration, but after {} s {not_served}, not the new certificate; check with: openssl s_client -connect {addr} -servername {sni}",
        SERVE_TIMEOUT.as_secs()
    ))
}

/// Where the host itself reaches the app's TLS `listen`: the bind address when it is one
/// (any address of this host is reachable from it), else loopback: 127.0.0.1 for the
/// default `listen 443` (0.0.0.0) and for `0.0.0.0`, ::1 for `[::]`.
pub fn probe_address(bind: Option<IpAddr>, port: u16) -> std::net::SocketAddr {
    let ip = match bind {
        Some(ip) if !ip.is_unspecified() => ip,
        Some(IpAddr::V6(_)) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        _ => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    std::net::SocketAddr::new(ip, port)
}

/// The SNI that reaches a domain's server block: the domain itself, or for a wildcard one
/// name it covers.
pub fn probe_name(domain: &str) -> String {
    match domain.strip_prefix("*.") {
        Some(parent) => format!("dokku-certs-check.{parent}"),
        None => domain.to_string(),
    }
}

/// After the files were put back because a reload was not confirmed: one more SIGHUP, so a
/// master that took the new files late reads the old ones again. No wait.
pub fn reload_after_roll_back(env: &Env, error: &Error) {
    if let (Error::NginxReloadUnconfirmed(_), Some(layout)) = (error, layout(env)) {
        master::signal_only(&layout.pid);
    }
}

/// Runs `$DOKKU_NGINX_CMD -s reload`; on failure, what nginx said.
pub fn reload(env: &Env) -> std::result::Result<(), NotReloaded> {
    match run(env, "-s reload") {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(NotReloaded::Failed(complaint(&output))),
        Err(e) => Err(NotReloaded::Failed(e.to_string())),
    }
}

fn run(env: &Env, args: &str) -> Result<std::process::Output> {
    let cmd = format!("{} {args}", env.nginx_cmd);
    Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::NginxCommand { cmd, source })
}

/// nginx's most telling line: the first [emerg] or [alert], else the last line it wrote.
fn complaint(output: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    telling_line(&text).unwrap_or_else(|| format!("exit status {}", output.status))
}

/// The most telling line of what nginx (or a script around it) wrote: the first [emerg] or
/// [alert], else the last non-empty line.
pub fn telling_line(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| l.contains("[emerg]") || l.contains("[alert]"))
        .or(lines.last())
        .map(|l| l.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_lookup(|_| None).unwrap()
    }

    fn app() -> App {
        App::unopened("myapp", "/home/dokku/myapp")
    }

    /// The defaults: no property file under an empty DOKKU_LIB_ROOT.
    fn defaults() -> Resolved {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::from_lookup(|name| {
            (name == "DOKKU_LIB_ROOT").then(|| dir.path().display().to_string())
        });
        crate::properties::Store::new(&env.unwrap())
            .resolve("myapp")
            .unwrap()
    }

    fn render_for(env: &Env, site: &Site<'_>, host: Host) -> String {
        render_with(env, site, &defaults(), host)
    }

    #[test]
    fn plain_http_proxies_with_dokkus_defaults_and_includes_conf_d() {
        let app = app();
        let domains = vec!["myapp.example.com".to_string()];
        let listeners = vec![Listener {
            address: "127.0.0.1:5000".into(),
        }];
        let site = Site {
            app: &app,
            domains: &domains,
            listeners: &listeners,
            has_tls: false,
        };
        let text = render_for(&env(), &site, Host::FALLBACK);
        assert!(text.contains("listen      [::]:80;\n  listen      80;"));
        assert!(text.contains("server_name myapp.example.com;"));
        assert!(text.contains("access_log  /var/log/nginx/myapp-access.log;"));
        assert!(text.contains("client_max_body_size 1m;"));
        assert!(text.contains("proxy_pass  http://myapp;"));
        assert!(text.contains("proxy_read_timeout 60s;"));
        assert!(text.contains("proxy_buffers 8 4k;"));
        assert!(text.contains("proxy_set_header Connection $http_connection;"));
        assert!(text.contains("proxy_set_header X-Forwarded-For $remote_addr;"));
        assert!(!text.contains("X-Forwarded-Ssl"));
        assert!(text.contains("include /home/dokku/myapp/nginx.conf.d/*.conf;"));
        assert!(text.contains("upstream myapp {\n  server 127.0.0.1:5000;\n}"));
        assert!(!text.contains("ssl") && !text.contains("Strict-Transport-Security"));
    }

    #[test]
    fn tls_redirects_with_308_inside_location_and_sends_hsts() {
        let app = app();
        let domains = vec!["a.example.com".to_string(), "b.example.com".to_string()];
        let mut env = env();
        env.ssl_port = 8443;
        env.bind = Some("127.0.0.1".parse().unwrap());
        let site = Site {
            app: &app,
            domains: &domains,
            listeners: &[],
            has_tls: true,
        };
        let text = render_for(&env, &site, Host::FALLBACK);
        assert!(
            text.contains("location    / {\n    return 308 https://$host:8443$request_uri;\n  }")
        );
        assert!(text.contains("listen      127.0.0.1:8443 ssl http2;\n  server_name"));
        assert!(text.contains("ssl_certificate           /home/dokku/myapp/tls/server.crt;"));
        assert!(text.contains(
            "add_header  Strict-Transport-Security \"max-age=15724800; includeSubdomains\" always;"
        ));
        assert_eq!(
            text.matches("Strict-Transport-Security").count(),
            1,
            "HSTS only over https"
        );
        assert!(text.contains("server_name a.example.com b.example.com;"));
        assert!(text.contains("return 502;"));
        assert!(!text.contains("upstream"));
        assert_eq!(
            text.matches("include /home/dokku/myapp/nginx.conf.d/*.conf;")
                .count(),
            2
        );
        // No server-level return: it would answer before any nginx.conf.d location.
        assert!(!text.lines().any(|l| l.starts_with("  return")));
    }

    #[test]
    fn nginx_1_25_1_and_later_get_http2_on() {
        let app = app();
        let site = Site {
            app: &app,
            domains: &[],
            listeners: &[],
            has_tls: true,
        };
        let text = render_for(
            &env(),
            &site,
            Host {
                nginx: (1, 25, 1),
                openssl: (3, 0, 0),
            },
        );
        assert!(
            text.contains("listen      [::]:443 ssl;\n  listen      443 ssl;\n  http2       on;\n"),
            "{text}"
        );
        assert!(!text.contains(" http2;"));
    }

    #[test]
    fn the_layout_comes_from_the_command_the_main_config_and_nginx_dash_capital_v() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!("pid {d}/run/nginx.pid;\nevents {{}}\n"),
        )
        .unwrap();
        let version = "nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf --error-log-path=stderr --pid-path=/run/nginx.pid";
        let layout = parse_layout(
            &format!("nginx -p {d} -c {d}/nginx.conf -e {d}/error.log"),
            version,
        )
        .unwrap();
        assert_eq!(layout.program, ["nginx"]);
        assert_eq!(
            layout.flags,
            [
                "-p".to_string(),
                d.to_string(),
                "-e".into(),
                format!("{d}/error.log")
            ]
        );
        assert_eq!(layout.conf_prefix, dir.path());
        assert_eq!(
            layout.pid,
            dir.path().join("run/nginx.pid"),
            "the main config's pid wins"
        );
        assert_eq!(
            layout.error_log,
            Some(dir.path().join("error.log")),
            "-e when the main config names none"
        );
        // No main config to read (`true` prints no -V), shell syntax, unknown flags: the full test.
        assert_eq!(parse_layout("true", ""), None);
        assert_eq!(
            parse_layout(
                &format!("nginx -c {d}/nginx.conf -g 'daemon off;'"),
                version
            ),
            None
        );
        assert_eq!(
            parse_layout(&format!("nginx -q -c {d}/nginx.conf"), version),
            None
        );
    }

    #[test]
    fn the_confirming_handshake_goes_where_the_host_reaches_the_tls_listen() {
        let at =
            |bind: Option<&str>| probe_address(bind.map(|b| b.parse().unwrap()), 8443).to_string();
        assert_eq!(at(None), "127.0.0.1:8443", "listen 8443 and [::]:8443");
        assert_eq!(at(Some("0.0.0.0")), "127.0.0.1:8443");
        assert_eq!(at(Some("::")), "[::1]:8443");
        assert_eq!(at(Some("127.0.0.7")), "127.0.0.7:8443");
        assert_eq!(at(Some("fd00::5")), "[fd00::5]:8443");
        assert_eq!(probe_name("*.example.com"), "dokku-certs-check.example.com");
        assert_eq!(probe_name("a.example.com"), "a.example.com");
    }

    #[test]
    fn versions_come_from_nginx_dash_capital_v() {
        let text = "nginx version: nginx/1.22.1\nbuilt with OpenSSL 3.0.9 30 May 2023 (running with OpenSSL 3.0.19 27 Jan 2026)\n";
        assert_eq!(
            parse_host(text),
            Some(Host {
                nginx: (1, 22, 1),
                openssl: (3, 0, 19)
            })
        );
        let text = "nginx version: nginx/1.27.4\nbuilt with OpenSSL 3.5.1 1 Jul 2025\n";
        assert_eq!(
            parse_host(text),
            Some(Host {
                nginx: (1, 27, 4),
                openssl: (3, 5, 1)
            })
        );
        assert_eq!(parse_host("sh: nginx: not found"), None);
        assert!(!Host::FALLBACK.http2_directive());
    }
}
