//! The console socket server: any number of clients on a unix socket (and optionally a second,
//! read-only socket), plus iocrun's own stdin as one more client.
//!
//! Each connection gets the history replay, then live output from the hub; its input is decoded
//! by [`proto`](super::proto) and sent to the supervisor as [`ConsoleInput`]. Input from a
//! read-only client (the read-only socket, or a client whose hello says `ro`) is read and
//! dropped, as procServ does on its log port. Resize requests
//! follow "last writer wins". A client that reaches EOF on its input is done (procServ,
//! stdio-socket) once output has flowed for [`LINGER`] more, so a one-shot `echo CMD | socat -
//! UNIX-CONNECT:…` gets the IOC's answer. Lifecycle lines (`@@@ … console client N attached`)
//! go to stdout, the log and the clients but not into the scrollback. At most [`MAX_CLIENTS`]
//! are attached.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::args::{RO_SOCKET_ENV, SOCKET_ENV};
use super::guard::{ExitGuard, StopKeyGuard, CONFIRM_WINDOW};
use super::hub::{Attached, Hub};
use super::proto::{Decoder, Event};
use super::term::{RawMode, StdinReader};
use super::{ConsoleError, ConsoleInput};

/// Bytes gathered from a client's queue into one socket write.
const BATCH: usize = 64 * 1024;

/// Socket clients attached at once (both sockets together); one more is told so and closed,
/// which bounds the descriptors and queues clients can hold.
pub const MAX_CLIENTS: usize = 64;

/// How long output still flows to a client after the end of its input (a one-shot
/// `echo CMD | socat - UNIX-CONNECT:…` half-closes at once and waits for the answer).
pub const LINGER: Duration = Duration::from_secs(1);

/// Where the server listens and how it treats input.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The read-write socket; `None` serves no socket (stdin and stdout only).
    pub socket: Option<PathBuf>,
    /// Permission bits of the read-write socket (connecting needs write permission).
    pub socket_mode: u32,
    /// An optional socket whose clients only watch.
    pub ro_socket: Option<PathBuf>,
    /// Permission bits of the read-only socket.
    pub ro_socket_mode: u32,
    /// Bytes never passed to the IOC from any client (procServ `-i`), e.g. `^D` `^C`.
    pub ignore: Vec<u8>,
    /// Treat iocrun's own stdin as a client (raw mode when it is a terminal).
    pub stdin: bool,
    /// Hold back a typed `exit` until it is typed again (see `guard`).
    pub confirm_exit: bool,
    /// Hold back Ctrl-C and Ctrl-D, with a hint on how to leave (see `guard`).
    pub guard: bool,
}

/// Serve console clients until `shutdown` completes, then hang up on every client, remove the
/// socket files and restore the terminal.
///
/// `shutdown` is any future: pass `token.cancelled()`, `async { rx.changed().await; }`, or
/// `std::future::pending()` to run for ever. Binding errors are returned before anything else
/// happens. Must run inside a tokio runtime (it spawns one task per client).
pub async fn serve<F>(
    cfg: ServerConfig,
    hub: Hub,
    input_tx: mpsc::Sender<ConsoleInput>,
    shutdown: F,
) -> Result<(), ConsoleError>
where
    F: Future<Output = ()>,
{
    let rw = cfg
        .socket
        .as_deref()
        .map(|p| bind(p, cfg.socket_mode, SOCKET_ENV))
        .transpose()?;
    let ro = match cfg.ro_socket.as_deref() {
        Some(p) => Some(bind(p, cfg.ro_socket_mode, RO_SOCKET_ENV)),
        None => None,
    };
    let ro = match ro.transpose() {
        Ok(ro) => ro,
        Err(err) => {
            remove_socket(cfg.socket.as_deref());
            return Err(err);
        }
    };
    let ignore: Arc<[u8]> = Arc::from(cfg.ignore.as_slice());
    let policy = InputPolicy {
        ignore,
        confirm_exit: cfg.confirm_exit,
        guard: cfg.guard,
    };
    let stdin = match cfg.stdin {
        true => StdinClient::start(&hub, &input_tx, &policy)?,
        false => None,
    };
    let ctx = ClientCtx {
        hub: hub.clone(),
        input_tx,
        policy,
    };
    accept_loop(&ctx, rw.as_ref(), ro.as_ref(), shutdown).await;
    drop(stdin);
    remove_socket(cfg.socket.as_deref());
    remove_socket(cfg.ro_socket.as_deref());
    Ok(())
}

/// What every client task needs.
#[derive(Clone)]
struct ClientCtx {
    hub: Hub,
    input_tx: mpsc::Sender<ConsoleInput>,
    policy: InputPolicy,
}

/// What every client's input goes through (each client gets its own [`InputFilter`]).
#[derive(Clone)]
struct InputPolicy {
    ignore: Arc<[u8]>,
    confirm_exit: bool,
    guard: bool,
}

async fn accept_loop<F: Future<Output = ()>>(
    ctx: &ClientCtx,
    rw: Option<&UnixListener>,
    ro: Option<&UnixListener>,
    shutdown: F,
) {
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            conn = accept(rw) => spawn_client(&mut tasks, ctx, conn, false).await,
            conn = accept(ro) => spawn_client(&mut tasks, ctx, conn, true).await,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // writers flush what is queued (the last lifecycle lines), then hang up
    ctx.hub.close_clients();
    let drained = tokio::time::timeout(Duration::from_millis(500), async {
        while tasks.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tasks.abort_all();
    }
}

async fn accept(l: Option<&UnixListener>) -> std::io::Result<UnixStream> {
    match l {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

async fn spawn_client(
    tasks: &mut JoinSet<()>,
    ctx: &ClientCtx,
    conn: std::io::Result<UnixStream>,
    read_only: bool,
) {
    match conn {
        Ok(stream) if tasks.len() >= MAX_CLIENTS => {
            let _ = stream.try_write(
                format!("@@@ {MAX_CLIENTS} console clients attached already: disconnected\r\n")
                    .as_bytes(),
            );
        }
        Ok(stream) => {
            tasks.spawn(client(ctx.clone(), stream, read_only));
        }
        Err(err) => {
            // EMFILE and friends: back off briefly rather than spin on accept
            tracing::warn!("console accept failed: {err}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One client: replay and live output out, decoded input in, lifecycle lines around it.
async fn client(ctx: ClientCtx, stream: UnixStream, read_only: bool) {
    let att = ctx.hub.attach();
    let (id, shared) = (att.id, att.shared.clone());
    let mode = if read_only { "read-only" } else { "read-write" };
    let n = ctx.hub.stats().clients;
    ctx.hub.client_notice(&format!(
        "console client {id} attached ({mode}); {n} attached"
    ));
    let (rd, mut wr) = stream.into_split();
    let ended = {
        let output = write_output(att, &mut wr);
        tokio::pin!(output);
        tokio::select! {
            r = &mut output => r,
            r = read_input(&ctx, id, rd, read_only) => match r {
                // end of input (`echo dbl | socat - UNIX-CONNECT:…`): the answer is still to
                // come, so output flows a little longer
                Ok(()) => tokio::time::timeout(LINGER, &mut output).await.unwrap_or(Ok(())),
                Err(e) => Err(e),
            },
        }
    };
    ctx.hub.detach(id);
    if shared.too_slow.load(Ordering::Acquire) {
        // the hub has announced the drop to everyone else; tell this client, without waiting
        let _ = wr.try_write(b"\r\n@@@ console output too slow: disconnected\r\n");
        return;
    }
    if let Err(why) = &ended {
        let _ = wr.try_write(format!("\r\n@@@ {}: disconnected\r\n", why.detail).as_bytes());
    }
    if ctx.hub.is_closing() {
        return; // the server is stopping: no notice per client
    }
    let n = ctx.hub.stats().clients;
    // everyone else hears only the kind of failure: the details are the client's own words
    let how = ended.err().map_or("left", |why| why.kind);
    ctx.hub.client_notice(&format!(
        "console client {id} detached ({how}); {n} attached"
    ));
}

/// Why a client was disconnected: `kind` for everyone, `detail` for the client itself.
#[derive(Debug)]
struct Ended {
    kind: &'static str,
    detail: String,
}

impl Ended {
    fn io(e: std::io::Error) -> Ended {
        Ended {
            kind: "i/o error",
            detail: format!("i/o error: {e}"),
        }
    }
}

/// Copy replay then live chunks to the socket until the hub closes the queue or drops us.
async fn write_output(att: Attached, wr: &mut OwnedWriteHalf) -> Result<(), Ended> {
    let Attached {
        replay,
        mut rx,
        shared,
        ..
    } = att;
    let copy = async {
        wr.write_all(&replay).await?;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(chunk) = rx.recv().await {
            // coalesce what is already queued: one write per burst, not per PTY read
            batch.extend_from_slice(&chunk);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(more) => batch.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            wr.write_all(&batch).await?;
            shared.pending.fetch_sub(batch.len(), Ordering::AcqRel);
            batch.clear();
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::select! {
        r = copy => r.or_else(hung_up),
        _ = shared.kicked.notified() => Ok(()),
    }
}

/// Decode input until EOF; forward it unless read-only.
async fn read_input(
    ctx: &ClientCtx,
    id: u64,
    mut rd: OwnedReadHalf,
    mut read_only: bool,
) -> Result<(), Ended> {
    let mut dec = Decoder::default();
    let mut filter = InputFilter::new(&ctx.policy, Typist::Client(id));
    let mut buf = vec![0u8; 4096];
    let mut events = Vec::new();
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => return hung_up(e),
        };
        if n == 0 {
            return Ok(());
        }
        dec.feed(&buf[..n], &mut events).map_err(|e| Ended {
            kind: "protocol error",
            detail: format!("protocol error: {e}"),
        })?;
        for ev in events.drain(..) {
            match ev {
                Event::Hello { read_only: true } if !read_only => {
                    read_only = true;
                    ctx.hub
                        .client_notice(&format!("console client {id} is read-only (by request)"));
                }
                Event::Hello { .. } => {}
                _ if read_only => {}
                Event::Input(bytes) => forward(ctx, filter.apply(&ctx.hub, bytes)).await,
                Event::Resize { rows, cols } if rows > 0 && cols > 0 => {
                    let _ = ctx.input_tx.send(ConsoleInput::Resize { rows, cols }).await;
                }
                Event::Resize { .. } => {} // a zero size is ignored, the size stays as it was
            }
        }
    }
}

/// A peer that hangs up mid-write or resets is just a client leaving.
fn hung_up(e: std::io::Error) -> Result<(), Ended> {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    match e.kind() {
        BrokenPipe | ConnectionReset | ConnectionAborted => Ok(()),
        _ => Err(Ended::io(e)),
    }
}

async fn forward(ctx: &ClientCtx, bytes: Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    ctx.hub.count_input(bytes.len());
    // a closed channel means the supervisor is shutting down; input has nowhere to go
    let _ = ctx.input_tx.send(ConsoleInput::Bytes(bytes)).await;
}

/// Who typed: a socket client (told privately) or iocrun's own stdin (whose screen is
/// iocrun's stdout, so it is told on the console stream).
#[derive(Debug, Clone, Copy)]
enum Typist {
    Client(u64),
    Stdin,
}

/// One client's input policy: ignored keys (procServ `-i`), the Ctrl-C/Ctrl-D guard, then the
/// `exit` guard.
struct InputFilter {
    ignore: Arc<[u8]>,
    who: Typist,
    stop_keys: Option<StopKeyGuard>,
    guard: Option<ExitGuard>,
}

impl InputFilter {
    fn new(policy: &InputPolicy, who: Typist) -> InputFilter {
        InputFilter {
            ignore: policy.ignore.clone(),
            who,
            stop_keys: policy.guard.then(StopKeyGuard::default),
            guard: policy.confirm_exit.then(ExitGuard::default),
        }
    }

    /// What of `bytes` may reach the IOC; tells the typist about a held-back Ctrl-C or
    /// Ctrl-D, and announces a held-back `exit` on the console.
    fn apply(&mut self, hub: &Hub, mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.retain(|b| !self.ignore.contains(b));
        let now = std::time::Instant::now();
        if let Some(key) = self
            .stop_keys
            .as_mut()
            .and_then(|g| g.filter(&mut bytes, now))
        {
            match self.who {
                Typist::Client(id) => hub.tell(id, &stop_key_hint(key, "Ctrl-] (iocrun attach)")),
                Typist::Stdin => hub.notice(&stop_key_hint(key, stdin_leave_keys())),
            }
        }
        let Some(guard) = self.guard.as_mut() else {
            return bytes;
        };
        let (kept, held) = guard.filter(&bytes, now);
        if held {
            let secs = CONFIRM_WINDOW.as_secs();
            hub.notice(&format!(
                "'exit' would stop the IOC; type it again within {secs} s to confirm"
            ));
        }
        kept
    }
}

/// How the person on iocrun's stdin gets out: as a container's PID 1 its terminal is
/// `podman attach` (detach keys Ctrl-P Ctrl-Q) or `kubectl attach` (no detach keys: with
/// containerd Ctrl-P Ctrl-Q does not work, kubernetes#134996; closing the terminal leaves the
/// IOC running); otherwise it is someone's own terminal, and closing it stops iocrun (see
/// `supervise::interactive`).
fn stdin_leave_keys() -> &'static str {
    if std::process::id() == 1 {
        "Ctrl-P Ctrl-Q (podman attach) or by closing this terminal (kubectl attach)"
    } else {
        "`exit` (ends the IOC) or by closing this terminal"
    }
}

/// The one line a client gets when its Ctrl-C or Ctrl-D was held back.
fn stop_key_hint(key: u8, leave: &str) -> String {
    let name = if key == 0x03 { "Ctrl-C" } else { "Ctrl-D" };
    format!(
        "{name} not sent: it would stop the IOC. Leave with {leave}; \
         to send Ctrl-C/Ctrl-D, run iocrun with --console-guard off (IOCRUN_CONSOLE_GUARD=off)"
    )
}

/// iocrun's own stdin as a console client: input only. Its window size is the supervisor's
/// business (it sizes the PTY from our terminal and handles SIGWINCH in `supervise/signals.rs`,
/// the one place that owns signals).
struct StdinClient {
    // drop order: stop reading, then restore the terminal
    _reader: StdinReader,
    _raw: Option<RawMode>,
}

impl StdinClient {
    fn start(
        hub: &Hub,
        input_tx: &mpsc::Sender<ConsoleInput>,
        policy: &InputPolicy,
    ) -> Result<Option<StdinClient>, ConsoleError> {
        let raw = RawMode::enter().map_err(|source| ConsoleError::RawMode { source })?;
        let (tx, hub) = (input_tx.clone(), hub.clone());
        let mut filter = InputFilter::new(policy, Typist::Stdin);
        let terminal = raw.is_some();
        let reader = StdinReader::spawn(move |input| {
            let Some(bytes) = input else {
                let _ = tx.blocking_send(if terminal {
                    ConsoleInput::HangUp
                } else {
                    ConsoleInput::StdinEnd
                });
                return false;
            };
            let bytes = filter.apply(&hub, bytes.to_vec());
            if bytes.is_empty() {
                return true;
            }
            hub.count_input(bytes.len());
            tx.blocking_send(ConsoleInput::Bytes(bytes)).is_ok()
        })
        .map_err(|source| ConsoleError::Stdin { source })?;
        Ok(Some(StdinClient {
            _reader: reader,
            _raw: raw,
        }))
    }
}

/// Listen on `path` with permission bits `mode`, never briefly wider.
///
/// bind, chmod, then listen: until `listen` no client can connect, so the mode is right
/// before anyone can use the socket, whatever the umask.
fn bind(path: &Path, mode: u32, env: &'static str) -> Result<UnixListener, ConsoleError> {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    let err = |source| ConsoleError::Bind {
        path: path.to_owned(),
        source,
    };
    let nix_err = |e: nix::Error| err(std::io::Error::from(e));
    // a live socket or a non-socket is refused; a stale socket left by a crash goes
    crate::files::clear_socket_path(path, env)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(nix_err)?;
    socket::bind(fd.as_raw_fd(), &UnixAddr::new(path).map_err(nix_err)?).map_err(nix_err)?;
    let listening = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(err)
        .and_then(|()| socket::listen(&fd, Backlog::new(128).map_err(nix_err)?).map_err(nix_err));
    if let Err(e) = listening {
        remove_socket(Some(path));
        return Err(e);
    }
    tracing::debug!("console listening on {path:?} (mode {mode:o})");
    UnixListener::from_std(std::os::unix::net::UnixListener::from(fd)).map_err(err)
}

fn remove_socket(path: Option<&Path>) {
    if let Some(p) = path {
        // already gone is fine: someone cleaned /tmp
        let _ = std::fs::remove_file(p);
    }
}
