//! The optional console log file: every console byte with a timestamp at the start of each line
//! (procServ `-L --logstamp`, test T14), rotated by size (`log`, `log.1`, … `log.N`).
//!
//! Partial lines are written as they come, so a prompt still reaches the file; the stamp goes
//! before the first byte of each line, in the fixed form `[YYYY-MM-DD HH:MM:SS.mmm] ` (UTC),
//! which is procServ's documented default with a fixed time format.
//!
//! A file rotates once it reaches the asked size: after the last line end of the write that
//! crosses it, or after that write when it holds no line end (a file exceeds the size by at
//! most one write). A write that fails (a full disk) is reported once on stderr and the log
//! keeps trying with the following output; the console itself never waits for the log.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// Where the console log goes and when it rotates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The live log file; rotated copies get `.1` … `.keep` appended.
    pub path: PathBuf,
    /// Rotate once the live file reaches this many bytes (0: never rotate).
    pub max_bytes: u64,
    /// Rotated files to keep.
    pub keep: u32,
}

/// The log file writer; owned by the hub's log thread.
pub(crate) struct LogWriter {
    cfg: LogConfig,
    file: File,
    size: u64,
    at_line_start: bool,
    reopen: Arc<AtomicBool>,
    /// A write failed and was reported; cleared (and said) when writing works again.
    failing: bool,
}

impl LogWriter {
    /// Open (append) the live file.
    pub(crate) fn open(cfg: LogConfig) -> io::Result<LogWriter> {
        let file = open_append(&cfg.path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            cfg,
            file,
            size,
            at_line_start: true,
            reopen: Arc::default(),
            failing: false,
        })
    }

    /// A flag that makes the writer reopen its file before the next write (after an external
    /// `mv`, as logrotate does; procServ reopens on SIGHUP).
    pub(crate) fn reopen_flag(&self) -> Arc<AtomicBool> {
        self.reopen.clone()
    }

    /// Write console bytes; a failure is reported once (and its end once), never returned,
    /// so the log carries on after a full disk is cleared.
    pub(crate) fn write_or_report(&mut self, bytes: &[u8]) {
        match (self.write(bytes), self.failing) {
            (Ok(()), true) => {
                self.failing = false;
                tracing::warn!("console log {:?}: writing again", self.cfg.path);
            }
            (Err(e), false) => {
                self.failing = true;
                tracing::error!(
                    "cannot write the console log {:?}: {e}; console output goes on without it",
                    self.cfg.path
                );
            }
            _ => {}
        }
    }

    /// Write console bytes, stamping each line start; rotate at the size limit.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.reopen.swap(false, Ordering::AcqRel) || self.failing {
            self.file = open_append(&self.cfg.path)?;
            self.size = self.file.metadata()?.len();
        }
        let stamped = stamp_lines(bytes, &mut self.at_line_start, SystemTime::now());
        let mut rest = &stamped[..];
        let max = self.cfg.max_bytes;
        if max > 0 && self.size + rest.len() as u64 >= max {
            // after the last line end of this write, else after the whole write
            let cut = rest
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            self.put(&rest[..cut])?;
            self.rotate()?;
            rest = &rest[cut..];
        }
        self.put(rest)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// `log.(k-1)` → `log.k` … `log` → `log.1`, then a fresh `log`.
    fn rotate(&mut self) -> io::Result<()> {
        let name = |n: u32| {
            let mut p = self.cfg.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.cfg.keep == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.cfg.keep).rev() {
            // a missing older file is normal until the log has rotated `keep` times
            let _ = std::fs::rename(name(n), name(n + 1));
        }
        std::fs::rename(&self.cfg.path, name(1))?;
        self.file = open_append(&self.cfg.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Copy `bytes`, inserting a stamp before each byte that starts a line.
fn stamp_lines(bytes: &[u8], at_line_start: &mut bool, now: SystemTime) -> Vec<u8> {
    let stamp = format!("[{}] ", crate::timefmt::log_stamp(now));
    let mut out = Vec::with_capacity(bytes.len() + stamp.len());
    for &b in bytes {
        if *at_line_start {
            out.extend_from_slice(stamp.as_bytes());
        }
        out.push(b);
        *at_line_start = b == b'\n';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, ms: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms)
    }

    #[test]
    fn stamps_each_line_start_including_partial_lines() {
        let mut start = true;
        let t = at(0, 5);
        let a = stamp_lines(b"one\r\ntw", &mut start, t);
        let b = stamp_lines(b"o\r\nepics> ", &mut start, t);
        let text = String::from_utf8([a, b].concat()).expect("utf8");
        let s = "[1970-01-01 00:00:00.005] ";
        assert_eq!(text, format!("{s}one\r\n{s}two\r\n{s}epics> "));
    }

    #[test]
    fn reopens_after_an_external_move() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("console.log");
        let moved = dir.path().join("console.log.old");
        let cfg = LogConfig {
            path: path.clone(),
            max_bytes: 0,
            keep: 0,
        };
        let mut w = LogWriter::open(cfg).expect("open");
        w.write(b"before\n").expect("write");
        std::fs::rename(&path, &moved).expect("mv");
        w.reopen_flag().store(true, Ordering::Release);
        w.write(b"after\n").expect("write");
        let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("read");
        assert!(read(&moved).contains("before") && !read(&moved).contains("after"));
        assert!(read(&path).contains("after"));
    }

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("console.log");
        let cfg = LogConfig {
            path: path.clone(),
            max_bytes: 100,
            keep: 2,
        };
        let mut w = LogWriter::open(cfg).expect("open");
        for i in 0..40 {
            w.write(format!("line {i}\r\n").as_bytes()).expect("write");
        }
        let read = |suffix: &str| {
            std::fs::read_to_string(format!("{}{suffix}", path.display())).unwrap_or_default()
        };
        assert!(read("").contains("line 39"));
        assert!(!read(".1").is_empty() && !read(".2").is_empty());
        assert!(!dir.path().join("console.log.3").exists());
        assert!(!read(".2").contains("line 0\r"), "oldest lines are gone");
        for f in ["", ".1", ".2"] {
            assert!(read(f).len() < 200, "file {f} bounded");
        }
    }

    #[test]
    fn rotates_at_the_size_when_writes_end_mid_line() {
        // an IOC prompt: every write ends mid-line, which once kept the file from rotating
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("console.log");
        let cfg = LogConfig {
            path: path.clone(),
            max_bytes: 1000,
            keep: 3,
        };
        let mut w = LogWriter::open(cfg).expect("open");
        for i in 0..200 {
            w.write(format!("\r\nepics> dbl {i}").as_bytes())
                .expect("write");
        }
        let one_write = 26 + 20;
        for f in ["", ".1", ".2", ".3"] {
            let len = std::fs::metadata(format!("{}{f}", path.display()))
                .expect("rotated file")
                .len();
            assert!(len <= 1000 + one_write, "file {f}: {len} bytes");
        }
        assert!(
            std::fs::metadata(format!("{}.1", path.display()))
                .expect("log.1")
                .len()
                >= 1000 - one_write
        );
    }

    #[test]
    fn a_full_disk_is_reported_and_the_log_goes_on() {
        let cfg = LogConfig {
            path: PathBuf::from("/dev/full"),
            max_bytes: 0,
            keep: 0,
        };
        let mut w = LogWriter::open(cfg).expect("open /dev/full");
        assert!(w.write(b"x\n").is_err(), "/dev/full refuses writes");
        w.write_or_report(b"lost\n");
        assert!(w.failing);
        w.write_or_report(b"lost too\n");
        assert!(w.failing, "still failing, reported once");
    }
}
