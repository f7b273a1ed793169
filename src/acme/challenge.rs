//! HTTP-01 answered by nginx itself: a location in the app's nginx.conf.d/ returns each key
//! authorization, and a self-check waits until nginx really serves it before the CA is asked
//! to look (`nginx -s reload` returns before the new workers answer).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use askama::Template;

use crate::app::{App, Settings};
use crate::dir::{Dir, Kind};
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

/// The directory nginx includes `*.conf` from, in every server block of the app.
const CONF_D: &str = "nginx.conf.d";
/// The file in it that answers the challenges.
const CONF: &str = "letsencrypt.conf";
/// Mode of the file and of nginx.conf.d/ if made here: nginx reads them; key
/// authorizations are public by design (the CA fetches them over plain HTTP).
const CONF_MODE: u32 = 0o644;
const CONF_D_MODE: u32 = 0o755;

/// The file in nginx.conf.d/ that answers the challenges while it exists.
pub fn conf_path(app: &App) -> PathBuf {
    app.dir.join(CONF_D).join(CONF)
}

/// Removes the challenge file a killed letsencrypt:enable left, through the app's handle:
/// only a regular file is removed, and nothing is done through a link (nginx.conf.d/ as a
/// link is left alone; letsencrypt.conf as a link is someone else's, not a leftover).
pub fn remove_leftover(app: &App) {
    if let Ok(Some(conf_d)) = app.handle().open_dir(CONF_D)
        && matches!(conf_d.kind(CONF), Ok(Some(Kind::File)))
    {
        let _ = conf_d.remove_file(CONF);
    }
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
/// Both are reached through the app's directory handle: a link at either name is refused
/// before the CA is contacted, and never written through or deleted through.
pub struct ChallengeFile<'a> {
    app: &'a App,
    /// nginx.conf.d/, once the file is written in it.
    conf_d: Option<Dir>,
    created_dir: bool,
}

impl<'a> ChallengeFile<'a> {
    /// A file not written yet; refuses now if nginx.conf.d or the file is a link or not
    /// what it should be, so that the refusal comes before any order is placed.
    pub fn new(app: &'a App) -> Result<ChallengeFile<'a>> {
        if let Some(conf_d) = app.handle().open_dir(CONF_D)? {
            conf_d.refuse_link(CONF)?;
            if let Some(Kind::Dir | Kind::Other) = conf_d.kind(CONF)? {
                return Err(Error::NotAFile(conf_d.join(CONF), "not a regular file"));
            }
        }
        Ok(ChallengeFile { app, conf_d: None, created_dir: false })
    }

    /// The app whose nginx.conf.d/ holds the file.
    pub fn app(&self) -> &'a App {
        self.app
    }

    /// Writes nginx.conf.d/letsencrypt.conf with every answer, mode 0644 whatever the umask.
    pub fn write(&mut self, answers: &[Answer]) -> Result<()> {
        for answer in answers {
            check_token(&answer.token)?;
            check_token(&answer.key_authorization)?;
        }
        let text = ChallengeConf { app: &self.app.name, answers }.render().expect("the challenge template renders");
        let conf_d = match self.conf_d.take() {
            Some(conf_d) => conf_d,
            None => {
                let (conf_d, created) = self.app.handle().open_or_create_dir(CONF_D, CONF_D_MODE)?;
                self.created_dir |= created;
                conf_d
            }
        };
        conf_d.refuse_link(CONF)?;
        // Written whole under a unique name nginx does not include (it does not end in
        // .conf), then renamed over the entry: a link planted since is replaced, not followed.
        let temp = conf_d.write_temp(&format!(".{CONF}.dokku-certs-tmp."), (text + "\n").as_bytes(), CONF_MODE)?;
        let placed = conf_d.rename(&temp, CONF);
        if placed.is_err() {
            let _ = conf_d.remove_file(&temp);
        }
        self.conf_d = Some(conf_d);
        placed
    }

    /// Removes the file, and nginx.conf.d/ if it was made for it; safe to call twice.
    pub fn remove(&mut self) {
        if let Some(conf_d) = self.conf_d.take() {
            let _ = conf_d.remove_file(CONF);
        }
        if self.created_dir {
            self.app.handle().remove_empty_dir(CONF_D);
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
    fn a_leftover_goes_but_never_through_a_link() {
        let top = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(top.path().join("myapp/nginx.conf.d")).unwrap();
        std::fs::write(top.path().join("myapp/nginx.conf.d/letsencrypt.conf"), "left").unwrap();
        std::fs::write(top.path().join("secret"), "keep").unwrap();
        let app = App::from_dir("myapp", Dir::open_top(&top.path().join("myapp")).unwrap());
        remove_leftover(&app);
        assert!(!top.path().join("myapp/nginx.conf.d/letsencrypt.conf").exists());
        std::os::unix::fs::symlink(top.path().join("secret"), top.path().join("myapp/nginx.conf.d/letsencrypt.conf"))
            .unwrap();
        remove_leftover(&app);
        assert!(top.path().join("myapp/nginx.conf.d/letsencrypt.conf").is_symlink());
        assert_eq!(std::fs::read(top.path().join("secret")).unwrap(), b"keep");
    }

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
