//! The library reports what it has to say through the one Reporter it is given, while it
//! works, and returns only the outcome; the binary prints those events in dokku's shapes.

mod common;

use std::collections::HashMap;
use std::io::Cursor;

use common::{Sandbox, expired_archive, fixtures};
use dokku_certs::app::{App, Env};
use dokku_certs::endpoint::{Input, add, remove};
use dokku_certs::event::{Collected, Event};

const DOMAIN: &str = "myapp.example.com";

/// The environment the sandbox gives the binary, for calling the library in-process.
fn settings_of(sandbox: &Sandbox) -> Env {
    let command = sandbox.command(&[]);
    let env: HashMap<String, String> = command
        .get_envs()
        .filter_map(|(name, value)| {
            Some((name.to_str()?.to_string(), value?.to_str()?.to_string()))
        })
        .collect();
    Env::from_lookup(|name| env.get(name).cloned()).unwrap()
}

#[test]
fn an_install_reports_its_warnings_as_events_and_returns_the_outcome() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let env = settings_of(&sandbox);
    let app = App::open(&env, "myapp").unwrap();
    let (archive, der) = expired_archive("elsewhere.org");
    let events = Collected::default();
    let installed = add(
        &env,
        &app,
        Input::Archive(Box::new(Cursor::new(archive))),
        &events,
    )
    .unwrap();
    let events = events.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        matches!(&events[0], Event::Warning(w) if w.starts_with("the certificate expired on ")),
        "{events:?}"
    );
    assert!(
        matches!(&events[1], Event::Warning(w) if w.starts_with("the certificate does not cover myapp.example.com (it names elsewhere.org)")),
        "{events:?}"
    );
    assert_eq!(
        installed.hostnames,
        ["elsewhere.org", "rcgen self signed cert"]
    );
    assert_eq!(installed.applied.reload, Ok(()));
    assert_eq!(sandbox.wait_served(DOMAIN, &der), der);
}

#[test]
fn a_change_that_resolves_an_interrupted_one_reports_it_even_when_the_change_itself_is_refused() {
    let sandbox = Sandbox::with_running_app("myapp", &[DOMAIN]);
    let dir = fixtures();
    let (crt, key) = (dir.join("leaf.crt"), dir.join("leaf.key"));
    sandbox
        .run(
            &[
                "certs:add",
                "myapp",
                crt.to_str().unwrap(),
                key.to_str().unwrap(),
            ],
            None,
        )
        .ok();
    // What a certs:add killed between its two renames leaves (the journal, and a tls/ beside
    // an nginx.conf that does not serve it), appearing after this command opened the app.
    let app_dir = sandbox.app_dir("myapp");
    let env = settings_of(&sandbox);
    let app = App::open(&env, "myapp").unwrap();
    remove(&env, &app, &Collected::default()).unwrap();
    std::fs::rename(app_dir.join("tls.previous"), app_dir.join("tls")).unwrap();
    std::fs::write(
        app_dir.join(".dokku-certs-journal"),
        "a dokku-certs change is under way\n",
    )
    .unwrap();
    let events = Collected::default();
    remove(&env, &app, &events).unwrap_err();
    let interrupted = format!(
        "an earlier command on myapp was interrupted; its certificate was not in use and was moved to {}",
        app_dir.join("tls.previous").display()
    );
    assert_eq!(events.events(), [Event::Warning(interrupted)]);
}
