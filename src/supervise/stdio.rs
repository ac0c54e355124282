//! iocrun's own stdin as a console: raw mode when it is a terminal, and a reader thread that
//! forwards its bytes to the IOC's PTY.
//!
//! With `tty: true` (Kubernetes) or `podman run -it`, the runtime's terminal is in cooked mode
//! with ISIG, so a typed ^C would signal *our* process group instead of reaching the IOC.
//! start.sh's stdio-socket ran `stty -echo raw` for the same reason (spec deploy-k8s §3.2);
//! the IOC's own PTY keeps its line discipline, so iocsh line editing still works. The saved
//! settings are restored when the guard drops.

use std::io::Read;
use std::os::fd::AsFd;

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// Restores the terminal settings of stdin on drop.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Put stdin in raw mode when it is a terminal; a no-op guard otherwise.
    pub fn enable() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            // ENOTTY: stdin is a pipe or /dev/null; plain mode is right (spec 00-overview step 1)
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if let Err(e) = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw) {
            tracing::warn!("cannot put stdin in raw mode: {e}");
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }

    /// True when stdin is a terminal we switched to raw mode.
    pub fn is_raw(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// The window size of stdin when it is a terminal, as (rows, cols).
pub fn stdin_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own
    let rc = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Forward stdin to `send` on a thread until EOF. EOF is not passed on: closing the IOC's
/// terminal would end it (`docker run` without `-i` gives /dev/null).
pub fn forward_stdin(send: impl Fn(Vec<u8>) + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => send(buf[..n].to_vec()),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!("stdin closed: {e}");
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot read stdin: {e}");
    }
}
