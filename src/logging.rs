//! Diagnostics go to stderr through `tracing`; stdout belongs to the IOC's console stream.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install the stderr subscriber. `IOCRUN_LOG` (an `EnvFilter` string) wins over `-v`.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("IOCRUN_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only for a person at a terminal: `kubectl logs` and log files get plain text.
    let ansi = std::io::stderr().is_terminal();
    // A second init (tests calling run twice) is harmless, so the error is ignored.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .without_time()
        .try_init();
}
