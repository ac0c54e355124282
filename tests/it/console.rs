//! The console server driven in-process with a fake byte source (the test publishes into the
//! hub as the PTY reader would), real unix sockets, and real clients: tokio streams, `socat` and
//! `iocrun attach` running in a PTY. The end-to-end tests with softIoc are in `console_ioc`.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iocrun::console::{self, ConsoleInput, Hub, HubConfig, ServerConfig};
use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

/// Generous: only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(10);

/// A running console server over a temp folder.
struct Server {
    dir: tempfile::TempDir,
    hub: Hub,
    input: mpsc::Receiver<ConsoleInput>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), console::ConsoleError>>,
}

impl Server {
    fn start(history: usize, client_buffer: usize) -> Server {
        Server::start_with(history, client_buffer, |_| {})
    }

    fn start_with(
        history: usize,
        client_buffer: usize,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = Hub::new(HubConfig {
            history_bytes: history,
            client_buffer,
            mirror_stdout: false,
            ..HubConfig::default()
        });
        let mut cfg = ServerConfig {
            socket: Some(dir.path().join("console.sock")),
            socket_mode: 0o600,
            ro_socket: Some(dir.path().join("view.sock")),
            ro_socket_mode: 0o600,
            ignore: Vec::new(),
            stdin: false,
            confirm_exit: false,
            guard: false,
        };
        tweak(&mut cfg);
        let (tx, input) = mpsc::channel(64);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(console::serve(cfg, hub.clone(), tx, shutdown));
        Server {
            dir,
            hub,
            input,
            stop: Some(stop),
            task,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("console.sock")
    }

    /// Wait until the server listens (for clients started as processes).
    async fn listening(&self) {
        drop(self.connect(&self.socket()).await);
        drop(self.connect(&self.ro_socket()).await);
    }

    fn ro_socket(&self) -> PathBuf {
        self.dir.path().join("view.sock")
    }

    async fn connect(&self, path: &Path) -> Client {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match UnixStream::connect(path).await {
                Ok(stream) => {
                    return Client {
                        stream,
                        seen: Vec::new(),
                    }
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(err) => panic!("cannot connect to {path:?}: {err}"),
            }
        }
    }

    /// Input bytes from the server until `want` has arrived (resizes and the end of stdin are
    /// skipped).
    async fn input_until(&mut self, want: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        while !contains(&got, want) {
            match tokio::time::timeout(PATIENCE, self.input.recv()).await {
                Ok(Some(ConsoleInput::Bytes(b))) => got.extend(b),
                Ok(Some(
                    ConsoleInput::Resize { .. } | ConsoleInput::HangUp | ConsoleInput::StdinEnd,
                )) => {}
                Ok(None) => panic!("input channel closed; got {:?}", lossy(&got)),
                Err(_) => panic!("no {:?} in input; got {:?}", lossy(want), lossy(&got)),
            }
        }
        got
    }

    async fn next_resize(&mut self) -> (u16, u16) {
        loop {
            match tokio::time::timeout(PATIENCE, self.input.recv()).await {
                Ok(Some(ConsoleInput::Resize { rows, cols })) => return (rows, cols),
                Ok(Some(_)) => {}
                other => panic!("no resize: {other:?}"),
            }
        }
    }

    async fn wait_clients(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.hub.stats().clients != n {
            assert!(
                Instant::now() < deadline,
                "expected {n} clients, have {:?}",
                self.hub.stats()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let res = tokio::time::timeout(PATIENCE, &mut self.task).await;
        res.expect("server stops")
            .expect("server task")
            .expect("server ok");
    }
}

/// A test client on a tokio unix stream, remembering everything it has read.
struct Client {
    stream: UnixStream,
    seen: Vec<u8>,
}

impl Client {
    async fn read_until(&mut self, want: &[u8]) -> String {
        let mut buf = vec![0u8; 64 * 1024];
        // after the first look, search only what is new (plus an overlap): floods stay linear
        let mut from = 0;
        while !contains(&self.seen[from..], want) {
            from = self.seen.len().saturating_sub(want.len());
            match tokio::time::timeout(PATIENCE, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) => panic!(
                    "closed before {:?}; saw {:?}",
                    lossy(want),
                    lossy(&self.seen)
                ),
                Ok(Ok(n)) => self.seen.extend_from_slice(&buf[..n]),
                Ok(Err(err)) => panic!("read error {err}"),
                Err(_) => panic!("no {:?}; saw {:?}", lossy(want), lossy(&self.seen)),
            }
        }
        lossy(&self.seen)
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("client write");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Framed-mode bytes as `iocrun attach` sends them (proto.rs documents the format; written out
/// here so the test checks the documented wire format, not the encoder).
fn hello(read_only: bool) -> Vec<u8> {
    let mut h = b"\0iocrun-console/1".to_vec();
    if read_only {
        h.extend_from_slice(b" ro");
    }
    h.push(b'\n');
    h
}

#[tokio::test]
async fn output_fans_out_to_every_client() {
    let srv = Server::start(4096, 1 << 20);
    let mut a = srv.connect(&srv.socket()).await;
    let mut b = srv.connect(&srv.socket()).await;
    let mut view = srv.connect(&srv.ro_socket()).await;
    srv.wait_clients(3).await;
    srv.hub.publish(b"hello from the IOC\r\n");
    for c in [&mut a, &mut b, &mut view] {
        c.read_until(b"hello from the IOC\r\n").await;
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn attach_and_detach_are_announced_with_timestamps() {
    let srv = Server::start(4096, 1 << 20);
    let mut watcher = srv.connect(&srv.socket()).await;
    let text = watcher
        .read_until(b"attached (read-write); 1 attached\r\n")
        .await;
    assert!(text.starts_with("@@@ 20"), "{text}");
    let other = srv.connect(&srv.ro_socket()).await;
    watcher
        .read_until(b"attached (read-only); 2 attached")
        .await;
    drop(other);
    watcher.read_until(b"detached (left); 1 attached").await;
    srv.shutdown().await;
}

#[tokio::test]
async fn history_is_replayed_before_live_output() {
    let srv = Server::start(4096, 1 << 20);
    for i in 1..=20 {
        srv.hub.publish(format!("boot line {i}\r\n").as_bytes());
    }
    let mut late = srv.connect(&srv.ro_socket()).await;
    srv.wait_clients(1).await;
    srv.hub.publish(b"live line\r\n");
    let text = late.read_until(b"live line\r\n").await;
    let boot_end = text.find("boot line 20\r\n").expect("replayed");
    assert!(text.starts_with("boot line 1\r\n"), "{text}");
    assert!(boot_end < text.find("live line").expect("live"), "{text}");
    srv.shutdown().await;
}

#[tokio::test]
async fn history_is_bounded_to_the_configured_size() {
    let srv = Server::start(100, 1 << 20);
    for i in 0..100 {
        srv.hub.publish(format!("{i:04}\n").as_bytes());
    }
    let mut c = srv.connect(&srv.ro_socket()).await;
    let text = c.read_until(b"attached").await;
    let replay = &text[..text.find("@@@").expect("notice")];
    assert_eq!(replay.len(), 100, "{replay:?}");
    assert!(replay.ends_with("0099\n"), "{replay:?}");
    srv.shutdown().await;
}

/// T10: a counter published every few hundred microseconds while clients attach; each client's
/// sequence (replay plus live) must be contiguous: no gap, no duplicate.
#[tokio::test]
async fn replay_and_live_output_join_without_gap_or_duplicate() {
    let srv = Server::start(1 << 20, 8 << 20);
    let hub = srv.hub.clone();
    let publisher = std::thread::spawn(move || {
        for i in 0..3000 {
            hub.publish(format!("n={i};").as_bytes());
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
    });
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(srv.connect(&srv.ro_socket()).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    publisher.join().expect("publisher");
    for c in &mut clients {
        let text = c.read_until(b"n=2999;").await;
        let nums: Vec<u32> = text
            .split(';')
            .filter_map(|t| t.rsplit("n=").next().and_then(|n| n.parse().ok()))
            .collect();
        assert_eq!(nums.first(), Some(&0), "1 MiB history holds everything");
        for w in nums.windows(2) {
            assert_eq!(w[1], w[0] + 1, "sequence broken in {nums:?}");
        }
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn raw_client_input_reaches_the_ioc() {
    let mut srv = Server::start(4096, 1 << 20);
    let mut a = srv.connect(&srv.socket()).await;
    a.send(b"dbl\r").await;
    assert_eq!(srv.input_until(b"dbl\r").await, b"dbl\r");
    srv.shutdown().await;
}

#[tokio::test]
async fn read_only_clients_input_is_ignored() {
    let mut srv = Server::start(4096, 1 << 20);
    let mut watcher = srv.connect(&srv.socket()).await;
    watcher.read_until(b"1 attached").await;
    // a client on the read-only socket, and one that asked for read-only in its hello
    let mut view = srv.connect(&srv.ro_socket()).await;
    view.send(b"nope-socket\r").await;
    let mut framed = srv.connect(&srv.socket()).await;
    let mut msg = hello(true);
    msg.extend_from_slice(&[1, 0, 10]);
    msg.extend_from_slice(b"nope-hello");
    msg.extend_from_slice(&[2, 0, 4, 0, 5, 0, 6]);
    framed.send(&msg).await;
    watcher.read_until(b"is read-only (by request)").await;
    // once both have hung up, the server has read all they sent
    drop(view);
    drop(framed);
    watcher.read_until(b"detached (left); 2 attached").await;
    watcher.read_until(b"detached (left); 1 attached").await;
    watcher.send(b"yes\r").await;
    let got = srv.input_until(b"yes\r").await;
    assert_eq!(got, b"yes\r", "only the read-write client's input arrives");
    srv.shutdown().await;
}

#[tokio::test]
async fn ignored_keys_never_reach_the_ioc() {
    let mut srv = Server::start_with(4096, 1 << 20, |c| c.ignore = vec![0x04, 0x03]);
    let mut a = srv.connect(&srv.socket()).await;
    a.send(b"a\x04b\x03c\r").await;
    assert_eq!(srv.input_until(b"\r").await, b"abc\r");
    srv.shutdown().await;
}

#[tokio::test]
async fn framed_client_sends_input_and_window_size() {
    let mut srv = Server::start(4096, 1 << 20);
    let mut c = srv.connect(&srv.socket()).await;
    let mut msg = hello(false);
    msg.extend_from_slice(&[2, 0, 4, 0, 30, 0, 100]);
    msg.extend_from_slice(&[1, 0, 4]);
    msg.extend_from_slice(b"dbl\r");
    c.send(&msg).await;
    assert_eq!(srv.next_resize().await, (30, 100));
    assert_eq!(srv.input_until(b"dbl\r").await, b"dbl\r");
    srv.shutdown().await;
}

/// T9: a client that never reads is dropped once it is a buffer behind; the publisher never
/// waits and the other clients get everything, including the notice. The fast client reads on
/// its own thread and the publisher keeps in step with it, so a loaded machine cannot make the
/// fast client look slow.
#[tokio::test]
async fn slow_client_is_dropped_while_others_and_the_publisher_continue() {
    let srv = Server::start(0, 256 * 1024);
    let stuck = srv.connect(&srv.socket()).await;
    let fast = std::os::unix::net::UnixStream::connect(srv.ro_socket()).expect("connect");
    srv.wait_clients(2).await;
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (count, text) = (received.clone(), seen.clone());
    let reader = std::thread::spawn(move || {
        let mut fast = fast;
        let mut buf = [0u8; 65536];
        while let Ok(n @ 1..) = fast.read(&mut buf) {
            let mut text = text.lock().expect("lock");
            text.extend_from_slice(&buf[..n]);
            count.fetch_add(n, std::sync::atomic::Ordering::AcqRel);
            // only the tail can hold the end marker: keep the check linear
            if contains(&text[text.len().saturating_sub(n + 16)..], b"END OF FLOOD") {
                break;
            }
        }
        fast // still attached until the test is done
    });
    let hub = srv.hub.clone();
    let publisher = std::thread::spawn(move || {
        let line = [b'x'; 1023];
        let mut published = 0;
        for _ in 0..64 {
            for _ in 0..64 {
                hub.publish(&line);
                hub.publish(b"\n");
            }
            published += 64 * 1024;
            let deadline = Instant::now() + PATIENCE;
            while received.load(std::sync::atomic::Ordering::Acquire) < published {
                assert!(Instant::now() < deadline, "fast client stalled");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        hub.publish(b"END OF FLOOD\r\n");
    });
    // the server's writers run on this runtime: wait without blocking it
    let deadline = Instant::now() + PATIENCE;
    while !(publisher.is_finished() && reader.is_finished()) {
        assert!(Instant::now() < deadline, "flood did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    publisher
        .join()
        .expect("publisher finished without blocking");
    let _fast = reader.join().expect("reader");
    let text = lossy(&seen.lock().expect("lock"));
    assert!(text.contains("dropped: too slow"), "notice missing");
    assert_eq!(
        text.matches('x').count(),
        4096 * 1023,
        "the fast client got every byte"
    );
    assert_eq!(srv.hub.stats().slow_drops, 1);
    assert_eq!(srv.hub.stats().clients, 1);
    drop(stuck);
    srv.shutdown().await;
}

#[tokio::test]
async fn socket_mode_is_0600_by_default_and_configurable() {
    let srv = Server::start_with(0, 1 << 20, |c| c.ro_socket_mode = 0o660);
    srv.connect(&srv.socket()).await;
    let mode = |p: PathBuf| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(srv.socket()), 0o600);
    assert_eq!(mode(srv.ro_socket()), 0o660);
    srv.shutdown().await;
}

#[tokio::test]
async fn stale_socket_is_replaced_live_socket_refused_and_removed_on_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.sock");
    // a socket file nobody listens on, as a crashed iocrun leaves behind
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    let first = Server::start_with(0, 1 << 20, |c| {
        c.socket = Some(path.clone());
        c.ro_socket = None;
    });
    first.connect(&path).await;
    let hub = Hub::new(HubConfig {
        mirror_stdout: false,
        ..HubConfig::default()
    });
    let cfg = ServerConfig {
        socket: Some(path.clone()),
        socket_mode: 0o600,
        ro_socket: None,
        ro_socket_mode: 0o600,
        ignore: Vec::new(),
        stdin: false,
        confirm_exit: false,
        guard: false,
    };
    let (tx, _rx) = mpsc::channel(1);
    let second = console::serve(cfg, hub, tx, std::future::pending()).await;
    let err = second.expect_err("a live socket is not taken over");
    assert!(err.to_string().contains("in use"), "{err}");
    first.shutdown().await;
    assert!(!path.exists(), "socket removed on shutdown");
}

/// A child process in a PTY, with everything it prints collected by a thread.
struct PtyChild {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Box<dyn portable_pty::MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    out: Arc<Mutex<Vec<u8>>>,
}

impl PtyChild {
    fn spawn(cmd: CommandBuilder, rows: u16, cols: u16) -> PtyChild {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let child = pair.slave.spawn_command(cmd).expect("spawn in pty");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        PtyChild {
            child,
            master: pair.master,
            writer,
            out,
        }
    }

    fn type_keys(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("type");
        self.writer.flush().expect("flush");
    }

    async fn output_until(&self, want: &[u8]) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = self.out.lock().expect("lock").clone();
            if contains(&seen, want) {
                return lossy(&seen);
            }
            assert!(
                Instant::now() < deadline,
                "no {:?} in {:?}",
                lossy(want),
                lossy(&seen)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn exit_code(&mut self) -> u32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "child did not exit");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn attach_cmd(socket: &Path, extra: &[&str]) -> CommandBuilder {
    let mut cmd = CommandBuilder::new(crate::util::iocrun_bin());
    cmd.arg("attach");
    cmd.arg("--socket");
    cmd.arg(socket);
    cmd.args(extra);
    cmd.env_remove("IOCRUN_DETACH_KEYS");
    cmd.env("TERM", "dumb");
    cmd
}

#[tokio::test]
async fn iocrun_attach_types_resizes_and_detaches_cleanly() {
    let mut srv = Server::start(4096, 1 << 20);
    srv.hub.publish(b"before attach\r\n");
    srv.listening().await;
    let mut pty = PtyChild::spawn(attach_cmd(&srv.socket(), &[]), 30, 100);
    assert_eq!(srv.next_resize().await, (30, 100), "size sent on attach");
    pty.output_until(b"before attach").await;
    pty.output_until(b"detach with ^]").await;
    pty.type_keys(b"dbl\r");
    assert_eq!(srv.input_until(b"dbl\r").await, b"dbl\r");
    srv.hub.publish(b"record list\r\n");
    pty.output_until(b"record list").await;
    pty.master
        .resize(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("resize");
    assert_eq!(srv.next_resize().await, (40, 120), "size sent on SIGWINCH");
    pty.type_keys(b"\x1d");
    assert_eq!(pty.exit_code().await, 0, "detach exits 0");
    pty.output_until(b"iocrun attach: detached").await;
    srv.wait_clients(0).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn iocrun_attach_custom_detach_sequence_and_read_only() {
    let mut srv = Server::start(4096, 1 << 20);
    let mut watcher = srv.connect(&srv.socket()).await;
    watcher.read_until(b"1 attached").await;
    let args = ["--read-only", "--detach-keys", "ctrl-p,ctrl-q"];
    let mut pty = PtyChild::spawn(attach_cmd(&srv.socket(), &args), 24, 80);
    watcher.read_until(b"2 attached").await;
    pty.output_until(b"detach with ^P^Q").await;
    // typed text (and a lone ^P) is not sent by a read-only client; ^P^Q detaches
    pty.type_keys(b"nope\r\x10x");
    pty.type_keys(b"\x10\x11");
    assert_eq!(pty.exit_code().await, 0);
    watcher.read_until(b"detached (left); 1 attached").await;
    watcher.send(b"yes\r").await;
    assert_eq!(srv.input_until(b"yes\r").await, b"yes\r");
    srv.shutdown().await;
}

#[tokio::test]
async fn iocrun_attach_exits_3_when_the_server_goes_away() {
    let srv = Server::start(4096, 1 << 20);
    srv.listening().await;
    let mut pty = PtyChild::spawn(attach_cmd(&srv.socket(), &[]), 24, 80);
    pty.output_until(b"attached (read-write)").await;
    srv.shutdown().await;
    assert_eq!(pty.exit_code().await, 3);
    pty.output_until(b"connection closed by iocrun").await;
}

#[test]
fn iocrun_attach_without_a_server_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = crate::util::iocrun()
        .args(["attach", "--socket"])
        .arg(dir.path().join("missing.sock"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to console socket") && err.contains("missing.sock"),
        "{err}"
    );
}

/// `socat UNIX-CONNECT:PATH -,raw,echo=0` in a terminal is a full client.
#[tokio::test]
async fn socat_raw_client_works() {
    if !have_socat() {
        return;
    }
    let mut srv = Server::start(4096, 1 << 20);
    srv.hub.publish(b"history line\r\n");
    srv.listening().await;
    let mut cmd = CommandBuilder::new("socat");
    cmd.arg(format!("UNIX-CONNECT:{}", srv.socket().display()));
    cmd.arg("-,raw,echo=0");
    let mut pty = PtyChild::spawn(cmd, 24, 80);
    pty.output_until(b"history line").await;
    srv.hub.publish(b"live line\r\n");
    pty.output_until(b"live line").await;
    // raw mode: ^C is a byte for the IOC, not a signal for socat
    pty.type_keys(b"dbl\r\x03");
    assert_eq!(srv.input_until(b"\x03").await, b"dbl\r\x03");
    srv.shutdown().await;
    pty.exit_code().await;
}

/// socat is installed, or the test is skipped (outside CI).
fn have_socat() -> bool {
    if which("socat").is_some() {
        return true;
    }
    assert!(!crate::util::in_ci(), "CI=true but socat is missing");
    crate::util::skip("socat not installed");
    false
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

#[tokio::test]
async fn console_log_file_has_timestamped_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("console.log");
    let hub = Hub::new(HubConfig {
        mirror_stdout: false,
        log: Some(console::LogConfig {
            path: log.clone(),
            max_bytes: 0,
            keep: 0,
        }),
        ..HubConfig::default()
    });
    hub.publish(b"first line\r\nsecond ");
    hub.publish(b"line\r\nepics> ");
    hub.flush(PATIENCE);
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines.len(), 3, "{text:?}");
    for (line, body) in lines.iter().zip(["first line", "second line", "epics> "]) {
        // "[YYYY-MM-DD HH:MM:SS.mmm] " then the IOC's bytes
        assert_eq!(line.len(), 26 + body.len(), "{line:?}");
        assert!(
            line.starts_with("[20") && line[24..].starts_with("] "),
            "{line:?}"
        );
        assert!(line.ends_with(body), "{line:?}");
    }
}

/// T9: clients connecting and leaving in a loop (some abruptly, mid-output) leave no socket
/// behind and do not disturb a client that stays. Server-side sockets are counted in
/// /proc/net/unix, where accepted connections carry the listening path.
#[tokio::test]
async fn many_clients_come_and_go_without_leaking() {
    let srv = Server::start(64 * 1024, 1 << 20);
    let mut stays = srv.connect(&srv.socket()).await;
    srv.wait_clients(1).await;
    let path = srv.socket().display().to_string();
    let server_sockets = || {
        let table = std::fs::read_to_string("/proc/net/unix").expect("/proc/net/unix");
        table.lines().filter(|l| l.ends_with(&path)).count()
    };
    assert_eq!(server_sockets(), 2, "the listener and one connection");
    for round in 0..50 {
        let mut c = srv.connect(&srv.socket()).await;
        srv.hub.publish(format!("round {round}\r\n").as_bytes());
        if round % 2 == 0 {
            c.read_until(format!("round {round}\r\n").as_bytes()).await;
        }
        drop(c);
    }
    srv.wait_clients(1).await;
    srv.hub.publish(b"still here\r\n");
    stays.read_until(b"still here\r\n").await;
    let deadline = Instant::now() + PATIENCE;
    while server_sockets() != 2 {
        assert!(
            Instant::now() < deadline,
            "{} server sockets",
            server_sockets()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn confirm_exit_holds_back_the_first_exit() {
    let mut srv = Server::start_with(4096, 1 << 20, |c| c.confirm_exit = true);
    let mut a = srv.connect(&srv.socket()).await;
    a.send(b"exit\r").await;
    assert_eq!(
        srv.input_until(b"\x15").await,
        b"exit\x15",
        "Enter replaced by Ctrl-U"
    );
    a.read_until(b"'exit' would stop the IOC; type it again")
        .await;
    a.send(b"exit\r").await;
    assert_eq!(srv.input_until(b"\r").await, b"exit\r", "confirmed");
    srv.shutdown().await;
}

/// The Ctrl-C/Ctrl-D guard (on by default in `iocrun start`): the keys never reach the IOC,
/// the client that typed them is told once how to leave, and nobody else is.
#[tokio::test]
async fn stop_keys_are_held_back_with_one_private_hint() {
    let mut srv = Server::start_with(4096, 1 << 20, |c| c.guard = true);
    let mut a = srv.connect(&srv.socket()).await;
    let mut b = srv.connect(&srv.socket()).await;
    srv.wait_clients(2).await;
    a.send(b"a\x03b\x04c\r").await;
    assert_eq!(srv.input_until(b"\r").await, b"abc\r");
    let hint = "Ctrl-C not sent: it would stop the IOC. Leave with Ctrl-] (iocrun attach)";
    a.read_until(hint.as_bytes()).await;
    // pressed again at once: dropped, no second hint
    a.send(b"\x03\x04d\r").await;
    assert_eq!(srv.input_until(b"\r").await, b"d\r");
    srv.hub.publish(b"marker\r\n");
    let seen = a.read_until(b"marker").await;
    assert_eq!(seen.matches("not sent").count(), 1, "{seen}");
    assert!(seen.contains("IOCRUN_CONSOLE_GUARD=off"), "{seen}");
    let other = b.read_until(b"marker").await;
    assert!(
        !other.contains("not sent"),
        "only the typist is told: {other}"
    );
    srv.shutdown().await;
}

/// Issue 11: 2,000 attach/detach cycles once left a 256 KB scrollback holding only `@@@`
/// lines. Client notices are shown live but not kept, so the IOC's banner survives churn.
#[tokio::test]
async fn attach_detach_churn_keeps_the_banner_in_the_scrollback() {
    let srv = Server::start(4096, 1 << 20);
    srv.hub.publish(b"IOC BANNER\r\n");
    let mut watcher = srv.connect(&srv.socket()).await;
    watcher.read_until(b"IOC BANNER").await;
    for _ in 0..200 {
        drop(srv.connect(&srv.socket()).await);
    }
    // 400 notices of ~80 bytes went past: far more than the 4 KB scrollback
    watcher.read_until(b"detached (left); 1 attached").await;
    srv.wait_clients(1).await;
    let mut late = srv.connect(&srv.socket()).await;
    let replay = late.read_until(b"attached (read-write)").await;
    assert!(replay.starts_with("IOC BANNER\r\n"), "{replay}");
    srv.shutdown().await;
}

/// `echo dbl | socat - UNIX-CONNECT:…` half-closes right after the command; the IOC's answer
/// must still reach it.
#[tokio::test]
async fn a_one_shot_socat_gets_the_answer() {
    if !have_socat() {
        return;
    }
    let mut srv = Server::start(0, 1 << 20);
    srv.listening().await;
    let socket = srv.socket();
    let socat = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new("socat")
            .arg("-")
            .arg(format!("UNIX-CONNECT:{}", socket.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("socat");
        // written and closed at once, as `echo dbl |` does
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"dbl\n").expect("write");
        drop(stdin);
        child.wait_with_output().expect("socat output")
    });
    srv.input_until(b"dbl\n").await;
    srv.hub.publish(b"T:AI\r\nT:BI\r\n");
    let out = tokio::time::timeout(PATIENCE, socat)
        .await
        .expect("socat ends")
        .expect("join");
    assert!(
        lossy(&out.stdout).contains("T:AI\r\nT:BI\r\n"),
        "{}",
        lossy(&out.stdout)
    );
    srv.shutdown().await;
}

/// A bad hello option is quoted, defused, only to the client that sent it; everyone else
/// learns that a client left with a protocol error.
#[tokio::test]
async fn a_bad_hello_option_is_defused_and_not_broadcast() {
    let srv = Server::start(4096, 1 << 20);
    let mut watcher = srv.connect(&srv.socket()).await;
    watcher.read_until(b"1 attached").await;
    let mut evil = srv.connect(&srv.ro_socket()).await;
    let mut hello = hello(false);
    hello.pop();
    hello.extend_from_slice(b" \x1b]0;owned\x07\x1b[2Jgotcha\n");
    evil.send(&hello).await;
    let told = lossy(&{
        let mut all = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, evil.stream.read_to_end(&mut all)).await;
        all
    });
    assert!(
        // escaped, and cut at 32 characters
        told.contains("unknown hello option '\\u{1b}]0;owned\\u{7}\\u{1b}[2Jgotc…': disconnected"),
        "{told:?}"
    );
    let seen = watcher.read_until(b"detached (protocol error)").await;
    assert!(
        !seen.contains("gotcha") && !seen.contains('\x1b'),
        "{seen:?}"
    );
    srv.shutdown().await;
}
