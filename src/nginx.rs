//! nginx: render an app's nginx.conf from the askama templates, test it, reload it.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use askama::Template;

use crate::app::{App, Listener, Settings};
use crate::error::{Error, Result};

#[derive(Template)]
#[template(path = "nginx.conf", escape = "none")]
struct NginxConf<'a> {
    app: &'a str,
    app_dir: String,
    log_dir: String,
    http_listens: Vec<String>,
    ssl_listens: Vec<String>,
    server_name: String,
    has_tls: bool,
    redirect_port: String,
    upstreams: Vec<&'a str>,
}

/// What an app's nginx.conf is made of; every part is already checked (see [`crate::app`]).
#[derive(Debug, Clone)]
pub struct Site<'a> {
    /// The app.
    pub app: &'a App,
    /// Its domains (server_name); none gives `_`.
    pub domains: &'a [String],
    /// Its upstream servers; none gives 502.
    pub listeners: &'a [Listener],
    /// Whether tls/server.crt and server.key are (about to be) in place.
    pub has_tls: bool,
}

/// Renders the app's nginx.conf.
pub fn render(settings: &Settings, site: &Site<'_>) -> String {
    let conf = NginxConf {
        app: &site.app.name,
        app_dir: site.app.dir.display().to_string(),
        log_dir: settings.log_dir.display().to_string(),
        http_listens: listens(settings.bind, settings.http_port),
        ssl_listens: listens(settings.bind, settings.ssl_port),
        server_name: if site.domains.is_empty() { "_".into() } else { site.domains.join(" ") },
        has_tls: site.has_tls,
        redirect_port: if settings.ssl_port == 443 { String::new() } else { format!(":{}", settings.ssl_port) },
        upstreams: site.listeners.iter().map(|l| l.address.as_str()).collect(),
    };
    let mut text = conf.render().expect("the nginx.conf template renders from plain strings");
    text.push('\n');
    text
}

/// The `listen` addresses: the bind address, or every IPv6 and IPv4 address.
fn listens(bind: Option<IpAddr>, port: u16) -> Vec<String> {
    match bind {
        Some(IpAddr::V4(v4)) => vec![format!("{v4}:{port}")],
        Some(IpAddr::V6(v6)) => vec![format!("[{v6}]:{port}")],
        None => vec![format!("[::]:{port}"), port.to_string()],
    }
}

/// Runs `$DOKKU_NGINX_CMD -t`; on failure the error carries nginx's own complaint.
pub fn test(settings: &Settings) -> Result<()> {
    let output = run(settings, "-t")?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::NginxTest(complaint(&output)))
}

/// Runs `$DOKKU_NGINX_CMD -s reload`; on failure, what nginx said.
pub fn reload(settings: &Settings) -> std::result::Result<(), String> {
    match run(settings, "-s reload") {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(complaint(&output)),
        Err(e) => Err(e.to_string()),
    }
}

fn run(settings: &Settings, args: &str) -> Result<std::process::Output> {
    let cmd = format!("{} {args}", settings.nginx_cmd);
    Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::NginxCommand { cmd, source })
}

/// nginx's most telling line: the first [emerg] or [alert], else the last line it wrote.
fn complaint(output: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines
        .iter()
        .find(|l| l.contains("[emerg]") || l.contains("[alert]"))
        .or(lines.last())
        .map(|l| l.to_string())
        .unwrap_or_else(|| format!("exit status {}", output.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn settings() -> Settings {
        Settings::from_lookup(|_| None).unwrap()
    }

    fn app() -> App {
        App { name: "myapp".into(), dir: PathBuf::from("/home/dokku/myapp") }
    }

    #[test]
    fn plain_http_proxies_and_includes_conf_d() {
        let app = app();
        let domains = vec!["myapp.example.com".to_string()];
        let listeners = vec![Listener { address: "127.0.0.1:5000".into() }];
        let text = render(&settings(), &Site { app: &app, domains: &domains, listeners: &listeners, has_tls: false });
        assert!(text.contains("listen      [::]:80;\n  listen      80;"));
        assert!(text.contains("server_name myapp.example.com;"));
        assert!(text.contains("proxy_pass  http://myapp;"));
        assert!(text.contains("include /home/dokku/myapp/nginx.conf.d/*.conf;"));
        assert!(text.contains("upstream myapp {\n  server 127.0.0.1:5000;\n}"));
        assert!(!text.contains("ssl"));
    }

    #[test]
    fn tls_redirects_inside_location_and_serves_http2() {
        let app = app();
        let domains = vec!["a.example.com".to_string(), "b.example.com".to_string()];
        let mut settings = settings();
        settings.ssl_port = 8443;
        settings.bind = Some("127.0.0.1".parse().unwrap());
        let text = render(&settings, &Site { app: &app, domains: &domains, listeners: &[], has_tls: true });
        assert!(text.contains("location    / {\n    return 301 https://$host:8443$request_uri;\n  }"));
        assert!(text.contains("listen      127.0.0.1:8443 ssl http2;"));
        assert!(text.contains("ssl_certificate           /home/dokku/myapp/tls/server.crt;"));
        assert!(text.contains("server_name a.example.com b.example.com;"));
        assert!(text.contains("return 502;"));
        assert!(!text.contains("upstream"));
        assert_eq!(text.matches("include /home/dokku/myapp/nginx.conf.d/*.conf;").count(), 2);
        // No server-level return: it would answer before any nginx.conf.d location.
        assert!(!text.lines().any(|l| l.starts_with("  return")));
    }
}
