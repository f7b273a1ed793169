//! `letsencrypt:set --global notify-command CMD`: run after every renewal or enable, success
//! or failure, so that someone hears of it now that Let's Encrypt sends no expiry e-mail.

use std::process::{Command, Stdio};

/// What happened, as the command's LETSENCRYPT_EVENT says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A certificate was obtained and installed (enable or renewal).
    Renewed,
    /// An attempt failed; the old certificate stays.
    Failed,
}

impl Event {
    /// The name in LETSENCRYPT_EVENT.
    pub fn name(self) -> &'static str {
        match self {
            Event::Renewed => "renewed",
            Event::Failed => "failed",
        }
    }
}

/// What the command is told, in its environment.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// LETSENCRYPT_APP.
    pub app: &'a str,
    /// LETSENCRYPT_DOMAINS, space-separated.
    pub domains: &'a [String],
    /// LETSENCRYPT_EVENT.
    pub event: Event,
    /// LETSENCRYPT_ERROR: the failure's message (empty on success).
    pub error: &'a str,
    /// LETSENCRYPT_EXPIRY: notAfter of the installed certificate, Unix seconds (empty if none).
    pub expiry: Option<i64>,
}

/// Runs `sh -c CMD` with the notice in its environment, stdin closed and its output going
/// where ours goes; an error says why it could not run or how it exited.
pub fn run(command: &str, notice: &Notice<'_>) -> Result<(), String> {
    let status = Command::new("/bin/sh")
        .args(["-c", command])
        .env("LETSENCRYPT_APP", notice.app)
        .env("LETSENCRYPT_DOMAINS", notice.domains.join(" "))
        .env("LETSENCRYPT_EVENT", notice.event.name())
        .env("LETSENCRYPT_ERROR", notice.error)
        .env("LETSENCRYPT_EXPIRY", notice.expiry.map(|t| t.to_string()).unwrap_or_default())
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run the notify-command: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("the notify-command exited with {status}")) }
}
