//! dokku mode: dokku-certs running as dokku's own `certs` plugin.
//!
//! There nginx.conf belongs to dokku's proxy plugin (nginx-vhosts, or whichever proxy the
//! app uses). After tls/ is swapped, dokku-certs fires the triggers dokku's certs plugin
//! fires (`post-certs-update` or `post-certs-remove`, then `post-domains-update`) and the
//! proxy renders, tests and reloads its configuration. If that rebuild fails, [`crate::transaction`]
//! puts the previous tls/ back and [`rebuild_after_roll_back`] rebuilds again, so the proxy
//! ends up with a configuration made from the files that are really in place.
//!
//! A renewal, or an update whose certificate gives nginx-vhosts the same names, changes
//! nothing in nginx.conf: nginx-vhosts' rebuild takes from the certificate only whether it
//! exists (`certs-exists`: https port mappings, `ssl_certificate` lines, HSTS) and which
//! VHOST lines its names match (`get_ssl_hostnames`: `SSL_SERVER_NAME`); the file paths in
//! nginx.conf are always `$DOKKU_ROOT/<app>/tls/server.{crt,key}`. Then ([`Refresh::Reload`])
//! `post-certs-update` still fires (ports, the k3s scheduler), but not `post-domains-update`:
//! nginx is reloaded the way nginx-vhosts reloads it, and a refused reload rolls back.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::app::{App, CRT, Env};
use crate::error::{Error, Result};
use crate::event::{Event, Reporter};
use crate::master;
use crate::transaction::{Change, TlsChange};

/// Who renders nginx.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// dokku-certs renders, tests and reloads nginx.conf itself (hosts without dokku).
    Standalone,
    /// dokku's proxy plugin does, when dokku fires its triggers (the plugin's shims set this).
    Dokku,
}

impl Mode {
    /// The mode named by DOKKU_CERTS_MODE: unset or `standalone`, or `dokku`.
    pub fn from_setting(value: Option<String>) -> Result<Mode> {
        match value.as_deref().map(str::trim) {
            None | Some("standalone") => Ok(Mode::Standalone),
            Some("dokku") => Ok(Mode::Dokku),
            Some(_) => Err(Error::BadSetting {
                name: "DOKKU_CERTS_MODE",
                value: value.unwrap_or_default(),
                why: "standalone or dokku is expected",
            }),
        }
    }
}

/// The trigger dokku's certs plugin fires after tls/ changed: the proxy and the ports plugin
/// (which adds or drops the https:443 mapping) listen to it.
fn certs_event(has_tls: bool) -> &'static str {
    if has_tls {
        "post-certs-update"
    } else {
        "post-certs-remove"
    }
}

/// What a trigger run left: its exit status and what it wrote on stderr.
#[derive(Debug)]
pub struct Fired {
    /// Whether every listener of the trigger succeeded.
    pub success: bool,
    /// The listeners' stderr (dokku's warnings, nginx's complaints); stdout went to ours.
    pub stderr: String,
}

/// Runs `plugn trigger NAME ARGS...` as dokku's bash plugins do. stdout is passed through
/// (dokku's `-----> Configuring ...` lines), stderr is kept to find nginx's reason in it.
pub fn fire(trigger: &str, args: &[&str]) -> Result<Fired> {
    fire_with(trigger, args, &[])
}

/// [`fire`] with `env` added to the listeners' environment.
pub fn fire_with(trigger: &str, args: &[&str], env: &[(&str, String)]) -> Result<Fired> {
    let mut child = Command::new("plugn")
        .arg("trigger")
        .arg(trigger)
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::PlugnCommand {
            trigger: trigger.to_string(),
            source,
        })?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        stderr = String::from_utf8_lossy(&bytes).into_owned();
    }
    let status = child.wait().map_err(|source| Error::PlugnCommand {
        trigger: trigger.to_string(),
        source,
    })?;
    Ok(Fired {
        success: status.success(),
        stderr,
    })
}

/// Lets dokku rebuild the app's proxy config from the tls/ now in place. Returns the
/// proxy's warnings; a failure carries nginx's most telling line.
pub fn rebuild(app: &App, has_tls: bool) -> Result<String> {
    let mut messages = String::new();
    for trigger in [certs_event(has_tls), "post-domains-update"] {
        fire_for_rebuild(trigger, app, &mut messages)?;
    }
    Ok(messages)
}

/// Fires `trigger` for the app, adding its warnings to `messages`; a failing listener is a
/// failed rebuild, with nginx's most telling line of everything said so far.
fn fire_for_rebuild(trigger: &str, app: &App, messages: &mut String) -> Result<()> {
    let fired = fire(trigger, &[&app.name])?;
    messages.push_str(&fired.stderr);
    if fired.success {
        return Ok(());
    }
    let reason =
        crate::nginx::telling_line(messages).unwrap_or_else(|| format!("{trigger} failed"));
    Err(Error::ProxyRebuild {
        reason,
        again: None,
    })
}

/// How dokku's proxy is to take a change of tls/.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// `post-domains-update`: nginx-vhosts renders nginx.conf again, runs `nginx -t`, reloads.
    Rebuild,
    /// nginx.conf would come out the same: a reload serves the new pair.
    Reload,
}

/// Decides, before tls/ changes, whether `change` can skip dokku's rebuild: it installs a
/// certificate where one is installed already (the TLS state stays), VHOST stays, nginx.conf
/// serves the app's tls/ now, and the VHOST lines nginx-vhosts matches against the new
/// certificate's names are those it matches against the old one's. Anything unsure rebuilds.
pub fn refresh_for(app: &App, change: &Change) -> Refresh {
    let TlsChange::Install(files) = &change.tls else {
        return Refresh::Rebuild;
    };
    if change.vhost.is_some() || !app.has_cert() || !conf_serves_tls_dir(app) {
        return Refresh::Rebuild;
    }
    let vhost = vhost_text(app);
    let lines = grep_lines(&vhost);
    let old = app
        .read_tls_file(CRT)
        .ok()
        .flatten()
        .and_then(|pem| leaf_hostnames(&pem));
    let new = leaf_hostnames(files.crt.as_bytes());
    let matched = |names: Option<Vec<String>>| names.and_then(|names| ssl_vhosts(&names, &lines));
    match (matched(old), matched(new)) {
        (Some(old), Some(new)) if old == new => Refresh::Reload,
        _ => Refresh::Rebuild,
    }
}

/// Whether the app's nginx.conf (nginx-vhosts' output) loads the certificate from its tls/.
fn conf_serves_tls_dir(app: &App) -> bool {
    let Ok(Some(conf)) = app.handle().read("nginx.conf") else {
        return false;
    };
    let crt = app.crt_path();
    let crt = crt.to_string_lossy();
    String::from_utf8_lossy(&conf).lines().any(|line| {
        line.split_whitespace().collect::<Vec<_>>() == ["ssl_certificate", &format!("{crt};")]
    })
}

/// The leaf's names as our `get_ssl_hostnames` prints them to nginx-vhosts (CN and SANs,
/// sorted, unique).
fn leaf_hostnames(pem: &[u8]) -> Option<Vec<String>> {
    let der = crate::pem::certificates(pem).ok()?.into_iter().next()?;
    Some(crate::cert::Certificate::from_der(&der).ok()?.hostnames())
}

/// The app's VHOST as nginx-vhosts' grep reads it: unreadable or missing is empty.
fn vhost_text(app: &App) -> String {
    let bytes = app
        .handle()
        .read("VHOST")
        .ok()
        .flatten()
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The lines of a file as grep reads them: split at newlines, no empty line after the last.
fn grep_lines(text: &str) -> Vec<&str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').collect()
    }
}

/// nginx-vhosts' `SSL_VHOSTS`: the VHOST lines matching `grep -E "^${SSL_HOSTNAME_REGEX}$"`,
/// where the regex is the names joined by `|`, dots escaped and `*` as `[^.]*`. As written,
/// the `^` binds to the first name only and the `$` to the last (the ones between match
/// anywhere in a line), and that is reproduced. `None` when a name holds a character with
/// another meaning in a regex (or there is none): then nobody guesses, dokku rebuilds.
fn ssl_vhosts<'a>(names: &[String], lines: &[&'a str]) -> Option<Vec<&'a str>> {
    let plain = |name: &String| {
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.*".contains(&b))
    };
    if names.is_empty() || !names.iter().all(plain) {
        return None;
    }
    let last = names.len() - 1;
    let matches = |line: &str| {
        names.iter().enumerate().any(|(i, name)| {
            let (name, line) = (name.as_bytes(), line.as_bytes());
            if i == 0 {
                glob_prefix(name, line, i == last)
            } else {
                (0..=line.len()).any(|start| glob_prefix(name, &line[start..], i == last))
            }
        })
    };
    Some(lines.iter().copied().filter(|line| matches(line)).collect())
}

/// Whether `pattern` (literal bytes, `*` = any run of non-dots) matches the start of `text`,
/// or all of it if `to_end`.
fn glob_prefix(pattern: &[u8], text: &[u8], to_end: bool) -> bool {
    match pattern.split_first() {
        None => !to_end || text.is_empty(),
        Some((b'*', rest)) => {
            let run = text.iter().position(|&b| b == b'.').unwrap_or(text.len());
            (0..=run).any(|n| glob_prefix(rest, &text[n..], to_end))
        }
        Some((&byte, rest)) => text.first() == Some(&byte) && glob_prefix(rest, &text[1..], to_end),
    }
}

/// Lets dokku's proxy take the tls/ now in place, as `refresh_for` decided (before the swap).
/// [`Refresh::Reload`] fires `post-certs-update` and reloads nginx, then waits until nginx
/// took the reload ([`confirm_reload`]); it falls back to the rebuild when the ports plugin
/// changed the app's port mappings on that trigger (https:443 added) or nginx cannot be
/// reloaded as nginx-vhosts does it here.
pub fn take_tls(
    env: &Env,
    app: &App,
    has_tls: bool,
    how: Refresh,
    reporter: &dyn Reporter,
) -> Result<String> {
    if how == Refresh::Rebuild {
        return rebuild(app, has_tls);
    }
    let mut messages = String::new();
    let ports = capture("ports-get", app);
    fire_for_rebuild(certs_event(true), app, &mut messages)?;
    if ports.is_some() && capture("ports-get", app) == ports {
        // Before the reload: the master's workers then, so that its new ones can be told apart.
        let watch = watch_master(env);
        match reload_nginx(app)? {
            Reloaded::Yes(said) => {
                confirm_reload(app, watch, reporter)?;
                return Ok(messages + &said);
            }
            Reloaded::Refused(reason) => {
                return Err(Error::ProxyReload {
                    reason,
                    again: None,
                });
            }
            Reloaded::NotHere => {}
        }
    }
    fire_for_rebuild("post-domains-update", app, &mut messages)?;
    Ok(messages)
}

/// The host's nginx master before a reload, found by its pid file (`pid` of the main config,
/// which the dokku user may read, as it may read /proc and, in group adm, the error log).
fn watch_master(env: &Env) -> std::result::Result<master::Watch, String> {
    let layout = crate::nginx::layout(env).ok_or("nginx's pid file is not known")?;
    master::Watch::start(&layout.pid, layout.error_log.as_deref())
}

/// After nginx-vhosts' reload returned (`systemctl reload nginx` returns once the signal is
/// sent): waits for the master's verdict, as a reload by dokku-certs does (new workers, then
/// every old worker stopped accepting; or the master's complaint, which rolls back), then for
/// a handshake with the app's name on the address its nginx.conf listens on to get the new
/// certificate. What could not be checked is said in a detail line, never claimed.
fn confirm_reload(
    app: &App,
    watch: std::result::Result<master::Watch, String>,
    reporter: &dyn Reporter,
) -> Result<()> {
    let detail = |text: String| reporter.report(Event::Detail(text));
    let watch = match watch {
        Ok(watch) => watch,
        Err(why) => {
            detail(format!("Not confirmed that nginx took the reload: {why}"));
            return Ok(());
        }
    };
    let pid = watch.pid();
    match watch.verdict(master::RELOAD_TIMEOUT) {
        master::Reload::Accepted => {}
        master::Reload::Refused(reason) => {
            return Err(Error::ProxyReload {
                reason,
                again: None,
            });
        }
        master::Reload::Unconfirmed(why) | master::Reload::NotRunning(why) => {
            reporter.report(Event::Warning(format!(
                "the new certificate is in place, but {why}"
            )));
            return Ok(());
        }
    }
    let Some((addr, sni, leaf)) = probe(app) else {
        detail(format!(
            "nginx's new workers took over (master pid {pid}); no name of the app to ask for the certificate"
        ));
        return Ok(());
    };
    // Refused or unreachable at once: nothing listens there in this network namespace (the
    // dokku lab's nginx runs in its own), which no wait would change.
    if let Err(why) = std::net::TcpStream::connect_timeout(&addr, REACH_TIMEOUT) {
        detail(format!(
            "nginx's new workers took over (master pid {pid}); no handshake: {addr} cannot be reached from here ({why}), so the certificate served was not seen"
        ));
        return Ok(());
    }
    match crate::nginx::confirm_served_at(addr, &sni, &leaf) {
        None => detail(format!(
            "nginx serves the new certificate for {sni} on {addr}"
        )),
        Some(warning) => reporter.report(Event::Warning(warning)),
    }
    Ok(())
}

/// How long a first connection to the app's TLS address may take before it counts as not
/// reachable from here.
const REACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What to ask nginx: the address the host reaches the app's TLS `listen` at (IPv4 first,
/// as [`crate::nginx::probe_address`] maps it), the first VHOST line nginx-vhosts gave the
/// certificate (its `server_name`), and the leaf now in tls/.
fn probe(app: &App) -> Option<(std::net::SocketAddr, String, Vec<u8>)> {
    let conf = app.handle().read("nginx.conf").ok()??;
    let mut listens = tls_listens(&String::from_utf8_lossy(&conf));
    listens.sort_by_key(|(ip, _)| ip.is_some_and(|ip| ip.is_ipv6()));
    let (bind, port) = *listens.first()?;
    let crt = app.read_tls_file(CRT).ok()??;
    let vhost = vhost_text(app);
    let name = ssl_vhosts(&leaf_hostnames(&crt)?, &grep_lines(&vhost))?
        .first()?
        .to_string();
    let leaf = crate::pem::certificates(&crt).ok()?.into_iter().next()?;
    Some((
        crate::nginx::probe_address(bind, port),
        crate::nginx::probe_name(&name),
        leaf,
    ))
}

/// The addresses of the `listen ... ssl` lines of an nginx.conf: `443` (no address),
/// `[::]:443`, `10.0.0.1:443`, `*:443`; unix sockets are left out.
fn tls_listens(conf: &str) -> Vec<(Option<std::net::IpAddr>, u16)> {
    let directives = crate::scoped::directives(conf).unwrap_or_default();
    let listens = directives
        .iter()
        .filter(|d| d.words[0] == "listen" && d.words.iter().any(|w| w == "ssl"));
    listens
        .filter_map(|d| listen_address(d.words.get(1)?))
        .collect()
}

fn listen_address(word: &str) -> Option<(Option<std::net::IpAddr>, u16)> {
    if let Ok(port) = word.parse() {
        return Some((None, port));
    }
    let (host, port) = word.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host == "*" {
        None
    } else {
        Some(host.parse().ok()?)
    };
    Some((ip, port.parse().ok()?))
}

/// What `plugn trigger NAME APP` printed, if it succeeded.
fn capture(trigger: &str, app: &App) -> Option<String> {
    let output = Command::new("plugn")
        .args(["trigger", trigger, &app.name])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// How a reload by nginx-vhosts' own means ended.
enum Reloaded {
    /// nginx reloaded; what the reload wrote on stderr.
    Yes(String),
    /// nginx refused the configuration: its most telling line.
    Refused(String),
    /// The app's proxy is not nginx-vhosts, or this dokku has no such reload: rebuild instead.
    NotHere,
}

/// Exit status of [`RELOAD_SCRIPT`] when it cannot reload as nginx-vhosts does.
const NOT_HERE: i32 = 98;

/// Reloads nginx exactly as nginx-vhosts' `restart_nginx` does (its `nginx-service-command`
/// property, else systemctl / invoke-rc.d / sv through sudo, by distribution), for an app
/// whose proxy is nginx-vhosts and enabled. dokku-certs runs as the dokku user: only these
/// sudo rules let it reach root's nginx. A failed reload (`nginx -s reload`, or the
/// service's own test, refuses the files before signalling) shows nginx's reason as dokku's
/// `validate_nginx` does, with `sudo nginx -t`.
const RELOAD_SCRIPT: &str = r#"
source "$PLUGIN_AVAILABLE_PATH/nginx-vhosts/functions" 2>/dev/null || exit 98
declare -F fn-nginx-vhosts-nginx-init-cmd get_nginx_location dokku_log_info1 >/dev/null || exit 98
APP="$1"
[[ "$(plugn trigger proxy-is-enabled "$APP")" == "true" ]] || exit 98
[[ "$(plugn trigger proxy-type "$APP")" == "nginx" ]] || exit 98
dokku_log_info1 "Reloading nginx: the new certificate matches the same domains, nginx.conf stays as it is"
if ! fn-nginx-vhosts-nginx-init-cmd reload >/dev/null; then
  sudo -n "$(get_nginx_location)" -t || true
  exit 1
fi
"#;

fn reload_nginx(app: &App) -> Result<Reloaded> {
    let output = Command::new("bash")
        .args(["-c", RELOAD_SCRIPT, "dokku-certs-reload", &app.name])
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| Error::PlugnCommand {
            trigger: "nginx reload (bash)".into(),
            source,
        })?;
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    Ok(match output.status.code() {
        Some(0) => Reloaded::Yes(said),
        Some(NOT_HERE) => Reloaded::NotHere,
        _ => Reloaded::Refused(
            crate::nginx::telling_line(&said).unwrap_or_else(|| "the reload failed".into()),
        ),
    })
}

/// Has nginx pick up a change in the app's nginx.conf.d/ (the ACME challenge): `nginx -t`
/// and a reload in standalone mode; in dokku mode dokku's rebuild, which does both.
pub fn reload_app_proxy(env: &Env, app: &App) -> Result<()> {
    if env.mode == Mode::Dokku {
        return rebuild(app, app.has_cert()).map(|_| ());
    }
    crate::nginx::test(env)?;
    crate::nginx::reload(env).map_err(|why| {
        Error::Acme(format!("nginx must be running to answer the challenge ({why})").into())
    })
}

/// After the previous tls/ was put back: rebuild again so the proxy's nginx.conf matches it.
/// The original error is what the user needs; a second failure is added to it.
pub fn rebuild_after_roll_back(app: &App, error: Error) -> Error {
    if let Error::ProxyReload { reason, .. } = error {
        return reload_after_roll_back(app, reason);
    }
    let Error::ProxyRebuild { reason, .. } = error else {
        return error;
    };
    let again = rebuild(app, app.has_cert()).err().map(reason_of);
    Error::ProxyRebuild { reason, again }
}

/// What a second failure after a roll back says: the proxy's reason, or the error itself.
fn reason_of(error: Error) -> String {
    match error {
        Error::ProxyRebuild { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// After a refused reload put the previous pair back: `post-certs-update` again, for the
/// listeners that copy tls/ (the k3s scheduler's TLS secret). nginx needs nothing: its
/// reload command refuses the files before it signals the master (`nginx -s reload` parses
/// them first; so does dokku-lab's service command with `nginx -t`), so the master still
/// serves the previous pair, which is back on disk.
fn reload_after_roll_back(app: &App, reason: String) -> Error {
    let mut messages = String::new();
    let again = fire_for_rebuild(certs_event(true), app, &mut messages)
        .err()
        .map(reason_of);
    Error::ProxyReload { reason, again }
}

/// post-app-clone-setup: a cloned app must not serve the original's certificate. The clone
/// has no proxy config yet, so tls/ simply goes (under the app's lock).
pub fn forget_cloned_tls(app: &App) -> Result<()> {
    let _lock = crate::transaction::lock(app)?;
    // Entry by entry through the app's handle: a link in or at tls/ is unlinked, never followed.
    app.handle().remove_tree(crate::app::TLS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_is_explicit() {
        assert_eq!(Mode::from_setting(None).unwrap(), Mode::Standalone);
        assert_eq!(
            Mode::from_setting(Some("dokku".into())).unwrap(),
            Mode::Dokku
        );
        assert!(Mode::from_setting(Some("nginx".into())).is_err());
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn ssl_vhosts_are_what_dokkus_grep_keeps() {
        let lines = [
            "a.example.com",
            "b.example.com",
            "x.a.example.com",
            "a.example.com.evil",
        ];
        // One name: anchored at both ends.
        assert_eq!(
            ssl_vhosts(&names(&["a.example.com"]), &lines),
            Some(vec!["a.example.com"])
        );
        // `*` is one label, dots are dots.
        assert_eq!(
            ssl_vhosts(&names(&["*.example.com"]), &lines),
            Some(vec!["a.example.com", "b.example.com"])
        );
        assert_eq!(
            ssl_vhosts(&names(&["a-example.com"]), &["aXexample.com"]),
            Some(vec![])
        );
        // `^a|b$`: the first name matches a line's start, the last one its end.
        assert_eq!(
            ssl_vhosts(&names(&["a.example.com", "zzz"]), &lines),
            Some(vec!["a.example.com", "a.example.com.evil"])
        );
        assert_eq!(
            ssl_vhosts(&names(&["nothing", "a.example.com"]), &lines),
            Some(vec!["a.example.com", "x.a.example.com"])
        );
        // A name with a regex meaning of its own, or none at all: nobody guesses.
        assert_eq!(ssl_vhosts(&names(&["a+b.example.com"]), &lines), None);
        assert_eq!(ssl_vhosts(&[], &lines), None);
    }

    #[test]
    fn vhost_lines_are_read_as_grep_reads_them() {
        assert_eq!(grep_lines("a\nb\n"), ["a", "b"]);
        assert_eq!(grep_lines("a\n\nb"), ["a", "", "b"]);
        assert!(grep_lines("").is_empty());
    }

    #[test]
    fn tls_listens_are_read_from_nginx_conf() {
        let conf = "server {\n  listen [::]:80;\n  listen 80;\n}\nserver {\n  listen [::]:443 ssl http2;\n  listen 443 ssl http2;\n  listen 10.0.0.1:8443 ssl;\n  listen *:9443 ssl;\n  listen unix:/run/x.sock ssl;\n}\n";
        let v6: std::net::IpAddr = "::".parse().unwrap();
        let v4: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            tls_listens(conf),
            [(Some(v6), 443), (None, 443), (Some(v4), 8443), (None, 9443)]
        );
    }

    #[test]
    fn the_certs_event_follows_tls() {
        assert_eq!(certs_event(true), "post-certs-update");
        assert_eq!(certs_event(false), "post-certs-remove");
    }
}
