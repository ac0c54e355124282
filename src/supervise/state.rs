//! What the supervised child is doing right now, with timestamps, as serve and probe see it.
//!
//! The supervisor is the only writer: it publishes a fresh [`State`] on a tokio `watch` channel
//! at every transition, so readers never touch the child or the PTY.

use std::time::SystemTime;

/// How a child process ended, as `waitpid` reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

impl ExitStatus {
    /// The shell's convention: the code itself, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(sig) => 128 + sig,
        }
    }

    /// True for `exit(0)` only.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exit status {code}"),
            ExitStatus::Signaled(sig) => write!(f, "signal {sig} ({})", signal_name(sig)),
        }
    }
}

/// The conventional name of a signal number (`SIGTERM`), or `SIG<n>` when unknown.
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("SIG{sig}"))
}

/// One phase of the container's life; the start sequence publishes the first two, the
/// supervisor the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildState {
    /// Start steps 2–7 (copy, render, expand, place files) are running; also before each
    /// restart, while the start steps that read the config folder run again.
    Generating { since: SystemTime },
    /// Start step 8: waiting for hardware listed in wait_list.yaml.
    WaitingHardware { since: SystemTime },
    /// A start step failed; iocrun pauses, then exits with `code`.
    StartFailed { at: SystemTime, message: String },
    /// The child is running.
    Running { pid: i32, since: SystemTime },
    /// The child ended and will be started again at `until`.
    Backoff { until: SystemTime, last: ExitStatus },
    /// Stop requested (signal or control message); waiting for the process tree to go.
    Stopping { since: SystemTime },
    /// The child ended and will not be restarted; iocrun exits with `code` once all is gone.
    Exited { at: SystemTime, code: i32 },
    /// Too many quick failures in a row: iocrun gave up and exits with `code`.
    GaveUp { at: SystemTime, code: i32 },
}

impl ChildState {
    /// The one-word name used by metrics (`epics_ioc_state{state=...}`).
    pub fn name(&self) -> &'static str {
        match self {
            ChildState::Generating { .. } => "generating",
            ChildState::WaitingHardware { .. } => "waiting_hw",
            ChildState::StartFailed { .. } => "failed",
            ChildState::Running { .. } => "running",
            ChildState::Backoff { .. } => "backoff",
            ChildState::Stopping { .. } => "stopping",
            ChildState::Exited { .. } => "stopping",
            ChildState::GaveUp { .. } => "failed",
        }
    }
}

/// Why the IOC was started again (`epics_ioc_restarts_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// It ended with an exit code (`exit` typed on the console, an error at boot).
    Exit,
    /// A signal ended it (a crash, the OOM killer, a Ctrl-C that got through).
    Signal,
    /// Someone asked for it (`iocrun restart`).
    Request,
    /// Its configuration changed (`--watch-config`).
    Reload,
}

impl RestartReason {
    /// Every reason, in the order of [`Restarts`].
    pub const ALL: [RestartReason; 4] = [
        RestartReason::Exit,
        RestartReason::Signal,
        RestartReason::Request,
        RestartReason::Reload,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            RestartReason::Exit => "exit",
            RestartReason::Signal => "signal",
            RestartReason::Request => "request",
            RestartReason::Reload => "reload",
        }
    }

    /// The reason for a restart the policy decided after the IOC ended with `status`.
    pub fn after(status: ExitStatus) -> RestartReason {
        match status {
            ExitStatus::Exited(_) => RestartReason::Exit,
            ExitStatus::Signaled(_) => RestartReason::Signal,
        }
    }
}

/// Restarts done inside this container, by reason (invisible to Kubernetes, so counted here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restarts([u64; 4]);

impl Restarts {
    /// Restarts for one reason.
    pub fn get(&self, reason: RestartReason) -> u64 {
        self.0[reason as usize]
    }

    /// Restarts for every reason together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub(crate) fn add(&mut self, reason: RestartReason) {
        self.0[reason as usize] += 1;
    }
}

/// Everything a reader may want: the phase plus counters that outlive one child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub child: ChildState,
    /// Restarts done inside this container, by reason.
    pub restarts: Restarts,
    /// How the previous child ended, if one did.
    pub last_exit: Option<ExitStatus>,
}

impl State {
    /// The state before anything ran.
    pub fn generating() -> State {
        State {
            child: ChildState::Generating {
                since: SystemTime::now(),
            },
            restarts: Restarts::default(),
            last_exit: None,
        }
    }

    /// True while the IOC process is up.
    pub fn is_running(&self) -> bool {
        matches!(self.child, ChildState::Running { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_shell() {
        assert_eq!(ExitStatus::Exited(3).code(), 3);
        assert_eq!(ExitStatus::Signaled(15).code(), 143);
        assert!(ExitStatus::Exited(0).success());
        assert!(!ExitStatus::Signaled(9).success());
    }

    #[test]
    fn restarts_count_by_reason() {
        let mut r = Restarts::default();
        r.add(RestartReason::after(ExitStatus::Signaled(9)));
        r.add(RestartReason::Request);
        r.add(RestartReason::Request);
        assert_eq!(r.get(RestartReason::Signal), 1);
        assert_eq!(r.get(RestartReason::Request), 2);
        assert_eq!(r.get(RestartReason::Exit), 0);
        assert_eq!(r.total(), 3);
        let labels = RestartReason::ALL.map(RestartReason::label);
        assert_eq!(labels, ["exit", "signal", "request", "reload"]);
    }

    #[test]
    fn display_names_the_signal() {
        assert_eq!(ExitStatus::Signaled(9).to_string(), "signal 9 (SIGKILL)");
        assert_eq!(ExitStatus::Exited(1).to_string(), "exit status 1");
        assert_eq!(signal_name(200), "SIG200");
    }
}
