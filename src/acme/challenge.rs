//! HTTP-01 answered by nginx itself: a location in the app's nginx.conf.d/ returns each key
//! authorization, and a self-check waits until nginx really serves it before the CA is asked
//! to look (`nginx -s reload` returns before the new workers answer).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use askama::Template;

use crate::app::{App, Settings};
use crate::error::{Error, Result};

/// One challenge nginx must answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The domain being validated.
    pub domain: String,
    /// The token in the URL.
    pub token: String,
    /// The body to return.
    pub key_authorization: String,
}

#[derive(Template)]
#[template(path = "letsencrypt.conf", escape = "none")]
struct ChallengeConf<'a> {
    app: &'a str,
    answers: &'a [Answer],
}

/// The file in nginx.conf.d/ that answers the challenges while it exists.
pub fn conf_path(app: &App) -> PathBuf {
    app.dir.join("nginx.conf.d").join("letsencrypt.conf")
}

/// Tokens and key authorizations are base64url (and a dot): anything else could inject
/// into nginx.conf, so it is refused.
fn check_token(value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 512
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::Acme(format!("the CA sent a challenge token nginx cannot serve safely: {value:?}")))
    }
}

/// nginx.conf.d/letsencrypt.conf while it exists: removed (with nginx.conf.d/ if this
/// made it) by [`ChallengeFile::remove`] or when dropped, whatever path the issuance took.
pub struct ChallengeFile<'a> {
    app: &'a App,
    created_dir: bool,
}

impl<'a> ChallengeFile<'a> {
    /// A file not written yet.
    pub fn new(app: &'a App) -> ChallengeFile<'a> {
        ChallengeFile { app, created_dir: false }
    }

    /// Writes nginx.conf.d/letsencrypt.conf with every answer.
    pub fn write(&mut self, answers: &[Answer]) -> Result<()> {
        for answer in answers {
            check_token(&answer.token)?;
            check_token(&answer.key_authorization)?;
        }
        let text = ChallengeConf { app: &self.app.name, answers }.render().expect("the challenge template renders");
        let dir = self.app.dir.join("nginx.conf.d");
        if !dir.exists() {
            std::fs::create_dir(&dir).map_err(|source| Error::Write { path: dir.clone(), source })?;
            self.created_dir = true;
        }
        let path = conf_path(self.app);
        std::fs::write(&path, text + "\n").map_err(|source| Error::Write { path, source })
    }

    /// Removes the file, and nginx.conf.d/ if it was made for it; safe to call twice.
    pub fn remove(&mut self) {
        let _ = std::fs::remove_file(conf_path(self.app));
        if self.created_dir {
            let _ = std::fs::remove_dir(self.app.dir.join("nginx.conf.d"));
            self.created_dir = false;
        }
    }
}

impl Drop for ChallengeFile<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

/// How long nginx must answer correctly, without a single wrong answer, to count as serving
/// the challenge. On reload nginx's master starts the new workers, then waits 100 ms before
/// telling the old ones (without the challenge) to stop accepting: until then both answer,
/// and a CA that validates from several perspectives (Pebble makes three requests) may
/// reach an old one. Sampling every 10 ms over 200 ms all but rules that out.
const STEADY_FOR: Duration = Duration::from_millis(200);

/// Waits (up to `timeout`) until nginx on this machine answers every challenge as the CA
/// will ask for it: plain HTTP on DOKKU_NGINX_PORT with the domain as Host.
pub fn wait_until_served(settings: &Settings, answers: &[Answer], timeout: Duration) -> Result<()> {
    let address = SocketAddr::new(local_address(settings.bind), settings.http_port);
    let deadline = Instant::now() + timeout;
    let mut steady_since: Option<Instant> = None;
    loop {
        let mut all_right = Ok(());
        for answer in answers {
            let got = fetch(address, &answer.domain, &format!("/.well-known/acme-challenge/{}", answer.token));
            if got.as_deref().ok() != Some(answer.key_authorization.as_str()) {
                all_right = Err((answer, got));
                break;
            }
        }
        match all_right {
            Ok(()) => {
                let since = *steady_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STEADY_FOR {
                    return Ok(());
                }
            }
            Err((answer, got)) => {
                steady_since = None;
                if Instant::now() > deadline {
                    return Err(Error::Acme(format!(
                        "nginx does not answer the challenge for {} on http://{address}/.well-known/acme-challenge/ ({}); is nginx running with DOKKU_ROOT/*/nginx.conf included?",
                        answer.domain,
                        got.err().unwrap_or_else(|| "a different answer".into())
                    )));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Where to reach the local nginx: the bind address, or loopback when it listens everywhere.
pub(crate) fn local_address(bind: Option<IpAddr>) -> IpAddr {
    match bind {
        Some(ip) if ip.is_unspecified() && ip.is_ipv6() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        Some(ip) if !ip.is_unspecified() => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// GET over plain HTTP/1.1; the body of a 200 answer.
fn fetch(address: SocketAddr, host: &str, path: &str) -> std::result::Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response).map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status == "200" { Ok(body.trim_end().to_string()) } else { Err(format!("HTTP {status}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_that_could_inject_are_refused() {
        assert!(check_token("abc-DEF_123.xyz").is_ok());
        for bad in ["", "a\"b", "a;b", "a b", "a}b", "a$b", "a\nb"] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_conf_is_one_prefix_location_with_an_exact_location_per_token() {
        let answers =
            [Answer { domain: "a.example.com".into(), token: "tok1".into(), key_authorization: "tok1.thumb".into() }];
        let text = ChallengeConf { app: "myapp", answers: &answers }.render().unwrap();
        assert!(text.contains("location ^~ /.well-known/acme-challenge/ {"));
        assert!(text.contains("  location = /.well-known/acme-challenge/tok1 {\n    return 200 \"tok1.thumb\";\n  }"));
    }
}
