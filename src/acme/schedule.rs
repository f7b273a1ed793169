//! When to renew: an explicit grace period wins, else the CA's ARI window (RFC 9773), else
//! when a third of the certificate's lifetime is left. Pure decisions on numbers: the
//! network and the files are the caller's.

/// A renewal window the CA suggested, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The earliest moment the CA wants the renewal.
    pub start: i64,
    /// The latest moment; after it the certificate may be revoked or expire.
    pub end: i64,
}

/// What the decision was based on, for the user to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// `letsencrypt:set ... graceperiod SECONDS`: renew when fewer seconds are left.
    GracePeriod(i64),
    /// The CA's ARI window; the moment is the one picked inside it.
    Ari(Window),
    /// No ARI answer: renew when a third of the lifetime is left.
    ThirdOfLifetime,
    /// letsencrypt:revoke revoked the certificate: due now.
    Revoked,
}

/// When a certificate should be renewed, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Unix seconds at which renewal is due.
    pub due_at: i64,
    /// Where `due_at` came from.
    pub basis: Basis,
}

impl Plan {
    /// True if the renewal is due at `now`.
    pub fn is_due(&self, now: i64) -> bool {
        now >= self.due_at
    }
}

/// The lifetime of a certificate, its `notBefore` and `notAfter` in Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    /// notBefore.
    pub not_before: i64,
    /// notAfter.
    pub not_after: i64,
}

/// Decides when to renew. `seed` spreads renewals inside an ARI window: the same certificate
/// always gets the same moment (so daily runs agree with each other), different
/// certificates get different ones (so a fleet does not renew all at once, as RFC 9773 §4.2
/// asks). A window that has started already means "now" per the RFC.
pub fn plan(
    lifetime: Lifetime,
    grace_period: Option<i64>,
    window: Option<Window>,
    seed: u64,
) -> Plan {
    if let Some(grace) = grace_period {
        return Plan {
            due_at: lifetime.not_after.saturating_sub(grace),
            basis: Basis::GracePeriod(grace),
        };
    }
    if let Some(window) = window.filter(|w| w.end >= w.start) {
        let span = (window.end - window.start) as u64;
        let offset = if span == 0 {
            0
        } else {
            (seed % (span + 1)) as i64
        };
        return Plan {
            due_at: window.start + offset,
            basis: Basis::Ari(window),
        };
    }
    let total = (lifetime.not_after - lifetime.not_before).max(0);
    Plan {
        due_at: lifetime.not_after - total / 3,
        basis: Basis::ThirdOfLifetime,
    }
}

/// A seed from bytes that identify a certificate (its serial number): FNV-1a, which is
/// enough to spread moments, not a secret.
pub fn seed(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3)
    })
}

/// How long to wait after `failures` failed renewals in a row: 1 hour doubled per further
/// failure, capped at one day, with up to a quarter of jitter from `seed` so that apps that
/// failed together do not retry together.
pub fn backoff(failures: u32, seed: u64) -> i64 {
    if failures == 0 {
        return 0;
    }
    let base: i64 = 3_600i64
        .saturating_mul(1 << (failures - 1).min(5))
        .min(86_400);
    base + (seed % (base as u64 / 4 + 1)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn lifetime(days: f64) -> Lifetime {
        Lifetime {
            not_before: 1_000_000,
            not_after: 1_000_000 + (days * DAY as f64) as i64,
        }
    }

    #[test]
    fn an_explicit_grace_period_wins_over_ari() {
        let window = Window {
            start: 1_000_000 + DAY,
            end: 1_000_000 + 2 * DAY,
        };
        let plan = plan(lifetime(90.0), Some(30 * DAY), Some(window), 7);
        assert_eq!(plan.due_at, 1_000_000 + 60 * DAY);
        assert_eq!(plan.basis, Basis::GracePeriod(30 * DAY));
    }

    #[test]
    fn without_ari_a_third_of_the_lifetime_is_left() {
        assert_eq!(
            plan(lifetime(90.0), None, None, 0).due_at,
            1_000_000 + 60 * DAY
        );
        // Let's Encrypt's shortlived profile (160 hours): renewed after about 4.4 days, so a
        // daily cron renews it every 4 to 5 days, never daily.
        let short = lifetime(160.0 / 24.0);
        let due = plan(short, None, None, 0).due_at - short.not_before;
        assert!((4 * DAY..5 * DAY).contains(&due), "{due}");
        assert!(!plan(short, None, None, 0).is_due(short.not_before + DAY));
    }

    #[test]
    fn the_moment_in_an_ari_window_is_stable_per_certificate_and_inside_it() {
        let window = Window {
            start: 5_000,
            end: 5_000 + DAY,
        };
        let a = plan(lifetime(6.0), None, Some(window), seed(b"serial-a"));
        assert_eq!(
            a,
            plan(lifetime(6.0), None, Some(window), seed(b"serial-a"))
        );
        assert!((window.start..=window.end).contains(&a.due_at));
        let moments: std::collections::BTreeSet<i64> = (0..20u8)
            .map(|i| plan(lifetime(6.0), None, Some(window), seed(&[i])).due_at)
            .collect();
        assert!(moments.len() > 10, "moments are not spread: {moments:?}");
        // A window in the past is due now.
        assert!(plan(lifetime(6.0), None, Some(Window { start: 10, end: 20 }), 3).is_due(100));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        assert_eq!(backoff(0, 99), 0);
        for (failures, base) in [(1, 3_600), (2, 7_200), (3, 14_400), (10, 86_400)] {
            for s in 0..50 {
                let wait = backoff(failures, seed(&[s]));
                assert!(
                    (base..=base + base / 4).contains(&wait),
                    "{failures}: {wait}"
                );
            }
        }
    }
}
