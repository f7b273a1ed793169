//! What auto-renew remembers per app between runs, in DOKKU_ROOT/.letsencrypt/state/APP.json
//! (0600): failures in a row and when the next attempt may be, the last success, and the
//! CA's last ARI answer with the time before which it must not be asked again.

use serde_json::{Value, json};

use super::schedule::{Window, backoff, seed};
use super::settings::SettingsFile;
use crate::app::Env;
use crate::error::Result;

/// The app's state; a fresh one if there is no file (or it cannot be read).
pub fn load(env: &Env, app: &str) -> State {
    SettingsFile::new(env)
        .read_state(app)
        .ok()
        .flatten()
        .map(|bytes| State::from_json(&bytes))
        .unwrap_or_default()
}

/// Writes the app's state (0600, directories 0700).
pub fn save(env: &Env, app: &str, state: &State) -> Result<()> {
    SettingsFile::new(env).write_state(app, state.to_json().as_bytes())
}

/// One app's renewal state. Every field is optional in the file: a missing or unreadable
/// file is a fresh state (the worst it costs is one renewal attempt too early).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Renewals that failed in a row.
    pub failures: u32,
    /// Unix seconds of the last failure.
    pub last_failure: Option<i64>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// No new attempt before this (backoff after failures).
    pub next_attempt: Option<i64>,
    /// Unix seconds of the last successful renewal or enable.
    pub last_success: Option<i64>,
    /// The ARI id of the certificate the cached window is for.
    pub ari_certificate: Option<String>,
    /// The cached ARI window.
    pub ari_window: Option<Window>,
    /// Ask the CA again no sooner than this (its Retry-After).
    pub ari_next_check: Option<i64>,
    /// The SHA-256 (hex) of the last certificate letsencrypt:revoke revoked: while it is
    /// still installed, letsencrypt:enable orders a new one.
    pub revoked: Option<String>,
}

impl State {
    /// Parses the file's JSON; anything unreadable is a fresh state.
    pub fn from_json(bytes: &[u8]) -> State {
        let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
            return State::default();
        };
        let int = |key: &str| value.get(key).and_then(Value::as_i64);
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        let ari_window = match (int("ari-window-start"), int("ari-window-end")) {
            (Some(start), Some(end)) => Some(Window { start, end }),
            _ => None,
        };
        State {
            failures: int("failures")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            last_failure: int("last-failure"),
            last_error: text("last-error"),
            next_attempt: int("next-attempt"),
            last_success: int("last-success"),
            ari_certificate: text("ari-certificate"),
            ari_window,
            ari_next_check: int("ari-next-check"),
            revoked: text("revoked"),
        }
    }

    /// The file's JSON.
    pub fn to_json(&self) -> String {
        let value = json!({
            "failures": self.failures,
            "last-failure": self.last_failure,
            "last-error": self.last_error,
            "next-attempt": self.next_attempt,
            "last-success": self.last_success,
            "ari-certificate": self.ari_certificate,
            "ari-window-start": self.ari_window.map(|w| w.start),
            "ari-window-end": self.ari_window.map(|w| w.end),
            "ari-next-check": self.ari_next_check,
            "revoked": self.revoked,
        });
        serde_json::to_string_pretty(&value).expect("json serializes") + "\n"
    }

    /// Records a failure at `now`: the next attempt waits the backoff for this many
    /// failures in a row, jittered per app.
    pub fn failed(&mut self, app: &str, now: i64, error: &str) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(now);
        self.last_error = Some(error.to_string());
        self.next_attempt =
            Some(now + backoff(self.failures, seed(format!("{app}\n{now}").as_bytes())));
    }

    /// Records a success at `now`: the backoff is over, the cached ARI answer was for the
    /// old certificate.
    pub fn succeeded(&mut self, now: i64) {
        *self = State {
            last_success: Some(now),
            ..State::default()
        };
    }

    /// Seconds until the backoff allows another attempt; `None` if it allows one now.
    pub fn backing_off(&self, now: i64) -> Option<i64> {
        self.next_attempt.filter(|at| *at > now).map(|at| at - now)
    }

    /// Whether the certificate `leaf_der` is the one letsencrypt:revoke revoked.
    pub fn is_revoked(&self, leaf_der: &[u8]) -> bool {
        self.revoked.as_deref() == Some(fingerprint(leaf_der).as_str())
    }

    /// Remembers that the certificate `leaf_der` was revoked.
    pub fn revoked(&mut self, leaf_der: &[u8]) {
        self.revoked = Some(fingerprint(leaf_der));
    }

    /// The cached ARI window for certificate `id`, if the CA's Retry-After has not passed.
    pub fn cached_window(&self, id: &str, now: i64) -> Option<Window> {
        let fresh = self.ari_next_check.is_some_and(|at| at > now);
        (fresh && self.ari_certificate.as_deref() == Some(id))
            .then_some(self.ari_window)
            .flatten()
    }
}

/// A certificate's SHA-256, in lower-case hex: names one certificate whatever its issuer
/// (a serial number is only unique per CA).
fn fingerprint(der: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_garbage_is_a_fresh_state() {
        let mut state = State::default();
        state.failed("myapp", 1_000, "rateLimited: too many");
        state.ari_certificate = Some("a.b".into());
        state.ari_window = Some(Window { start: 5, end: 6 });
        state.ari_next_check = Some(2_000);
        state.revoked(b"leaf");
        assert!(state.is_revoked(b"leaf") && !state.is_revoked(b"other leaf"));
        assert_eq!(State::from_json(state.to_json().as_bytes()), state);
        assert_eq!(State::from_json(b"not json"), State::default());
        assert_eq!(
            state.cached_window("a.b", 1_500),
            Some(Window { start: 5, end: 6 })
        );
        assert_eq!(state.cached_window("a.b", 2_000), None);
        assert_eq!(state.cached_window("other", 1_500), None);
    }

    #[test]
    fn three_failures_in_a_row_back_off_further_each_time() {
        let mut state = State::default();
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..3 {
            state.failed("myapp", now, "boom");
            let wait = state.backing_off(now).unwrap();
            waits.push(wait);
            assert_eq!(state.backing_off(now + wait), None);
            now += wait;
        }
        assert!(
            waits[0] >= 3_600 && waits[1] >= 7_200 && waits[2] >= 14_400,
            "{waits:?}"
        );
        state.succeeded(now);
        assert_eq!((state.failures, state.backing_off(now)), (0, None));
    }
}
