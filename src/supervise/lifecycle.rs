//! Where the IOC's bytes go, and the `@@@` lifecycle lines iocrun adds to that stream.
//!
//! Every spawn, exit (code or signal), restart and stop is announced with a UTC timestamp on
//! stdout and in the console stream, like procServ's `@@@` lines (spec supervise-console.md
//! §12 item 10: catatonit's silence left users guessing why PID 1 went away). Lines end in
//! `\r\n` because they are interleaved with PTY output, which uses the same.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// One lifecycle line: `@@@ [2026-11-28T02:39:11.123Z] message\r\n`.
pub fn banner_line(message: &str) -> String {
    format!("@@@ [{}] {message}\r\n", timestamp(SystemTime::now()))
}

/// ISO 8601 UTC with milliseconds, computed without a date crate.
pub fn timestamp(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_iso() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 12:34:56.789, a leap day in a leap century
        let t = UNIX_EPOCH + Duration::from_millis(951_827_696_789);
        assert_eq!(timestamp(t), "2000-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_833_551);
        assert_eq!(timestamp(t), "2026-11-28T02:39:11.000Z");
    }

    #[test]
    fn banner_lines_are_marked_and_terminated() {
        let line = banner_line("started pid 7");
        assert!(line.starts_with("@@@ ["), "{line}");
        assert!(line.ends_with("] started pid 7\r\n"), "{line}");
    }
}
