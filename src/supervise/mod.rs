//! PID 1 duties: run the IOC under a PTY, reap every child, forward signals, restart with
//! backoff, stop gracefully, and exit with a meaningful code. Uses no pipeline module.
//!
//! # Theory of Operation
//!
//! One [`Supervisor`] task owns the child. Everything that can happen to it arrives as an
//! [`Event`] on one queue and is handled in arrival order: signals (from the signal-hook thread
//! in `signals.rs`) and [`Control`] messages (console input, resize, stop, restart) sent
//! through a cloneable [`Handle`]. Timers (restart backoff, grace deadline) are the only other
//! wake-ups. After each event the task publishes a [`State`] on a `watch` channel, which serve
//! and probe read without touching the child (the shape of watchexec's `job/`).
//!
//! The child runs on a PTY (`child.rs`) in its own session, so its pid is its process group;
//! signals go to that group. On SIGCHLD, `reap.rs` drains `waitpid(-1)` — the only wait in the
//! program — and the supervisor recognises the IOC's pid among the reaped; the rest are
//! orphans. When the IOC ends on its own, `policy.rs` decides: restart after a backoff, exit
//! with its code, or give up after a crash loop ([`GAVE_UP_EXIT_CODE`]).
//!
//! Stop (SIGTERM or SIGINT, or [`Control::Stop`]): restarts are cancelled, the signal goes to
//! the IOC's group, and a grace period starts. Once the IOC has gone, any other process we
//! still own gets SIGTERM; when the grace period ends, the IOC's group and every remaining
//! process get SIGKILL. iocrun exits as soon as nothing is left — never later than needed
//! (s6-overlay #204) — with the IOC's code or 128 + signal. The same drain follows a final
//! exit under `--restart never|on-failure`.
//!
//! Restart ([`Control::Restart`], from `iocrun restart` or a config reload) stops the IOC as
//! a stop would (stop input, signal, SIGKILL after the grace period), then starts it again at
//! once. Before every restart, whatever its cause, the supervisor asks its [`Prepare`]r (set
//! by the start sequence) for the command to run, and waits for the answer while still
//! handling signals and control messages: that is how each start re-reads the config folder
//! without this module knowing about rendering. The start steps may run programs of their
//! own (start hooks) and wait for them, so reaping pauses while a start is prepared and
//! catches up as soon as it is done: `waitpid(-1)` would otherwise steal their exit status.
//!
//! Everything the kernel does is behind [`sys::Sys`], so all of the above is unit-tested
//! against a recording fake with tokio's paused clock.

mod child;
mod lifecycle;
mod policy;
mod prepare;
mod reap;
mod signals;
mod state;
mod stdio;
mod sys;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use child::{EndOfInput, Pty, DEFAULT_SIZE};
pub use lifecycle::{banner_line, OutputSink, StdoutSink};
pub use policy::{Policy, Restart, GAVE_UP_EXIT_CODE};
pub use prepare::{Prepare, Prepared};
pub use signals::unblock_all as unblock_signals;
pub use state::{signal_name, ChildState, ExitStatus, RestartReason, Restarts, State};
pub use stdio::{interactive, stdin_size};
pub use sys::{CommandSpec, RealSys};

use sys::{Pid, Sys, Target};

/// What can go wrong while supervising.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("the command to supervise is empty")]
    EmptyCommand,
    #[error("cannot find program '{program}'")]
    NotFound { program: String },
    #[error("cannot execute '{program}': {reason}")]
    NotExecutable { program: String, reason: String },
    #[error("cannot spawn '{program}': {message}")]
    Spawn { program: String, message: String },
    /// The system is short of something a spawn needs (descriptors, processes, memory) that
    /// may be back in a moment: the supervisor tries again rather than giving up.
    #[error("cannot spawn '{program}' for now: {message}")]
    SpawnShortOf { program: String, message: String },
    #[error("cannot open the IOC terminal ({step}): {message}")]
    Pty { step: &'static str, message: String },
    #[error("cannot register signal handlers")]
    Signals {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the {name} thread")]
    Thread {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set PR_SET_CHILD_SUBREAPER: {errno}")]
    Subreaper { errno: nix::errno::Errno },
}

impl SuperviseError {
    /// The shell's codes for exec failures (127 not found, 126 not executable), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            SuperviseError::NotFound { .. } => 127,
            SuperviseError::NotExecutable { .. } => 126,
            _ => 1,
        }
    }
}

/// Requests to the supervisor, processed in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Bytes for the IOC's terminal.
    Input(Vec<u8>),
    /// New terminal size for the IOC.
    Resize { rows: u16, cols: u16 },
    /// Stop as on SIGTERM.
    Stop,
    /// Stop the IOC as a stop would, then start it again at once, whatever the policy;
    /// counted under the reason given.
    Restart(RestartReason),
    /// Send a signal to the IOC's process group.
    Signal(i32),
}

/// One item on the supervisor's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Signal(i32),
    Control(Control),
}

/// Settings of one supervisor.
#[derive(Debug, Clone)]
pub struct Config {
    pub command: CommandSpec,
    pub policy: Policy,
    /// How long a stop waits before SIGKILL.
    pub grace: Duration,
    /// Typed on the IOC's console to ask it to exit (e.g. `exit\n`, so iocsh runs its exit
    /// hooks and autosave writes); the stop signal follows after half the grace period.
    /// Empty: the stop signal is sent at once.
    pub stop_input: Vec<u8>,
    /// SIGHUP stops (its own signal to the IOC's group, then the grace period) instead of
    /// being forwarded: iocrun runs in a terminal that hung up (see [`interactive`]).
    pub hangup_stops: bool,
}

/// A cheap, cloneable way to talk to the supervisor and watch its state.
#[derive(Debug, Clone)]
pub struct Handle {
    events: mpsc::UnboundedSender<Event>,
    state: watch::Receiver<State>,
}

impl Handle {
    /// Queue a control message; false once the supervisor has finished.
    pub fn send(&self, control: Control) -> bool {
        self.events.send(Event::Control(control)).is_ok()
    }

    /// Deliver a signal as if it had arrived (used by the signal thread).
    pub fn signal(&self, sig: i32) -> bool {
        self.events.send(Event::Signal(sig)).is_ok()
    }

    /// A receiver of every state change.
    pub fn state(&self) -> watch::Receiver<State> {
        self.state.clone()
    }
}

/// Make this process the reaper of orphaned descendants when it is not PID 1.
pub fn become_subreaper() -> Result<(), SuperviseError> {
    if std::process::id() == 1 {
        return Ok(());
    }
    nix::sys::prctl::set_child_subreaper(true).map_err(|errno| SuperviseError::Subreaper { errno })
}

/// Register the signal handlers; each signal is passed to `deliver` (which normally calls
/// [`Handle::signal`]) from a dedicated thread.
pub fn install_signals(deliver: impl Fn(i32) + Send + 'static) -> Result<(), SuperviseError> {
    signals::install(deliver)
}

/// Wait before another spawn when the last one lacked descriptors or memory.
const SPAWN_RETRY: Duration = Duration::from_secs(1);

struct Running {
    pid: Pid,
    started: Instant,
}

struct Stopping {
    deadline: Instant,
    killed: bool,
    /// With `stop_input`: the stop signal still to send, and when.
    signal_at: Option<(Instant, i32)>,
    /// Set when this stop is half of a restart: start again once the IOC is gone.
    then_restart: Option<RestartReason>,
}

/// The task that owns the child (see the module's Theory of Operation).
pub struct Supervisor<S: Sys> {
    sys: S,
    cfg: Config,
    out: Arc<dyn OutputSink>,
    events: mpsc::UnboundedReceiver<Event>,
    handle: Handle,
    state: watch::Sender<State>,
    child: Option<Running>,
    /// Process group of the latest child, for stragglers after it is gone.
    group: Option<Pid>,
    restart_at: Option<Instant>,
    restarts: Restarts,
    /// Why the pending restart happens.
    restart_reason: RestartReason,
    /// Asked for the command before each restart; `None` respawns the same command.
    preparer: Option<Box<dyn Prepare>>,
    /// The preparer's answer, while it is being worked out.
    preparing: Option<Prepared>,
    stop: Option<Stopping>,
    stragglers_told: bool,
    exit_code: Option<i32>,
    history: policy::History,
    children_left: bool,
}

impl<S: Sys> Supervisor<S> {
    /// A supervisor that publishes on `state`; run it with [`Supervisor::run`].
    pub fn new(sys: S, cfg: Config, out: Arc<dyn OutputSink>, state: watch::Sender<State>) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let handle = Handle {
            events: tx,
            state: state.subscribe(),
        };
        Supervisor {
            sys,
            cfg,
            out,
            events,
            handle,
            state,
            child: None,
            group: None,
            restart_at: None,
            restarts: Restarts::default(),
            restart_reason: RestartReason::Exit,
            preparer: None,
            preparing: None,
            stop: None,
            stragglers_told: false,
            exit_code: None,
            history: policy::History::default(),
            children_left: false,
        }
    }

    /// Set what to run, when it is only known after the supervisor had to exist (the start
    /// sequence decides between the IOC and a `start.sh` override while signals are already
    /// handled).
    pub fn set_command(&mut self, command: CommandSpec) {
        self.cfg.command = command;
    }

    /// Ask `preparer` for the command before every restart (the start sequence re-reads the
    /// config folder there). The first start uses the command given to [`Supervisor::new`] or
    /// [`Supervisor::set_command`].
    pub fn set_preparer(&mut self, preparer: Box<dyn Prepare>) {
        self.preparer = Some(preparer);
    }

    /// A handle for control messages and state.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Supervise until everything is gone; returns iocrun's exit code.
    pub async fn run(mut self) -> i32 {
        // a stop that arrived before the first spawn means no spawn at all
        while let Ok(event) = self.events.try_recv() {
            self.on_event(event);
        }
        if self.stop.is_none() {
            self.start_child();
        }
        loop {
            if let Some(code) = self.finished() {
                self.sys.drain_output();
                self.say(&format!("iocrun exiting with code {code}"));
                return code;
            }
            let deadline = self.deadline();
            tokio::select! {
                event = self.events.recv() => {
                    // the supervisor holds a sender itself, so the queue never closes
                    if let Some(event) = event {
                        self.on_event(event);
                    }
                }
                () = sleep_until(deadline) => self.on_deadline(),
                command = prepared(&mut self.preparing) => {
                    self.preparing = None;
                    self.reap();
                    self.cfg.command = command;
                    self.start_child();
                }
            }
        }
    }

    /// True once iocrun is on its way out (not a stop that is half of a restart).
    fn exiting(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.then_restart.is_none())
    }

    fn finished(&self) -> Option<i32> {
        let code = self.exit_code?;
        (self.child.is_none() && !self.children_left).then_some(code)
    }

    fn deadline(&self) -> Option<Instant> {
        let stop = self.stop.as_ref();
        [
            self.restart_at,
            stop.map(|s| s.deadline),
            stop.and_then(|s| s.signal_at.map(|(at, _)| at)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Signal(sig) => match signals::action(sig) {
                // the start steps wait for their own children (see the Theory of Operation)
                signals::Action::Reap if self.preparing.is_some() => {}
                signals::Action::Reap => self.reap(),
                signals::Action::Stop => self.begin_stop(sig),
                signals::Action::Forward if sig == libc::SIGHUP && self.cfg.hangup_stops => {
                    self.begin_stop(sig)
                }
                signals::Action::Forward => {
                    if sig == libc::SIGHUP {
                        // procServ's meaning of HUP (reopen the log) as well as forwarding it
                        self.out.reopen();
                    }
                    self.forward(sig)
                }
                signals::Action::Winch => self.winch(sig),
                signals::Action::Ignore => {
                    tracing::debug!("{} ignored", signal_name(sig));
                }
            },
            Event::Control(Control::Input(bytes)) => self.sys.write_input(bytes),
            Event::Control(Control::Resize { rows, cols }) => self.sys.resize(rows, cols),
            Event::Control(Control::Stop) => self.begin_stop(libc::SIGTERM),
            Event::Control(Control::Restart(reason)) => self.restart(reason),
            Event::Control(Control::Signal(sig)) => self.forward(sig),
        }
    }

    fn on_deadline(&mut self) {
        let now = Instant::now();
        if self.restart_at.is_some_and(|at| at <= now) {
            self.restart_at = None;
            self.respawn();
        }
        let due = self.stop.as_mut().and_then(|s| {
            let (at, sig) = s.signal_at?;
            (at <= now).then(|| {
                s.signal_at = None;
                sig
            })
        });
        if let Some(sig) = due {
            self.forward(sig);
        }
        if self.stop.as_ref().is_some_and(|s| s.deadline <= now) {
            self.grace_over(now);
        }
    }

    /// Start again: through the preparer when there is one, else with the same command.
    fn respawn(&mut self) {
        match self.preparer.as_mut() {
            Some(p) => {
                self.preparing = Some(p.prepare(self.restart_reason));
                self.publish(ChildState::Generating {
                    since: SystemTime::now(),
                });
            }
            None => self.start_child(),
        }
    }

    fn start_child(&mut self) {
        match self.sys.spawn(&self.cfg.command) {
            Ok(pid) => {
                self.child = Some(Running {
                    pid,
                    started: Instant::now(),
                });
                self.group = Some(pid);
                self.children_left = true;
                self.say(&format!(
                    "started pid {pid}: {}",
                    self.cfg.command.display()
                ));
                self.publish(ChildState::Running {
                    pid,
                    since: SystemTime::now(),
                });
            }
            Err(e @ SuperviseError::SpawnShortOf { .. }) => {
                self.say(&format!(
                    "cannot start the IOC: {}; trying again in {}",
                    crate::error::chain(&e),
                    human(SPAWN_RETRY)
                ));
                self.restart_at = Some(Instant::now() + SPAWN_RETRY);
            }
            Err(e) => {
                self.say(&format!(
                    "cannot start the IOC: {}",
                    crate::error::chain(&e)
                ));
                self.finish(i32::from(e.exit_code()), false);
                self.tell_stragglers();
            }
        }
    }

    fn reap(&mut self) {
        let reaped = reap::drain(&mut self.sys);
        self.children_left = reaped.children_left;
        if self.stop.as_ref().is_some_and(|s| s.killed) && reaped.children_left {
            // a parent killed by the sweep hands its children to us: they go the same way
            self.send(Target::Others, libc::SIGKILL);
        }
        for (pid, status) in reaped.ended {
            if self.child.as_ref().is_some_and(|c| c.pid == pid) {
                self.on_child_exit(status);
            } else {
                tracing::debug!(pid, %status, "reaped an orphan");
            }
        }
        self.tell_stragglers();
    }

    fn on_child_exit(&mut self, status: ExitStatus) {
        let Some(run) = self.child.take() else {
            return;
        };
        // let the IOC's last words reach the stream before the line that says it ended
        self.sys.drain_output();
        self.say(&format!("pid {} ended: {status}", run.pid));
        self.state.send_modify(|s| s.last_exit = Some(status));
        if let Some(reason) = self.stop.as_ref().and_then(|s| s.then_restart) {
            self.stop = None;
            self.schedule_restart(Duration::ZERO, status, reason);
            return;
        }
        if self.stop.is_some() {
            self.exit_code.get_or_insert(status.code());
            return;
        }
        let ran_for = Instant::now().saturating_duration_since(run.started);
        match policy::decide(&self.cfg.policy, &mut self.history, status, ran_for) {
            policy::Decision::Restart { delay } => {
                self.schedule_restart(delay, status, RestartReason::after(status))
            }
            policy::Decision::Exit { code } => self.finish(code, false),
            policy::Decision::GiveUp { failures } => {
                self.say(&format!(
                    "giving up after {failures} quick failures in a row (each ran < {})",
                    human(self.cfg.policy.stable_after)
                ));
                self.finish(GAVE_UP_EXIT_CODE, true);
            }
        }
    }

    fn schedule_restart(&mut self, delay: Duration, last: ExitStatus, reason: RestartReason) {
        self.say(&format!("restarting in {}", human(delay)));
        self.restart_at = Some(Instant::now() + delay);
        self.restart_reason = reason;
        self.restarts.add(reason);
        let restarts = self.restarts;
        self.state.send_modify(|s| {
            s.restarts = restarts;
            s.child = ChildState::Backoff {
                until: SystemTime::now() + delay,
                last,
            };
        });
    }

    /// No restart will follow: exit with `code` once every remaining process is gone.
    fn finish(&mut self, code: i32, gave_up: bool) {
        self.exit_code = Some(code);
        self.stop = Some(Stopping {
            deadline: Instant::now() + self.cfg.grace,
            killed: false,
            signal_at: None,
            then_restart: None,
        });
        let at = SystemTime::now();
        self.publish(if gave_up {
            ChildState::GaveUp { at, code }
        } else {
            ChildState::Exited { at, code }
        });
    }

    fn begin_stop(&mut self, sig: i32) {
        if let Some(stop) = self.stop.as_mut() {
            // a repeated stop signal (or one during a restart's stop) is passed on at once,
            // and no restart follows; the grace deadline stays
            stop.signal_at = None;
            if stop.then_restart.take().is_some() {
                self.say(&format!("received {}: stopping", signal_name(sig)));
            }
            self.forward(sig);
            return;
        }
        self.say(&format!(
            "received {}: stopping (grace {})",
            signal_name(sig),
            human(self.cfg.grace)
        ));
        self.restart_at = None;
        // a start being prepared is abandoned: nothing will be spawned
        if self.preparing.take().is_some() {
            self.reap();
        }
        self.end_child(sig, None);
    }

    /// Ask the IOC to go (stop input, else `sig`), with the grace period running; `restart`
    /// says what follows once it has gone.
    fn end_child(&mut self, sig: i32, then_restart: Option<RestartReason>) {
        let now = Instant::now();
        self.stop = Some(Stopping {
            deadline: now + self.cfg.grace,
            killed: false,
            signal_at: None,
            then_restart,
        });
        match &self.child {
            Some(run) => {
                let pid = run.pid;
                if self.cfg.stop_input.is_empty() {
                    self.send(Target::Group(pid), sig);
                } else {
                    // the IOC's own exit first (autosave flushes on
                    // `exit`), the signal only if it is still there halfway through
                    self.sys.write_input(self.cfg.stop_input.clone());
                    if let Some(stop) = self.stop.as_mut() {
                        stop.signal_at = Some((now + self.cfg.grace / 2, sig));
                    }
                }
                self.publish(ChildState::Stopping {
                    since: SystemTime::now(),
                });
            }
            None => {
                // stopped during backoff: the last run's code, or the signal's if none ran
                let last = self.state.borrow().last_exit.map(ExitStatus::code);
                self.exit_code.get_or_insert(last.unwrap_or(128 + sig));
                self.tell_stragglers();
            }
        }
    }

    /// Once the IOC is gone and an exit is pending, ask everything else we own to go too.
    fn tell_stragglers(&mut self) {
        if !self.exiting() || self.child.is_some() || !self.children_left || self.stragglers_told {
            return;
        }
        self.stragglers_told = true;
        if let Some(group) = self.group {
            self.send(Target::Group(group), libc::SIGTERM);
        }
        self.send(Target::Others, libc::SIGTERM);
    }

    fn grace_over(&mut self, now: Instant) {
        let Some(stop) = self.stop.as_mut() else {
            return;
        };
        if stop.killed {
            // SIGKILL did not make everything go (uninterruptible sleep?): leave anyway
            tracing::error!("processes survived SIGKILL; exiting without them");
            self.exit_code.get_or_insert(128 + libc::SIGKILL);
            self.child = None;
            self.children_left = false;
            return;
        }
        stop.killed = true;
        stop.deadline = now + KILL_WAIT;
        let restarting = stop.then_restart.is_some();
        if restarting {
            self.say("grace period over: sending SIGKILL to the IOC");
        } else {
            self.say("grace period over: sending SIGKILL to every remaining process");
        }
        if let Some(group) = self.group {
            self.send(Target::Group(group), libc::SIGKILL);
        }
        if !restarting {
            self.send(Target::Others, libc::SIGKILL);
        }
    }

    fn forward(&mut self, sig: i32) {
        match &self.child {
            Some(run) => {
                let pid = run.pid;
                self.send(Target::Group(pid), sig);
            }
            None => tracing::info!("{} not forwarded: the IOC is not running", signal_name(sig)),
        }
    }

    fn winch(&mut self, sig: i32) {
        match self.sys.terminal_size() {
            Some((rows, cols)) => self.sys.resize(rows, cols),
            None => self.forward(sig),
        }
    }

    fn restart(&mut self, reason: RestartReason) {
        if self.stop.is_some() || self.preparing.is_some() {
            return;
        }
        match &self.child {
            Some(run) => {
                let pid = run.pid;
                self.say(&format!("restart ({}): stopping pid {pid}", reason.label()));
                self.end_child(libc::SIGTERM, Some(reason));
            }
            // in backoff: the pending restart happens now (already counted by its own reason)
            None if self.restart_at.is_some() => self.restart_at = Some(Instant::now()),
            // not started yet: the first start is coming anyway, a second would run twice
            None => {}
        }
    }

    fn send(&mut self, target: Target, sig: i32) {
        match self.sys.signal(target, sig) {
            // ESRCH: the target is already gone, which is what we wanted
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => tracing::warn!("kill({target:?}, {}) failed: {e}", signal_name(sig)),
        }
    }

    fn publish(&self, child: ChildState) {
        self.state.send_modify(|s| s.child = child);
    }

    fn say(&self, message: &str) {
        self.out.notice(message);
    }
}

/// How long to wait for SIGKILLed processes to be reaped before leaving without them.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// The preparer's command, once it is ready; never, when nothing is being prepared.
async fn prepared(preparing: &mut Option<Prepared>) -> CommandSpec {
    match preparing {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `1.5s`, `250ms`: durations as the flags take them.
pub fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests;
