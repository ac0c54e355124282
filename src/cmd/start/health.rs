//! The adapter between the supervisor's [`State`] and serve's [`Health`] snapshot: supervise
//! and serve never import each other; they meet here (style.md, "For iocrun").

use std::time::Duration;

use tokio::sync::watch;

use crate::console::Hub;
use crate::serve::{Health, LastExit, Phase};
use crate::supervise::{ChildState, ExitStatus, State, GAVE_UP_EXIT_CODE};

/// Copy every supervisor state change into `health`, and the console counters every 2 s,
/// until the supervisor's state channel closes.
pub async fn publish(mut state: watch::Receiver<State>, hub: Hub, health: watch::Sender<Health>) {
    let mut counted = 0u64;
    loop {
        let current = state.borrow_and_update().clone();
        health.send_if_modified(|h| {
            let before = h.clone();
            apply(h, &current, &mut counted);
            *h != before
        });
        let stats = hub.stats();
        health.send_if_modified(|h| {
            let new = (stats.clients as u64, stats.bytes_in, stats.bytes_out);
            let old = (h.console_clients, h.console_bytes_in, h.console_bytes_out);
            (h.console_clients, h.console_bytes_in, h.console_bytes_out) = new;
            new != old
        });
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Fold one supervisor state into the snapshot. `counted` is how many restarts were already
/// added to `h.restarts`, so each is counted once, by the reason of the exit before it.
pub fn apply(h: &mut Health, s: &State, counted: &mut u64) {
    h.last_exit = s.last_exit.map(|e| match e {
        ExitStatus::Exited(code) => LastExit::Code(code),
        ExitStatus::Signaled(sig) => LastExit::Signal(sig),
    });
    if s.restarts > *counted {
        let reason = match s.last_exit {
            Some(ExitStatus::Signaled(_)) => "signal",
            _ => "exit",
        };
        add_restarts(h, reason, s.restarts - *counted);
        *counted = s.restarts;
    }
    let (phase, pid, started) = match &s.child {
        // the start steps publish these phases themselves, with more detail
        ChildState::Generating { .. } | ChildState::WaitingHardware { .. } => return,
        ChildState::StartFailed { message, .. } => (
            Phase::Failed {
                message: message.clone(),
            },
            None,
            None,
        ),
        ChildState::Running { pid, since } => (Phase::Running, Some(*pid as u32), Some(*since)),
        ChildState::Backoff { .. } => (Phase::Backoff, None, None),
        ChildState::Stopping { .. } | ChildState::Exited { .. } => (Phase::Stopping, None, None),
        ChildState::GaveUp { .. } => (
            Phase::Failed {
                message: format!(
                    "the IOC kept failing: gave up after {} restarts (exit {GAVE_UP_EXIT_CODE})",
                    s.restarts
                ),
            },
            None,
            None,
        ),
    };
    h.phase = phase;
    h.ioc_pid = pid;
    h.ioc_started = started;
    h.start_done = true;
}

fn add_restarts(h: &mut Health, reason: &'static str, n: u64) {
    match h.restarts.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, total)) => *total += n,
        None => h.restarts.push((reason, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn state(child: ChildState, restarts: u64, last: Option<ExitStatus>) -> State {
        State {
            child,
            restarts,
            last_exit: last,
        }
    }

    #[test]
    fn running_then_restarts_by_reason() {
        let mut h = Health::default();
        let mut counted = 0;
        let since = SystemTime::now();
        apply(
            &mut h,
            &state(ChildState::Running { pid: 42, since }, 0, None),
            &mut counted,
        );
        assert_eq!(
            (h.phase.clone(), h.ioc_pid, h.start_done),
            (Phase::Running, Some(42), true)
        );
        let backoff = ChildState::Backoff {
            until: since,
            last: ExitStatus::Signaled(11),
        };
        let crashed = Some(ExitStatus::Signaled(11));
        apply(&mut h, &state(backoff.clone(), 1, crashed), &mut counted);
        // the same state twice counts once
        apply(&mut h, &state(backoff, 1, crashed), &mut counted);
        assert_eq!(h.phase, Phase::Backoff);
        assert_eq!(h.ioc_pid, None);
        assert_eq!(h.last_exit, Some(LastExit::Signal(11)));
        let exited = ChildState::Backoff {
            until: since,
            last: ExitStatus::Exited(1),
        };
        apply(
            &mut h,
            &state(exited, 3, Some(ExitStatus::Exited(1))),
            &mut counted,
        );
        assert_eq!(h.restarts, vec![("signal", 1), ("exit", 2)]);
        assert_eq!(h.restart_total(), 3);
    }

    #[test]
    fn start_phases_are_left_to_the_steps_and_giving_up_fails() {
        let mut h = Health {
            phase: Phase::WaitingHardware,
            ..Health::default()
        };
        let mut counted = 0;
        let gen = ChildState::Generating {
            since: SystemTime::now(),
        };
        apply(&mut h, &state(gen, 0, None), &mut counted);
        assert_eq!(h.phase, Phase::WaitingHardware);
        let gave_up = ChildState::GaveUp {
            at: SystemTime::now(),
            code: GAVE_UP_EXIT_CODE,
        };
        apply(
            &mut h,
            &state(gave_up, 9, Some(ExitStatus::Exited(2))),
            &mut counted,
        );
        assert!(matches!(h.phase, Phase::Failed { .. }), "{:?}", h.phase);
    }
}
