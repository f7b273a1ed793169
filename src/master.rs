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
use std::path::{Path, PathBuf};
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
    let Ok(lock) = File::open(pid_file) else {
        return Reload::NotRunning(format!("nginx is not running: no pid file {}", pid_file.display()));
    };
    if lock.lock().is_err() {
        return Reload::NotRunning(format!("cannot lock {}", pid_file.display()));
    }
    let pid = match read_pid(pid_file) {
        Some(pid) if is_nginx_master(pid) => pid,
        _ => {
            return Reload::NotRunning(format!(
                "nginx is not running: no nginx master at the pid in {}",
                pid_file.display()
            ));
        }
    };
    let mut seen = Processes::now();
    let log_offset = error_log.and_then(|log| std::fs::metadata(log).ok()).map_or(0, |m| m.len());
    if let Err(errno) = signal(pid) {
        return Reload::NotRunning(format!("cannot signal nginx's master (pid {pid}): {errno}"));
    }
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if seen.new_child_of(pid) {
            return Reload::Accepted;
        }
        if let Some(line) = error_log.and_then(|log| complaint_since(log, log_offset, pid)) {
            return Reload::Refused(line);
        }
        if !alive(pid) {
            return Reload::Refused(format!("nginx's master (pid {pid}) exited during the reload"));
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
        pause = (started.elapsed() / 20).clamp(Duration::from_millis(1), Duration::from_millis(250));
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
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok().filter(|pid| *pid > 1)
}

/// A stale pid file may name a pid reused by another process, which must not get a SIGHUP:
/// the master's title is `nginx: master process ...`.
fn is_nginx_master(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|title| title.starts_with(b"nginx: master process"))
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The processes seen so far, so that each poll reads the parent of new pids only: a poll
/// costs one read of /proc, not one per process of the host.
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
    std::fs::read_dir("/proc").into_iter().flatten().filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
}

/// The fourth field of /proc/PID/stat, after the parenthesized command name.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(PathBuf::from(format!("/proc/{pid}/stat"))).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
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
        if !["[emerg]", "[alert]", "[crit]"].iter().any(|level| line.contains(level)) {
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
        let outcome = reload(&dir.path().join("nginx.pid"), None, Duration::from_millis(10));
        assert!(matches!(outcome, Reload::NotRunning(_)), "{outcome:?}");
    }

    #[test]
    fn a_pid_that_is_not_an_nginx_master_gets_no_signal() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        std::fs::write(dir.path().join("nginx.pid"), format!("{}\n", child.id())).unwrap();
        let outcome = reload(&dir.path().join("nginx.pid"), None, Duration::from_millis(10));
        assert!(matches!(outcome, Reload::NotRunning(_)), "{outcome:?}");
        assert!(child.try_wait().unwrap().is_none(), "sleep was not signalled");
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
        assert!(complaint.contains("still could not bind()") && complaint.contains("127.0.0.1:8443"), "{complaint}");
    }

    #[test]
    fn only_the_masters_own_errors_after_the_signal_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("error.log");
        let old = "2026/12/01 10:00:00 [emerg] 42#42: old trouble\n";
        std::fs::write(&log, format!("{old}2026/12/01 10:00:01 [emerg] 43#43: nginx -t elsewhere\n2026/12/01 10:00:02 [notice] 42#42: reconfiguring\n2026/12/01 10:00:03 [emerg] 42#42: cannot load certificate\n")).unwrap();
        let line = complaint_since(&log, old.len() as u64, 42).unwrap();
        assert!(line.ends_with("cannot load certificate"), "{line}");
        assert_eq!(complaint_since(&log, std::fs::metadata(&log).unwrap().len(), 42), None);
    }

    #[test]
    fn a_new_child_is_seen_once() {
        let mut seen = Processes::now();
        let me = std::process::id() as i32;
        assert!(!seen.new_child_of(me));
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        assert!(seen.new_child_of(me), "the new child is seen");
        assert!(!seen.new_child_of(me), "and only once");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn parents_come_from_proc() {
        assert_eq!(parent_of(std::process::id() as i32), Some(std::os::unix::process::parent_id() as i32));
    }
}
