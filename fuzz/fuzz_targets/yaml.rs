//! Fuzz the YAML loader: the event builder with its bounds (size, depth, alias expansion), merge
//! keys, scalar resolution, then the instance and support-file checks on what it built. Any
//! input may be rejected with an error; none may panic, overflow the stack or grow without
//! bound. `cargo +nightly fuzz run yaml`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.yaml");
    let _ = iocrun::config::Instance::parse(path, text);
    if let Ok(value) = iocrun::config::parse_yaml(path, text) {
        let _ = iocrun::config::Definitions::default().add_value(path, text, value);
    }
});
