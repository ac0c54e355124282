//! Where the IOC's bytes go, and the `@@@` lifecycle lines iocrun adds to that stream.
//!
//! Every spawn, exit (code or signal), restart and stop is announced with a UTC timestamp on
//! stdout and in the console stream, like procServ's `@@@` lines (catatonit's
//! silence left users guessing why PID 1 went away). Lines end in
//! `\r\n` because they are interleaved with PTY output, which uses the same.

use std::io::Write;
use std::time::SystemTime;

/// A consumer of the IOC's output stream. `publish` must never block for long: it is called
/// from the PTY reader thread (the console hub queues per client and drops for slow ones).
pub trait OutputSink: Send + Sync + 'static {
    /// Pass on bytes the IOC printed.
    fn publish(&self, bytes: &[u8]);

    /// Add one lifecycle line to the stream.
    fn notice(&self, text: &str) {
        self.publish(banner_line(text).as_bytes());
    }

    /// SIGHUP arrived: reopen any log file (logrotate moved it).
    fn reopen(&self) {}

    /// Block (up to `timeout`) until what was published has been written out.
    fn flush(&self, _timeout: std::time::Duration) {}
}

impl<F: Fn(&[u8]) + Send + Sync + 'static> OutputSink for F {
    fn publish(&self, bytes: &[u8]) {
        self(bytes)
    }
}

/// The sink used until a console hub is wired in: iocrun's own stdout (`kubectl logs`).
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutSink;

impl OutputSink for StdoutSink {
    fn publish(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        // a closed stdout (EPIPE; SIGPIPE is ignored by Rust) must not stop the supervisor
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }
}

/// One lifecycle line: `@@@ 2026-11-28T02:39:11Z message\r\n`, the same form as the console
/// hub's notices.
pub fn banner_line(message: &str) -> String {
    format!(
        "@@@ {} {message}\r\n",
        crate::timefmt::rfc3339(SystemTime::now())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_lines_are_marked_and_terminated() {
        let line = banner_line("started pid 7");
        assert!(line.starts_with("@@@ 20"), "{line}");
        assert!(line.ends_with("Z started pid 7\r\n"), "{line}");
    }
}
