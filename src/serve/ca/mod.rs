//! Channel Access, just enough to read one PV and to monitor a few thousand: the wire codec
//! (`proto`), a one-shot client (`client`: UDP search, TCP read), caget's text format
//! (`format`), and subscriptions on one circuit (`monitor`, behind `--pv-metrics`).
//!
//! Used by `iocrun caget` and by the liveness check, which reads the IOC's UPTIME PV the way
//! the epics-containers `liveness.sh` does with `caget`.

mod client;
mod format;
pub mod monitor;
pub mod proto;

pub use client::{get, read, search, Config, Reading, DEFAULT_SERVER_PORT};
pub use format::caget_line;
pub use proto::{dbr, TimeValue, Values, DEFAULT_MAX_ARRAY_BYTES};

/// A Channel Access read that failed.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// caget's own words for a search nobody answered.
    #[error("channel connect timed out: '{pv}' not found")]
    NotFound { pv: String },
    #[error("timed out reading '{pv}' (during {step})")]
    Timeout { pv: String, step: &'static str },
    #[error("the server does not host '{pv}'")]
    CreateFailed { pv: String },
    #[error("reading '{pv}' failed with CA status {status}")]
    Read { pv: String, status: u32 },
    #[error("the server reported an error for '{pv}': {message}")]
    Server { pv: String, message: String },
    #[error("the server dropped the connection while reading '{pv}'")]
    Disconnected { pv: String },
    #[error("cannot {what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A message longer than `EPICS_CA_MAX_ARRAY_BYTES` allows (libca drops the circuit too).
    #[error(
        "the server announced a {size}-byte message, more than the {limit} bytes \
         EPICS_CA_MAX_ARRAY_BYTES allows"
    )]
    TooLarge { size: u32, limit: usize },
    #[error("channel access protocol error: {0}")]
    Protocol(String),
}
