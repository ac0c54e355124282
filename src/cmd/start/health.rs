//! The adapter between the supervisor's [`State`] and serve's [`Health`] snapshot: supervise
//! and serve never import each other; they meet here.

use std::time::Duration;

use tokio::sync::watch;

use crate::console::Hub;
use crate::serve::{Health, LastExit, Phase};
use crate::supervise::{ChildState, ExitStatus, RestartReason, State, GAVE_UP_EXIT_CODE};

/// Copy every supervisor state change into `health`, and the console counters every 2 s,
/// until the supervisor's state channel closes.
pub async fn publish(mut state: watch::Receiver<State>, hub: Hub, health: watch::Sender<Health>) {
    loop {
        let current = state.borrow_and_update().clone();
        health.send_if_modified(|h| {
            let before = h.clone();
            apply(h, &current);
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

/// Fold one supervisor state into the snapshot.
pub fn apply(h: &mut Health, s: &State) {
    h.last_exit = s.last_exit.map(|e| match e {
        ExitStatus::Exited(code) => LastExit::Code(code),
        ExitStatus::Signaled(sig) => LastExit::Signal(sig),
    });
    h.restarts = RestartReason::ALL
        .iter()
        .map(|r| (r.label(), s.restarts.get(*r)))
        .collect();
    let (phase, pid, started) = match &s.child {
        // a restart's start steps: the IOC is gone until they are done
        ChildState::Generating { .. } if h.start_done => (Phase::Generating, None, None),
        // the first start's steps publish these phases themselves, with more detail
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
                    s.restarts.total()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::Restarts;
    use std::time::SystemTime;

    fn state(child: ChildState, restarts: &[RestartReason], last: Option<ExitStatus>) -> State {
        let mut counts = Restarts::default();
        for r in restarts {
            counts.add(*r);
        }
        State {
            child,
            restarts: counts,
            last_exit: last,
        }
    }

    #[test]
    fn running_then_restarts_by_reason() {
        let mut h = Health::default();
        let since = SystemTime::now();
        apply(
            &mut h,
            &state(ChildState::Running { pid: 42, since }, &[], None),
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
        let signal = [RestartReason::Signal];
        apply(&mut h, &state(backoff.clone(), &signal, crashed));
        // the same state twice counts once
        apply(&mut h, &state(backoff, &signal, crashed));
        assert_eq!(h.phase, Phase::Backoff);
        assert_eq!(h.ioc_pid, None);
        assert_eq!(h.last_exit, Some(LastExit::Signal(11)));
        let exited = ChildState::Backoff {
            until: since,
            last: ExitStatus::Exited(1),
        };
        let three = [
            RestartReason::Signal,
            RestartReason::Exit,
            RestartReason::Request,
        ];
        apply(&mut h, &state(exited, &three, Some(ExitStatus::Exited(1))));
        assert_eq!(
            h.restarts,
            vec![("exit", 1), ("signal", 1), ("request", 1), ("reload", 0)]
        );
        assert_eq!(h.restart_total(), 3);
    }

    #[test]
    fn restart_reasons_are_the_metric_labels() {
        let labels = RestartReason::ALL.map(RestartReason::label);
        assert_eq!(labels, crate::serve::RESTART_REASONS);
    }

    #[test]
    fn start_phases_are_left_to_the_steps_and_giving_up_fails() {
        let mut h = Health {
            phase: Phase::WaitingHardware,
            ..Health::default()
        };
        let gen = ChildState::Generating {
            since: SystemTime::now(),
        };
        apply(&mut h, &state(gen, &[], None));
        assert_eq!(h.phase, Phase::WaitingHardware);
        let gave_up = ChildState::GaveUp {
            at: SystemTime::now(),
            code: GAVE_UP_EXIT_CODE,
        };
        apply(&mut h, &state(gave_up, &[], Some(ExitStatus::Exited(2))));
        assert!(matches!(h.phase, Phase::Failed { .. }), "{:?}", h.phase);
    }
}
