//! The fan-out: one byte stream in (the IOC's PTY), many consumers out.
//!
//! [`Hub::publish`] is called from the plain std thread that reads the PTY, so it must never
//! block and never wait on a consumer: it takes one short mutex, appends to the history and
//! hands a shared chunk to every consumer's unbounded queue while counting the bytes each has
//! not yet written. Two kinds of consumer exist:
//!
//! * socket clients: when one falls more than `client_buffer` bytes behind it is dropped with a
//!   notice (a slow or stuck client), the others carry on;
//! * lossy sinks (iocrun's stdout, the console log file), each written by its own thread: when
//!   one falls behind, bytes are skipped and a marker says how many, because disconnecting
//!   `kubectl logs` is not an option.
//!
//! Attach is atomic with respect to publish: the history snapshot and the client's registration
//! happen under the same lock, so a client sees the replay and then live output with no gap and
//! no duplicate (test T10).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, Notify};

use super::history::History;
use super::logfile::{self, LogConfig};

/// One published chunk, shared by every consumer.
pub(crate) type Chunk = Arc<[u8]>;

/// How the hub buffers and where it mirrors.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Bytes of scrollback replayed on attach (0: no replay).
    pub history_bytes: usize,
    /// Bytes a socket client may fall behind before it is dropped.
    pub client_buffer: usize,
    /// Mirror every byte to iocrun's stdout (what `kubectl logs` reads).
    pub mirror_stdout: bool,
    /// Bytes stdout may fall behind before output to it is skipped (and marked).
    pub stdout_buffer: usize,
    /// An optional console log file with timestamps, rotated by size.
    pub log: Option<LogConfig>,
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            history_bytes: 256 * 1024,
            client_buffer: 1024 * 1024,
            mirror_stdout: true,
            stdout_buffer: 8 * 1024 * 1024,
            log: None,
        }
    }
}

/// Counters for metrics (`epics_ioc_console_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Socket clients attached now.
    pub clients: usize,
    /// Bytes published (IOC output plus iocrun's notices).
    pub bytes_out: u64,
    /// Bytes of client input forwarded to the IOC.
    pub bytes_in: u64,
    /// Clients dropped for being too slow, since start.
    pub slow_drops: u64,
}

/// The console hub: cheap to clone, shared by the PTY reader, the server and the supervisor.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    client_buffer: usize,
    bytes_in: AtomicU64,
    log_reopen: Option<Arc<AtomicBool>>,
    closing: AtomicBool,
}

struct State {
    history: History,
    clients: Vec<Slot>,
    sinks: Vec<Sink>,
    next_id: u64,
    at_line_start: bool,
    bytes_out: u64,
    slow_drops: u64,
}

/// A socket client's entry in the hub.
struct Slot {
    id: u64,
    tx: mpsc::UnboundedSender<Chunk>,
    shared: Arc<ClientShared>,
}

/// What a client's writer task and the hub share.
#[derive(Default)]
pub(crate) struct ClientShared {
    /// Bytes queued and not yet written to the socket.
    pub(crate) pending: AtomicUsize,
    /// Set when the hub dropped the client for falling behind.
    pub(crate) too_slow: AtomicBool,
    /// Woken when the hub drops the client, so a writer stuck in `write` gives up.
    pub(crate) kicked: Notify,
}

/// A registered client: its replay, its live queue and the shared counters.
pub(crate) struct Attached {
    pub(crate) id: u64,
    pub(crate) replay: Vec<u8>,
    pub(crate) rx: mpsc::UnboundedReceiver<Chunk>,
    pub(crate) shared: Arc<ClientShared>,
}

/// A lossy consumer written by its own thread (stdout, the log file).
struct Sink {
    tx: mpsc::UnboundedSender<Chunk>,
    pending: Arc<AtomicUsize>,
    skipped: Arc<AtomicU64>,
    limit: usize,
}

impl Hub {
    /// A hub with no clients; starts the stdout and log writer threads the config asks for.
    ///
    /// Never fails: a log file that cannot be opened is reported on stderr and skipped, because
    /// the console log must not stop the IOC.
    pub fn new(cfg: HubConfig) -> Hub {
        let mut sinks = Vec::new();
        let mut log_reopen = None;
        if cfg.mirror_stdout {
            sinks.push(Sink::spawn(
                "console-stdout",
                cfg.stdout_buffer,
                StdoutWriter,
            ));
        }
        if let Some(log) = cfg.log {
            let path = log.path.clone();
            match logfile::LogWriter::open(log) {
                Ok(w) => {
                    log_reopen = Some(w.reopen_flag());
                    sinks.push(Sink::spawn("console-log", cfg.stdout_buffer, w));
                }
                Err(err) => tracing::error!("cannot open console log {path:?}: {err}"),
            }
        }
        let state = State {
            history: History::new(cfg.history_bytes),
            clients: Vec::new(),
            sinks,
            next_id: 1,
            at_line_start: true,
            bytes_out: 0,
            slow_drops: 0,
        };
        Hub {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                client_buffer: cfg.client_buffer,
                bytes_in: AtomicU64::new(0),
                log_reopen,
                closing: AtomicBool::new(false),
            }),
        }
    }

    /// Send bytes to stdout, the log, the history and every client. Never blocks on a consumer.
    pub fn publish(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let dropped = self.lock().deliver(bytes, self.inner.client_buffer);
        self.announce_drops(dropped);
    }

    /// Publish one iocrun lifecycle line, `@@@ <UTC time> <text>`, starting on a fresh line
    /// (procServ's `@@@` convention).
    pub fn notice(&self, text: &str) {
        self.notice_kept(text, true);
    }

    /// Publish a lifecycle line about a console client (attached, detached, read-only): shown
    /// live like [`Hub::notice`] but not kept in the scrollback, so attach/detach churn never
    /// pushes the IOC's own output (its start-up banner) out of it.
    pub fn client_notice(&self, text: &str) {
        self.notice_kept(text, false);
    }

    fn notice_kept(&self, text: &str, keep: bool) {
        let dropped = {
            let mut st = self.lock();
            let line = notice_line(st.at_line_start, SystemTime::now(), text);
            match keep {
                true => st.deliver(line.as_bytes(), self.inner.client_buffer),
                false => st.deliver_live(line.as_bytes(), self.inner.client_buffer),
            }
        };
        self.announce_drops(dropped);
    }

    /// Send one `@@@` line to client `id` only: not to stdout, the log or the scrollback.
    pub(crate) fn tell(&self, id: u64, text: &str) {
        let mut st = self.lock();
        let Some(c) = st.clients.iter_mut().find(|c| c.id == id) else {
            return;
        };
        // the client may be mid-line: always start a fresh one
        let line: Chunk = Arc::from(notice_line(false, SystemTime::now(), text).as_bytes());
        // a private line may overshoot the client's buffer by its own length; the next
        // published chunk enforces the limit
        c.shared.pending.fetch_add(line.len(), Ordering::AcqRel);
        let _ = c.tx.send(line);
    }

    /// Reopen the console log file before its next write (for SIGHUP after logrotate's `mv`).
    pub fn reopen_log(&self) {
        if let Some(flag) = &self.inner.log_reopen {
            flag.store(true, Ordering::Release);
        }
    }

    /// Current counters.
    pub fn stats(&self) -> HubStats {
        let st = self.lock();
        HubStats {
            clients: st.clients.len(),
            bytes_out: st.bytes_out,
            bytes_in: self.inner.bytes_in.load(Ordering::Relaxed),
            slow_drops: st.slow_drops,
        }
    }

    /// Wait (blocking, up to `timeout`) until stdout and the log have written what was
    /// published; call before the process exits so the last lines reach `kubectl logs`.
    pub fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let pendings: Vec<Arc<AtomicUsize>> = self
            .lock()
            .sinks
            .iter()
            .map(|s| s.pending.clone())
            .collect();
        while pendings.iter().any(|p| p.load(Ordering::Acquire) > 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Register a client: its replay and live queue are taken atomically.
    pub(crate) fn attach(&self) -> Attached {
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(ClientShared::default());
        st.clients.push(Slot {
            id,
            tx,
            shared: shared.clone(),
        });
        Attached {
            id,
            replay: st.history.snapshot(),
            rx,
            shared,
        }
    }

    /// Forget a client (it left, or its task ended after being dropped).
    pub(crate) fn detach(&self, id: u64) {
        self.lock().clients.retain(|c| c.id != id);
    }

    /// Count input bytes forwarded to the IOC.
    pub(crate) fn count_input(&self, n: usize) {
        self.inner.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Close every client's queue: writers finish what is queued, then hang up.
    pub(crate) fn close_clients(&self) {
        self.inner.closing.store(true, Ordering::Release);
        self.lock().clients.clear();
    }

    /// True once the server has hung up on everyone.
    pub(crate) fn is_closing(&self) -> bool {
        self.inner.closing.load(Ordering::Acquire)
    }

    fn announce_drops(&self, mut dropped: Vec<u64>) {
        // a notice can itself push another client over its limit; the client list only
        // shrinks, so this ends
        while !dropped.is_empty() {
            let text = match dropped.as_slice() {
                [id] => format!("console client {id} dropped: too slow to read its output"),
                ids => format!("console clients {ids:?} dropped: too slow to read their output"),
            };
            let mut st = self.lock();
            let line = notice_line(st.at_line_start, SystemTime::now(), &text);
            dropped = st.deliver(line.as_bytes(), self.inner.client_buffer);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic elsewhere must not silence the console; the state stays consistent per call
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Deliver to everything; returns the ids of clients dropped for being too slow.
    fn deliver(&mut self, bytes: &[u8], client_buffer: usize) -> Vec<u64> {
        self.history.push(bytes);
        self.deliver_live(bytes, client_buffer)
    }

    /// Deliver to the sinks and clients only, not to the scrollback.
    fn deliver_live(&mut self, bytes: &[u8], client_buffer: usize) -> Vec<u64> {
        self.at_line_start = bytes.ends_with(b"\n");
        self.bytes_out += bytes.len() as u64;
        let chunk: Chunk = Arc::from(bytes);
        for sink in &self.sinks {
            sink.offer(&chunk);
        }
        let mut dropped = Vec::new();
        self.clients.retain(|c| {
            let pending = c.shared.pending.load(Ordering::Acquire);
            if pending + chunk.len() > client_buffer {
                c.shared.too_slow.store(true, Ordering::Release);
                c.shared.kicked.notify_one();
                dropped.push(c.id);
                return false;
            }
            c.shared.pending.fetch_add(chunk.len(), Ordering::AcqRel);
            // a send error means the writer already ended; it detaches itself
            c.tx.send(chunk.clone()).is_ok()
        });
        self.slow_drops += dropped.len() as u64;
        dropped
    }
}

/// `@@@ <time> <text>\r\n`, preceded by a line break when the stream is mid-line.
fn notice_line(at_line_start: bool, now: SystemTime, text: &str) -> String {
    let lead = if at_line_start { "" } else { "\r\n" };
    format!("{lead}@@@ {} {text}\r\n", crate::timefmt::rfc3339(now))
}

/// Something a sink thread writes chunks to.
trait SinkWriter: Send + 'static {
    fn write_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()>;
}

struct StdoutWriter;

impl SinkWriter for StdoutWriter {
    fn write_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        // std's stdout is line buffered; a prompt without newline must still appear
        out.flush()
    }
}

impl SinkWriter for logfile::LogWriter {
    fn write_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        // failures are the log's to report; the sink must not stop for them
        self.write_or_report(bytes);
        Ok(())
    }
}

impl Sink {
    fn spawn(name: &str, limit: usize, mut writer: impl SinkWriter) -> Sink {
        let (tx, mut rx) = mpsc::unbounded_channel::<Chunk>();
        let pending = Arc::new(AtomicUsize::new(0));
        let skipped = Arc::new(AtomicU64::new(0));
        let (p, s) = (pending.clone(), skipped.clone());
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut broken = false;
                while let Some(chunk) = rx.blocking_recv() {
                    if !broken {
                        broken = write_with_gap_marker(&mut writer, &s, &chunk).is_err();
                    }
                    p.fetch_sub(chunk.len(), Ordering::AcqRel);
                }
            });
        if let Err(err) = spawned {
            tracing::error!("cannot start the {name} thread: {err}");
        }
        Sink {
            tx,
            pending,
            skipped,
            limit,
        }
    }

    /// Queue a chunk unless the writer is too far behind; then count it as skipped.
    fn offer(&self, chunk: &Chunk) {
        if self.pending.load(Ordering::Acquire) + chunk.len() > self.limit {
            self.skipped
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            return;
        }
        self.pending.fetch_add(chunk.len(), Ordering::AcqRel);
        if self.tx.send(chunk.clone()).is_err() {
            // the writer thread is gone (could not start); nothing will drain this
            self.pending.fetch_sub(chunk.len(), Ordering::AcqRel);
        }
    }
}

/// Write one chunk; first say how many bytes were skipped since the last write, if any.
fn write_with_gap_marker(
    writer: &mut impl SinkWriter,
    skipped: &AtomicU64,
    chunk: &[u8],
) -> std::io::Result<()> {
    let gap = skipped.swap(0, Ordering::Relaxed);
    if gap > 0 {
        let marker = format!("\r\n@@@ {gap} bytes of console output skipped: output too slow\r\n");
        writer.write_chunk(marker.as_bytes())?;
    }
    writer.write_chunk(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(history: usize, client_buffer: usize) -> Hub {
        Hub::new(HubConfig {
            history_bytes: history,
            client_buffer,
            mirror_stdout: false,
            ..HubConfig::default()
        })
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<Chunk>, shared: &ClientShared) -> Vec<u8> {
        let mut out = Vec::new();
        while let Ok(c) = rx.try_recv() {
            shared.pending.fetch_sub(c.len(), Ordering::AcqRel);
            out.extend_from_slice(&c);
        }
        out
    }

    #[test]
    fn fans_out_to_every_client() {
        let hub = quiet(1024, 1024);
        let mut a = hub.attach();
        let mut b = hub.attach();
        hub.publish(b"hello\r\n");
        assert_eq!(drain(&mut a.rx, &a.shared), b"hello\r\n");
        assert_eq!(drain(&mut b.rx, &b.shared), b"hello\r\n");
        assert_eq!(hub.stats().clients, 2);
    }

    #[test]
    fn replay_then_live_without_gap_or_duplicate() {
        let hub = quiet(1024, 1024);
        hub.publish(b"boot 1\r\n");
        hub.publish(b"boot 2\r\n");
        let mut c = hub.attach();
        hub.publish(b"live\r\n");
        assert_eq!(c.replay, b"boot 1\r\nboot 2\r\n");
        assert_eq!(drain(&mut c.rx, &c.shared), b"live\r\n");
    }

    #[test]
    fn slow_client_is_dropped_and_others_continue() {
        let hub = quiet(0, 128);
        let mut fast = hub.attach();
        let slow = hub.attach();
        for _ in 0..20 {
            hub.publish(b"0123456789");
            drain(&mut fast.rx, &fast.shared);
        }
        assert!(slow.shared.too_slow.load(Ordering::Acquire));
        assert_eq!(hub.stats().clients, 1);
        assert_eq!(hub.stats().slow_drops, 1);
        hub.publish(b"after");
        let got = drain(&mut fast.rx, &fast.shared);
        assert!(got.ends_with(b"after"), "{got:?}");
    }

    #[test]
    fn drop_notice_reaches_the_remaining_clients() {
        let hub = quiet(0, 128);
        let mut fast = hub.attach();
        let slow = hub.attach();
        let mut seen = Vec::new();
        for _ in 0..20 {
            hub.publish(b"0123456789");
            seen.extend(drain(&mut fast.rx, &fast.shared));
        }
        let text = String::from_utf8_lossy(&seen);
        assert!(
            text.contains(&format!("console client {} dropped", slow.id)),
            "{text}"
        );
    }

    #[test]
    fn notice_starts_on_a_fresh_line() {
        let hub = quiet(1024, 1024);
        hub.publish(b"epics> ");
        hub.notice("hello");
        hub.notice("again");
        let text = String::from_utf8(hub.attach().replay).expect("utf8");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "epics> ");
        assert!(
            lines[1].starts_with("@@@ ") && lines[1].ends_with(" hello"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("@@@ ") && lines[2].ends_with(" again"),
            "{text}"
        );
    }

    #[test]
    fn detach_removes_the_client() {
        let hub = quiet(16, 16);
        let a = hub.attach();
        hub.detach(a.id);
        assert_eq!(hub.stats().clients, 0);
        hub.publish(b"x");
        assert_eq!(hub.stats().bytes_out, 1);
    }

    #[test]
    fn lossy_sink_marks_skipped_bytes() {
        struct Collect(Arc<Mutex<Vec<u8>>>);
        impl SinkWriter for Collect {
            fn write_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
                self.0.lock().expect("lock").extend_from_slice(bytes);
                Ok(())
            }
        }
        let out = Arc::new(Mutex::new(Vec::new()));
        let skipped = AtomicU64::new(7);
        let mut w = Collect(out.clone());
        write_with_gap_marker(&mut w, &skipped, b"next").expect("write");
        let text = String::from_utf8(out.lock().expect("lock").clone()).expect("utf8");
        assert!(
            text.contains("@@@ 7 bytes of console output skipped"),
            "{text}"
        );
        assert!(text.ends_with("next"));
    }
}
