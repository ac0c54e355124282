//! Bounds on what the input files may cost (issue 11): the size, depth and alias expansion of
//! YAML, the nesting of msi macro references, and the work one Jinja template may do. Each is
//! listed in `docs/limits.md` with its default and the environment variable that changes it.
//!
//! Depths are fixed: they keep recursion within the smallest thread stack iocrun runs on
//! (the 2 MiB blocking thread of the start sequence), so raising them would trade a clean
//! error for a crash.

use std::sync::OnceLock;

/// Deepest nesting of YAML collections (sequences and mappings) in one file.
pub const YAML_MAX_DEPTH: usize = 128;

/// Deepest nesting of `$(…)` macro references, within a line or through macro values.
pub const MACRO_MAX_DEPTH: u32 = 250;

/// Most scans of macro text for one template line (or one re-expansion of the macro table):
/// a bound on time, since defaults nested in defaults are scanned twice per level.
pub const MACRO_MAX_STEPS: u64 = 1_000_000;

/// The bounds that can be changed through the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Largest YAML file read (bytes): `IOCRUN_YAML_MAX_BYTES`.
    pub yaml_max_bytes: u64,
    /// Most nodes one YAML file may build once aliases are expanded, a scalar counting one
    /// node per started 64 bytes: `IOCRUN_YAML_MAX_NODES`.
    pub yaml_max_nodes: u64,
    /// Instructions one Jinja template run may execute: `IOCRUN_JINJA_FUEL`.
    pub jinja_fuel: u64,
}

impl Default for InputLimits {
    fn default() -> InputLimits {
        InputLimits {
            yaml_max_bytes: 16 * 1024 * 1024,
            yaml_max_nodes: 500_000,
            jinja_fuel: 5_000_000,
        }
    }
}

impl InputLimits {
    /// The limits of this process: the defaults, changed by the environment variables above
    /// (read once). A value that is not a positive whole number is ignored with a warning.
    pub fn get() -> InputLimits {
        static LIMITS: OnceLock<InputLimits> = OnceLock::new();
        *LIMITS.get_or_init(|| {
            let d = InputLimits::default();
            InputLimits {
                yaml_max_bytes: from_env("IOCRUN_YAML_MAX_BYTES", d.yaml_max_bytes),
                yaml_max_nodes: from_env("IOCRUN_YAML_MAX_NODES", d.yaml_max_nodes),
                jinja_fuel: from_env("IOCRUN_JINJA_FUEL", d.jinja_fuel),
            }
        })
    }
}

fn from_env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                tracing::warn!("{name}={v:?} is not a positive whole number: using {default}");
                default
            }
        },
    }
}
