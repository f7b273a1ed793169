//! Any bytes on stdin or in a file: reading them must end in a bundle or a clear error,
//! never a panic, a hang or unbounded memory.
#![no_main]

use dokku_certs::bundle::{assemble, sources_from_archive, Origin, Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As an archive (or PEM) on stdin.
    if let Ok(sources) = sources_from_archive(data) {
        let _ = assemble(&sources, Origin::Archive);
    }
    // As the CRT file, and as the KEY file, of certs:add <app> CRT KEY.
    let file = Source { name: "fuzzed".into(), bytes: data.to_vec() };
    let key = Source { name: "key".into(), bytes: include_bytes!("../seeds/leaf.key").to_vec() };
    let crt = Source { name: "crt".into(), bytes: include_bytes!("../seeds/leaf.crt").to_vec() };
    let _ = assemble(&[file.clone(), key], Origin::Files);
    let _ = assemble(&[crt, file], Origin::Files);
});
