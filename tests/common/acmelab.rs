//! The acme-lab kit (../shared/acme-lab, built by `make acme-lab`): Pebble v2.10.1 with
//! profiles, ARI and EAB, and BIND authoritative for example.test with a TSIG key, both on
//! loopback. Pebble validates HTTP-01 on the sandbox nginx's port and resolves through BIND
//! (every name in example.test is 127.0.0.1).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use super::{Sandbox, free_port};

/// The kit's scripts: ACME_LAB_KIT, else `../shared/acme-lab` beside the project.
pub fn kit() -> PathBuf {
    let dir = std::env::var_os("ACME_LAB_KIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/acme-lab"));
    assert!(
        dir.join("start-pebble.sh").exists(),
        "no acme-lab kit at {} (set ACME_LAB_KIT)",
        dir.display()
    );
    dir
}

/// Runs a kit script and returns its `KEY=VALUE` lines.
fn start(script: &str, args: &[String]) -> HashMap<String, String> {
    // Every order validates (Pebble reuses a valid authorization half of the time by
    // default): a test that expects the challenge to run is not left to chance.
    let output = Command::new(kit().join(script))
        .args(args)
        .env("PEBBLE_AUTHZREUSE", "0")
        .output()
        .expect("run the acme-lab kit");
    assert!(
        output.status.success(),
        "{script} {args:?} failed (run `make acme-lab` first):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// BIND and Pebble from the kit, stopped on drop.
pub struct Lab {
    /// BIND's KEY=VALUE lines: BIND_NAMESERVER, TSIG_KEY_NAME, TSIG_ALGORITHM, TSIG_SECRET.
    pub bind: HashMap<String, String>,
    /// Pebble's: PEBBLE_DIRECTORY, PEBBLE_MGMT, PEBBLE_TLS_CA, EAB_KID, EAB_HMAC_KEY.
    pub pebble: HashMap<String, String>,
}

impl Lab {
    /// Starts BIND and a Pebble that validates HTTP-01 on `sandbox`'s nginx, with `extra`
    /// start-pebble.sh options (`--eab`).
    pub fn start(sandbox: &Sandbox, extra: &[&str]) -> Lab {
        let bind = start("start-bind.sh", &["--port".into(), free_port().to_string()]);
        let mut args: Vec<String> = [
            "--https-port",
            &free_port().to_string(),
            "--mgmt-port",
            &free_port().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend([
            "--http-port".into(),
            sandbox.http_port.to_string(),
            "--tls-port".into(),
            free_port().to_string(),
        ]);
        args.extend([
            "--dns".into(),
            bind["BIND_NAMESERVER"].clone(),
            "--no-sleep".into(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        // Built first, so that BIND is stopped if Pebble does not start.
        let mut lab = Lab {
            bind,
            pebble: HashMap::new(),
        };
        lab.pebble = start("start-pebble.sh", &args);
        lab
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> &str {
        &self.pebble["PEBBLE_DIRECTORY"]
    }

    /// The environment dokku-certs needs to trust Pebble's HTTPS.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![(
            "DOKKU_LETSENCRYPT_CA_CERTIFICATES",
            self.pebble["PEBBLE_TLS_CA"].clone(),
        )]
    }

    /// Makes Pebble answer `renewalInfo` for the certificate in `cert_pem` with this window
    /// (RFC 3339 times).
    pub fn set_renewal_window(&self, cert_pem: &std::path::Path, start: &str, end: &str) {
        let output = Command::new(kit().join("set-renewal-info.sh"))
            .args([
                &self.pebble["PEBBLE_MGMT"],
                cert_pem.to_str().unwrap(),
                start,
                end,
            ])
            .env("PEBBLE_TLS_CA", &self.pebble["PEBBLE_TLS_CA"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "set-renewal-info.sh: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Pebble's log, to show what the CA saw.
    pub fn pebble_log(&self) -> String {
        std::fs::read_to_string(&self.pebble["PEBBLE_LOG"]).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let pids: Vec<&String> = [self.pebble.get("PEBBLE_PID"), self.bind.get("BIND_PID")]
            .into_iter()
            .flatten()
            .collect();
        let _ = Command::new(kit().join("stop.sh")).args(pids).output();
    }
}

/// An RFC 3339 time `seconds` from now.
pub fn rfc3339_in(seconds: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
