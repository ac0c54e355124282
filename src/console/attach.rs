//! `iocrun attach`: an interactive console client with a detach key.
//!
//! It connects to the console socket, negotiates the framed mode (see [`proto`](super::proto))
//! so it can send the window size on attach and on every SIGWINCH, puts the terminal in raw
//! mode and copies bytes both ways until the user types the detach key sequence (default
//! `Ctrl-]`, as telnet; `kubectl attach` has none).
//!
//! Exit codes: 0 after the detach key or the end of stdin; 3 when the server closed the
//! connection (iocrun stopped, or dropped this client as too slow); 1 when the socket cannot be
//! reached or an I/O error occurs.

use std::io::Write;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::keys::{DetachMatcher, KeySeq};
use super::proto;
use super::term::{self, RawMode, StdinReader};
use super::ConsoleError;

/// What `iocrun attach` was asked to do.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// The console socket.
    pub socket: PathBuf,
    /// Watch only: keyboard input other than the detach key is not sent.
    pub read_only: bool,
    /// The key sequence that detaches (empty: no detach key).
    pub detach_keys: KeySeq,
}

/// Why an attach session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachEnd {
    /// The user typed the detach key sequence.
    Detached,
    /// Stdin reached its end.
    InputClosed,
    /// The server closed the connection.
    ServerClosed,
}

impl AttachEnd {
    /// The process exit code documented above.
    pub fn exit_code(self) -> u8 {
        match self {
            AttachEnd::Detached | AttachEnd::InputClosed => 0,
            AttachEnd::ServerClosed => 3,
        }
    }
}

/// Run one attach session on the current tokio runtime.
pub async fn attach(opts: AttachOptions) -> Result<AttachEnd, ConsoleError> {
    let stream =
        UnixStream::connect(&opts.socket)
            .await
            .map_err(|source| ConsoleError::Connect {
                path: opts.socket.clone(),
                source,
            })?;
    let io_err = |source| ConsoleError::Attach {
        path: opts.socket.clone(),
        source,
    };
    let keys = opts.detach_keys.to_string();
    match keys.is_empty() {
        true => eprintln!("iocrun attach: connected to {}", opts.socket.display()),
        false => eprintln!(
            "iocrun attach: connected to {}; detach with {keys}",
            opts.socket.display()
        ),
    }
    let raw = RawMode::enter().map_err(|source| ConsoleError::RawMode { source })?;
    let (mut rd, mut wr) = stream.into_split();
    let mut hello = proto::encode_hello(opts.read_only);
    if let Some((rows, cols)) = term::window_size() {
        hello.extend(proto::encode_resize(rows, cols));
    }
    wr.write_all(&hello).await.map_err(io_err)?;

    let (tx, mut keyboard) = mpsc::channel::<Option<Vec<u8>>>(16);
    let _reader = StdinReader::spawn(move |input| {
        let more = input.is_some();
        tx.blocking_send(input.map(<[u8]>::to_vec)).is_ok() && more
    })
    .map_err(|source| ConsoleError::Stdin { source })?;
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        .map_err(io_err)?;
    let mut matcher = DetachMatcher::new(opts.detach_keys.clone());
    let mut buf = vec![0u8; 16 * 1024];
    let end = loop {
        tokio::select! {
            n = rd.read(&mut buf) => {
                let n = n.map_err(io_err)?;
                if n == 0 {
                    break AttachEnd::ServerClosed;
                }
                write_stdout(&buf[..n]).map_err(io_err)?;
            }
            input = keyboard.recv() => {
                let Some(Some(bytes)) = input else { break AttachEnd::InputClosed };
                let (send, detach) = matcher.feed(&bytes);
                if !send.is_empty() && !opts.read_only {
                    wr.write_all(&proto::encode_data(&send)).await.map_err(io_err)?;
                }
                if detach {
                    break AttachEnd::Detached;
                }
            }
            _ = winch.recv() => {
                if let Some((rows, cols)) = term::window_size() {
                    wr.write_all(&proto::encode_resize(rows, cols)).await.map_err(io_err)?;
                }
            }
        }
    };
    drop(raw);
    let why = match end {
        AttachEnd::Detached => "detached",
        AttachEnd::InputClosed => "end of input",
        AttachEnd::ServerClosed => "connection closed by iocrun",
    };
    eprintln!("\r\niocrun attach: {why}");
    Ok(end)
}

fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}
