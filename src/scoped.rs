//! `nginx -t` on one app: the host's own main config, in which the include of every app's
//! nginx.conf (`DOKKU_ROOT/*/nginx.conf`, from the policy file of `nginx:setup` or from
//! dokku's `conf.d/dokku.conf`) is replaced by the include of the changed app's nginx.conf.
//!
//! Everything else stays: the main context (modules, `user`, limits), the host's http{}
//! directives (`log_format`, `map`, Debian's `ssl_protocols`), the TLS policy and the
//! catch-all servers of `nginx:setup`, and the app's own `nginx.conf.d/*.conf`. Only the
//! files on the way to that include are copied (rewritten) next to the main config, so that
//! nginx resolves relative paths in them exactly as in the real ones; the rest is included
//! from where it is. The cost is the host's fixed part plus one app, whatever the number of
//! apps. What a full `nginx -t` would still catch is in the README ("Scale").

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One directive of a config file: its words, and where it starts and ends (`;` included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The name and the arguments, quotes removed.
    pub words: Vec<String>,
    /// Byte range in the file.
    pub span: std::ops::Range<usize>,
    /// 0 for the main context.
    pub depth: usize,
}

/// The simple directives (ending in `;`) of a config file, as nginx's tokenizer splits them:
/// `#` comments, `"`/`'` quotes with `\` escapes, `${var}` in a word. `None`: a quote or a
/// block is left open, which the caller takes as "do the full test".
pub fn directives(text: &str) -> Option<Vec<Directive>> {
    let bytes = text.as_bytes();
    let (mut at, mut depth) = (0, 0usize);
    let mut words: Vec<(String, usize)> = Vec::new();
    let mut found = Vec::new();
    while at < bytes.len() {
        match bytes[at] {
            b' ' | b'\t' | b'\r' | b'\n' => at += 1,
            b'#' => at = text[at..].find('\n').map_or(bytes.len(), |n| at + n),
            b';' => {
                if let Some(&(_, start)) = words.first() {
                    let words = words.drain(..).map(|(w, _)| w).collect();
                    found.push(Directive {
                        words,
                        span: start..at + 1,
                        depth,
                    });
                }
                at += 1;
            }
            b'{' => {
                words.clear();
                depth += 1;
                at += 1;
            }
            b'}' => {
                words.clear();
                depth = depth.checked_sub(1)?;
                at += 1;
            }
            quote @ (b'"' | b'\'') => {
                let (word, end) = quoted(text, at + 1, quote)?;
                words.push((word, at));
                at = end;
            }
            _ => {
                let end = bare_word_end(bytes, at);
                words.push((text[at..end].to_string(), at));
                at = end;
            }
        }
    }
    (depth == 0 && words.is_empty()).then_some(found)
}

/// A quoted word from `start` (after the quote) to the closing quote; returns the word and
/// the index after the quote.
fn quoted(text: &str, start: usize, quote: u8) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let mut word = Vec::new();
    let mut at = start;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if at + 1 < bytes.len() => {
                word.push(bytes[at + 1]);
                at += 2;
            }
            b if b == quote => return Some((String::from_utf8_lossy(&word).into_owned(), at + 1)),
            b => {
                word.push(b);
                at += 1;
            }
        }
    }
    None
}

fn bare_word_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        match bytes[at] {
            b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b'}' => break,
            // `${name}`: the braces belong to the variable.
            b'$' if bytes.get(at + 1) == Some(&b'{') => {
                at = bytes[at..]
                    .iter()
                    .position(|&b| b == b'}')
                    .map_or(bytes.len(), |n| at + n + 1);
            }
            _ => at += 1,
        }
    }
    at
}

/// The files an `include` names, as nginx's glob(3) finds them: sorted, a wildcard skipping
/// hidden names. `None` for what this reader leaves to the full test: a wildcard outside the
/// last path component, or a `[` class.
pub fn expand(pattern: &Path) -> Option<Vec<PathBuf>> {
    let text = pattern.to_str()?;
    if !text.contains(['*', '?', '[']) {
        return Some(vec![pattern.to_path_buf()]);
    }
    let (dir, name) = text.rsplit_once('/')?;
    if dir.contains(['*', '?', '[']) || name.contains('[') {
        return None;
    }
    let dir = if dir.is_empty() { "/" } else { dir };
    let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|file| {
                (!file.starts_with('.') || name.starts_with('.'))
                    && wildcard(name.as_bytes(), file.as_bytes())
            })
            .map(|file| Path::new(dir).join(file))
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    Some(found)
}

/// `*` and `?` matching, byte-wise.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// The rewritten copies of the host's config for one app's test.
#[derive(Debug)]
pub struct Scoped {
    /// The copy of the main config (next to the real one), to pass with `-c`.
    pub main: PathBuf,
    /// Every copy written, with the file it stands for (to name the real file in a complaint).
    pub copies: Vec<(PathBuf, PathBuf)>,
}

impl Scoped {
    /// Names the real files instead of the copies in nginx's complaint.
    pub fn explain(&self, complaint: &str) -> String {
        self.copies
            .iter()
            .fold(complaint.to_string(), |text, (copy, real)| {
                text.replace(&copy.display().to_string(), &real.display().to_string())
            })
    }
}

impl Drop for Scoped {
    fn drop(&mut self) {
        for (copy, _) in &self.copies {
            let _ = std::fs::remove_file(copy);
        }
    }
}

/// Builds the scoped config: `main` is the host's main config, `conf_prefix` the directory
/// nginx resolves relative includes against, `apps_pattern` the include of every app's
/// nginx.conf, `app_conf` the one to put in its place. `None`: the host's config is not one
/// this can scope (no apps include found, an unreadable file, a glob it does not expand), so
/// the caller runs the full test.
pub fn build(
    main: &Path,
    conf_prefix: &Path,
    apps_pattern: &Path,
    app_conf: &Path,
) -> Option<Scoped> {
    sweep_leftovers(conf_prefix);
    let mut rewriter = Rewriter {
        conf_prefix,
        apps_pattern,
        app_conf,
        copies: Vec::new(),
        memo: HashMap::new(),
        found_apps: false,
    };
    let result = rewriter.rewrite(main, 0);
    // Made first, so that every early return below removes the copies written so far.
    let mut scoped = Scoped {
        main: PathBuf::new(),
        copies: std::mem::take(&mut rewriter.copies),
    };
    match result {
        Ok(Some(main_copy)) if rewriter.found_apps => {
            scoped.main = main_copy;
            Some(scoped)
        }
        _ => None,
    }
}

/// What the copies are called: `.dokku-certs-test.<pid>.<n>.conf`.
const COPY_PREFIX: &str = ".dokku-certs-test.";
/// The most leftovers one test removes, so that a directory full of them costs a bounded
/// time per command (the rest go with the next commands).
const MAX_SWEPT: usize = 64;

/// Removes the copies a killed test left (its process is gone, so [`Scoped`]'s drop never
/// ran). Only names of the exact copy form whose pid is not alive: a running command's
/// copies stay. Through a handle on the directory, by `unlinkat`: a link is removed, never
/// followed. Best effort: a leftover that cannot go harms nothing (nginx never includes it).
fn sweep_leftovers(conf_prefix: &Path) {
    let Ok(dir) = crate::dir::Dir::open_top(conf_prefix) else {
        return;
    };
    let Ok(entries) = dir.entries() else { return };
    let stale = entries.into_iter().filter(|(name, kind)| {
        *kind != crate::dir::Kind::Dir && copy_pid(name).is_some_and(|pid| !pid_alive(pid))
    });
    for (name, _) in stale.take(MAX_SWEPT) {
        let _ = dir.remove_file(&name);
    }
}

/// The pid in a copy's name, if `name` is exactly `.dokku-certs-test.<pid>.<n>.conf`.
fn copy_pid(name: &str) -> Option<u32> {
    let (pid, n) = name
        .strip_prefix(COPY_PREFIX)?
        .strip_suffix(".conf")?
        .split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(pid) && digits(n) {
        pid.parse().ok()
    } else {
        None
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

struct Rewriter<'a> {
    conf_prefix: &'a Path,
    apps_pattern: &'a Path,
    app_conf: &'a Path,
    copies: Vec<(PathBuf, PathBuf)>,
    /// Files already looked at: their copy, or `None` when they are used as they are.
    memo: HashMap<PathBuf, Option<PathBuf>>,
    found_apps: bool,
}

/// Deep enough for any real host (main -> conf.d -> policy -> apps is 3).
const MAX_DEPTH: usize = 8;

impl Rewriter<'_> {
    /// `Ok(Some(copy))` when `file` leads to the apps include and was copied with it
    /// replaced; `Ok(None)` when it is used as it is; `Err` when scoping is impossible.
    fn rewrite(&mut self, file: &Path, depth: usize) -> Result<Option<PathBuf>, ()> {
        if let Some(known) = self.memo.get(file) {
            return Ok(known.clone());
        }
        if depth > MAX_DEPTH {
            return Err(());
        }
        let text = std::fs::read_to_string(file).map_err(|_| ())?;
        let mut replaced: Vec<(std::ops::Range<usize>, String)> = Vec::new();
        for directive in directives(&text).ok_or(())? {
            if directive.words.len() != 2 || directive.words[0] != "include" {
                continue;
            }
            let pattern = self.conf_prefix.join(&directive.words[1]);
            if pattern == self.apps_pattern {
                self.found_apps = true;
                replaced.push((directive.span, include_line(self.app_conf)?));
                continue;
            }
            let mut lines = Vec::new();
            let mut changed = false;
            for included in expand(&pattern).ok_or(())? {
                if !included.is_file() {
                    continue; // nginx reports a missing file; the directive below is kept then.
                }
                let copy = self.rewrite(&included, depth + 1)?;
                changed |= copy.is_some();
                lines.push(include_line(copy.as_deref().unwrap_or(&included))?);
            }
            if changed {
                replaced.push((directive.span, lines.join(" ")));
            }
        }
        let copy = if replaced.is_empty() && depth > 0 {
            None
        } else {
            Some(self.write_copy(file, &text, replaced)?)
        };
        self.memo.insert(file.to_path_buf(), copy.clone());
        Ok(copy)
    }

    /// Writes `text` with the `replaced` ranges into a hidden file next to the main config.
    fn write_copy(
        &mut self,
        real: &Path,
        text: &str,
        replaced: Vec<(std::ops::Range<usize>, String)>,
    ) -> Result<PathBuf, ()> {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (span, with) in replaced {
            out.push_str(&text[at..span.start]);
            out.push_str(&with);
            at = span.end;
        }
        out.push_str(&text[at..]);
        // A process-wide number: threads testing several apps at once (a batch of renewals)
        // must not overwrite or remove each other's copies.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let copy = self
            .conf_prefix
            .join(format!("{COPY_PREFIX}{}.{n}.conf", std::process::id()));
        let _ = std::fs::remove_file(&copy);
        std::fs::write(&copy, out).map_err(|_| ())?;
        self.copies.push((copy.clone(), real.to_path_buf()));
        Ok(copy)
    }
}

/// `include PATH;`, for a path that is one nginx token (every path dokku-certs writes is).
fn include_line(path: &Path) -> Result<String, ()> {
    let text = path.to_str().ok_or(())?;
    crate::app::is_plain_path(text)
        .then(|| format!("include {text};"))
        .ok_or(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_follow_nginx_quoting_comments_and_blocks() {
        let text = "user www-data; # include x;\nhttp {\n  log_format main '$a \"; {';\n  include \"/a b/*.conf\";\n  set $x ${y}z;\n}\n";
        let found = directives(text).unwrap();
        let names: Vec<_> = found.iter().map(|d| (d.words.clone(), d.depth)).collect();
        assert_eq!(names[0], (vec!["user".to_string(), "www-data".into()], 0));
        assert_eq!(names[1].0[2], "$a \"; {");
        assert_eq!(
            names[2],
            (vec!["include".to_string(), "/a b/*.conf".into()], 1)
        );
        assert_eq!(names[3].0, vec!["set", "$x", "${y}z"]);
        assert_eq!(&text[found[2].span.clone()], "include \"/a b/*.conf\";");
        assert!(directives("http { ").is_none());
        assert!(directives("a 'b;").is_none());
    }

    #[test]
    fn wildcards_match_like_glob() {
        assert!(wildcard(b"*.conf", b"a.conf"));
        assert!(!wildcard(b"*.conf", b"a.conf.bak"));
        assert!(wildcard(b"a?c", b"abc"));
        assert!(wildcard(b"*", b""));
    }

    #[test]
    fn only_the_files_leading_to_the_apps_include_are_copied() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(etc.join("conf.d")).unwrap();
        std::fs::write(etc.join("mime.types"), "types { text/html html; }\n").unwrap();
        let main = "events {}\nhttp {\n  include mime.types;\n  include conf.d/*.conf;\n}\n";
        std::fs::write(etc.join("nginx.conf"), main).unwrap();
        std::fs::write(
            etc.join("conf.d/a-other.conf"),
            "map $a $b { default 1; }\n",
        )
        .unwrap();
        let policy = "ssl_ciphers X;\ninclude /srv/dokku/*/nginx.conf;\n";
        std::fs::write(etc.join("conf.d/dokku-certs.conf"), policy).unwrap();
        std::fs::write(etc.join("conf.d/.hidden.conf"), "broken").unwrap();
        let app_conf = Path::new("/srv/dokku/app1/nginx.conf");
        let scoped = build(
            &etc.join("nginx.conf"),
            &etc,
            Path::new("/srv/dokku/*/nginx.conf"),
            app_conf,
        )
        .unwrap();
        assert_eq!(scoped.copies.len(), 2, "main and the policy file");
        let main_copy = std::fs::read_to_string(&scoped.main).unwrap();
        assert!(main_copy.contains("include mime.types;"), "{main_copy}");
        let policy_copy = &scoped.copies[0].0;
        let other = etc.join("conf.d/a-other.conf");
        assert!(main_copy.contains(&format!(
            "include {}; include {};",
            other.display(),
            policy_copy.display()
        )));
        let policy_text = std::fs::read_to_string(policy_copy).unwrap();
        assert_eq!(
            policy_text,
            "ssl_ciphers X;\ninclude /srv/dokku/app1/nginx.conf;\n"
        );
        let complaint = format!("[emerg] unknown directive in {}:1", policy_copy.display());
        assert!(
            scoped
                .explain(&complaint)
                .contains("conf.d/dokku-certs.conf:1")
        );
        let copies: Vec<_> = scoped.copies.iter().map(|(c, _)| c.clone()).collect();
        drop(scoped);
        assert!(copies.iter().all(|c| !c.exists()), "the copies are removed");
    }

    #[test]
    fn copies_left_by_a_killed_test_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path();
        std::fs::write(
            etc.join("nginx.conf"),
            "events {}\nhttp { include /srv/*/nginx.conf; }\n",
        )
        .unwrap();
        // A pid that is not alive: above the kernel's largest pid.
        let dead = ".dokku-certs-test.4194305.0.conf";
        let running = format!(".dokku-certs-test.{}.7.conf", std::process::id());
        let outside = etc.join("outside.conf");
        std::fs::write(&outside, "keep me").unwrap();
        std::fs::write(etc.join(dead), "left").unwrap();
        std::os::unix::fs::symlink(&outside, etc.join(".dokku-certs-test.4194306.1.conf")).unwrap();
        std::fs::write(etc.join(&running), "in use").unwrap();
        std::fs::write(etc.join(".dokku-certs-test.x.conf"), "not ours").unwrap();
        let scoped = build(
            &etc.join("nginx.conf"),
            etc,
            Path::new("/srv/*/nginx.conf"),
            Path::new("/srv/a/nginx.conf"),
        );
        drop(scoped);
        assert!(!etc.join(dead).exists(), "a dead run's copy is removed");
        assert!(
            std::fs::symlink_metadata(etc.join(".dokku-certs-test.4194306.1.conf")).is_err(),
            "a link is removed"
        );
        assert_eq!(
            std::fs::read_to_string(&outside).unwrap(),
            "keep me",
            "its target is not touched"
        );
        assert!(etc.join(&running).exists(), "a live run's copy stays");
        assert!(
            etc.join(".dokku-certs-test.x.conf").exists(),
            "another name stays"
        );
    }

    #[test]
    fn a_host_without_the_apps_include_is_not_scoped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            "events {}\nhttp { include /elsewhere/*.conf; }\n",
        )
        .unwrap();
        let main = dir.path().join("nginx.conf");
        assert!(
            build(
                &main,
                dir.path(),
                Path::new("/srv/*/nginx.conf"),
                Path::new("/srv/a/nginx.conf")
            )
            .is_none()
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no copy is left behind"
        );
    }
}
