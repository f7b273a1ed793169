//! A real Pebble (Let's Encrypt's test CA) with pebble-challtestsrv as its DNS, on loopback:
//! every name resolves to 127.0.0.1, and HTTP-01 is checked on the sandbox nginx's port.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Sandbox, fixtures, free_port};

/// Pebble and its DNS, stopped on drop.
pub struct Pebble {
    children: Vec<Child>,
    /// The ACME directory URL.
    pub directory: String,
    management_port: u16,
    dns_management_port: u16,
}

impl Pebble {
    /// Starts Pebble validating HTTP-01 against `sandbox`'s nginx. Nonces are rejected 5% of
    /// the time, as Pebble does by default; validation does not sleep (PEBBLE_VA_NOSLEEP).
    pub fn start(sandbox: &Sandbox) -> Pebble {
        let (acme_port, management_port) = (free_port(), free_port());
        let (dns_port, dns_management_port, tls_port) = (free_port(), free_port(), free_port());
        let dir = sandbox.dir.path().join("pebble");
        std::fs::create_dir_all(&dir).unwrap();
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": fixtures().join("pebble-localhost.crt"),
            "privateKey": fixtures().join("pebble-localhost.key"),
            "httpPort": sandbox.http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_path = dir.join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
        let dns = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}"), "-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management_port}"), "-defaultIPv4", "127.0.0.1"])
            .args(["-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble-challtestsrv (make test installs the pebble package)");
        let pebble = Command::new("pebble")
            .args(["-config", config_path.to_str().unwrap(), "-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "5")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("start pebble (make test installs the pebble package)");
        let pebble = Pebble {
            children: vec![dns, pebble],
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            management_port,
            dns_management_port,
        };
        for port in [acme_port, management_port, dns_management_port] {
            assert!(
                super::wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
                "pebble did not listen on {port}"
            );
        }
        pebble
    }

    /// Pebble's current root certificate, from its management API.
    pub fn root_pem(&self) -> String {
        curl(&[
            "--cacert",
            fixtures().join("pebble-ca.crt").to_str().unwrap(),
            &format!("https://127.0.0.1:{}/roots/0", self.management_port),
        ])
    }

    /// Makes `host` resolve to `ip` (an address on which nothing answers makes the CA fail).
    pub fn set_address(&self, host: &str, ip: &str) {
        let body = serde_json::json!({"host": host, "addresses": [ip]}).to_string();
        curl(&["-X", "POST", "--data", &body, &format!("http://127.0.0.1:{}/add-a", self.dns_management_port)]);
    }

    /// The environment dokku-certs needs to talk to this Pebble.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("DOKKU_LETSENCRYPT_CA_CERTIFICATES", fixtures().join("pebble-ca.crt").display().to_string())]
    }
}

fn curl(args: &[&str]) -> String {
    let output =
        Command::new("curl").args(["-sS", "--fail", "--max-time", "10"]).args(args).output().expect("run curl");
    assert!(output.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
