//! The IOC's terminal: one portable-pty pair for the life of iocrun, a blocking reader thread
//! that hands every output byte to the [`OutputSink`], a writer thread for console input, and
//! spawning a command on the slave side.
//!
//! portable-pty's pre-exec resets the common signal dispositions, calls `setsid` and makes the
//! PTY the controlling terminal, so the child is a session and process-group leader (its pid is
//! its pgid) with `isatty(0)` true. The standard library clears
//! the signal mask before exec. We keep the slave open ourselves so the master never reads EOF
//! between runs: the window size and the reader thread survive restarts. The child handle is
//! used for its pid only and dropped at once; `reap.rs` does all the waiting (habit 5).

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, MasterPty, PtySize, SlavePty};

use super::lifecycle::OutputSink;
use super::sys::{CommandSpec, Pid};
use super::SuperviseError;

/// Errors that say a resource is short for now, not that the command is wrong.
fn is_shortage(errno: i32) -> bool {
    [libc::EMFILE, libc::ENFILE, libc::EAGAIN, libc::ENOMEM].contains(&errno)
}

/// Window size used when iocrun's stdin is not a terminal (procServ leaves 0×0, which breaks
/// `stty size` and line editing).
pub const DEFAULT_SIZE: (u16, u16) = (24, 80);

/// The PTY pair plus the threads that move bytes through it.
pub struct Pty {
    master: Box<dyn MasterPty + Send>,
    slave: Box<dyn SlavePty + Send>,
    input: mpsc::Sender<Vec<u8>>,
    busy: Arc<AtomicBool>,
}

impl Pty {
    /// Open the pair with `(rows, cols)` and start the reader and writer threads.
    pub fn open(size: (u16, u16), sink: Arc<dyn OutputSink>) -> Result<Pty, SuperviseError> {
        let pair = native_pty_system()
            .openpty(pty_size(size))
            .map_err(|e| pty_error("openpty", e))?;
        let reader = (pair.master.try_clone_reader()).map_err(|e| pty_error("clone reader", e))?;
        let writer = (pair.master.take_writer()).map_err(|e| pty_error("take writer", e))?;
        let busy = Arc::new(AtomicBool::new(false));
        spawn_thread("pty-reader", {
            let busy = busy.clone();
            move || read_loop(reader, sink, busy)
        })?;
        let (input, rx) = mpsc::channel::<Vec<u8>>();
        spawn_thread("pty-writer", move || write_loop(writer, rx))?;
        Ok(Pty {
            master: pair.master,
            slave: pair.slave,
            input,
            busy,
        })
    }

    /// Start `cmd` on the slave side in a new session; returns its pid.
    pub fn spawn(&self, cmd: &CommandSpec) -> Result<Pid, SuperviseError> {
        let cwd = match &cmd.cwd {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        };
        let first = cmd.argv.first().ok_or(SuperviseError::EmptyCommand)?;
        let program = resolve(first, &cwd)?;
        let mut builder = CommandBuilder::new(&program);
        builder.args(&cmd.argv[1..]);
        // portable-pty defaults to $HOME; the IOC must run where the start sequence cd'ed
        builder.cwd(&cwd);
        let child = self.slave.spawn_command(builder).map_err(|e| {
            let (program, message) = (program.display().to_string(), e.to_string());
            // portable-pty wraps the errno (e.g. "dup of fd 4 failed": EMFILE) in its chain
            let short = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::raw_os_error)
                    .is_some_and(is_shortage)
            });
            match short {
                true => SuperviseError::SpawnShortOf { program, message },
                false => SuperviseError::Spawn { program, message },
            }
        })?;
        let pid = child.process_id().ok_or(SuperviseError::Spawn {
            program: program.display().to_string(),
            message: "no pid".into(),
        })?;
        // never wait on this handle: reap.rs owns every waitpid
        drop(child);
        Ok(pid as Pid)
    }

    /// Queue bytes for the child's terminal; never blocks the caller.
    pub fn write(&self, bytes: Vec<u8>) {
        // the writer thread lives as long as the process; a send error cannot happen
        let _ = self.input.send(bytes);
    }

    /// Set the window size; the kernel signals SIGWINCH to the foreground group.
    pub fn resize(&self, rows: u16, cols: u16) {
        if let Err(e) = self.master.resize(pty_size((rows, cols))) {
            tracing::warn!("cannot resize the IOC terminal to {rows}x{cols}: {e}");
        }
    }

    /// A trigger that, once pulled, gives the child the end of its input (see [`EndOfInput`]).
    pub fn end_of_input(&self) -> Option<EndOfInput> {
        Some(EndOfInput {
            master: self.master.as_raw_fd()?,
            input: self.input.clone(),
        })
    }

    /// Wait (at most half a second) until output already written by the child has been read
    /// and published, so the IOC's last words reach stdout before iocrun exits.
    pub fn drain(&self) {
        let Some(fd) = self.master.as_raw_fd() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut quiet = 0;
        while quiet < 2 && Instant::now() < deadline {
            if readable(fd) || self.busy.load(Ordering::SeqCst) {
                quiet = 0;
                std::thread::sleep(Duration::from_millis(5));
            } else {
                quiet += 1;
            }
        }
    }
}

/// The end of input for the child's terminal, as `/dev/null` on stdin would give it.
///
/// A PTY has no end: its end-of-file character (VEOF, Ctrl-D) makes one `read` return 0 in
/// line mode, and line editors in raw mode (readline, libedit) take the byte itself as the end
/// at an empty line. A VEOF queued in line mode but read after the child switched to raw mode
/// arrives as a NUL byte and is lost, so one VEOF is written now and again each time the
/// terminal switches between line and raw mode (polled every 100 ms): at most one per switch.
pub struct EndOfInput {
    master: std::os::unix::io::RawFd,
    input: mpsc::Sender<Vec<u8>>,
}

impl EndOfInput {
    /// Start feeding; the thread lives as long as iocrun (the PTY is never closed).
    pub fn pull(self) -> Result<(), SuperviseError> {
        spawn_thread("pty-eof", move || {
            let mut fed_in_line_mode = None;
            loop {
                if let Some((line_mode, veof)) = line_mode(self.master) {
                    if fed_in_line_mode != Some(line_mode) {
                        fed_in_line_mode = Some(line_mode);
                        if self.input.send(vec![veof]).is_err() {
                            return;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    }
}

/// Whether the terminal is in line mode (ICANON), and its VEOF character.
fn line_mode(master: std::os::unix::io::RawFd) -> Option<(bool, u8)> {
    use nix::sys::termios::{tcgetattr, LocalFlags, SpecialCharacterIndices};
    use std::os::fd::BorrowedFd;
    // SAFETY: the master fd is owned by `Pty`, which lives as long as the process
    let fd = unsafe { BorrowedFd::borrow_raw(master) };
    // on Linux the master reads the pair's settings, which the child sets on the slave
    let termios = tcgetattr(fd).ok()?;
    let veof = termios.control_chars[SpecialCharacterIndices::VEOF as usize];
    Some((termios.local_flags.contains(LocalFlags::ICANON), veof))
}

/// portable-pty reports `anyhow` errors; keep their text under our variant.
fn pty_error(step: &'static str, e: impl std::fmt::Display) -> SuperviseError {
    SuperviseError::Pty {
        step,
        message: e.to_string(),
    }
}

fn pty_size((rows, cols): (u16, u16)) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), SuperviseError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map(drop)
        .map_err(|source| SuperviseError::Thread {
            name: name.to_owned(),
            source,
        })
}

fn read_loop(mut reader: Box<dyn Read + Send>, sink: Arc<dyn OutputSink>, busy: Arc<AtomicBool>) {
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            // EIO (all slave fds closed) reads as EOF; we hold the slave, so only at exit
            Ok(0) => return,
            Ok(n) => {
                busy.store(true, Ordering::SeqCst);
                sink.publish(&buf[..n]);
                busy.store(false, Ordering::SeqCst);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::error!("reading the IOC terminal failed: {e}");
                return;
            }
        }
    }
}

fn write_loop(mut writer: Box<dyn Write + Send>, rx: mpsc::Receiver<Vec<u8>>) {
    for bytes in rx {
        if let Err(e) = writer.write_all(&bytes).and_then(|()| writer.flush()) {
            tracing::warn!("writing to the IOC terminal failed: {e}");
        }
    }
}

fn readable(fd: std::os::unix::io::RawFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::BorrowedFd;
    // SAFETY: the master fd is owned by `Pty`, which outlives this call
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(10u8)), Ok(n) if n > 0)
}

/// Find the program the way a shell would, so a missing or non-executable file gets the
/// shell's exit code (127 / 126, as tini does) instead of a spawn error.
fn resolve(program: &OsStr, cwd: &Path) -> Result<PathBuf, SuperviseError> {
    let name = Path::new(program);
    if program.as_bytes().contains(&b'/') {
        return check_executable(cwd.join(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .map_or_else(
            || {
                Err(SuperviseError::NotFound {
                    program: name.display().to_string(),
                })
            },
            check_executable,
        )
}

fn check_executable(path: PathBuf) -> Result<PathBuf, SuperviseError> {
    use nix::unistd::{access, AccessFlags};
    if !path.exists() {
        return Err(SuperviseError::NotFound {
            program: path.display().to_string(),
        });
    }
    match access(&path, AccessFlags::X_OK) {
        Ok(()) if path.is_file() => Ok(path),
        Ok(()) => Err(SuperviseError::NotExecutable {
            program: path.display().to_string(),
            reason: "not a regular file".into(),
        }),
        Err(e) => Err(SuperviseError::NotExecutable {
            program: path.display().to_string(),
            reason: e.desc().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn resolve_finds_sh_on_path() {
        let p = resolve(OsStr::new("sh"), Path::new("/")).expect("sh on PATH");
        assert!(p.is_absolute());
    }

    #[test]
    fn resolve_reports_missing_and_not_executable() {
        let dir = tempfile::tempdir().expect("tmp");
        let err = resolve(OsStr::new("./nope"), dir.path()).expect_err("missing");
        assert!(matches!(err, SuperviseError::NotFound { .. }), "{err}");
        let f = dir.path().join("plain");
        std::fs::write(&f, "x").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = resolve(f.as_os_str(), dir.path()).expect_err("not executable");
        // root may execute anything with an x bit; 0644 has none, so this holds for root too
        assert!(matches!(err, SuperviseError::NotExecutable { .. }), "{err}");
        let err = resolve(OsStr::new("no-such-program-iocrun"), dir.path()).expect_err("path");
        assert!(matches!(err, SuperviseError::NotFound { .. }), "{err}");
    }
}
