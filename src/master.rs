//! Reloading the running nginx by its master's pid, and learning from nginx itself whether
//! it took the new configuration.
//!
//! `nginx -s reload` parses the whole configuration (every app) only to find the pid file;
//! a SIGHUP to the pid read from that file does the same without the parse. The master then
//! reads everything again: if that works it starts new worker processes (and only then), if
//! not it writes an `[emerg]` line with its own pid to its error log and keeps the old
//! configuration. So: new children of the master mean accepted; an `[emerg]`/`[alert]`/`[crit]`
//! line from the master's pid after the signal means refused.

use std::collections::HashSet;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a reload ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// The master started workers with the new configuration.
    Accepted,
    /// No master to signal (nginx is not running): nothing to confirm.
    NotRunning(String),
    /// The master refused the configuration: its complaint.
    Refused(String),
    /// Neither sign came within the time allowed.
    Unconfirmed(String),
}

/// The longest the master may take to read the configuration again. At 10,000 apps it takes
/// seconds (BENCHMARKS.md); this is only the bound for a master that never answers.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Sends SIGHUP to the master named in `pid_file` and waits for its verdict. Reloads are
/// serialized host-wide by an flock on the pid file itself (nginx never locks it), so the
/// new workers seen are those of this signal, not of another command's.
pub fn reload(pid_file: &Path, error_log: Option<&Path>, timeout: Duration) -> Reload {
    let watch = match Watch::start(pid_file, error_log) {
        Ok(watch) => watch,
        Err(why) => return Reload::NotRunning(why),
    };
    if let Err(errno) = signal(watch.pid) {
        return Reload::NotRunning(format!(
            "cannot signal nginx's master (pid {}): {errno}",
            watch.pid
        ));
    }
    watch.verdict(timeout)
}

/// The running master as it was before a reload: its workers, the processes of the host and
/// the end of its error log, so that after the signal (ours, or one sent by another program,
/// as dokku's `systemctl reload nginx`) its verdict can be told. Holds the flock on the pid
/// file until dropped.
#[derive(Debug)]
pub struct Watch {
    pid: i32,
    seen: Processes,
    old_workers: Vec<i32>,
    error_log: Option<PathBuf>,
    log_offset: u64,
    _lock: File,
}

impl Watch {
    /// Locks `pid_file` and notes the master's state; `Err` says why there is no master to
    /// watch (nginx is not running). Needs only read access (the pid file, /proc, the log).
    pub fn start(pid_file: &Path, error_log: Option<&Path>) -> Result<Watch, String> {
        let lock = File::open(pid_file)
            .map_err(|_| format!("nginx is not running: no pid file {}", pid_file.display()))?;
        lock.lock()
            .map_err(|_| format!("cannot lock {}", pid_file.display()))?;
        let pid = read_pid(pid_file)
            .filter(|&pid| is_nginx_master(pid))
            .ok_or_else(|| {
                format!(
                    "nginx is not running: no nginx master at the pid in {}",
                    pid_file.display()
                )
            })?;
        let seen = Processes::now();
        let old_workers = workers_of(pid);
        let log_offset = error_log
            .and_then(|log| std::fs::metadata(log).ok())
            .map_or(0, |m| m.len());
        Ok(Watch {
            pid,
            seen,
            old_workers,
            error_log: error_log.map(Path::to_path_buf),
            log_offset,
            _lock: lock,
        })
    }

    /// The master's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits, after the master was signalled, for its verdict: new workers (then until its
    /// old workers stopped accepting), or its complaint in the error log.
    pub fn verdict(mut self, timeout: Duration) -> Reload {
        let (pid, started) = (self.pid, Instant::now());
        let mut pause = Duration::from_millis(1);
        loop {
            if self.seen.new_child_of(pid) {
                return wait_old_workers(&self.old_workers, started, timeout);
            }
            if let Some(line) = self
                .error_log
                .as_deref()
                .and_then(|log| complaint_since(log, self.log_offset, pid))
            {
                return Reload::Refused(line);
            }
            if !alive(pid) {
                return Reload::Refused(format!(
                    "nginx's master (pid {pid}) exited during the reload"
                ));
            }
            if started.elapsed() > timeout {
                return Reload::Unconfirmed(format!(
                    "nginx's master (pid {pid}) neither started new workers nor logged an error within {} s",
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(pause);
            // A twentieth of the time waited so far: a 1-app reload is seen within a few ms, a
            // 10,000-app one (seconds) costs about a hundred looks at /proc, not thousands.
            pause = (started.elapsed() / 20)
                .clamp(Duration::from_millis(1), Duration::from_millis(250));
        }
    }
}

/// Waits until every worker of the old configuration stopped accepting connections: the
/// master tells them to quit 100 ms after it started the new workers, and until then a new
/// connection may still reach an old worker. A worker that got the order renames itself
/// `worker process is shutting down` and closes its listening sockets in the same step, so
/// after that (or its exit) only the new workers answer.
fn wait_old_workers(old: &[i32], started: Instant, timeout: Duration) -> Reload {
    let mut pause = Duration::from_millis(1);
    while old.iter().any(|&worker| is_accepting_worker(worker)) {
        if started.elapsed() > timeout {
            return Reload::Unconfirmed(format!(
                "nginx started new workers, but its old workers (pids {old:?}) did not stop accepting within {} s",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    Reload::Accepted
}

/// The master's worker processes now (not its cache manager or loader, which accept nothing).
fn workers_of(master: i32) -> Vec<i32> {
    pids()
        .filter(|&p| parent_of(p) == Some(master) && is_accepting_worker(p))
        .collect()
}

/// A live worker that has not been told to quit: its title is exactly `nginx: worker process`.
fn is_accepting_worker(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|title| {
        title.split(|&b| b == 0).next() == Some(b"nginx: worker process".as_slice())
    })
}

/// Why [`confirm_served`] could not see the expected certificate before its deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{sni} on {addr} {last}")]
pub struct NotServed {
    /// The address tried.
    pub addr: SocketAddr,
    /// The name sent as SNI.
    pub sni: String,
    /// What the last attempt saw, as words that follow the name: `served another
    /// certificate`, `refused the connection (...)`.
    pub last: String,
}

/// Handshakes with `addr`, sending `sni`, until the leaf certificate served is
/// `expected_leaf_der` or `deadline` passes. The certificate is not verified against any
/// trust store (a self-signed one is as good as a CA's): it is compared byte for byte, and
/// the handshake's signature proves the server holds its key. Each attempt is bounded by the
/// deadline, so an address that swallows packets costs no more than the wait allowed.
pub fn confirm_served(
    addr: SocketAddr,
    sni: &str,
    expected_leaf_der: &[u8],
    deadline: Instant,
) -> Result<(), NotServed> {
    let mut pause = Duration::from_millis(2);
    loop {
        let last = match served_leaf(addr, sni, deadline) {
            Ok(leaf) if leaf == expected_leaf_der => return Ok(()),
            Ok(_) => "served another certificate".to_string(),
            Err(why) => why,
        };
        if Instant::now() + pause >= deadline {
            return Err(NotServed {
                addr,
                sni: sni.to_string(),
                last,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// One handshake: the leaf certificate served for `sni`, or what went wrong (as words that
/// follow the address: `refused the connection`...).
fn served_leaf(addr: SocketAddr, sni: &str, deadline: Instant) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(10));
    let name = rustls_pki_types::ServerName::try_from(sni.to_string())
        .map_err(|e| format!("is not a name to send ({e})"))?;
    let mut connection = rustls::ClientConnection::new(handshake_config(), name)
        .map_err(|e| format!("could not start a handshake ({e})"))?;
    let mut socket = std::net::TcpStream::connect_timeout(&addr, left)
        .map_err(|e| format!("did not accept a connection ({e})"))?;
    let _ = socket.set_read_timeout(Some(left));
    let _ = socket.set_write_timeout(Some(left));
    while connection.is_handshaking() {
        if connection.wants_write() {
            connection
                .write_tls(&mut socket)
                .map_err(|e| format!("broke off the handshake ({e})"))?;
            socket
                .flush()
                .map_err(|e| format!("broke off the handshake ({e})"))?;
        } else {
            match connection.read_tls(&mut socket) {
                Ok(0) => return Err("closed the connection during the handshake".into()),
                Ok(_) => {
                    connection
                        .process_new_packets()
                        .map_err(|e| format!("failed the handshake ({e})"))?;
                }
                Err(e) => return Err(format!("broke off the handshake ({e})")),
            }
        }
    }
    let leaf = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.to_vec());
    leaf.ok_or_else(|| "served no certificate".to_string())
}

/// A client that accepts any certificate, because it only wants to see which one is served.
fn handshake_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("aws-lc-rs supports the default TLS versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SeeAnyCertificate(provider)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Takes any certificate, but still checks the handshake's signature with it.
#[derive(Debug)]
struct SeeAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for SeeAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Sends SIGHUP to the master in `pid_file`, with no wait (after a roll-back, so that a master
/// that took the new files late reads the old ones again).
pub fn signal_only(pid_file: &Path) {
    if let Some(pid) = read_pid(pid_file) {
        let _ = signal(pid);
    }
}

fn signal(pid: i32) -> std::io::Result<()> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or(std::io::ErrorKind::InvalidInput)?;
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).map_err(Into::into)
}

fn read_pid(pid_file: &Path) -> Option<i32> {
    std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 1)
}

/// A stale pid file may name a pid reused by another process, which must not get a SIGHUP:
/// the master's title is `nginx: master process ...`.
fn is_nginx_master(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|title| title.starts_with(b"nginx: master process"))
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The processes seen so far, so that each poll reads the parent of new pids only: a poll
/// costs one read of /proc, not one per process of the host.
#[derive(Debug)]
struct Processes(HashSet<i32>);

impl Processes {
    fn now() -> Processes {
        Processes(pids().collect())
    }

    /// Whether a process started since the last look is a child of `pid` (a new worker,
    /// cache manager or loader).
    fn new_child_of(&mut self, pid: i32) -> bool {
        let fresh: Vec<i32> = pids().filter(|p| !self.0.contains(p)).collect();
        self.0.extend(&fresh);
        fresh.into_iter().any(|p| parent_of(p) == Some(pid))
    }
}

fn pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
}

/// The fourth field of /proc/PID/stat, after the parenthesized command name.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(PathBuf::from(format!("/proc/{pid}/stat"))).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The first `[emerg]`, `[alert]` or `[crit]` line the master wrote after `offset` that is
/// its final word. A port still held (old workers keep their listening sockets for a moment
/// after a reload) is logged as `[emerg] bind() ... (98: Address already in use)` but nginx
/// tries again every 500 ms, five times; only `still could not bind()` ends the reload, and
/// then the last bind line says which address.
fn complaint_since(log: &Path, offset: u64, pid: i32) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(log).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut text = String::new();
    file.take(1 << 20).read_to_string(&mut text).ok()?;
    let from_master = format!(" {pid}#");
    let mut busy_port: Option<&str> = None;
    for line in text.lines().filter(|line| line.contains(&from_master)) {
        if !["[emerg]", "[alert]", "[crit]"]
            .iter()
            .any(|level| line.contains(level))
        {
            continue;
        }
        if line.contains("(98: Address already in use)") {
            busy_port = Some(line);
            continue;
        }
        return Some(match (line.contains("still could not bind()"), busy_port) {
            (true, Some(bind)) => format!("{} ({})", line.trim(), bind.trim()),
            _ => line.trim().to_string(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_pid_file_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = reload(
            &dir.path().join("nginx.pid"),
            None,
            Duration::from_millis(10),
        );
        assert!(matches!(outcome, Reload::NotRunning(_)), "{outcome:?}");
    }

    #[test]
    fn a_pid_that_is_not_an_nginx_master_gets_no_signal() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        std::fs::write(dir.path().join("nginx.pid"), format!("{}\n", child.id())).unwrap();
        let outcome = reload(
            &dir.path().join("nginx.pid"),
            None,
            Duration::from_millis(10),
        );
        assert!(matches!(outcome, Reload::NotRunning(_)), "{outcome:?}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "sleep was not signalled"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_port_nginx_will_bind_again_is_not_a_refusal_until_it_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("error.log");
        let busy = "2026/12/01 10:00:01 [emerg] 42#42: bind() to 127.0.0.1:8443 failed (98: Address already in use)\n\
                    2026/12/01 10:00:01 [notice] 42#42: try again to bind() after 500ms\n";
        std::fs::write(&log, busy).unwrap();
        assert_eq!(complaint_since(&log, 0, 42), None);
        let gave_up = format!("{busy}2026/12/01 10:00:03 [emerg] 42#42: still could not bind()\n");
        std::fs::write(&log, gave_up).unwrap();
        let complaint = complaint_since(&log, 0, 42).unwrap();
        assert!(
            complaint.contains("still could not bind()") && complaint.contains("127.0.0.1:8443"),
            "{complaint}"
        );
    }

    #[test]
    fn only_the_masters_own_errors_after_the_signal_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("error.log");
        let old = "2026/12/01 10:00:00 [emerg] 42#42: old trouble\n";
        std::fs::write(&log, format!("{old}2026/12/01 10:00:01 [emerg] 43#43: nginx -t elsewhere\n2026/12/01 10:00:02 [notice] 42#42: reconfiguring\n2026/12/01 10:00:03 [emerg] 42#42: cannot load certificate\n")).unwrap();
        let line = complaint_since(&log, old.len() as u64, 42).unwrap();
        assert!(line.ends_with("cannot load certificate"), "{line}");
        assert_eq!(
            complaint_since(&log, std::fs::metadata(&log).unwrap().len(), 42),
            None
        );
    }

    #[test]
    fn a_new_child_is_seen_once() {
        use std::io::Write;
        // A parent of its own (a shell that starts a child when told), so that children
        // other tests of this process start meanwhile do not count.
        let mut parent = std::process::Command::new("sh")
            .args(["-c", "read go; sleep 5 & echo started; wait"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = parent.id() as i32;
        let mut seen = Processes::now();
        assert!(!seen.new_child_of(pid));
        parent.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(parent.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(seen.new_child_of(pid), "the new child is seen");
        assert!(!seen.new_child_of(pid), "and only once");
        parent.kill().unwrap();
        parent.wait().unwrap();
    }

    #[test]
    fn an_address_nobody_listens_on_is_not_served_by_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let deadline = Instant::now() + Duration::from_millis(50);
        let not_served = confirm_served(addr, "a.example.com", b"leaf", deadline).unwrap_err();
        assert!(
            not_served
                .to_string()
                .starts_with(&format!("a.example.com on {addr} did not accept")),
            "{not_served}"
        );
    }

    #[test]
    fn a_worker_told_to_quit_no_longer_counts_as_accepting() {
        assert!(
            !is_accepting_worker(std::process::id() as i32),
            "a test binary is no nginx worker"
        );
        assert!(workers_of(std::process::id() as i32).is_empty());
    }

    #[test]
    fn parents_come_from_proc() {
        assert_eq!(
            parent_of(std::process::id() as i32),
            Some(std::os::unix::process::parent_id() as i32)
        );
    }
}
