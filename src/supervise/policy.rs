//! Restart decisions as pure functions of the child's history: restart or not, after how long,
//! and when to give up.
//!
//! Backoff is exponential (initial, ×2 per quick failure, capped), unlike procServ's fixed
//! holdoff or supervisord's linear +1 s. A run that lasted at
//! least `stable_after` resets it. After `crash_limit` quick failures in a row iocrun gives up
//! and exits with [`GAVE_UP_EXIT_CODE`], so Kubernetes takes over with CrashLoopBackOff
//! (supervisord #712).

use std::time::Duration;

use super::state::ExitStatus;

/// iocrun's exit code after giving up on a crash-looping IOC: sysexits' EX_TEMPFAIL
/// ("temporary failure, the user is invited to retry"), which is what a pod restart is.
pub const GAVE_UP_EXIT_CODE: i32 = 75;

/// When to start the child again after it ends on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Restart {
    /// Never: iocrun exits with the child's code.
    Never,
    /// Only after a non-zero exit or a death by signal; exit 0 ends iocrun with 0.
    OnFailure,
    /// Always, whatever the exit status (the default for IOCs).
    Always,
}

/// The knobs of the restart policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub restart: Restart,
    /// Delay before the first restart after a stable run or the first failure.
    pub initial_delay: Duration,
    /// Upper bound of the doubling delay.
    pub max_delay: Duration,
    /// A run at least this long counts as stable and resets the backoff.
    pub stable_after: Duration,
    /// Give up after this many quick failures in a row; 0 never gives up.
    pub crash_limit: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            restart: Restart::Always,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            crash_limit: 10,
        }
    }
}

/// What the policy remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Consecutive runs shorter than `stable_after`.
    pub quick_failures: u32,
    /// Restarts so far (for state and metrics).
    pub restarts: u64,
}

/// What to do after the child ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after `delay`.
    Restart { delay: Duration },
    /// Do not restart; iocrun exits with `code`.
    Exit { code: i32 },
    /// Crash loop: iocrun exits with [`GAVE_UP_EXIT_CODE`] after `failures` quick failures.
    GiveUp { failures: u32 },
}

/// Decide what follows a child's end, updating `history`.
pub fn decide(
    policy: &Policy,
    history: &mut History,
    status: ExitStatus,
    ran_for: Duration,
) -> Decision {
    let wanted = match policy.restart {
        Restart::Never => false,
        Restart::OnFailure => !status.success(),
        Restart::Always => true,
    };
    if !wanted {
        return Decision::Exit {
            code: status.code(),
        };
    }
    if ran_for >= policy.stable_after {
        history.quick_failures = 0;
    } else {
        history.quick_failures += 1;
        if policy.crash_limit > 0 && history.quick_failures >= policy.crash_limit {
            return Decision::GiveUp {
                failures: history.quick_failures,
            };
        }
    }
    history.restarts += 1;
    Decision::Restart {
        delay: backoff(policy, history.quick_failures),
    }
}

/// The delay before the next start: `initial × 2^(failures-1)`, capped at `max_delay`.
pub fn backoff(policy: &Policy, quick_failures: u32) -> Duration {
    let doublings = quick_failures.saturating_sub(1).min(31);
    policy
        .initial_delay
        .saturating_mul(1u32 << doublings)
        .min(policy.max_delay.max(policy.initial_delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_millis(10);
    const LONG: Duration = Duration::from_secs(3600);

    fn policy(restart: Restart) -> Policy {
        Policy {
            restart,
            ..Policy::default()
        }
    }

    fn delays(p: &Policy, h: &mut History, n: usize) -> Vec<Decision> {
        (0..n)
            .map(|_| decide(p, h, ExitStatus::Exited(1), QUICK))
            .collect()
    }

    #[test]
    fn never_exits_with_the_child_code() {
        let mut h = History::default();
        let d = decide(
            &policy(Restart::Never),
            &mut h,
            ExitStatus::Signaled(9),
            QUICK,
        );
        assert_eq!(d, Decision::Exit { code: 137 });
        assert_eq!(h.restarts, 0);
    }

    #[test]
    fn on_failure_stops_after_success_only() {
        let p = policy(Restart::OnFailure);
        let mut h = History::default();
        assert_eq!(
            decide(&p, &mut h, ExitStatus::Exited(0), LONG),
            Decision::Exit { code: 0 }
        );
        assert!(matches!(
            decide(&p, &mut h, ExitStatus::Exited(2), LONG),
            Decision::Restart { .. }
        ));
        assert!(matches!(
            decide(&p, &mut h, ExitStatus::Signaled(11), LONG),
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn always_restarts_a_clean_exit() {
        let mut h = History::default();
        let d = decide(
            &policy(Restart::Always),
            &mut h,
            ExitStatus::Exited(0),
            LONG,
        );
        assert_eq!(
            d,
            Decision::Restart {
                delay: Duration::from_secs(1)
            }
        );
        assert_eq!(h.restarts, 1);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = Policy {
            max_delay: Duration::from_secs(8),
            crash_limit: 0,
            ..policy(Restart::Always)
        };
        let mut h = History::default();
        let got: Vec<u64> = delays(&p, &mut h, 6)
            .into_iter()
            .map(|d| match d {
                Decision::Restart { delay } => delay.as_secs(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(got, vec![1, 2, 4, 8, 8, 8]);
    }

    #[test]
    fn stable_run_resets_backoff() {
        let p = Policy {
            crash_limit: 0,
            ..policy(Restart::Always)
        };
        let mut h = History::default();
        delays(&p, &mut h, 4);
        assert_eq!(h.quick_failures, 4);
        let d = decide(&p, &mut h, ExitStatus::Exited(1), p.stable_after);
        assert_eq!(
            d,
            Decision::Restart {
                delay: p.initial_delay
            }
        );
        assert_eq!(h.quick_failures, 0);
    }

    #[test]
    fn crash_limit_gives_up() {
        let p = Policy {
            crash_limit: 3,
            ..policy(Restart::Always)
        };
        let mut h = History::default();
        let got = delays(&p, &mut h, 3);
        assert!(matches!(got[1], Decision::Restart { .. }));
        assert_eq!(got[2], Decision::GiveUp { failures: 3 });
        assert_eq!(h.restarts, 2);
    }

    #[test]
    fn zero_limit_never_gives_up() {
        let p = Policy {
            crash_limit: 0,
            ..policy(Restart::Always)
        };
        let mut h = History::default();
        let got = delays(&p, &mut h, 100);
        assert!(got.iter().all(|d| matches!(d, Decision::Restart { .. })));
    }

    #[test]
    fn huge_failure_counts_do_not_overflow() {
        let p = policy(Restart::Always);
        assert_eq!(backoff(&p, u32::MAX), p.max_delay);
    }
}
