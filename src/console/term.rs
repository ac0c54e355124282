//! The local terminal, for the two places iocrun is itself a console client: the container's
//! own stdin when it is a TTY (k8s `tty: true`, `podman run -it`) and
//! `iocrun attach`. Raw mode with restore on drop, the window size, and a stdin reader thread.
//!
//! Stdin is read by a plain thread with `poll` and a short timeout rather than tokio's stdin,
//! whose blocking read would keep the runtime from shutting down, and without `O_NONBLOCK`,
//! which would leak to the shell sharing the terminal.

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::termios::{self, SetArg, Termios};

nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// The terminal on stdin in raw mode; the saved settings come back on drop.
pub(crate) struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Put stdin in raw mode; `Ok(None)` when stdin is not a terminal.
    pub(crate) fn enter() -> nix::Result<Option<RawMode>> {
        let stdin = io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        // no echo, no line editing, no ISIG: ^C is a byte for the IOC, not SIGINT for us
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(err) = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &self.saved) {
            tracing::warn!("cannot restore the terminal settings: {err}");
        }
    }
}

/// The size (rows, cols) of the terminal on stdin, or on stdout when stdin is not one.
pub(crate) fn window_size() -> Option<(u16, u16)> {
    [io::stdin().as_raw_fd(), io::stdout().as_raw_fd()]
        .into_iter()
        .find_map(|fd| {
            let mut ws = nix::libc::winsize {
                ws_row: 0,
                ws_col: 0,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCGWINSZ writes one `winsize` into the valid, exclusively borrowed `ws`;
            // on a non-terminal fd it fails with ENOTTY and writes nothing.
            let ok = unsafe { tiocgwinsz(fd, &mut ws) }.is_ok();
            (ok && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
        })
}

/// A thread reading stdin; it stops at EOF, when the callback returns false, or on drop.
pub(crate) struct StdinReader {
    stop: Arc<AtomicBool>,
}

impl StdinReader {
    /// Start reading. `on_input(Some(bytes))` per read, `on_input(None)` once at EOF or error.
    pub(crate) fn spawn(
        mut on_input: impl FnMut(Option<&[u8]>) -> bool + Send + 'static,
    ) -> io::Result<StdinReader> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("console-stdin".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                while !flag.load(Ordering::Acquire) {
                    match read_some(&mut buf) {
                        Ok(Some(0)) | Err(_) => {
                            on_input(None);
                            return;
                        }
                        Ok(Some(n)) if !on_input(Some(&buf[..n])) => return,
                        Ok(_) => {}
                    }
                }
            })?;
        Ok(StdinReader { stop })
    }
}

impl Drop for StdinReader {
    fn drop(&mut self) {
        // not joined: the thread may sit in a send waiting for the IOC to take input; it sees
        // the flag within one poll period otherwise
        self.stop.store(true, Ordering::Release);
    }
}

/// Wait up to 100 ms for stdin; `Ok(None)` on timeout or EINTR, `Ok(Some(n))` after a read.
fn read_some(buf: &mut [u8]) -> nix::Result<Option<usize>> {
    let stdin = io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, 100u16) {
        Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
        Ok(_) => {}
        Err(err) => return Err(err),
    }
    match nix::unistd::read(stdin.as_raw_fd(), buf) {
        Ok(n) => Ok(Some(n)),
        Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => Ok(None),
        Err(err) => Err(err),
    }
}
