//! The supervisor's state machine against the recording fake, on tokio's paused clock: restart
//! backoff, crash-loop limit, graceful stop, escalation, early exit, forwarding.

use std::sync::Arc;
use std::time::Duration;

use libc::{SIGCHLD, SIGHUP, SIGINT, SIGKILL, SIGTERM, SIGWINCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::sys::fake::{Call, FakeSys};
use super::*;

struct Rig {
    fake: FakeSys,
    handle: Handle,
    state: watch::Receiver<State>,
    task: JoinHandle<i32>,
    start: Instant,
}

fn config(policy: Policy) -> Config {
    Config {
        command: CommandSpec {
            argv: vec!["ioc".into(), "st.cmd".into()],
            cwd: None,
        },
        policy,
        grace: Duration::from_secs(2),
        stop_input: Vec::new(),
        hangup_stops: false,
    }
}

fn quick(restart: Restart) -> Policy {
    Policy {
        restart,
        initial_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(4),
        stable_after: Duration::from_secs(10),
        crash_limit: 0,
    }
}

fn rig_with(fake: FakeSys, cfg: Config, before_run: &[Event]) -> Rig {
    let (tx, state) = watch::channel(State::generating());
    let sink: Arc<dyn OutputSink> = Arc::new(|_: &[u8]| {});
    let sup = Supervisor::new(fake.clone(), cfg, sink, tx);
    let handle = sup.handle();
    fake.world().notify = Some(handle.clone());
    for e in before_run {
        match e {
            Event::Signal(s) => handle.signal(*s),
            Event::Control(c) => handle.send(c.clone()),
        };
    }
    Rig {
        fake,
        handle,
        state,
        task: tokio::spawn(sup.run()),
        start: Instant::now(),
    }
}

fn rig(policy: Policy) -> Rig {
    rig_with(FakeSys::new(), config(policy), &[])
}

impl Rig {
    async fn running(&mut self) -> i32 {
        let s = self
            .state
            .wait_for(|s| s.is_running())
            .await
            .expect("supervisor alive");
        match s.child {
            ChildState::Running { pid, .. } => pid,
            _ => unreachable!("checked by wait_for"),
        }
    }
    fn spawn_times(&self) -> Vec<Duration> {
        let w = self.fake.world();
        w.calls
            .iter()
            .zip(&w.times)
            .filter(|(c, _)| matches!(c, Call::Spawn(_)))
            .map(|(_, t)| *t - self.start)
            .collect()
    }
    fn signal_calls(&self) -> Vec<(Target, i32, Duration)> {
        let w = self.fake.world();
        w.calls
            .iter()
            .zip(&w.times)
            .filter_map(|(c, t)| match c {
                Call::Signal(target, sig) => Some((*target, *sig, *t - self.start)),
                _ => None,
            })
            .collect()
    }
    async fn exit_code(self) -> i32 {
        self.task.await.expect("supervisor task")
    }
}

/// How many children the fake was asked to spawn.
fn spawn_count(fake: &FakeSys) -> usize {
    fake.calls()
        .iter()
        .filter(|c| matches!(c, Call::Spawn(_)))
        .count()
}

fn secs(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|s| Duration::from_secs(*s)).collect()
}

#[tokio::test(start_paused = true)]
async fn restarts_back_off_exponentially_and_cap() {
    let mut r = rig(quick(Restart::Always));
    for _ in 0..5 {
        let pid = r.running().await;
        r.fake.end(pid, ExitStatus::Exited(1));
        r.state.wait_for(|s| !s.is_running()).await.expect("alive");
    }
    r.running().await;
    // spawns at 0, then +1, +2, +4, +4 (cap), +4
    assert_eq!(r.spawn_times(), secs(&[0, 1, 3, 7, 11, 15]));
    let restarts = r.state.borrow().restarts;
    assert_eq!(restarts.get(RestartReason::Exit), 5);
    assert_eq!(restarts.total(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_stable_run_resets_the_backoff() {
    let mut r = rig(quick(Restart::Always));
    for ran in [0, 0, 10, 0] {
        let pid = r.running().await;
        tokio::time::sleep(Duration::from_secs(ran)).await;
        r.fake.end(pid, ExitStatus::Signaled(11));
        r.state.wait_for(|s| !s.is_running()).await.expect("alive");
    }
    r.running().await;
    // 0 →1s→ 1 →2s→ 3, runs 10 s (stable: no count) → 13 →1s→ 14, quick again →1s→ 15
    assert_eq!(r.spawn_times(), secs(&[0, 1, 3, 14, 15]));
}

#[tokio::test(start_paused = true)]
async fn crash_loop_gives_up_with_the_documented_code() {
    let mut r = rig(Policy {
        crash_limit: 3,
        ..quick(Restart::Always)
    });
    for _ in 0..3 {
        let pid = r.running().await;
        r.fake.end(pid, ExitStatus::Exited(2));
        r.state.wait_for(|s| !s.is_running()).await.expect("alive");
    }
    assert!(matches!(r.state.borrow().child, ChildState::GaveUp { .. }));
    assert_eq!(r.spawn_times().len(), 3);
    assert_eq!(r.exit_code().await, GAVE_UP_EXIT_CODE);
}

#[tokio::test(start_paused = true)]
async fn never_exits_with_the_child_code_at_once() {
    let mut r = rig(quick(Restart::Never));
    let pid = r.running().await;
    r.fake.end(pid, ExitStatus::Exited(3));
    assert_eq!(r.exit_code().await, 3);
}

#[tokio::test(start_paused = true)]
async fn on_failure_ends_after_a_clean_exit() {
    let mut r = rig(quick(Restart::OnFailure));
    let pid = r.running().await;
    r.fake.end(pid, ExitStatus::Signaled(SIGKILL));
    r.state.wait_for(|s| !s.is_running()).await.expect("alive");
    let pid = r.running().await;
    r.fake.end(pid, ExitStatus::Exited(0));
    assert_eq!(r.exit_code().await, 0);
}

#[tokio::test(start_paused = true)]
async fn term_stops_without_restart_and_exits_as_soon_as_the_child_is_gone() {
    let fake = FakeSys::new();
    fake.world().obey = Some(|sig| Some(ExitStatus::Signaled(sig)));
    let mut r = rig_with(fake, config(quick(Restart::Always)), &[]);
    let pid = r.running().await;
    r.handle.signal(SIGTERM);
    r.state.wait_for(|s| !s.is_running()).await.expect("alive");
    let signals = r.signal_calls();
    assert_eq!(signals, vec![(Target::Group(pid), SIGTERM, Duration::ZERO)]);
    let start = r.start;
    assert_eq!(r.exit_code().await, 128 + SIGTERM);
    // no grace period was slept through
    assert!(Instant::now() - start < Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_child_that_traps_term_gives_its_own_code() {
    let fake = FakeSys::new();
    fake.world().obey = Some(|_| Some(ExitStatus::Exited(7)));
    let mut r = rig_with(fake, config(quick(Restart::Always)), &[]);
    r.running().await;
    r.handle.signal(SIGINT);
    assert_eq!(r.exit_code().await, 7);
}

#[tokio::test(start_paused = true)]
async fn a_child_that_ignores_term_is_killed_after_the_grace_period() {
    let mut r = rig(quick(Restart::Always));
    let pid = r.running().await;
    r.handle.signal(SIGTERM);
    let fake = r.fake.clone();
    let start = r.start;
    assert_eq!(r.exit_code().await, 128 + SIGKILL);
    let w = fake.world();
    let kills: Vec<_> = w
        .calls
        .iter()
        .zip(&w.times)
        .filter(|(c, _)| matches!(c, Call::Signal(_, SIGKILL)))
        .map(|(c, t)| (c.clone(), *t - start))
        .collect();
    assert_eq!(
        kills.first(),
        Some(&(
            Call::Signal(Target::Group(pid), SIGKILL),
            Duration::from_secs(2)
        ))
    );
    assert_eq!(
        w.calls
            .iter()
            .filter(|c| matches!(c, Call::Spawn(_)))
            .count(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn stragglers_get_term_then_kill_after_the_child_exits() {
    let fake = FakeSys::new();
    let mut r = rig_with(fake, config(quick(Restart::Never)), &[]);
    let pid = r.running().await;
    let orphan = r.fake.adopt();
    r.fake.end(pid, ExitStatus::Exited(4));
    let fake = r.fake.clone();
    let start = r.start;
    assert_eq!(r.exit_code().await, 4, "the IOC's code, not the orphan's");
    let w = fake.world();
    let sigs: Vec<_> = w
        .calls
        .iter()
        .zip(&w.times)
        .filter_map(|(c, t)| match c {
            Call::Signal(Target::Others, s) => Some((*s, *t - start)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sigs,
        vec![(SIGTERM, Duration::ZERO), (SIGKILL, Duration::from_secs(2))]
    );
    assert!(!w.live.contains(&orphan));
}

#[tokio::test(start_paused = true)]
async fn term_during_backoff_exits_at_once_without_a_spawn() {
    let mut r = rig(quick(Restart::Always));
    let pid = r.running().await;
    r.fake.end(pid, ExitStatus::Exited(5));
    r.state
        .wait_for(|s| matches!(s.child, ChildState::Backoff { .. }))
        .await
        .expect("alive");
    r.handle.signal(SIGTERM);
    let fake = r.fake.clone();
    assert_eq!(r.exit_code().await, 5);
    assert_eq!(spawn_count(&fake), 1);
}

#[tokio::test(start_paused = true)]
async fn term_before_the_first_spawn_spawns_nothing() {
    let r = rig_with(
        FakeSys::new(),
        config(quick(Restart::Always)),
        &[Event::Signal(SIGTERM)],
    );
    let fake = r.fake.clone();
    assert_eq!(r.exit_code().await, 128 + SIGTERM);
    assert!(fake.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn hup_is_forwarded_to_the_group_and_changes_nothing_else() {
    let mut r = rig(quick(Restart::Always));
    let pid = r.running().await;
    r.handle.signal(SIGHUP);
    r.handle.signal(SIGWINCH); // no terminal on stdin in the fake: forwarded too
    r.handle.send(Control::Input(b"dbl\r".to_vec()));
    r.handle.send(Control::Resize {
        rows: 50,
        cols: 132,
    });
    r.handle.send(Control::Stop);
    let fake = r.fake.clone();
    assert_eq!(r.exit_code().await, 128 + SIGKILL);
    let calls = fake.calls();
    assert_eq!(
        &calls[..6],
        &[
            Call::Spawn(pid),
            Call::Signal(Target::Group(pid), SIGHUP),
            Call::Signal(Target::Group(pid), SIGWINCH),
            Call::Input(b"dbl\r".to_vec()),
            Call::Resize(50, 132),
            Call::Signal(Target::Group(pid), SIGTERM),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn hup_stops_when_the_terminal_hung_up() {
    let cfg = Config {
        hangup_stops: true,
        ..config(quick(Restart::Always))
    };
    let mut r = rig_with(FakeSys::new(), cfg, &[]);
    let pid = r.running().await;
    r.handle.signal(SIGHUP);
    r.state
        .wait_for(|s| matches!(s.child, ChildState::Stopping { .. }))
        .await
        .expect("alive");
    r.fake.end(pid, ExitStatus::Signaled(SIGHUP));
    let fake = r.fake.clone();
    assert_eq!(r.exit_code().await, 128 + SIGHUP);
    assert_eq!(
        fake.calls(),
        [Call::Spawn(pid), Call::Signal(Target::Group(pid), SIGHUP)],
        "HUP to the group, no restart"
    );
}

#[tokio::test(start_paused = true)]
async fn restart_control_stops_gracefully_then_respawns_at_once() {
    let mut r = rig(quick(Restart::Never));
    let first = r.running().await;
    r.handle.send(Control::Restart(RestartReason::Request));
    // the fake IOC ignores SIGTERM: SIGKILL follows after the grace period
    r.state
        .wait_for(|s| matches!(s.child, ChildState::Running { pid, .. } if pid != first))
        .await
        .expect("alive");
    assert_eq!(r.spawn_times(), secs(&[0, 2]));
    let signals = r.signal_calls();
    assert_eq!(
        signals,
        vec![
            (Target::Group(first), SIGTERM, Duration::ZERO),
            (Target::Group(first), SIGKILL, Duration::from_secs(2)),
        ],
        "only the IOC's group: a restart does not touch other processes"
    );
    let restarts = r.state.borrow().restarts;
    assert_eq!(restarts.get(RestartReason::Request), 1, "{restarts:?}");
    assert_eq!(restarts.total(), 1, "the stop is not also an exit restart");
}

/// A preparer that records each reason it is asked with and answers, after `delay`, with a
/// command naming how many times it was asked.
fn recording_preparer(
    delay: Duration,
) -> (Box<dyn Prepare>, Arc<std::sync::Mutex<Vec<RestartReason>>>) {
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    let preparer = move |reason: RestartReason| -> Prepared {
        let n = {
            let mut log = log.lock().expect("log");
            log.push(reason);
            log.len()
        };
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            CommandSpec {
                argv: vec!["ioc".into(), format!("fresh-{n}.cmd").into()],
                cwd: None,
            }
        })
    };
    (Box::new(preparer), asked)
}

fn rig_preparing(
    policy: Policy,
    delay: Duration,
) -> (Rig, Arc<std::sync::Mutex<Vec<RestartReason>>>) {
    let fake = FakeSys::new();
    let (tx, state) = watch::channel(State::generating());
    let sink: Arc<dyn OutputSink> = Arc::new(|_: &[u8]| {});
    let mut sup = Supervisor::new(fake.clone(), config(policy), sink, tx);
    let (preparer, asked) = recording_preparer(delay);
    sup.set_preparer(preparer);
    let handle = sup.handle();
    fake.world().notify = Some(handle.clone());
    let rig = Rig {
        fake,
        handle,
        state,
        task: tokio::spawn(sup.run()),
        start: Instant::now(),
    };
    (rig, asked)
}

#[tokio::test(start_paused = true)]
async fn every_restart_asks_the_preparer_and_runs_its_command() {
    let (mut r, asked) = rig_preparing(quick(Restart::Always), Duration::from_secs(3));
    let first = r.running().await;
    r.fake.end(first, ExitStatus::Exited(0));
    r.state.wait_for(|s| !s.is_running()).await.expect("alive");
    let second = r.running().await;
    r.fake.end(second, ExitStatus::Signaled(11));
    r.state.wait_for(|s| !s.is_running()).await.expect("alive");
    let third = r.running().await;
    r.handle.send(Control::Restart(RestartReason::Reload));
    r.state
        .wait_for(|s| matches!(s.child, ChildState::Running { pid, .. } if pid > third))
        .await
        .expect("alive");
    assert_eq!(
        *asked.lock().expect("log"),
        [
            RestartReason::Exit,
            RestartReason::Signal,
            RestartReason::Reload
        ],
        "the first start is the caller's; each restart is prepared, with its reason"
    );
    // backoff, then the preparer's 3 s, then the spawn: 0, 1+3, 4+1(quick again: 2)+3, ...
    assert_eq!(r.spawn_times()[..3], secs(&[0, 4, 9]));
    let commands: Vec<String> = r
        .fake
        .world()
        .spawned
        .iter()
        .map(CommandSpec::display)
        .collect();
    assert_eq!(
        commands,
        [
            "ioc st.cmd",
            "ioc fresh-1.cmd",
            "ioc fresh-2.cmd",
            "ioc fresh-3.cmd"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_preparing_spawns_nothing_more() {
    let (mut r, asked) = rig_preparing(quick(Restart::Always), Duration::from_secs(60));
    let pid = r.running().await;
    r.fake.end(pid, ExitStatus::Exited(3));
    r.state
        .wait_for(|s| matches!(s.child, ChildState::Generating { .. }))
        .await
        .expect("alive");
    r.handle.signal(SIGTERM);
    let fake = r.fake.clone();
    assert_eq!(r.exit_code().await, 3, "the last run's code");
    assert_eq!(asked.lock().expect("log").len(), 1);
    assert_eq!(spawn_count(&fake), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_a_restart_ends_without_restarting() {
    let (mut r, asked) = rig_preparing(quick(Restart::Always), Duration::ZERO);
    let pid = r.running().await;
    r.handle.send(Control::Restart(RestartReason::Request));
    r.state
        .wait_for(|s| matches!(s.child, ChildState::Stopping { .. }))
        .await
        .expect("alive");
    r.handle.signal(SIGTERM);
    r.fake.end(pid, ExitStatus::Signaled(SIGTERM));
    assert_eq!(r.exit_code().await, 128 + SIGTERM);
    assert!(asked.lock().expect("log").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_restart_asked_before_the_first_start_starts_one_child() {
    let restart = Event::Control(Control::Restart(RestartReason::Request));
    let mut r = rig_with(FakeSys::new(), config(quick(Restart::Never)), &[restart]);
    r.running().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(r.spawn_times(), secs(&[0]));
    assert_eq!(r.state.borrow().restarts.total(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_spawn_exits_with_the_shell_code() {
    let fake = FakeSys::new();
    fake.world().spawn_fails = true;
    let r = rig_with(fake, config(quick(Restart::Always)), &[]);
    assert_eq!(r.exit_code().await, 127);
}

#[tokio::test(start_paused = true)]
async fn sigchld_for_an_orphan_is_only_reaped() {
    let mut r = rig(quick(Restart::Always));
    let pid = r.running().await;
    let orphan = r.fake.adopt();
    r.fake.end(orphan, ExitStatus::Exited(0));
    r.handle.signal(SIGCHLD);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(matches!(r.state.borrow().child, ChildState::Running { pid: p, .. } if p == pid));
    assert_eq!(r.spawn_times().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn stop_input_is_typed_first_then_the_signal_then_kill() {
    let cfg = Config {
        stop_input: b"exit\n".to_vec(),
        ..config(quick(Restart::Always))
    };
    let mut r = rig_with(FakeSys::new(), cfg, &[]);
    let pid = r.running().await;
    r.handle.signal(SIGTERM);
    let fake = r.fake.clone();
    let start = r.start;
    assert_eq!(r.exit_code().await, 128 + SIGKILL);
    let w = fake.world();
    let after: Vec<(Call, Duration)> = w
        .calls
        .iter()
        .zip(&w.times)
        .skip(1)
        .map(|(c, t)| (c.clone(), *t - start))
        .collect();
    assert_eq!(
        &after[..3],
        &[
            (Call::Input(b"exit\n".to_vec()), Duration::ZERO),
            (
                Call::Signal(Target::Group(pid), SIGTERM),
                Duration::from_secs(1)
            ),
            (
                Call::Signal(Target::Group(pid), SIGKILL),
                Duration::from_secs(2)
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_ioc_that_obeys_the_stop_input_gets_no_signal() {
    let cfg = Config {
        stop_input: b"exit\n".to_vec(),
        ..config(quick(Restart::Always))
    };
    let mut r = rig_with(FakeSys::new(), cfg, &[]);
    let pid = r.running().await;
    r.handle.signal(SIGTERM);
    r.state
        .wait_for(|s| matches!(s.child, ChildState::Stopping { .. }))
        .await
        .expect("alive");
    r.fake.end(pid, ExitStatus::Exited(0));
    let fake = r.fake.clone();
    assert_eq!(r.exit_code().await, 0);
    assert!(!fake.calls().iter().any(|c| matches!(c, Call::Signal(..))));
}
