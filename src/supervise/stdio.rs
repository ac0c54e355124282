//! iocrun's own terminal, as far as the supervisor needs it: its window size.
//!
//! Raw mode and forwarding stdin to the IOC belong to the console (`console::serve` treats
//! stdin as one more client); the supervisor only copies the size of the terminal on stdin to
//! the IOC's PTY when SIGWINCH arrives (kubelet resizes on attach).

/// True when iocrun runs in someone's terminal: stdin is a terminal and iocrun is not PID 1.
/// Its hang-up (SIGHUP, or EOF on stdin) then ends the session: iocrun stops the IOC and exits.
/// A container's PID 1 with a terminal is reached through `kubectl attach`/`podman attach`,
/// whose end is a detach, not a reason to stop; there SIGHUP keeps its forwarding meaning.
pub fn interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::process::id() != 1
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
