//! `certs:report --format prometheus`: every app's certificate dates and renewal state in
//! Prometheus' text exposition format (version 0.0.4), for node_exporter's textfile
//! collector, so that an expiring or failing certificate raises an alert instead of
//! going quiet now that Let's Encrypt sends no expiry e-mails.

/// What one app contributes.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The app's name.
    pub app: String,
    /// The certificate's notBefore and notAfter (Unix seconds), if it has one that parses.
    pub dates: Option<(i64, i64)>,
    /// True if the certificate came from letsencrypt:enable.
    pub letsencrypt: bool,
    /// Unix seconds of the last successful renewal or enable.
    pub last_renewal: Option<i64>,
    /// Renewals that failed in a row.
    pub failures: u32,
    /// Unix seconds of the last failed renewal.
    pub last_failure: Option<i64>,
}

/// `certs:report --format prometheus`: the named app's sample, or every app's.
pub fn samples(env: &crate::app::Env, name: Option<&str>) -> crate::Result<Vec<Sample>> {
    let apps = crate::report::open_apps(env, name)?;
    Ok(crate::util::in_parallel(&apps, |app| sample(env, app)))
}

/// One app's sample: its certificate's dates, and its renewal state if Let's Encrypt manages it.
fn sample(env: &crate::app::Env, app: &crate::app::App) -> Sample {
    let dates = crate::endpoint::inspect(app)
        .ok()
        .flatten()
        .map(|i| (i.leaf().not_before, i.leaf().not_after));
    let state = crate::acme::state::load(env, &app.name);
    Sample {
        app: app.name.clone(),
        dates,
        letsencrypt: crate::acme::marker(app).is_some(),
        last_renewal: state.last_success,
        failures: state.failures,
        last_failure: state.last_failure,
    }
}

type Metric = (&'static str, &'static str, fn(&Sample) -> Option<f64>);

/// Name, help text and value of each metric; `None` leaves the app out of that metric.
const METRICS: [Metric; 7] = [
    (
        "dokku_certs_ssl_enabled",
        "1 if the app has a certificate that parses.",
        |s| Some(f64::from(u8::from(s.dates.is_some()))),
    ),
    (
        "dokku_certs_certificate_not_before_timestamp_seconds",
        "The certificate's notBefore.",
        |s| s.dates.map(|d| d.0 as f64),
    ),
    (
        "dokku_certs_certificate_expiry_timestamp_seconds",
        "The certificate's notAfter.",
        |s| s.dates.map(|d| d.1 as f64),
    ),
    (
        "dokku_certs_letsencrypt_managed",
        "1 if the certificate came from letsencrypt:enable.",
        |s| Some(f64::from(u8::from(s.letsencrypt))),
    ),
    (
        "dokku_certs_letsencrypt_last_renewal_timestamp_seconds",
        "When the last renewal or enable succeeded.",
        |s| s.last_renewal.map(|t| t as f64),
    ),
    (
        "dokku_certs_letsencrypt_renewal_failures",
        "Renewals that failed in a row (0 after a success).",
        |s| s.letsencrypt.then_some(f64::from(s.failures)),
    ),
    (
        "dokku_certs_letsencrypt_last_failure_timestamp_seconds",
        "When the last renewal failed.",
        |s| s.last_failure.map(|t| t as f64),
    ),
];

/// The exposition text: HELP and TYPE once per metric, then one line per app.
pub fn to_prometheus(samples: &[Sample]) -> String {
    let mut text = String::new();
    for (name, help, value) in METRICS {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for sample in samples {
            if let Some(value) = value(sample) {
                text.push_str(&format!(
                    "{name}{{app=\"{}\"}} {value}\n",
                    escape_label(&sample.app)
                ));
            }
        }
    }
    text
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_a_comment_or_a_sample_of_a_declared_metric() {
        let samples = [
            Sample {
                app: "a".into(),
                dates: Some((1, 2)),
                letsencrypt: true,
                last_renewal: Some(1),
                ..Sample::default()
            },
            Sample {
                app: "we\"ird\\".into(),
                ..Sample::default()
            },
        ];
        let text = to_prometheus(&samples);
        assert!(
            text.contains("dokku_certs_certificate_expiry_timestamp_seconds{app=\"a\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("{app=\"we\\\"ird\\\\\"} 0\n"), "{text}");
        assert!(!text.contains("renewal_failures{app=\"we"), "{text}");
    }
}
