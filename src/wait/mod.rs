//! The hardware wait: hold the IOC start until each device in `wait_list.yaml` accepts a TCP
//! connection (ibek's `ioc do-wait`).
//!
//! This module owns the list format, the connection attempts and their back-off, the
//! progress lines, and the done file that start-up probes poll. It sits between `expand` and
//! `supervise` in the data path, is synchronous (the start sequence runs it on a blocking
//! thread) and imports only `files`.
//!
//! Same messages and the same done-file lifecycle as ibek, with three intended differences:
//! attempts back off (100 ms doubling to 1 s) instead of spinning at thousands per second, a
//! DNS "try again" is waited out instead of being fatal, and a progress line names the
//! targets still pending every so often.

mod connect;
mod list;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use list::{load, parse, Entry, IpTarget, WaitList};

use connect::Attempt;

/// ibek's `DOWAIT_DONE_FILE`: it exists once the wait has succeeded or was skipped.
pub const DEFAULT_DONE_FILE: &str = "/tmp/doWait_completed.txt";

/// First pause between attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// One connect never blocks longer than this, so progress lines keep coming.
const MAX_ATTEMPT: Duration = Duration::from_secs(5);
/// ibek's Python can hand the socket a timeout of zero or less near the deadline (edge
/// bugs); never go below this.
const MIN_ATTEMPT: Duration = Duration::from_millis(10);

/// A wait step that failed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("cannot read wait list '{path}'")]
    ReadList {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse wait list '{path}' at line {line} column {column}: {message}")]
    ParseList {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("bad wait entry {index} in '{path}': {what}")]
    BadEntry {
        path: PathBuf,
        index: usize,
        what: String,
    },
    #[error("error connecting to {device} at {address}: cannot resolve host '{host}'")]
    Resolve {
        device: String,
        address: String,
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("error connecting to {device} at {address}")]
    Connect {
        device: String,
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// ibek's message, lower-cased: "Connection to DEV at ADDR timed out after T seconds".
    #[error("connection to {device} at {address} timed out after {seconds} seconds")]
    TimedOut {
        device: String,
        address: String,
        seconds: String,
    },
    #[error("gave up waiting for hardware after {seconds} seconds; still pending: {pending}")]
    Overall { seconds: u64, pending: String },
    #[error("cannot update done file '{path}'")]
    DoneFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the wait tells the world how it is going.
pub trait Report {
    /// A line for the console/log (ibek's stdout messages and progress lines).
    fn line(&mut self, text: &str);
    /// The devices not yet reachable, whenever that set changes (for metrics and probes).
    fn pending(&mut self, _devices: &[&str]) {}
}

/// A [`Report`] that writes lines to any writer (stdout for `iocrun wait`).
pub struct Lines<W: std::io::Write>(pub W);

impl<W: std::io::Write> Report for Lines<W> {
    fn line(&mut self, text: &str) {
        // the console stream going away must not stop the wait
        let _ = writeln!(self.0, "{text}");
        let _ = self.0.flush();
    }
}

/// How long to wait and how often to say so.
#[derive(Debug, Clone)]
pub struct Options {
    /// Print which targets are pending at this interval while waiting.
    pub progress_every: Duration,
    /// A bound on the whole wait, on top of each target's own timeout (`None`: no bound).
    pub overall: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            progress_every: Duration::from_secs(10),
            overall: None,
        }
    }
}

/// Wait for every entry in order, each with its own timeout, as ibek does.
pub fn wait_all(list: &WaitList, opts: &Options, report: &mut dyn Report) -> Result<(), WaitError> {
    let started = Instant::now();
    let overall = opts.overall.map(|d| started + d);
    let targets: Vec<&IpTarget> = list
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Ip(t) => Some(t),
            Entry::Unsupported { .. } => None,
        })
        .collect();
    let mut done = 0;
    for entry in &list.entries {
        match entry {
            Entry::Ip(target) => {
                let pending: Vec<&str> =
                    targets[done..].iter().map(|t| t.device.as_str()).collect();
                report.pending(&pending);
                wait_one(target, &pending, opts, overall, started, report)?;
                done += 1;
            }
            Entry::Unsupported { kind } => {
                tracing::warn!("Wait entry type not supported yet: {kind}");
            }
        }
    }
    report.pending(&[]);
    report.line("All 'wait' commands completed successfully.");
    Ok(())
}

/// Retry one target until it answers, its timeout passes, or the overall bound passes.
fn wait_one(
    target: &IpTarget,
    pending: &[&str],
    opts: &Options,
    overall: Option<Instant>,
    started: Instant,
    report: &mut dyn Report,
) -> Result<(), WaitError> {
    if target.defaulted_port {
        tracing::warn!(
            "Address '{}' does not include a port number. It should be in the format 'ip:port'. Using port 1025 as default.",
            target.address
        );
    }
    report.line(&announce(target));
    let begun = Instant::now();
    let own = target.timeout.map(|t| begun + t);
    let deadline = [own, overall].into_iter().flatten().min();
    let mut backoff = FIRST_BACKOFF;
    let mut next_progress = begun + opts.progress_every;
    loop {
        let budget = deadline.map_or(MAX_ATTEMPT, |d| d.saturating_duration_since(Instant::now()));
        let reason = match connect::attempt(target, budget.clamp(MIN_ATTEMPT, MAX_ATTEMPT)) {
            Attempt::Up => return Ok(()),
            Attempt::Fatal(err) => return Err(err),
            Attempt::Retry(reason) => reason,
        };
        tracing::debug!(
            "{} at {} not up yet: {reason}",
            target.device,
            target.address
        );
        let now = Instant::now();
        if let Some(d) = deadline.filter(|d| now >= *d) {
            return Err(expired(
                target,
                pending,
                overall == Some(d) && own != Some(d),
                started,
            ));
        }
        if now >= next_progress {
            report.line(&progress(target, pending, now - begun, &reason));
            next_progress = now + opts.progress_every;
        }
        let pause = deadline.map_or(backoff, |d| backoff.min(d.saturating_duration_since(now)));
        std::thread::sleep(pause);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// ibek's opening line for a target.
fn announce(target: &IpTarget) -> String {
    match target.timeout {
        Some(_) => format!(
            "Waiting up to {} seconds for {} at {} to respond...",
            target.timeout_text, target.device, target.address
        ),
        None => format!(
            "Waiting indefinitely for {} at {} to respond...",
            target.device, target.address
        ),
    }
}

fn progress(target: &IpTarget, pending: &[&str], waited: Duration, reason: &str) -> String {
    format!(
        "Still waiting for {} at {} after {}s ({reason}); pending: {}",
        target.device,
        target.address,
        waited.as_secs(),
        pending.join(", ")
    )
}

fn expired(target: &IpTarget, pending: &[&str], by_overall: bool, started: Instant) -> WaitError {
    if by_overall {
        WaitError::Overall {
            seconds: started.elapsed().as_secs(),
            pending: pending.join(", "),
        }
    } else {
        WaitError::TimedOut {
            device: target.device.clone(),
            address: target.address.clone(),
            seconds: target.timeout_text.clone(),
        }
    }
}

/// The whole wait step, as ibek's `do-wait` with the done-file fix: remove the done
/// file, wait for every target in `source` unless `skip`, then create the done file. A missing
/// list is not an error. On failure the done file stays absent.
pub fn do_wait(
    source: &Path,
    done_file: &Path,
    skip: bool,
    opts: &Options,
    report: &mut dyn Report,
) -> Result<(), WaitError> {
    clear_done_file(done_file)?;
    if skip {
        report.line("IBEK_DO_WAIT_DISABLE=true, skipping wait commands.");
    } else {
        match load(source)? {
            Some(list) => wait_all(&list, opts, report)?,
            None => report.line(&format!(
                "No wait list file found at {}, skipping wait commands.",
                source.display()
            )),
        }
    }
    write_done_file(done_file)
}

/// Remove the done file before a wait starts (ibek step 1); absent is fine.
pub fn clear_done_file(path: &Path) -> Result<(), WaitError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(WaitError::DoneFile {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Create the (empty) done file: the wait succeeded or was skipped.
pub fn write_done_file(path: &Path) -> Result<(), WaitError> {
    std::fs::write(path, b"").map_err(|source| WaitError::DoneFile {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[derive(Default)]
    struct Collect {
        lines: Vec<String>,
        pending: Vec<Vec<String>>,
    }

    impl Report for Collect {
        fn line(&mut self, text: &str) {
            self.lines.push(text.to_owned());
        }
        fn pending(&mut self, devices: &[&str]) {
            self.pending
                .push(devices.iter().map(|d| d.to_string()).collect());
        }
    }

    fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[test]
    fn pending_set_shrinks_as_targets_answer() {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let text = format!(
            "- {{type: ibek.wait_ip, device: A, address: '{}', timeout: 5}}\n- {{type: ibek.wait_usb}}\n- {{type: ibek.wait_ip, device: B, address: '{}', timeout: 5}}\n",
            a.local_addr().unwrap(),
            b.local_addr().unwrap()
        );
        let list = parse(&text, Path::new("w")).unwrap();
        let mut got = Collect::default();
        wait_all(&list, &Options::default(), &mut got).unwrap();
        assert_eq!(got.pending, vec![vec!["A", "B"], vec!["B"], vec![]]);
        assert_eq!(
            got.lines.last().map(String::as_str),
            Some("All 'wait' commands completed successfully.")
        );
    }

    #[test]
    fn overall_bound_names_pending_targets() {
        let text = format!(
            "- {{type: ibek.wait_ip, device: A, address: '127.0.0.1:{}', timeout: 0}}\n",
            closed_port()
        );
        let list = parse(&text, Path::new("w")).unwrap();
        let opts = Options {
            overall: Some(Duration::from_millis(300)),
            ..Options::default()
        };
        let err = wait_all(&list, &opts, &mut Collect::default()).unwrap_err();
        assert!(
            matches!(&err, WaitError::Overall { pending, .. } if pending == "A"),
            "{err:?}"
        );
    }

    #[test]
    fn done_file_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done.txt");
        clear_done_file(&done).unwrap();
        write_done_file(&done).unwrap();
        assert!(done.exists());
        clear_done_file(&done).unwrap();
        assert!(!done.exists());
    }
}
