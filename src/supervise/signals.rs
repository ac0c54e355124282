//! The only place signal handlers are registered, and what each signal means to iocrun.
//!
//! | signal | iocrun's action |
//! |---|---|
//! | TERM, INT | stop: no more restarts, the same signal to the IOC's process group, grace period, then SIGKILL |
//! | HUP, QUIT, USR1, USR2 | forwarded to the IOC's process group (group delivery reaches the IOC under a `start.sh` override too); HUP also reopens the console log |
//! | HUP, interactive | with `Config::hangup_stops` (stdin a terminal, not PID 1: the terminal hung up): stop, as TERM but with HUP |
//! | WINCH | with a terminal on stdin: its size is copied to the IOC's PTY, and the kernel tells the IOC; otherwise forwarded |
//! | CHLD | wake the reaper |
//! | ALRM, VTALRM, PROF, IO (POLL), XCPU, XFSZ, SYS, STKFLT, PWR, SIGRTMIN…SIGRTMAX | ignored (a handler that does nothing, so the IOC still starts with the default action) |
//!
//! INT stops rather than merely forwards because a forwarded ^C would kill the IOC and the
//! restart policy would start it again, so `docker run` + ^C could never end the container
//! (s6 and supervisord also treat INT as shutdown). The ignored ones would
//! otherwise kill iocrun by their default action when it is not PID 1 (as PID 1 the kernel
//! drops them), orphaning the IOC; ignoring them keeps both modes alike. PIPE is ignored by
//! Rust's runtime already (and reset for the child by `std::process`). Every other signal
//! keeps its disposition. Handlers are installed with signal-hook on
//! a dedicated thread (no blocked mask, which a child would inherit: T7), and the mask iocrun
//! itself inherited is cleared first so a blocked TERM cannot make it deaf.

use nix::sys::signal::SigSet;
use signal_hook::consts::signal::*;
use signal_hook::iterator::Signals;

use super::SuperviseError;

/// What a received signal asks of the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Stop,
    Forward,
    Winch,
    Reap,
    Ignore,
}

/// Every signal iocrun acts on.
pub const HANDLED: &[i32] = &[
    SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD,
];

/// Signals whose default action would end iocrun and that mean nothing to it.
const IGNORED: &[i32] = &[
    SIGALRM,
    SIGVTALRM,
    SIGPROF,
    SIGIO,
    SIGXCPU,
    SIGXFSZ,
    SIGSYS,
    libc::SIGSTKFLT,
    libc::SIGPWR,
];

/// Every signal a handler is registered for: [`HANDLED`], [`IGNORED`] and the real-time ones.
fn registered() -> Vec<i32> {
    let realtime = libc::SIGRTMIN()..=libc::SIGRTMAX();
    HANDLED
        .iter()
        .chain(IGNORED)
        .copied()
        .chain(realtime)
        .collect()
}

/// The meaning of a registered signal.
pub fn action(sig: i32) -> Action {
    match sig {
        SIGTERM | SIGINT => Action::Stop,
        SIGWINCH => Action::Winch,
        SIGCHLD => Action::Reap,
        _ if HANDLED.contains(&sig) => Action::Forward,
        _ => Action::Ignore,
    }
}

/// Clear the inherited signal mask of this thread (call before any thread is started, so all
/// inherit the empty mask).
pub fn unblock_all() {
    if let Err(e) = SigSet::empty().thread_set_mask() {
        tracing::warn!("sigprocmask(SIG_SETMASK, {{}}) failed: {e}");
    }
}

/// Register the handlers and deliver each signal to `deliver` from a dedicated thread.
pub fn install(deliver: impl Fn(i32) + Send + 'static) -> Result<(), SuperviseError> {
    let mut signals =
        Signals::new(registered()).map_err(|source| SuperviseError::Signals { source })?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                deliver(sig);
            }
        })
        .map(drop)
        .map_err(|source| SuperviseError::Thread {
            name: "signals".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_forward_and_special_signals() {
        assert_eq!(action(SIGTERM), Action::Stop);
        assert_eq!(action(SIGINT), Action::Stop);
        for sig in [SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2] {
            assert_eq!(action(sig), Action::Forward);
        }
        assert_eq!(action(SIGWINCH), Action::Winch);
        assert_eq!(action(SIGCHLD), Action::Reap);
        for sig in [SIGALRM, SIGXFSZ, libc::SIGPWR, libc::SIGRTMIN() + 3] {
            assert_eq!(action(sig), Action::Ignore);
        }
    }
}
