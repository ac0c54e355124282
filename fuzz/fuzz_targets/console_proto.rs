//! cargo-fuzz target `console_proto`: see `checks::console_proto` in `fuzz/checks/runtime.rs` for what it checks.
#![no_main]

#[path = "../checks/runtime.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::console_proto(data));
