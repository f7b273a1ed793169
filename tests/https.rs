//! The HTTPS endpoint nginx serves once the host is set up as the README says (nginx:setup),
//! judged by independent clients: sslyze against Mozilla's intermediate configuration,
//! rustls for SNI and ALPN, and an upstream that shows what nginx forwarded.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Sandbox, Tree, first_cert_der, tls_exchange};

/// A private root -> intermediate -> leaf chain made by openssl, as a real CA issues: leaves
/// valid for 90 days (Mozilla's recommendation; sslyze refuses more than 366).
struct Pki {
    dir: tempfile::TempDir,
}

/// The openssl `-newkey` argument of each leaf key type.
#[derive(Clone, Copy)]
enum KeyType {
    P256,
    Rsa2048,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("pki")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let pki = Pki { dir };
        let ca = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
        std::fs::write(pki.path("ca.ext"), ca).unwrap();
        let root_args = [
            "-x509",
            "-days",
            "365",
            "-subj",
            "/CN=dokku-certs test root",
            "-addext",
        ];
        let mut args = vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        args.extend(["-keyout", pki.arg("root.key"), "-out", pki.arg("root.crt")]);
        args.extend(root_args);
        args.extend([
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        common::openssl(&args);
        pki.issue(
            "inter",
            "/CN=dokku-certs test intermediate",
            KeyType::P256,
            "root",
            "ca.ext",
        );
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> &'static str {
        // The paths live as long as the test; leaking a few short strings keeps the calls flat.
        Box::leak(self.path(name).display().to_string().into_boxed_str())
    }

    /// `name.key` and `name.crt`, signed by `issuer` with the extensions in `ext`.
    fn issue(&self, name: &str, subject: &str, key: KeyType, issuer: &str, ext: &str) {
        let newkey: &[&str] = match key {
            KeyType::P256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyType::Rsa2048 => &["-newkey", "rsa:2048"],
        };
        let mut args = vec![
            "req",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            self.arg(&format!("{name}.key")),
        ];
        args.extend(newkey);
        args.extend(["-out", self.arg(&format!("{name}.csr"))]);
        common::openssl(&args);
        common::openssl(&[
            "x509",
            "-req",
            "-sha256",
            "-days",
            "90",
            "-in",
            self.arg(&format!("{name}.csr")),
            "-CA",
            self.arg(&format!("{issuer}.crt")),
            "-CAkey",
            self.arg(&format!("{issuer}.key")),
            "-CAcreateserial",
            "-extfile",
            self.arg(ext),
            "-out",
            self.arg(&format!("{name}.crt")),
        ]);
    }

    fn root(&self) -> PathBuf {
        self.path("root.crt")
    }

    /// Issues a leaf for `domain`; returns the paths of the full chain and the key.
    fn leaf(&self, domain: &str, key: KeyType) -> (PathBuf, PathBuf) {
        let ext = format!(
            "subjectAltName=DNS:{domain}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature{}\n\
             extendedKeyUsage=serverAuth\n",
            if matches!(key, KeyType::Rsa2048) {
                ",keyEncipherment"
            } else {
                ""
            }
        );
        std::fs::write(self.path(&format!("{domain}.ext")), ext).unwrap();
        self.issue(
            domain,
            &format!("/CN={domain}"),
            key,
            "inter",
            &format!("{domain}.ext"),
        );
        let chain = [
            std::fs::read(self.path(&format!("{domain}.crt"))).unwrap(),
            std::fs::read(self.path("inter.crt")).unwrap(),
        ];
        let full = self.path(&format!("{domain}.fullchain.crt"));
        std::fs::write(&full, chain.concat()).unwrap();
        (full, self.path(&format!("{domain}.key")))
    }
}

const ECDSA: &str = "ecdsa.example.com";
const RSA: &str = "rsa.example.com";

/// A sandbox set up by nginx:setup, serving `app` at `domain` over https with a certificate
/// from `pki`, its upstream `upstream_port`.
fn serving(pki: &Pki, apps: Vec<(&str, &str, KeyType)>, upstream_port: Option<u16>) -> Sandbox {
    let mut sandbox = Sandbox::with_policy();
    for (app, domain, _) in &apps {
        sandbox.create_app(app, &[domain]);
        if let Some(port) = upstream_port {
            std::fs::write(
                sandbox.app_dir(app).join("LISTENERS"),
                format!("127.0.0.1:{port}\n"),
            )
            .unwrap();
        }
    }
    sandbox.start_nginx();
    for (app, domain, key) in apps {
        let (crt, key) = pki.leaf(domain, key);
        sandbox
            .run(
                &[
                    "certs:add",
                    app,
                    crt.to_str().unwrap(),
                    key.to_str().unwrap(),
                ],
                None,
            )
            .ok();
        let expected = first_cert_der(&std::fs::read(&crt).unwrap());
        assert_eq!(sandbox.wait_served(domain, &expected), expected, "{domain}");
    }
    sandbox
}

fn one_app(upstream_port: Option<u16>) -> (Pki, Sandbox) {
    let pki = Pki::new();
    let sandbox = serving(&pki, vec![("myapp", ECDSA, KeyType::P256)], upstream_port);
    (pki, sandbox)
}

/// sslyze from the venv `make test` fills (target/sslyze-venv), or $SSLYZE.
fn sslyze() -> PathBuf {
    let path = std::env::var_os("SSLYZE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sslyze-venv/bin/sslyze")
        });
    assert!(
        path.exists(),
        "{} is missing: `make test` installs sslyze (PyPI) there",
        path.display()
    );
    path
}

/// Per scanned name: the leaf's key type, session ID resumption, and how many suites were
/// accepted below TLS 1.2 and at TLS 1.2.
const SUMMARIZE: &str = r#"
import json, sys
report = json.load(open(sys.argv[1]))
summary = {}
for server in report["server_scan_results"]:
    scan = server["scan_result"]
    accepted = lambda name: len(scan[name]["result"]["accepted_cipher_suites"])
    summary[server["server_location"]["hostname"]] = {
        "key": scan["certificate_info"]["result"]["certificate_deployments"][0]["received_certificate_chain"][0]["public_key"]["algorithm"],
        "session_id_resumption": scan["session_resumption"]["result"]["session_id_resumption_result"],
        "accepted_before_tls_1_2": sum(accepted(n) for n in ["ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites"]),
        "accepted_tls_1_2": accepted("tls_1_2_cipher_suites"),
    }
print(json.dumps(summary))
"#;

#[test]
fn sslyze_finds_ecdsa_and_rsa_apps_mozilla_intermediate_compliant() {
    let pki = Pki::new();
    let sandbox = serving(
        &pki,
        vec![
            ("ecdsa", ECDSA, KeyType::P256),
            ("rsa", RSA, KeyType::Rsa2048),
        ],
        None,
    );
    let json = sandbox.dir.path().join("sslyze.json");
    let targets: Vec<String> = [ECDSA, RSA]
        .iter()
        .map(|d| format!("{d}:{}{{127.0.0.1}}", sandbox.ssl_port))
        .collect();
    let output = Command::new(sslyze())
        .arg("--mozilla_config=intermediate")
        .arg("--resum")
        .arg(format!("--certinfo_ca_file={}", pki.root().display()))
        .arg(format!("--json_out={}", json.display()))
        .args(&targets)
        .output()
        .expect("run sslyze");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "sslyze: not compliant or failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for domain in [ECDSA, RSA] {
        assert!(
            stdout.contains(&format!("{domain}:{}: OK - Compliant.", sandbox.ssl_port)),
            "{domain}:\n{stdout}"
        );
    }

    // sslyze's JSON holds RSA moduli as integers too large for serde_json: its own Python
    // reduces it to the few facts checked here.
    let summary = Command::new(sslyze().with_file_name("python3"))
        .arg("-c")
        .arg(SUMMARIZE)
        .arg(&json)
        .output()
        .expect("run the venv's python3");
    assert!(
        summary.status.success(),
        "{}",
        String::from_utf8_lossy(&summary.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
    for (name, key) in [(ECDSA, "ECPublicKey"), (RSA, "RSAPublicKey")] {
        let server = &summary[name];
        assert_eq!(server["key"], key, "{name}: {server}");
        assert_eq!(
            server["session_id_resumption"], "FULLY_SUPPORTED",
            "{name}: {server}"
        );
        assert_eq!(
            server["accepted_before_tls_1_2"], 0,
            "{name} accepts SSL 3.0, TLS 1.0 or 1.1: {server}"
        );
        assert!(
            server["accepted_tls_1_2"].as_u64().unwrap() > 0,
            "{name}: {server}"
        );
        // HTTP/2 is what a browser gets.
        let exchange = tls_exchange(sandbox.ssl_port, Some(name), b"", b"h2").unwrap();
        assert_eq!(
            exchange.alpn.as_deref(),
            Some(&b"h2"[..]),
            "{name}: no HTTP/2"
        );
    }
}

#[test]
fn unknown_or_missing_names_get_nothing() {
    let (_pki, sandbox) = one_app(None);
    // No certificate and no content of the app for a name it does not claim, or no name.
    for sni in [Some("other.example.com"), None] {
        let result = tls_exchange(sandbox.ssl_port, sni, b"", b"http/1.1");
        let error = result.expect_err("a handshake without a known name must fail");
        assert!(error.contains("handshake"), "{sni:?}: {error}");
    }
    // Over HTTP an unknown Host gets no redirect to https on that name: nginx closes (444).
    let (status, response) = sandbox.http_get("other.example.com", "/");
    assert_eq!((status, response.as_str()), (0, ""));
    // The app's own name still works.
    assert_eq!(sandbox.http_get(ECDSA, "/").0, 308);
    assert_eq!(sandbox.https_get(ECDSA).1, 200);
}

/// The Strict-Transport-Security header of `host`'s https answer, if any.
fn hsts_of(sandbox: &Sandbox, host: &str) -> Option<String> {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let exchange = tls_exchange(
        sandbox.ssl_port,
        Some(host),
        request.as_bytes(),
        b"http/1.1",
    )
    .unwrap();
    headers_of(&exchange.response).remove("strict-transport-security")
}

fn headers_of(response: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(response);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect()
}

/// Waits until `host` serves `expected` as its HSTS header (a reload takes a moment).
fn wait_hsts(sandbox: &Sandbox, host: &str, expected: Option<&str>) {
    let mut last = None;
    let settled = common::wait_until(|| {
        last = hsts_of(sandbox, host);
        last.as_deref() == expected
    });
    assert!(settled, "HSTS: expected {expected:?}, nginx sends {last:?}");
}

#[test]
fn hsts_is_sent_by_default_and_follows_each_property() {
    let (_pki, sandbox) = one_app(None);
    wait_hsts(&sandbox, ECDSA, Some("max-age=15724800; includeSubdomains"));
    let steps: [(&[&str], Option<&str>); 7] = [
        (
            &["myapp", "hsts-max-age", "600"],
            Some("max-age=600; includeSubdomains"),
        ),
        (
            &["myapp", "hsts-include-subdomains", "false"],
            Some("max-age=600"),
        ),
        (
            &["myapp", "hsts-preload", "true"],
            Some("max-age=600; preload"),
        ),
        (&["myapp", "hsts", "false"], None),
        (&["myapp", "hsts"], Some("max-age=600; preload")),
        (
            &["myapp", "hsts-include-subdomains"],
            Some("max-age=600; includeSubdomains; preload"),
        ),
        // A global default reaches the app where the app has no value of its own.
        (
            &["--global", "hsts-include-subdomains", "false"],
            Some("max-age=600; preload"),
        ),
    ];
    for (args, expected) in steps {
        let mut command = vec!["nginx:set"];
        command.extend_from_slice(args);
        sandbox.run(&command, None).ok();
        wait_hsts(&sandbox, ECDSA, expected);
    }
    sandbox
        .run(&["nginx:set", "myapp", "hsts-max-age"], None)
        .ok();
    sandbox
        .run(&["nginx:set", "--global", "hsts-max-age", "31536000"], None)
        .ok();
    wait_hsts(&sandbox, ECDSA, Some("max-age=31536000; preload"));
    // Where dokku keeps them, so a move to dokku mode keeps them.
    let stored = |scope: &str, name: &str| {
        std::fs::read_to_string(
            sandbox
                .lib_root()
                .join("config/nginx")
                .join(scope)
                .join(name),
        )
    };
    assert_eq!(stored("myapp", "hsts-preload").unwrap(), "true");
    assert_eq!(stored("--global", "hsts-max-age").unwrap(), "31536000");
    assert!(
        stored("myapp", "hsts-max-age").is_err(),
        "an unset property leaves no file"
    );
}

/// An upstream that answers each request with the request head it received; an upgrade
/// request gets 101 and a greeting, as a WebSocket server would.
fn start_echo_upstream() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || echo(stream));
        }
    });
    port
}

fn echo(mut stream: TcpStream) {
    let mut received = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let headers = headers_of(head.as_bytes());
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = received.len() - head_end;
    while body < length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => body += n,
        }
    }
    let upgrade = headers
        .get("connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("upgrade"));
    let answer = if upgrade {
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello over websocket\n"
            .to_string()
    } else {
        let body = format!("{head}body: {body} bytes\n");
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let _ = stream.write_all(answer.as_bytes());
}

/// Sends `request` to the app over https; returns the whole response as text.
fn https_request(sandbox: &Sandbox, request: &str, body: &[u8]) -> String {
    let mut bytes = request.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    let exchange = tls_exchange(sandbox.ssl_port, Some(ECDSA), &bytes, b"http/1.1").unwrap();
    String::from_utf8_lossy(&exchange.response).into_owned()
}

#[test]
fn the_upstream_sees_connection_upgrade_only_on_upgrade_requests() {
    let (_pki, sandbox) = one_app(Some(start_echo_upstream()));
    let plain = https_request(
        &sandbox,
        &format!("GET / HTTP/1.1\r\nHost: {ECDSA}\r\nConnection: close\r\n\r\n"),
        b"",
    );
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    let upstream_saw = plain.split("\r\n\r\n").nth(1).unwrap().to_ascii_lowercase();
    assert!(
        !upstream_saw.contains("connection: upgrade"),
        "a plain GET reached the app as an upgrade:\n{upstream_saw}"
    );
    assert!(
        upstream_saw.contains("x-forwarded-proto: https"),
        "{upstream_saw}"
    );

    let websocket = https_request(
        &sandbox,
        &format!(
            "GET /socket HTTP/1.1\r\nHost: {ECDSA}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
        b"",
    );
    assert!(
        websocket.starts_with("HTTP/1.1 101"),
        "the WebSocket did not upgrade:\n{websocket}"
    );
    assert!(websocket.ends_with("hello over websocket\n"), "{websocket}");

    // The X-Forwarded-* properties reach the upstream too.
    sandbox
        .run(&["nginx:set", "myapp", "x-forwarded-ssl", "on"], None)
        .ok();
    sandbox
        .run(
            &["nginx:set", "myapp", "x-forwarded-port-value", "443"],
            None,
        )
        .ok();
    let get = format!("GET / HTTP/1.1\r\nHost: {ECDSA}\r\nConnection: close\r\n\r\n");
    let mut seen = String::new();
    let forwarded = common::wait_until(|| {
        seen = https_request(&sandbox, &get, b"").to_ascii_lowercase();
        seen.contains("x-forwarded-ssl: on\r\n") && seen.contains("x-forwarded-port: 443\r\n")
    });
    assert!(forwarded, "{seen}");
}

#[test]
fn a_5_mib_post_needs_client_max_body_size() {
    let (_pki, sandbox) = one_app(Some(start_echo_upstream()));
    let body = vec![b'x'; 5 << 20];
    let post = format!(
        "POST /upload HTTP/1.1\r\nHost: {ECDSA}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let refused = https_request(&sandbox, &post, &body);
    assert!(
        refused.starts_with("HTTP/1.1 413"),
        "{}",
        &refused[..refused.len().min(300)]
    );

    sandbox
        .run(&["nginx:set", "myapp", "client-max-body-size", "10m"], None)
        .ok();
    let mut last = String::new();
    let passed = common::wait_until(|| {
        last = https_request(&sandbox, &post, &body);
        last.starts_with("HTTP/1.1 200")
    });
    assert!(passed, "{}", &last[..last.len().min(300)]);
    assert!(
        last.ends_with(&format!("body: {} bytes\n", 5 << 20)),
        "the app did not get the whole body: {last}"
    );
}

#[test]
fn no_nginx_version_in_headers_or_error_pages() {
    // No LISTENERS: nginx answers 502 itself; a bad request gets 400, a big one 413.
    let pki = Pki::new();
    let sandbox = serving(&pki, vec![("myapp", ECDSA, KeyType::P256)], None);
    std::fs::write(sandbox.app_dir("myapp").join("LISTENERS"), "").unwrap();
    sandbox
        .run(&["nginx:set", "myapp", "client-max-body-size", "1k"], None)
        .ok();
    let cases = [
        (
            format!("GET / HTTP/1.1\r\nHost: {ECDSA}\r\nConnection: close\r\n\r\n"),
            "502",
        ),
        (
            format!(
                "POST / HTTP/1.1\r\nHost: {ECDSA}\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n"
            ),
            "413",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: {ECDSA}\r\nHost: twice\r\n\r\n"),
            "400",
        ),
    ];
    for (request, status) in cases {
        let mut response = String::new();
        let answered = common::wait_until(|| {
            response = https_request(
                &sandbox,
                &request,
                &[b'x'; 4096][..if status == "413" { 4096 } else { 0 }],
            );
            response.starts_with(&format!("HTTP/1.1 {status}"))
        });
        assert!(answered, "expected {status}: {response}");
        assert_eq!(
            headers_of(response.as_bytes())
                .get("server")
                .map(String::as_str),
            Some("nginx"),
            "{response}"
        );
        assert!(
            !response.contains("nginx/"),
            "the version shows:\n{response}"
        );
    }
    let (_, plain) = sandbox.http_get(ECDSA, "/");
    assert!(
        plain.contains("Server: nginx\r\n") && !plain.contains("nginx/"),
        "{plain}"
    );
}

#[test]
fn property_values_that_could_inject_are_refused_and_change_nothing() {
    let (_pki, sandbox) = one_app(None);
    let served = sandbox.served_cert(ECDSA);
    let lib = sandbox.lib_root();
    let (app_before, lib_before) = (sandbox.tree("myapp"), Tree::of(&lib));
    let injections = [
        "1m; include /etc/passwd",
        "on;",
        "x}",
        "{",
        "\"quoted\"",
        "'quoted'",
        "two words",
        "line\nbreak",
        "$remote_addr;return 200",
        "# comment",
        "back\\slash",
        "/var/log/x.log; error_log /tmp/y",
    ];
    for name in [
        "access-log-path",
        "client-max-body-size",
        "error-log-path",
        "hsts",
        "hsts-include-subdomains",
        "hsts-max-age",
        "hsts-preload",
        "proxy-buffer-size",
        "proxy-buffering",
        "proxy-buffers",
        "proxy-busy-buffers-size",
        "proxy-connect-timeout",
        "proxy-read-timeout",
        "proxy-send-timeout",
        "x-forwarded-for-value",
        "x-forwarded-port-value",
        "x-forwarded-proto-value",
        "x-forwarded-ssl",
    ] {
        for value in injections {
            for scope in ["myapp", "--global"] {
                sandbox
                    .run(&["nginx:set", scope, name, value], None)
                    .refused(&format!("Invalid value for {name}"));
            }
        }
    }
    sandbox
        .run(&["nginx:set", "myapp", "server-tokens", "on"], None)
        .refused("Invalid key specified");
    assert_eq!(
        sandbox.tree("myapp"),
        app_before,
        "the app directory changed"
    );
    assert_eq!(Tree::of(&lib), lib_before, "the property store changed");
    assert_eq!(sandbox.served_cert(ECDSA), served);
}

#[test]
fn a_value_nginx_refuses_puts_everything_back() {
    let (_pki, sandbox) = one_app(Some(start_echo_upstream()));
    // A second app, plain HTTP, so that --global has two nginx.conf files to render.
    sandbox.create_app("other", &["other.example.com"]);
    sandbox
        .run(&["nginx:set", "other", "proxy-read-timeout", "30s"], None)
        .ok();
    let trees = || {
        (
            sandbox.tree("myapp"),
            sandbox.tree("other"),
            Tree::of(&sandbox.lib_root()),
        )
    };
    let before = trees();
    // Well-formed, but nginx -t refuses it: busy buffers larger than all buffers.
    for scope in ["myapp", "--global"] {
        let run = sandbox.run(&["nginx:set", scope, "proxy-busy-buffers-size", "1m"], None);
        run.refused("proxy_busy_buffers_size");
        assert_eq!(trees(), before, "{scope}: files changed");
    }
    assert_eq!(sandbox.https_get(ECDSA).1, 200);
}

#[test]
fn nginx_report_speaks_dokkus_format() {
    let (_pki, sandbox) = one_app(None);
    sandbox
        .run(&["nginx:set", "myapp", "proxy-read-timeout", "120s"], None)
        .ok();
    sandbox
        .run(
            &["nginx:set", "--global", "proxy-read-timeout", "90s"],
            None,
        )
        .ok();
    let text = sandbox.run(&["nginx:report", "myapp"], None).ok().stdout;
    assert!(
        text.starts_with("=====> myapp nginx information\n"),
        "{text}"
    );
    assert!(
        text.contains("\n       Nginx computed proxy read timeout:      120s\n"),
        "{text}"
    );
    assert!(
        text.contains("\n       Nginx global proxy read timeout:        90s\n"),
        "{text}"
    );
    assert!(
        text.contains("\n       Nginx proxy read timeout:               120s\n"),
        "{text}"
    );
    assert!(
        text.contains("\n       Nginx computed hsts max age:            15724800\n"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &sandbox
            .run(&["nginx:report", "myapp", "--format", "json"], None)
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["computed-proxy-read-timeout"], "120s");
    assert_eq!(json["global-proxy-read-timeout"], "90s");
    assert_eq!(json["client-max-body-size"], "");
    assert_eq!(json["computed-client-max-body-size"], "1m");
    let flag = sandbox
        .run(
            &[
                "nginx:report",
                "myapp",
                "--nginx-computed-proxy-read-timeout",
            ],
            None,
        )
        .ok();
    assert_eq!(flag.stdout, "120s\n");
    let global = sandbox.run(&["nginx:report", "--global"], None).ok().stdout;
    assert!(
        global.starts_with("=====> --global nginx information\n") && !global.contains("computed"),
        "{global}"
    );
}

#[test]
fn nginx_setup_is_tested_and_rolled_back_like_every_change() {
    let sandbox = Sandbox::with_policy();
    let before = std::fs::read(sandbox.global_conf()).unwrap();
    // A second default server for the same address (Debian's stock site, say) makes nginx -t fail.
    let clash = sandbox.app_dir("clash");
    std::fs::create_dir_all(&clash).unwrap();
    std::fs::write(
        clash.join("nginx.conf"),
        format!(
            "server {{ listen 127.0.0.1:{} default_server; return 200; }}\n",
            sandbox.http_port
        ),
    )
    .unwrap();
    sandbox
        .run(&["nginx:setup"], None)
        .refused("sites-enabled/default");
    assert_eq!(std::fs::read(sandbox.global_conf()).unwrap(), before);
}
