//! HTTP-01 answered by nginx itself. Standalone: the app's nginx.conf always has a location
//! that serves `acme-challenge/<token>` files, so answering is writing files, with no reload
//! ([`ChallengeDir`]). dokku mode (dokku renders nginx.conf): a location in the app's
//! nginx.conf.d/ returns each key authorization and the proxy is reloaded ([`ChallengeFile`]).
//! Either way a self-check sees nginx serve every answer before the CA is asked to look.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use askama::Template;

use crate::app::{App, CONF_D, Env};
use crate::dir::{Dir, Kind};
use crate::error::{Error, Result};
use crate::event::{Event, Reporter};
use crate::transaction::{self, Change};

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

/// The file in it that answers the challenges.
const CONF: &str = "letsencrypt.conf";
/// Mode of the file and of nginx.conf.d/ if made here: nginx reads them; key
/// authorizations are public by design (the CA fetches them over plain HTTP).
const CONF_MODE: u32 = 0o644;
const CONF_D_MODE: u32 = 0o755;

/// The file in nginx.conf.d/ that answers the challenges while it exists.
pub fn conf_path(app: &App) -> PathBuf {
    app.conf_d_path().join(CONF)
}

/// Removes the answers and the challenge file a killed letsencrypt:enable left, through the app's handle:
/// only a regular file is removed, and nothing is done through a link (nginx.conf.d/ as a
/// link is left alone; letsencrypt.conf as a link is someone else's, not a leftover).
pub fn remove_leftover(app: &App) {
    // acme-challenge/ is ours alone under the app's lock: removed entry by entry, a link
    // inside unlinked, never followed. A link AT it is left for [`ChallengeDir::new`] to refuse.
    if matches!(app.handle().kind(DIR), Ok(Some(Kind::Dir))) {
        let _ = app.handle().remove_tree(DIR);
    }
    if let Ok(Some(conf_d)) = app.handle().open_dir(CONF_D)
        && matches!(conf_d.kind(CONF), Ok(Some(Kind::File)))
    {
        let _ = conf_d.remove_file(CONF);
    }
}

/// The directory, in the app's directory, whose files nginx serves as the answers (the
/// location in templates/nginx.conf). It holds nothing but token files while an order runs.
pub const DIR: &str = "acme-challenge";
/// nginx (another user) reads the answers; they are public by design (the CA fetches them
/// over plain HTTP), and nothing else is ever written there.
const DIR_MODE: u32 = 0o755;
const ANSWER_MODE: u32 = 0o644;
/// What an nginx.conf rendered with the challenge location contains: an older one (or
/// dokku's) lacks it and needs one re-render and reload before the first order.
const LOCATION_MARK: &[u8] = b"/acme-challenge/$1;";

/// Whether this nginx.conf serves acme-challenge/ (rendered by this version or later).
pub fn serves_challenge_dir(nginx_conf: &[u8]) -> bool {
    memchr::memmem::find(nginx_conf, LOCATION_MARK).is_some()
}

/// The answers of one order as files in the app's acme-challenge/, removed (with the
/// directory) when dropped, whatever path the order took. Under the app's lock the
/// directory is ours: whatever a killed run left in it goes first. Every write goes through
/// the app's handle, so a link planted at the directory is refused, never followed.
pub struct ChallengeDir<'a> {
    app: &'a App,
    dir: Option<Dir>,
}

impl<'a> ChallengeDir<'a> {
    /// Empties what a killed run left; nothing is created until [`ChallengeDir::write`].
    pub fn new(app: &'a App) -> Result<ChallengeDir<'a>> {
        app.handle().refuse_link(DIR)?;
        app.handle().remove_tree(DIR)?;
        Ok(ChallengeDir { app, dir: None })
    }

    /// Writes one file per answer: a unique temporary name nginx never serves (it has a
    /// dot), renamed to the token, mode 0644 whatever the umask.
    pub fn write(&mut self, answers: &[Answer]) -> Result<()> {
        let dir = match self.dir.take() {
            Some(dir) => dir,
            None => self.app.handle().open_or_create_dir(DIR, DIR_MODE)?.0,
        };
        let written = answers.iter().try_for_each(|answer| {
            check_token(&answer.key_authorization)?;
            check_file_token(&answer.token)?;
            let temp =
                dir.write_temp(".answer.", answer.key_authorization.as_bytes(), ANSWER_MODE)?;
            dir.rename(&temp, &answer.token).inspect_err(|_| {
                let _ = dir.remove_file(&temp);
            })
        });
        self.dir = Some(dir);
        written
    }

    /// Removes every answer and the directory; safe to call twice.
    pub fn remove(&mut self) {
        if self.dir.take().is_some() {
            let _ = self.app.handle().remove_tree(DIR);
        }
    }
}

impl Drop for ChallengeDir<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A token becomes a file name: base64url only (no dot, so never `.`, `..` or a temp name),
/// which is also all the location's regex serves.
fn check_file_token(value: &str) -> Result<()> {
    check_token(value)?;
    if value.contains('.') {
        return Err(Error::Acme(
            format!("the CA sent a challenge token nginx cannot serve safely: {value:?}").into(),
        ));
    }
    Ok(())
}

/// Tokens and key authorizations are base64url (and a dot): anything else could inject
/// into nginx.conf, so it is refused.
fn check_token(value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 512
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::Acme(
            format!("the CA sent a challenge token nginx cannot serve safely: {value:?}").into(),
        ))
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
        Ok(ChallengeFile {
            app,
            conf_d: None,
            created_dir: false,
        })
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
        let text = ChallengeConf {
            app: &self.app.name,
            answers,
        }
        .render()
        .expect("the challenge template renders");
        let conf_d = match self.conf_d.take() {
            Some(conf_d) => conf_d,
            None => {
                let (conf_d, created) =
                    self.app.handle().open_or_create_dir(CONF_D, CONF_D_MODE)?;
                self.created_dir |= created;
                conf_d
            }
        };
        conf_d.refuse_link(CONF)?;
        // Written whole under a unique name nginx does not include (it does not end in
        // .conf), then renamed over the entry: a link planted since is replaced, not followed.
        let temp = conf_d.write_temp(
            &format!(".{CONF}.dokku-certs-tmp."),
            (text + "\n").as_bytes(),
            CONF_MODE,
        )?;
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
pub(crate) const STEADY_AFTER_RELOAD: Duration = Duration::from_millis(200);

/// Waits (up to `timeout`) until nginx on this machine answers every challenge as the CA
/// will ask for it: plain HTTP on DOKKU_NGINX_PORT with the domain as Host, without a miss
/// for `steady` (zero when nginx was not reloaded: every worker reads the same files).
pub fn wait_until_served(
    env: &Env,
    answers: &[Answer],
    timeout: Duration,
    steady: Duration,
) -> Result<()> {
    let address = crate::nginx::probe_address(env.bind, env.http_port);
    let deadline = Instant::now() + timeout;
    let mut steady_since: Option<Instant> = None;
    loop {
        let mut all_right = Ok(());
        for answer in answers {
            let got = fetch(
                address,
                &answer.domain,
                &format!("/.well-known/acme-challenge/{}", answer.token),
            );
            if got.as_deref().ok() != Some(answer.key_authorization.as_str()) {
                all_right = Err((answer, got));
                break;
            }
        }
        match all_right {
            Ok(()) => {
                let since = *steady_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= steady {
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
                    ).into()));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long to wait for nginx to serve a challenge (or the probe).
const SELF_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers one order's HTTP-01 challenges, and owns their cleanup: whatever path the order
/// takes, dropping it removes every answer (and in dokku mode has the proxy forget them).
pub enum Responder<'a> {
    /// Standalone: files in acme-challenge/, served by the location in nginx.conf.
    Files {
        /// The answers' directory.
        dir: ChallengeDir<'a>,
        /// The environment, for the self-check's address.
        env: &'a Env,
        /// How long the self-check must see no miss (nonzero only right after a reload).
        steady: Duration,
    },
    /// dokku mode: nginx.conf.d/letsencrypt.conf, and a proxy reload to serve it.
    ConfD {
        file: ChallengeFile<'a>,
        /// The environment, for the proxy reload.
        env: &'a Env,
        /// Set once the proxy serves the file: it must be reloaded again when dropped,
        /// unless an install rebuilds it anyway ([`Responder::installing`]).
        reload_on_drop: bool,
    },
}

impl<'a> Responder<'a> {
    /// Gets nginx ready to answer for `app`, before any order: a challenge file a killed run
    /// left goes; standalone, an nginx.conf without the challenge location (none yet, or
    /// rendered before it existed) is rendered again, the one reload this costs, and a probe
    /// answer must be served for every domain; in dokku mode nginx must pass `nginx -t` and
    /// listen. An order that cannot be answered would stay behind at the CA as an abandoned
    /// authorization (under cron without /usr/sbin in PATH, every renewal did exactly that).
    pub fn prepare(
        env: &'a Env,
        app: &'a App,
        domains: &[String],
        report: &dyn Reporter,
    ) -> Result<Self> {
        remove_leftover(app);
        if env.mode == crate::dokku::Mode::Dokku {
            let file = ChallengeFile::new(app)?;
            nginx_test_and_listen(env)?;
            return Ok(Responder::ConfD {
                file,
                env,
                reload_on_drop: false,
            });
        }
        let reloaded = ensure_location(env, app, report)?;
        // The install will need nginx (under cron without /usr/sbin in PATH it is not
        // found): the app's own scoped test, flat in the number of apps, says so now.
        crate::nginx::test_app(env, app).map_err(nothing_ordered)?;
        if reloaded {
            report.report(Event::Detail(
                "nginx.conf had no ACME challenge location: rendered it again (nginx reloaded once)".into(),
            ));
        }
        let steady = if reloaded {
            STEADY_AFTER_RELOAD
        } else {
            Duration::ZERO
        };
        let mut dir = ChallengeDir::new(app)?;
        let probes: Vec<Answer> = domains.iter().map(|domain| probe(domain)).collect();
        dir.write(&probes)?;
        wait_until_served(env, &probes, SELF_CHECK_TIMEOUT, steady).map_err(
            |error| match error {
                Error::Acme(why) => {
                    Error::Acme(format!("{why}; so no certificate was ordered").into())
                }
                other => other,
            },
        )?;
        Ok(Responder::Files {
            dir,
            env,
            steady: Duration::ZERO,
        })
    }

    /// Publishes the answers and returns once nginx serves every one of them.
    pub fn answer(&mut self, answers: &[Answer], report: &dyn Reporter) -> Result<()> {
        match self {
            Responder::Files { dir, env, steady } => {
                dir.write(answers)?;
                report.report(Event::Detail(format!(
                    "Answering the HTTP-01 challenges from {DIR}/"
                )));
                wait_until_served(env, answers, SELF_CHECK_TIMEOUT, *steady)
            }
            Responder::ConfD {
                file,
                env,
                reload_on_drop,
            } => {
                file.write(answers)?;
                *reload_on_drop = true;
                crate::dokku::reload_app_proxy(env, file.app())?;
                report.report(Event::Detail(
                    "Answering the HTTP-01 challenges from nginx.conf.d/letsencrypt.conf".into(),
                ));
                wait_until_served(env, answers, SELF_CHECK_TIMEOUT, STEADY_AFTER_RELOAD)
            }
        }
    }

    /// The certificate is about to be installed: in dokku mode its proxy rebuild makes nginx
    /// forget the challenge file, so no reload of its own is needed when dropped.
    pub fn installing(&mut self) {
        if let Responder::ConfD {
            file,
            reload_on_drop,
            ..
        } = self
        {
            file.remove();
            *reload_on_drop = false;
        }
    }
}

impl Drop for Responder<'_> {
    fn drop(&mut self) {
        if let Responder::ConfD {
            file,
            env,
            reload_on_drop,
        } = self
        {
            file.remove();
            if *reload_on_drop {
                let _ = crate::dokku::reload_app_proxy(env, file.app());
            }
        }
        // Files: ChallengeDir's own drop removes them.
    }
}

/// A random answer no CA sent: written before the order to see that nginx serves the
/// directory for this domain.
fn probe(domain: &str) -> Answer {
    // Hex after the prefix: base64url, as a CA's token.
    let token = Dir::unique_name("dokku-certs-probe-");
    Answer {
        domain: domain.to_string(),
        key_authorization: format!("{token}-ok"),
        token,
    }
}

/// The change that renders nginx.conf again with the challenge location, if it lacks it
/// (standalone mode; the app's lock held).
pub(crate) fn location_change(app: &App) -> Result<Option<Change>> {
    if app
        .handle()
        .read("nginx.conf")?
        .is_some_and(|conf| serves_challenge_dir(&conf))
    {
        return Ok(None);
    }
    Change::keep(app).map(Some)
}

/// Renders nginx.conf again if it lacks the challenge location; `true` if it did (nginx reloaded).
fn ensure_location(env: &Env, app: &App, report: &dyn Reporter) -> Result<bool> {
    let Some(change) = location_change(app)? else {
        return Ok(false);
    };
    let applied = transaction::apply(env, app, &change, report)?;
    applied.reload.map_err(|why| {
        Error::Acme(format!("nginx must be running to answer the challenge ({why})").into())
    })?;
    Ok(true)
}

/// A failed `nginx -t` before the order, in those words.
fn nothing_ordered(error: Error) -> Error {
    match error {
        Error::NginxTest(why) => {
            Error::Acme(format!("nginx -t fails, so no certificate was ordered: {why}").into())
        }
        other => other,
    }
}

/// dokku mode: nginx must pass `nginx -t` and listen on the HTTP port before an order.
fn nginx_test_and_listen(env: &Env) -> Result<()> {
    crate::nginx::test(env).map_err(nothing_ordered)?;
    let address = crate::nginx::probe_address(env.bind, env.http_port);
    let deadline = Instant::now() + SELF_CHECK_TIMEOUT;
    loop {
        match TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(Error::Acme(format!(
                    "nginx does not listen on {address} ({e}), so no certificate was ordered; start nginx, then run this again"
                ).into()));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// GET over plain HTTP/1.1; the body of a 200 answer.
fn fetch(address: SocketAddr, host: &str, path: &str) -> std::result::Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        Ok(body.trim_end().to_string())
    } else {
        Err(format!("HTTP {status}"))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_leftover_goes_but_never_through_a_link() {
        let top = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(top.path().join("myapp/nginx.conf.d")).unwrap();
        std::fs::write(
            top.path().join("myapp/nginx.conf.d/letsencrypt.conf"),
            "left",
        )
        .unwrap();
        std::fs::write(top.path().join("secret"), "keep").unwrap();
        let app = App::from_dir("myapp", Dir::open_top(&top.path().join("myapp")).unwrap());
        remove_leftover(&app);
        assert!(
            !top.path()
                .join("myapp/nginx.conf.d/letsencrypt.conf")
                .exists()
        );
        std::os::unix::fs::symlink(
            top.path().join("secret"),
            top.path().join("myapp/nginx.conf.d/letsencrypt.conf"),
        )
        .unwrap();
        remove_leftover(&app);
        assert!(
            top.path()
                .join("myapp/nginx.conf.d/letsencrypt.conf")
                .is_symlink()
        );
        assert_eq!(std::fs::read(top.path().join("secret")).unwrap(), b"keep");
    }

    #[test]
    fn answers_are_public_files_only_while_the_guard_lives_and_never_through_a_link() {
        let top = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(top.path().join("myapp/acme-challenge")).unwrap();
        std::fs::write(
            top.path().join("myapp/acme-challenge/stale"),
            "left by a killed run",
        )
        .unwrap();
        let app = App::from_dir("myapp", Dir::open_top(&top.path().join("myapp")).unwrap());
        let mut dir = ChallengeDir::new(&app).unwrap();
        let answer = Answer {
            domain: "a.example.com".into(),
            token: "tok-1_A".into(),
            key_authorization: "tok-1_A.th".into(),
        };
        dir.write(std::slice::from_ref(&answer)).unwrap();
        let path = top.path().join("myapp/acme-challenge");
        let names: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec!["tok-1_A"],
            "only the token, the stale file gone"
        );
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&path), mode(&path.join("tok-1_A"))), (0o755, 0o644));
        assert_eq!(
            std::fs::read_to_string(path.join("tok-1_A")).unwrap(),
            "tok-1_A.th"
        );
        let dotted = Answer {
            token: "a.b".into(),
            ..answer.clone()
        };
        assert!(
            dir.write(&[dotted]).is_err(),
            "a dot could name a temp file or '..'"
        );
        drop(dir);
        assert!(!path.exists());

        // A link at acme-challenge/ is refused before anything, and never followed.
        std::fs::create_dir(top.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(top.path().join("elsewhere"), &path).unwrap();
        assert!(ChallengeDir::new(&app).is_err());
        assert!(path.is_symlink());
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
        let answers = [Answer {
            domain: "a.example.com".into(),
            token: "tok1".into(),
            key_authorization: "tok1.thumb".into(),
        }];
        let text = ChallengeConf {
            app: "myapp",
            answers: &answers,
        }
        .render()
        .unwrap();
        assert!(text.contains("location ^~ /.well-known/acme-challenge/ {"));
        assert!(text.contains(
            "  location = /.well-known/acme-challenge/tok1 {\n    return 200 \"tok1.thumb\";\n  }"
        ));
    }
}
