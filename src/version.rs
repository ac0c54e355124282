//! What `iocrun --version` prints: the crate version, the git commit it was built from and
//! the target triple (from `build.rs`), e.g. `0.1.0 (commit 1a2b3c4d5e6f, x86_64-unknown-linux-gnu)`.

/// The version line after the program name.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("IOCRUN_BUILD_COMMIT"),
    ", ",
    env!("IOCRUN_BUILD_TARGET"),
    ")"
);
