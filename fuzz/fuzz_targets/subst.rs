//! Fuzz msi's substitution-file parser and the expansion it drives (`iocrun expand -S`):
//! `file`, `pattern`, `global` blocks, quoting, and the macro engine on their values. Any input
//! may be rejected; none may panic or overflow the stack. `cargo +nightly fuzz run subst`.
#![no_main]

#[path = "expand_common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = common::scratch();
    let subst = dir.join("fuzz.substitutions");
    if std::fs::write(&subst, data).is_err() {
        return;
    }
    let opts = iocrun::expand::Options {
        include_path: vec![dir],
        subst: Some(subst),
        ..Default::default()
    };
    common::run(&opts);
});
