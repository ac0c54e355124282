//! Fuzz the whole in-memory render path: YAML parsing of an instance and its support files,
//! Phase 1 (validation, Jinja, ids, sub-entities, repeats) and Phase 2 (st.cmd, ioc.subst,
//! wait_list.yaml). Any input may be rejected with an error; none may panic.
//!
//! Input layout: the instance YAML, then zero or more support YAML documents, each introduced
//! by a line `#%support`. `fuzz/seed-corpus.sh` builds seeds in this layout from the shared
//! conformance cases.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split("\n#%support\n");
    let instance = parts.next().unwrap_or_default();
    let supports: Vec<&str> = parts.collect();
    let _ = iocrun::render::render_text(instance, &supports);
});
