//! The IOC console: one byte stream in, many clients out. Tokio only; it imports nothing from
//! `supervise`: the two meet through the channels `cmd/start.rs` wires.
//!
//! # Theory of operation
//!
//! * The PTY reader thread calls [`Hub::publish`] with every chunk the IOC prints. The hub
//!   appends it to the scrollback, mirrors it to iocrun's stdout (`kubectl logs`) and to the
//!   optional timestamped log file, and queues it for each socket client. It never blocks: a
//!   client more than `--console-client-buffer` bytes behind is dropped with a notice; stdout
//!   and the log skip bytes (and say so) rather than stall the IOC.
//! * [`serve`] accepts clients on the console socket (mode 0600 by default) and an optional
//!   read-only socket. Each client gets the scrollback, then live output, with no gap. Client
//!   input arrives on the supervisor's channel as [`ConsoleInput`]; iocrun's own stdin is one
//!   more client, in raw mode when it is a terminal (its window size stays the supervisor's:
//!   it sizes the PTY and owns SIGWINCH).
//! * The socket speaks raw bytes, so `socat UNIX-CONNECT:PATH -,raw,echo=0` is a full client;
//!   `iocrun attach` additionally negotiates framed input to send window sizes (see `proto`).
//!   Several clients resizing: the last one wins.
//! * Lifecycle lines (`@@@ <UTC time> …`) mark client attach/detach in the stream, on stdout
//!   and in the scrollback; the supervisor adds its own with [`Hub::notice`].
//!
//! ```text
//! PTY reader ──publish──► Hub ──► stdout, log file, scrollback
//!                          └────► client queues ──► socket clients
//! socket clients, stdin ──ConsoleInput──► supervisor ──► PTY
//! ```

mod args;
mod attach;
mod guard;
mod history;
mod hub;
mod keys;
mod logfile;
mod proto;
mod server;
mod term;

use std::path::PathBuf;

pub use args::{AttachArgs, ConsoleArgs, StdinMode, DEFAULT_SOCKET, RO_SOCKET_ENV, SOCKET_ENV};
pub use attach::{attach, AttachEnd, AttachOptions};
pub use hub::{Hub, HubConfig, HubStats};
pub use keys::{KeyError, KeySeq};
pub use logfile::LogConfig;
/// The wire decoder, public for the fuzz target (`fuzz/fuzz_targets/console_proto.rs`).
pub use proto::{Decoder, Event as WireEvent, ProtoError};
pub use server::{serve, ServerConfig};

/// Input from console clients, for the supervisor to write to the IOC's PTY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleInput {
    /// Bytes typed by a read-write client (ignored keys already removed).
    Bytes(Vec<u8>),
    /// A client's terminal size; the PTY should take it (last writer wins).
    Resize { rows: u16, cols: u16 },
    /// iocrun's own stdin is a terminal and it hung up (EOF or an error in raw mode, where a
    /// typed Ctrl-D is a byte, not an end of file).
    HangUp,
    /// iocrun's own stdin, not a terminal, reached its end (`podman run` without `-i`).
    StdinEnd,
}

/// What can go wrong in the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot listen on console socket {path:?}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    SocketPath(#[from] crate::files::FilesError),
    #[error("cannot connect to console socket {path:?}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("console connection {path:?} failed")]
    Attach {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot put the terminal in raw mode")]
    RawMode {
        #[source]
        source: nix::Error,
    },
    #[error("cannot read stdin")]
    Stdin {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a runtime for the console")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
}
