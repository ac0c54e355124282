//! What serve is told and what it concludes: the [`Health`] snapshot the start sequence and the
//! supervisor publish on a `watch` channel, the cached result of the Channel Access check, and
//! the three probe verdicts computed from both.

use std::time::{Duration, SystemTime};

/// The phase of the container's life (`epics_ioc_state`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Phase {
    /// iocrun is up, nothing has run yet.
    #[default]
    Starting,
    /// Start steps 2–7: copy, render, expand, place files.
    Generating,
    /// Start step 8: waiting for the hardware in wait_list.yaml.
    WaitingHardware,
    /// The IOC process is running.
    Running,
    /// The IOC ended and will be started again.
    Backoff,
    /// A stop was requested, or the IOC ended for good.
    Stopping,
    /// A start step failed, or the supervisor gave up; the message says why.
    Failed { message: String },
}

impl Phase {
    /// Every phase's metric label, in a fixed order (the one-hot `epics_ioc_state` family).
    pub const LABELS: [&'static str; 7] = [
        "starting",
        "generating",
        "waiting_hw",
        "running",
        "backoff",
        "stopping",
        "failed",
    ];

    /// This phase's label in [`Phase::LABELS`].
    pub fn label(&self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Generating => "generating",
            Phase::WaitingHardware => "waiting_hw",
            Phase::Running => "running",
            Phase::Backoff => "backoff",
            Phase::Stopping => "stopping",
            Phase::Failed { .. } => "failed",
        }
    }
}

/// `epics_ioc_restarts_total{reason}`: every label is exported from the start, at 0.
pub const RESTART_REASONS: [&str; 4] = ["exit", "signal", "request", "reload"];
/// `epics_ioc_ca_probes_total{result}`: every label is exported from the start, at 0.
pub const CA_RESULTS: [&str; 5] = ["ok", "timeout", "refused", "not_found", "error"];
/// `epics_ioc_generate_errors_total{step}`: the start steps, each exported from the start.
pub const START_STEPS: [&str; 6] = [
    "start_d",
    "ibek_generate",
    "autosave",
    "msi",
    "place_files",
    "do_wait",
];

/// How the previous IOC process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastExit {
    Code(i32),
    Signal(i32),
}

/// One start step's latest run, for `epics_ioc_generate_*`. Steps run again before
/// every restart; each keeps one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepTiming {
    /// One of [`START_STEPS`].
    pub step: &'static str,
    /// How long its latest run took.
    pub duration: Duration,
    /// How many of its runs failed.
    pub errors: u64,
}

/// Everything serve shows, as one snapshot. The publisher replaces it whole on each change;
/// counters are totals since iocrun started.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Health {
    pub phase: Phase,
    /// The IOC process, while one runs.
    pub ioc_pid: Option<u32>,
    /// When the current IOC process started.
    pub ioc_started: Option<SystemTime>,
    /// True once the start sequence finished (generation and the hardware wait are done).
    pub start_done: bool,
    /// In-container restarts by reason ([`RESTART_REASONS`]).
    pub restarts: Vec<(&'static str, u64)>,
    pub last_exit: Option<LastExit>,
    pub console_clients: u64,
    pub console_bytes_in: u64,
    pub console_bytes_out: u64,
    /// Devices of wait_list.yaml not reachable yet.
    pub hw_pending: Vec<String>,
    pub steps: Vec<StepTiming>,
    /// PVI screens that could not be made (generation went on without them).
    pub pvi_failures: u64,
    /// `.bob` files published to the OPI folder.
    pub opi_files: u64,
    /// The `IOC` prefix of each iocStats entity of the rendered instance (its devIocStats
    /// PVs are exported as `epics_ioc_stats_*`).
    pub iocstats_prefixes: Vec<String>,
    /// Why the config folder could not be used at the latest (re)start or change: the IOC
    /// runs on the last good outputs meanwhile. `None` once a start or check succeeds.
    pub config_error: Option<String>,
    /// Config changes seen by `--watch-config`: (valid, invalid).
    pub reloads: (u64, u64),
}

impl Health {
    /// Total in-container restarts.
    pub fn restart_total(&self) -> u64 {
        self.restarts.iter().map(|(_, n)| n).sum()
    }

    /// Record one run of a start step.
    pub fn record_step(&mut self, step: &'static str, duration: Duration, failed: bool) {
        let errors = u64::from(failed);
        match self.steps.iter_mut().find(|s| s.step == step) {
            Some(s) => {
                s.duration = duration;
                s.errors += errors;
            }
            None => self.steps.push(StepTiming {
                step,
                duration,
                errors,
            }),
        }
    }
}

/// How the last Channel Access check of the IOC's own PV went.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum CaStatus {
    /// No check has run yet (or checks are off).
    #[default]
    Unknown,
    /// The PV was read.
    Ok {
        at: SystemTime,
        duration: Duration,
        /// The UPTIME PV's value in seconds, when it parses.
        uptime: Option<f64>,
    },
    /// The read failed; `result` is the `epics_ioc_ca_probes_total` label.
    Failed {
        at: SystemTime,
        result: &'static str,
        message: String,
        /// Consecutive failures so far.
        streak: u32,
    },
}

/// The checker's output: the last outcome plus totals by result ([`CA_RESULTS`]) for
/// `epics_ioc_ca_probes_total`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CaReport {
    pub status: CaStatus,
    pub totals: Vec<(&'static str, u64)>,
}

impl CaReport {
    /// Record one outcome under its result label.
    pub fn record(&mut self, status: CaStatus) {
        let label = match &status {
            CaStatus::Unknown => None,
            CaStatus::Ok { .. } => Some("ok"),
            CaStatus::Failed { result, .. } => Some(*result),
        };
        if let Some(label) = label {
            match self.totals.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += 1,
                None => self.totals.push((label, 1)),
            }
        }
        self.status = status;
    }
}

/// The answer to one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub reason: String,
}

impl Verdict {
    fn pass(reason: impl Into<String>) -> Verdict {
        Verdict {
            ok: true,
            reason: reason.into(),
        }
    }
    fn fail(reason: impl Into<String>) -> Verdict {
        Verdict {
            ok: false,
            reason: reason.into(),
        }
    }
}

/// The three probes `iocrun probe` and the HTTP endpoints answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Startup,
    Ready,
    Live,
}

impl ProbeKind {
    /// The word used on the control socket and the command line.
    pub fn word(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startup",
            ProbeKind::Ready => "ready",
            ProbeKind::Live => "live",
        }
    }

    /// Parse a control-socket word.
    pub fn from_word(word: &str) -> Option<ProbeKind> {
        [ProbeKind::Startup, ProbeKind::Ready, ProbeKind::Live]
            .into_iter()
            .find(|k| k.word() == word)
    }
}

/// Decide a probe from the snapshot and the CA check:
/// * startup passes once the start sequence is done (as startup.sh passed once do-wait had
///   written its done file);
/// * ready needs the IOC running and its PV answering (with checks off: running is enough);
/// * live fails only when the IOC runs but its PV has not answered `live_failures` checks in a
///   row: a wedged IOC. Generation, the hardware wait and restarts are not liveness failures,
///   since restarting the pod would not help them.
pub fn verdict(
    kind: ProbeKind,
    health: &Health,
    ca: &CaStatus,
    checks_on: bool,
    live_failures: u32,
) -> Verdict {
    let mut v = match kind {
        ProbeKind::Startup => startup(health),
        ProbeKind::Ready => ready(health, ca, checks_on),
        ProbeKind::Live => live(health, ca, live_failures),
    };
    // a config typo never fails a probe (restarting the pod would not fix it), but says so
    if let Some(error) = &health.config_error {
        v.reason = format!(
            "{}; config error, running on the last good outputs: {error}",
            v.reason
        );
    }
    v
}

fn startup(health: &Health) -> Verdict {
    match &health.phase {
        Phase::Failed { message } => Verdict::fail(format!("start failed: {message}")),
        _ if health.start_done => Verdict::pass("start sequence done"),
        Phase::WaitingHardware if !health.hw_pending.is_empty() => {
            Verdict::fail(format!("waiting for {}", health.hw_pending.join(", ")))
        }
        phase => Verdict::fail(format!("still {}", phase.label())),
    }
}

fn ready(health: &Health, ca: &CaStatus, checks_on: bool) -> Verdict {
    if health.phase != Phase::Running {
        return Verdict::fail(format!("ioc is not running ({})", health.phase.label()));
    }
    match ca {
        _ if !checks_on => Verdict::pass("ioc running (no channel access check)"),
        CaStatus::Ok { .. } => Verdict::pass("ioc running and answering channel access"),
        CaStatus::Unknown => Verdict::fail("ioc running, channel access not checked yet"),
        CaStatus::Failed { message, .. } => {
            Verdict::fail(format!("channel access check failed: {message}"))
        }
    }
}

fn live(health: &Health, ca: &CaStatus, live_failures: u32) -> Verdict {
    match ca {
        CaStatus::Failed {
            message, streak, ..
        } if health.phase == Phase::Running && *streak >= live_failures => Verdict::fail(format!(
            "ioc running but {streak} channel access checks failed: {message}"
        )),
        _ => Verdict::pass(format!("supervisor responsive ({})", health.phase.label())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Health {
        Health {
            phase: Phase::Running,
            start_done: true,
            ioc_pid: Some(7),
            ..Health::default()
        }
    }

    fn failed(streak: u32) -> CaStatus {
        CaStatus::Failed {
            at: SystemTime::now(),
            result: "timeout",
            message: "timed out".into(),
            streak,
        }
    }

    fn ok() -> CaStatus {
        CaStatus::Ok {
            at: SystemTime::now(),
            duration: Duration::from_millis(3),
            uptime: Some(5.0),
        }
    }

    #[test]
    fn startup_waits_for_the_start_sequence() {
        let waiting = Health {
            phase: Phase::WaitingHardware,
            hw_pending: vec!["ctrl".into()],
            ..Health::default()
        };
        let v = verdict(ProbeKind::Startup, &waiting, &CaStatus::Unknown, true, 3);
        assert_eq!(v, Verdict::fail("waiting for ctrl"));
        assert!(verdict(ProbeKind::Startup, &running(), &CaStatus::Unknown, true, 3).ok);
        let broken = Health {
            phase: Phase::Failed {
                message: "bad yaml".into(),
            },
            ..Health::default()
        };
        assert!(!verdict(ProbeKind::Startup, &broken, &ok(), true, 3).ok);
    }

    #[test]
    fn ready_needs_running_and_ca() {
        assert!(verdict(ProbeKind::Ready, &running(), &ok(), true, 3).ok);
        assert!(!verdict(ProbeKind::Ready, &running(), &CaStatus::Unknown, true, 3).ok);
        assert!(!verdict(ProbeKind::Ready, &running(), &failed(1), true, 3).ok);
        assert!(verdict(ProbeKind::Ready, &running(), &CaStatus::Unknown, false, 3).ok);
        let backoff = Health {
            phase: Phase::Backoff,
            ..running()
        };
        assert!(!verdict(ProbeKind::Ready, &backoff, &ok(), true, 3).ok);
    }

    #[test]
    fn live_fails_only_for_a_running_ioc_that_stopped_answering() {
        assert!(verdict(ProbeKind::Live, &running(), &failed(2), true, 3).ok);
        assert!(!verdict(ProbeKind::Live, &running(), &failed(3), true, 3).ok);
        let generating = Health {
            phase: Phase::Generating,
            ..Health::default()
        };
        assert!(verdict(ProbeKind::Live, &generating, &failed(9), true, 3).ok);
    }

    #[test]
    fn a_config_error_is_in_every_reason_and_fails_none() {
        let h = Health {
            config_error: Some("ioc.yaml line 3: bad".into()),
            ..running()
        };
        for kind in [ProbeKind::Startup, ProbeKind::Ready, ProbeKind::Live] {
            let v = verdict(kind, &h, &ok(), true, 3);
            assert!(v.ok, "{v:?}");
            assert!(
                v.reason.ends_with(
                    "config error, running on the last good outputs: ioc.yaml line 3: bad"
                ),
                "{v:?}"
            );
        }
    }

    #[test]
    fn words_round_trip() {
        for k in [ProbeKind::Startup, ProbeKind::Ready, ProbeKind::Live] {
            assert_eq!(ProbeKind::from_word(k.word()), Some(k));
        }
        assert_eq!(ProbeKind::from_word("nope"), None);
    }
}
