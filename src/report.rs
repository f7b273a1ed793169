//! certs:report's fields, computed in-process, and the two shapes dokku prints them in.

use std::collections::BTreeMap;

use crate::app::App;
use crate::cert::format_openssl_date;
use crate::endpoint::inspect;

/// The report's flags, as dokku names them (sorted, as dokku sorts them).
pub const FLAGS: [&str; 8] = [
    "--ssl-dir",
    "--ssl-enabled",
    "--ssl-expires-at",
    "--ssl-hostnames",
    "--ssl-issuer",
    "--ssl-starts-at",
    "--ssl-subject",
    "--ssl-verified",
];

/// One app's report: flag to value, every value a string as dokku prints it.
pub type Fields = BTreeMap<&'static str, String>;

/// Computes the report of one app. A certificate that cannot be read leaves the
/// certificate fields empty and says why under `--ssl-verified`.
pub fn fields(app: &App) -> Fields {
    let mut fields: Fields = FLAGS.iter().map(|flag| (*flag, String::new())).collect();
    fields.insert("--ssl-dir", app.tls_dir().display().to_string());
    let inspection = inspect(app);
    // inspect() already asked whether server.crt and server.key exist: None means no.
    fields.insert("--ssl-enabled", (!matches!(inspection, Ok(None))).to_string());
    match inspection {
        Ok(None) => {}
        Ok(Some(inspection)) => {
            let leaf = inspection.leaf();
            fields.insert("--ssl-expires-at", format_openssl_date(leaf.not_after));
            fields.insert("--ssl-hostnames", leaf.hostnames().join(" "));
            fields.insert("--ssl-issuer", leaf.issuer.clone());
            fields.insert("--ssl-starts-at", format_openssl_date(leaf.not_before));
            fields.insert("--ssl-subject", leaf.subject.clone());
            fields.insert("--ssl-verified", inspection.trust.describe());
        }
        Err(error) => {
            fields.insert("--ssl-verified", format!("not verified: {error}"));
        }
    }
    fields
}

/// Maps `work` over `items` on every core, keeping the order. Most of a report's time is
/// one signature check per certificate, independent from app to app; below a few dozen
/// items a thread costs more than it saves.
pub fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 32 {
        return items.iter().map(work).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            items.chunks(chunk).map(|part| scope.spawn(move || part.iter().map(work).collect::<Vec<R>>())).collect();
        handles.into_iter().flat_map(|handle| handle.join().expect("a report thread panicked")).collect()
    })
}

/// The human report: `=====> <app> ssl information`, then each field padded as dokku pads it.
pub fn to_text(app: &str, fields: &Fields) -> String {
    let mut text = format!("=====> {app} ssl information\n");
    for (flag, value) in fields {
        let mut key = flag.trim_start_matches("--").replace('-', " ");
        key[..1].make_ascii_uppercase();
        text.push_str(&format!("       {:<31}{}\n", format!("{key}:"), value));
    }
    text
}

/// The JSON report: one object, keys without the `--ssl-` prefix, every value a string.
pub fn to_json(fields: &Fields) -> String {
    let object: BTreeMap<&str, &str> =
        fields.iter().map(|(flag, value)| (flag.trim_start_matches("--ssl-"), value.as_str())).collect();
    serde_json::to_string(&object).expect("a map of strings always serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_pads_like_dokku() {
        let mut fields: Fields = FLAGS.iter().map(|flag| (*flag, String::new())).collect();
        fields.insert("--ssl-enabled", "false".into());
        let text = to_text("myapp", &fields);
        assert!(text.starts_with("=====> myapp ssl information\n"));
        assert!(text.contains("\n       Ssl enabled:                   false\n"));
        assert!(text.contains("\n       Ssl expires at:                \n"));
    }

    #[test]
    fn in_parallel_keeps_the_order() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(in_parallel(&items, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(in_parallel(&items[..3], |i| i + 1), vec![1, 2, 3]);
    }

    #[test]
    fn json_keys_drop_the_prefix() {
        let fields: Fields = FLAGS.iter().map(|flag| (*flag, "v".to_string())).collect();
        let json: serde_json::Value = serde_json::from_str(&to_json(&fields)).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["dir", "enabled", "expires-at", "hostnames", "issuer", "starts-at", "subject", "verified"]);
    }
}
