//! cargo-fuzz target `ca_decode`: see `checks::ca_decode` in `fuzz/checks/runtime.rs` for what it checks.
#![no_main]

#[path = "../checks/runtime.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::ca_decode(data));
