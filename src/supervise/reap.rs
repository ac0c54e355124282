//! The only `waitpid(-1)` loop in the program.
//!
//! On every SIGCHLD wake-up the supervisor drains `waitpid(-1, WNOHANG)` until nothing is ready,
//! which reaps the IOC and every orphan re-parented to us (exec probes leave them) without
//! stalling behind console I/O, unlike procServ's idle-tick reaping. Nobody else may wait:
//! portable-pty's `Child::wait` would race this loop for the IOC's pid.

use super::state::ExitStatus;
use super::sys::{Pid, Sys, Wait};

/// What one drain found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// Every child that ended, in the order the kernel reported them.
    pub ended: Vec<(Pid, ExitStatus)>,
    /// False once `waitpid` said ECHILD: no process of ours is left.
    pub children_left: bool,
}

#[cfg(test)]
impl Reaped {
    /// How `pid` ended, if it was among the reaped.
    pub fn status_of(&self, pid: Pid) -> Option<ExitStatus> {
        self.ended.iter().find(|(p, _)| *p == pid).map(|(_, s)| *s)
    }
}

/// Reap everything that has ended.
pub fn drain(sys: &mut impl Sys) -> Reaped {
    let mut out = Reaped::default();
    loop {
        match sys.wait_any() {
            Ok(Wait::Exited(pid, status)) => {
                tracing::debug!(pid, %status, "reaped");
                out.ended.push((pid, status));
            }
            Ok(Wait::NoneReady) => {
                out.children_left = true;
                return out;
            }
            Ok(Wait::NoChildren) => return out,
            // EINTR: a signal arrived mid-call; just ask again
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!("waitpid(-1) failed: {e}");
                out.children_left = true;
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sys::fake::FakeSys;
    use super::super::sys::CommandSpec;
    use super::*;

    fn spec() -> CommandSpec {
        CommandSpec {
            argv: vec!["x".into()],
            cwd: None,
        }
    }

    #[test]
    fn drains_all_and_reports_survivors() {
        let mut sys = FakeSys::new();
        let a = sys.spawn(&spec()).expect("spawn");
        let b = sys.spawn(&spec()).expect("spawn");
        let c = sys.spawn(&spec()).expect("spawn");
        sys.end(a, ExitStatus::Exited(1));
        sys.end(c, ExitStatus::Signaled(9));
        let r = drain(&mut sys);
        assert_eq!(r.status_of(a), Some(ExitStatus::Exited(1)));
        assert_eq!(r.status_of(c), Some(ExitStatus::Signaled(9)));
        assert_eq!(r.status_of(b), None);
        assert!(r.children_left);
        sys.end(b, ExitStatus::Exited(0));
        let r = drain(&mut sys);
        assert_eq!(r.ended, vec![(b, ExitStatus::Exited(0))]);
        assert!(!r.children_left);
    }
}
