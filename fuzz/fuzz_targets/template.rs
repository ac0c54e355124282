//! Fuzz msi's template side (`iocrun expand TEMPLATE`): lines, `include` and `substitute`
//! directives, and macLib's reference scanner (`$(a=default,b=scoped)`, quotes, escapes,
//! nesting). Any input may be rejected; none may panic or overflow the stack.
//! `cargo +nightly fuzz run template`.
#![no_main]

#[path = "expand_common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = common::scratch();
    let template = dir.join("fuzz.template");
    if std::fs::write(&template, data).is_err() {
        return;
    }
    let opts = iocrun::expand::Options {
        include_path: vec![dir],
        macros: vec![b"P=p:,R=$(P)r,D=$(Q=q)".to_vec()],
        undefined_is_error: data.first().is_some_and(|b| b & 1 == 1),
        template: Some(b"fuzz.template".to_vec()),
        ..Default::default()
    };
    common::run(&opts);
});
