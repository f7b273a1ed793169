//! dokku mode (DOKKU_CERTS_MODE=dokku) without a dokku: a stand-in `plugn` on PATH records
//! the triggers fired and can fail the rebuild the way nginx-vhosts does when `nginx -t`
//! fails. The real dokku is exercised by `make dokku-test` (tests/dokku/*.bats).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use common::{Run, Sandbox, Tree, fixture, fixtures};

/// A sandbox app plus a fake plugn that logs `trigger NAME APP` and whether the app's
/// certificate exists as dokku's proxy sees it then (`tls=yes|no`), and fails
/// post-domains-update with nginx's words while `fail-rebuild` exists.
struct Dokku {
    sandbox: Sandbox,
    bin: PathBuf,
}

const NGINX_SAYS: &str =
    "nginx: [emerg] unknown directive \"this\" in /home/dokku/myapp/nginx.conf.d/broken.conf:1";

impl Dokku {
    fn new() -> Dokku {
        let sandbox = Sandbox::new();
        sandbox.create_app("myapp", &["myapp.example.com"]);
        let bin = sandbox.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        // Queries a rebuild-free reload asks (not events: not logged).
        let script = format!(
            "#!/bin/sh\n\
             case \"$2\" in\n\
               proxy-is-enabled) echo true; exit 0 ;;\n\
               proxy-type) echo nginx; exit 0 ;;\n\
               ports-get) echo 'http:80:5000 https:443:5000'; exit 0 ;;\n\
             esac\n\
             if [ -e '{root}'/\"$3\"/tls/server.crt ]; then tls=yes; else tls=no; fi\n\
             echo \"$* tls=$tls\" >> '{log}'\n\
             if [ \"$2\" = post-letsencrypt-renew ]; then\n\
               echo \"env $LETSENCRYPT_APP $LETSENCRYPT_EVENT $LETSENCRYPT_DOMAINS error=${{LETSENCRYPT_ERROR:+yes}}\" >> '{log}'\n\
             fi\n\
             echo \"-----> Configuring for $2\"\n\
             if [ \"$2\" = post-domains-update ] && [ -e '{fail}' ]; then\n\
               echo ' !     Failed to validate nginx config' >&2\n\
               echo '{NGINX_SAYS}' >&2\n\
               exit 1\n\
             fi\n\
             echo ' !     a warning from the proxy' >&2\n",
            log = sandbox.dir.path().join("triggers.log").display(),
            root = sandbox.root().display(),
            fail = sandbox.dir.path().join("fail-rebuild").display(),
        );
        let plugn = bin.join("plugn");
        std::fs::write(&plugn, script).unwrap();
        std::fs::set_permissions(&plugn, std::fs::Permissions::from_mode(0o755)).unwrap();
        Dokku { sandbox, bin }
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.run_env(args, stdin, &[])
    }

    /// [`Dokku::run`] with `env` added.
    fn run_env(&self, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, String)]) -> Run {
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap());
        let mut env: Vec<(&str, &str)> = env
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        env.extend([("DOKKU_CERTS_MODE", "dokku"), ("PATH", &path)]);
        self.sandbox.run_with(args, stdin, &env)
    }

    fn add(&self, crt: &str, key: &str) -> Run {
        self.add_with(crt, key, &[])
    }

    fn add_with(&self, crt: &str, key: &str, env: &[(&str, String)]) -> Run {
        let dir = fixtures();
        self.run_env(
            &[
                "certs:add",
                "myapp",
                dir.join(crt).to_str().unwrap(),
                dir.join(key).to_str().unwrap(),
            ],
            None,
            env,
        )
    }

    /// The triggers fired since the last call.
    fn fired(&self) -> Vec<String> {
        let log = self.sandbox.dir.path().join("triggers.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(str::to_string).collect()
    }

    fn fail_rebuilds(&self, fail: bool) {
        self.mark("fail-rebuild", fail);
    }

    fn mark(&self, name: &str, present: bool) {
        let marker = self.sandbox.dir.path().join(name);
        if present {
            std::fs::write(marker, "").unwrap();
        } else {
            let _ = std::fs::remove_file(marker);
        }
    }

    /// What nginx-vhosts leaves after a rebuild with a certificate (an nginx.conf that loads
    /// the app's tls/), and its reload: a stand-in `nginx-vhosts/functions` under
    /// PLUGIN_AVAILABLE_PATH whose reload logs `reload` and, while `fail-reload` exists,
    /// fails as nginx does (its reason comes from `sudo nginx -t`).
    fn serve_tls_with_nginx_vhosts(&self) -> Vec<(&'static str, String)> {
        let fail = self.sandbox.dir.path().join("fail-reload");
        self.serve_tls_with("", &format!("[ ! -e '{}' ]", fail.display()))
    }

    /// [`Dokku::serve_tls_with_nginx_vhosts`] with `listen` lines in the app's TLS server
    /// (nginx-vhosts' template has them) and `reload` as the body of its reload.
    fn serve_tls_with(&self, listen: &str, reload: &str) -> Vec<(&'static str, String)> {
        let app = self.sandbox.app_dir("myapp");
        let conf = format!(
            "server {{\n{listen}  ssl_certificate     {};\n  ssl_certificate_key {};\n}}\n",
            app.join("tls/server.crt").display(),
            app.join("tls/server.key").display()
        );
        std::fs::write(app.join("nginx.conf"), conf).unwrap();
        let plugins = self.sandbox.dir.path().join("plugins");
        std::fs::create_dir_all(plugins.join("nginx-vhosts")).unwrap();
        let functions = format!(
            "dokku_log_info1() {{ echo \"-----> $*\"; }}\n\
             get_nginx_location() {{ echo /usr/sbin/nginx; }}\n\
             sudo() {{ echo '{NGINX_SAYS}' >&2; return 1; }}\n\
             fn-nginx-vhosts-nginx-init-cmd() {{ echo \"reload $1\" >> '{log}'; {reload}; }}\n",
            log = self.sandbox.dir.path().join("triggers.log").display(),
        );
        std::fs::write(plugins.join("nginx-vhosts/functions"), functions).unwrap();
        vec![("PLUGIN_AVAILABLE_PATH", plugins.display().to_string())]
    }
}

#[test]
fn add_and_remove_fire_dokkus_triggers_and_leave_nginx_conf_to_dokku() {
    let dokku = Dokku::new();
    let run = dokku.add("leaf.fullchain.crt", "leaf.key").ok();
    assert_eq!(
        dokku.fired(),
        [
            "trigger post-certs-update myapp tls=yes",
            "trigger post-domains-update myapp tls=yes"
        ]
    );
    assert!(
        !dokku.sandbox.app_dir("myapp").join("nginx.conf").exists(),
        "dokku mode wrote nginx.conf"
    );
    assert_eq!(
        std::fs::read(dokku.sandbox.app_dir("myapp").join("tls/server.crt")).unwrap(),
        fixture("leaf.fullchain.crt")
    );
    // The proxy's own lines come through: stdout live, its warnings on stderr.
    assert!(
        run.stdout
            .contains("-----> Configuring for post-domains-update"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(" !     a warning from the proxy"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("Reloading nginx"),
        "dokku's proxy reloads, not us: {}",
        run.stdout
    );

    let run = dokku.run(&["certs:remove", "myapp"], None).ok();
    assert!(
        run.stdout
            .starts_with("-----> Removing SSL endpoint from myapp\n"),
        "{}",
        run.stdout
    );
    // The proxy rebuilds without the certificate: tls/ is gone before it looks.
    assert_eq!(
        dokku.fired(),
        [
            "trigger post-certs-remove myapp tls=no",
            "trigger post-domains-update myapp tls=no"
        ]
    );
    assert!(!dokku.sandbox.app_dir("myapp").join("tls").exists());
}

#[test]
fn a_reload_without_rebuild_is_confirmed_by_the_new_workers_and_a_handshake() {
    let mut dokku = Dokku::new();
    dokku.add("leaf.fullchain.crt", "leaf.key").ok();
    // nginx-vhosts' https server, on the sandbox's port, and a reload that returns as soon
    // as the master has the signal (as `systemctl reload nginx` does).
    let listen = format!(
        "  listen 127.0.0.1:{} ssl;\n  server_name myapp.example.com;\n",
        dokku.sandbox.ssl_port
    );
    let env = dokku.serve_tls_with(&listen, &format!("{} -s reload", dokku.sandbox.nginx_cmd()));
    dokku.sandbox.start_nginx();
    let leaf = |name: &str| {
        dokku_certs::pem::certificates(&fixture(name))
            .unwrap()
            .remove(0)
    };
    dokku
        .sandbox
        .wait_served("myapp.example.com", &leaf("leaf.fullchain.crt"));
    dokku.fired();

    let run = dokku.add_with("leaf2.crt", "leaf2.key", &env).ok();
    // Asked once, at once: the command returned only when nginx served the new certificate.
    assert_eq!(
        dokku.sandbox.served_cert("myapp.example.com"),
        leaf("leaf2.crt")
    );
    let said = format!(
        "       nginx serves the new certificate for myapp.example.com on 127.0.0.1:{}",
        dokku.sandbox.ssl_port
    );
    assert!(run.stdout.contains(&said), "{}", run.stdout);
    assert_eq!(
        dokku.fired(),
        ["trigger post-certs-update myapp tls=yes", "reload reload"]
    );
}

#[test]
fn the_same_names_only_reload_nginx_and_a_refused_reload_puts_the_previous_pair_back() {
    let dokku = Dokku::new();
    dokku.add("leaf.fullchain.crt", "leaf.key").ok();
    let env = dokku.serve_tls_with_nginx_vhosts();
    dokku.fired();
    let app = dokku.sandbox.app_dir("myapp");
    let conf = std::fs::metadata(app.join("nginx.conf")).unwrap();

    // leaf2 names what leaf names: post-certs-update, a reload, and no rebuild.
    let run = dokku.add_with("leaf2.crt", "leaf2.key", &env).ok();
    assert_eq!(
        dokku.fired(),
        ["trigger post-certs-update myapp tls=yes", "reload reload"]
    );
    assert!(
        run.stdout
            .contains("-----> Reloading nginx: the new certificate matches the same domains"),
        "{}",
        run.stdout
    );
    // No nginx runs here: nothing is claimed about what nginx serves.
    assert!(
        run.stdout
            .contains("       Not confirmed that nginx took the reload: nginx is not running"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("nginx serves the new certificate"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read(app.join("tls/server.crt")).unwrap(),
        fixture("leaf2.crt")
    );
    let after = std::fs::metadata(app.join("nginx.conf")).unwrap();
    assert_eq!(
        (after.ino(), after.mtime_nsec()),
        (conf.ino(), conf.mtime_nsec()),
        "nginx.conf was touched"
    );

    // nginx refuses the reload: the previous pair is back, and its listeners hear of it.
    let before = Tree::of(&app);
    dokku.mark("fail-reload", true);
    let run = dokku.add_with("leaf.fullchain.crt", "leaf.key", &env);
    assert_eq!(run.code, 1, "{run:?}");
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.starts_with(" !     nginx refused to reload with the new certificate ("),
        "{last}"
    );
    assert!(
        last.contains(NGINX_SAYS),
        "nginx's reason is missing: {last}"
    );
    assert!(
        last.ends_with(
            "the previous certificate and key are back in place and nginx keeps serving them"
        ),
        "{last}"
    );
    assert_eq!(Tree::of(&app), before, "the app dir is not as it was");
    assert_eq!(
        dokku.fired(),
        [
            "trigger post-certs-update myapp tls=yes",
            "reload reload",
            "trigger post-certs-update myapp tls=yes"
        ]
    );

    // Other names (test.dokku.me matches no VHOST line): dokku rebuilds, as for the first one.
    dokku.mark("fail-reload", false);
    dokku.add_with("dokku.crt", "dokku.key", &env).ok();
    assert_eq!(
        dokku.fired(),
        [
            "trigger post-certs-update myapp tls=yes",
            "trigger post-domains-update myapp tls=yes"
        ]
    );
}

#[test]
fn a_failed_rebuild_puts_the_previous_pair_back_and_rebuilds_with_it() {
    let dokku = Dokku::new();
    dokku.add("leaf.fullchain.crt", "leaf.key").ok();
    dokku.fired();
    let before = Tree::of(&dokku.sandbox.app_dir("myapp"));
    dokku.fail_rebuilds(true);
    let run = dokku.add("leaf2.crt", "leaf2.key");
    assert_eq!(run.code, 1, "{run:?}");
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.starts_with(" !     dokku could not rebuild the proxy config"),
        "{last}"
    );
    assert!(
        last.contains(NGINX_SAYS),
        "nginx's reason is missing: {last}"
    );
    assert!(
        last.contains("the previous certificate and key are back in place"),
        "{last}"
    );
    assert!(last.contains("rebuilding with them failed too"), "{last}");
    assert_eq!(
        Tree::of(&dokku.sandbox.app_dir("myapp")),
        before,
        "the app dir is not as it was"
    );
    // Rebuilt twice: with the new pair, then with the previous one.
    assert_eq!(
        dokku.fired(),
        [
            "trigger post-certs-update myapp tls=yes",
            "trigger post-domains-update myapp tls=yes",
            "trigger post-certs-update myapp tls=yes",
            "trigger post-domains-update myapp tls=yes"
        ]
    );
    // A remove whose rebuild fails: the pair comes back, the proxy rebuilds with it.
    let before = Tree::of(&dokku.sandbox.app_dir("myapp"));
    assert_eq!(dokku.run(&["certs:remove", "myapp"], None).code, 1);
    assert_eq!(Tree::of(&dokku.sandbox.app_dir("myapp")), before);
    assert_eq!(
        dokku.fired()[2..],
        [
            "trigger post-certs-update myapp tls=yes",
            "trigger post-domains-update myapp tls=yes"
        ]
    );
    // A first certificate whose rebuild fails: tls/ goes, and the proxy hears post-certs-remove.
    dokku.fail_rebuilds(false);
    dokku.run(&["certs:remove", "myapp"], None).ok();
    dokku.fired();
    dokku.fail_rebuilds(true);
    assert_eq!(dokku.add("leaf2.crt", "leaf2.key").code, 1);
    assert!(!dokku.sandbox.app_dir("myapp").join("tls").exists());
    assert_eq!(dokku.fired()[2], "trigger post-certs-remove myapp tls=no");
}

#[test]
fn triggers_answer_as_dokkus_plugin() {
    let dokku = Dokku::new();
    let trigger = |args: &[&str]| dokku.run(&[&["trigger"], args].concat(), None);
    assert_eq!(trigger(&["certs-exists", "myapp"]).ok().stdout, "false\n");
    assert_eq!(
        trigger(&["certs-exists", "nosuchapp"]).ok().stdout,
        "false\n"
    );
    assert_eq!(trigger(&["certs-get", "myapp", "crt"]).code, 1);
    let crt = fixtures().join("leaf.fullchain.crt");
    trigger(&["certs-set", "myapp", crt.to_str().unwrap()])
        .refused("Both CRT and KEY file paths are required");
    trigger(&[
        "certs-set",
        "myapp",
        crt.to_str().unwrap(),
        "/nonexistent/server.key",
    ])
    .refused("KEY file specified not found, please check file paths");
    trigger(&[
        "certs-set",
        "myapp",
        crt.to_str().unwrap(),
        fixtures().join("leaf.key").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(trigger(&["certs-exists", "myapp"]).ok().stdout, "true\n");
    assert_eq!(
        trigger(&["certs-get", "myapp", "crt"])
            .ok()
            .stdout
            .as_bytes(),
        fixture("leaf.fullchain.crt")
    );
    assert_eq!(trigger(&["certs-get", "myapp", "other"]).code, 1);
    assert!(
        trigger(&["report", "myapp"])
            .ok()
            .stdout
            .starts_with("=====> myapp ssl information\n")
    );
    trigger(&["certs-remove", "myapp"]).ok();
    trigger(&["certs-remove", "myapp"]).refused("An app-specific SSL endpoint is not defined");
    // A clone made by copying the app's files does not keep its certificate.
    dokku.sandbox.create_app("clone", &["clone.example.com"]);
    std::fs::create_dir(dokku.sandbox.app_dir("clone").join("tls")).unwrap();
    std::fs::write(
        dokku.sandbox.app_dir("clone").join("tls/server.crt"),
        fixture("leaf.crt"),
    )
    .unwrap();
    dokku.fired();
    trigger(&["post-app-clone-setup", "myapp", "clone"]).ok();
    assert!(!dokku.sandbox.app_dir("clone").join("tls").exists());
    assert_eq!(dokku.fired(), ["trigger post-certs-remove clone tls=no"]);
}

#[test]
fn report_and_help_speak_dokku() {
    let dokku = Dokku::new();
    assert_eq!(
        dokku
            .run(&["certs:report", "--global", "--format", "json"], None)
            .ok()
            .stdout,
        "{}\n"
    );
    assert_eq!(
        dokku.run(&["certs:report", "--global"], None).ok().stdout,
        "=====> --global ssl information\n"
    );
    dokku
        .run(&["certs:report", "--global", "--ssl-dir"], None)
        .refused("Invalid flag passed, valid flags:");
    dokku
        .run(
            &["certs:report", "myapp", "--ssl-dir", "--format", "json"],
            None,
        )
        .refused("--format flag cannot be specified when specifying an info flag");
    let help = dokku.run(&["certs:help"], None).ok().stdout;
    assert!(
        help.starts_with("Usage: dokku certs[:COMMAND]\n\nManage SSL (TLS) certs\n"),
        "{help}"
    );
    assert_eq!(dokku.run(&["certs"], None).ok().stdout, help);
    std::fs::remove_dir_all(dokku.sandbox.app_dir("myapp")).unwrap();
    let run = dokku.run(&["certs:report"], None).ok();
    assert_eq!(
        run.stderr,
        " !     You haven't deployed any applications yet\n"
    );
}

#[test]
fn a_failed_enable_fires_the_renew_trigger_with_the_notify_variables() {
    let dokku = Dokku::new();
    // Something listening where dokku's nginx would (the check before an order waits for
    // it), and a CA that refuses connections: the order fails at once.
    let _nginx = std::net::TcpListener::bind(("127.0.0.1", dokku.sandbox.http_port)).unwrap();
    dokku
        .run(
            &["letsencrypt:set", "--global", "email", "ops@example.com"],
            None,
        )
        .ok();
    dokku
        .run(
            &[
                "letsencrypt:set",
                "--global",
                "server",
                "https://127.0.0.1:9/directory",
            ],
            None,
        )
        .ok();
    let notified = dokku.sandbox.dir.path().join("notified");
    let command = format!("echo \"$LETSENCRYPT_EVENT\" >> '{}'", notified.display());
    dokku
        .run(
            &["letsencrypt:set", "--global", "notify-command", &command],
            None,
        )
        .ok();
    dokku.fired();
    let run = dokku.run(&["letsencrypt:enable", "myapp"], None);
    assert_eq!(run.code, 1, "{run:?}");
    // After the rebuilds that put the challenge in and took it out again.
    let fired = dokku.fired();
    assert_eq!(
        fired[fired.len().saturating_sub(2)..],
        [
            "trigger post-letsencrypt-renew myapp failed tls=no",
            "env myapp failed myapp.example.com error=yes"
        ]
    );
    // The notify-command still runs beside the trigger.
    assert_eq!(std::fs::read_to_string(notified).unwrap(), "failed\n");
}

/// A dokku host in miniature for letsencrypt:cron-job, reachable by uid 65534 (the dokku
/// user here): DOKKU_ROOT and HOME owned by it, and on PATH a stand-in `dokku` and a
/// stand-in `crontab` that keeps the caller's crontab in $HOME/crontab and answers as
/// Debian's does (`-l` prints it, or `no crontab for USER` and exit 1; `-` replaces it).
struct CronHost {
    dir: tempfile::TempDir,
}

impl CronHost {
    fn new() -> CronHost {
        let dir = tempfile::Builder::new()
            .prefix("dokku-certs-cron")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for owned in ["home", "root", "log"] {
            let path = dir.path().join(owned);
            std::fs::create_dir(&path).unwrap();
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        }
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let crontab = "#!/bin/sh\n\
            echo \"crontab $* uid=$(id -u)\" >> \"$HOME/calls\"\n\
            case \"$1\" in\n\
              -l) if [ -e \"$HOME/crontab\" ]; then cat \"$HOME/crontab\"; else echo \"no crontab for $(id -un)\" >&2; exit 1; fi ;;\n\
              -) cat > \"$HOME/crontab\" ;;\n\
              *) exit 2 ;;\n\
            esac\n";
        for (name, script) in [("crontab", crontab), ("dokku", "#!/bin/sh\nexit 0\n")] {
            std::fs::write(bin.join(name), script).unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        CronHost { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `letsencrypt:cron-job FLAG` in dokku mode as uid 65534, with a clean environment.
    fn cron_job(&self, flag: &str) -> Run {
        let path = format!(
            "{}:/usr/sbin:/usr/bin:/sbin:/bin",
            self.path("bin").display()
        );
        let output = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(common::binary())
            .args(["letsencrypt:cron-job", flag])
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.path("home"))
            .env("DOKKU_ROOT", self.path("root"))
            .env("DOKKU_LOGS_DIR", self.path("log"))
            .env("DOKKU_CERTS_MODE", "dokku")
            .env("DOKKU_PID", "4242")
            .env("DOKKU_LETSENCRYPT_CRON_FILE", self.path("cron.d-file"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run setpriv (util-linux)");
        Run::from(output)
    }

    fn crontab(&self) -> String {
        std::fs::read_to_string(self.path("home/crontab")).unwrap_or_default()
    }
}

#[test]
fn cron_job_in_dokku_mode_keeps_the_dokku_users_crontab_and_its_other_lines() {
    let host = CronHost::new();
    // No crontab yet: --add makes one with our lines only.
    let run = host.cron_job("--add").ok();
    assert!(
        run.stdout
            .contains("Added the auto-renew job (twice a day) to nobody's crontab"),
        "{}",
        run.stdout
    );
    let ours = host.crontab();
    let lines: Vec<&str> = ours.lines().collect();
    assert!(
        lines[0].starts_with("# BEGIN dokku-certs letsencrypt:cron-job"),
        "{ours}"
    );
    assert_eq!(
        *lines.last().unwrap(),
        "# END dokku-certs letsencrypt:cron-job",
        "{ours}"
    );
    assert!(lines.contains(&"SHELL=/bin/sh"), "{ours}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("PATH=") && l.contains("/usr/sbin")),
        "{ours}"
    );
    assert!(
        lines.contains(&format!("DOKKU_ROOT={}", host.path("root").display()).as_str()),
        "{ours}"
    );
    // dokku sets its own DOKKU_* when the job runs it: its run's DOKKU_PID must not stick.
    assert!(
        !ours.contains("DOKKU_PID") && !ours.contains("DOKKU_CERTS_MODE"),
        "{ours}"
    );
    let job = lines[lines.len() - 2];
    let log = host.path("log/letsencrypt.log");
    let expected = format!(
        "'{}' letsencrypt:auto-renew >> '{}' 2>&1",
        host.path("bin/dokku").display(),
        log.display()
    );
    assert!(job.ends_with(&expected), "{job}");
    assert_eq!(
        job.split(' ').nth(2),
        Some("*"),
        "a user crontab has no user field: {job}"
    );
    assert_eq!(
        std::fs::metadata(&log).unwrap().uid(),
        65534,
        "the log is the job user's"
    );
    assert!(
        !host.path("cron.d-file").exists(),
        "dokku mode wrote a cron.d file"
    );

    // The user's own lines, one without a last newline: kept byte for byte around ours.
    let theirs =
        "MAILTO=ops@example.com\n# nightly backup\n30 2 * * *   /usr/local/bin/backup  --all\n";
    std::fs::write(
        host.path("home/crontab"),
        format!("{theirs}{ours}15 4 * * * /bin/true"),
    )
    .unwrap();
    host.cron_job("--add").ok();
    host.cron_job("--add").ok();
    let twice = host.crontab();
    assert!(
        twice.starts_with(&format!(
            "{theirs}15 4 * * * /bin/true\n# BEGIN dokku-certs"
        )),
        "{twice}"
    );
    assert_eq!(twice.matches("# BEGIN dokku-certs").count(), 1, "{twice}");
    assert_eq!(
        twice.matches("letsencrypt:auto-renew").count(),
        1,
        "{twice}"
    );

    host.cron_job("--remove").ok();
    assert_eq!(host.crontab(), format!("{theirs}15 4 * * * /bin/true\n"));
    let run = host.cron_job("--remove").ok();
    assert!(
        run.stdout.contains("No auto-renew job to remove"),
        "{}",
        run.stdout
    );
    // Every crontab call ran as the unprivileged user.
    let calls = std::fs::read_to_string(host.path("home/calls")).unwrap();
    assert!(calls.lines().all(|l| l.ends_with(" uid=65534")), "{calls}");
}
