//! Every metric iocrun exports, by name, in one place: a fresh
//! prometheus-client registry is filled from one snapshot per scrape and encoded as
//! OpenMetrics text, or converted to the classic Prometheus text format on request.

use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info as InfoMetric;
use prometheus_client::registry::Registry;

use super::health::{
    CaReport, CaStatus, Health, LastExit, Phase, CA_RESULTS, RESTART_REASONS, START_STEPS,
};
use super::procstat::ProcStats;

/// OpenMetrics' content type.
pub const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format's content type.
pub const CLASSIC_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Static facts for `epics_ioc_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    pub ioc_name: String,
    pub ioc_prefix: String,
    pub image: String,
    pub epics_version: String,
    pub target_arch: String,
}

/// Everything one scrape shows.
pub struct Snapshot<'a> {
    pub health: &'a Health,
    pub ca: &'a CaReport,
    pub info: &'a Info,
    /// The IOC process, when running.
    pub ioc: Option<ProcStats>,
    /// iocrun itself.
    pub me: Option<ProcStats>,
    /// Age in seconds of each autosave file found, by file name.
    pub autosave_ages: Vec<(String, f64)>,
}

pub(super) type Labels = Vec<(String, String)>;
pub(super) type F64Gauge = Gauge<f64, AtomicU64>;
type F64Counter = Counter<f64, AtomicU64>;

/// The snapshot as OpenMetrics text (ends with `# EOF`).
pub fn openmetrics(s: &Snapshot) -> String {
    openmetrics_with(s, |_| {})
}

/// The snapshot and whatever `more` registers (the PV metrics) as OpenMetrics text.
pub fn openmetrics_with(s: &Snapshot, more: impl FnOnce(&mut Registry)) -> String {
    let mut reg = Registry::default();
    info(&mut reg, s.info);
    supervisor(&mut reg, s.health);
    start_steps(&mut reg, s.health);
    channel_access(&mut reg, s.ca);
    console(&mut reg, s.health);
    gauge_family(
        &mut reg,
        "epics_ioc_autosave_file_age_seconds",
        "Seconds since autosave last wrote each .sav file",
        "file",
        &s.autosave_ages,
    );
    if let Some(p) = s.ioc {
        process(&mut reg, "epics_ioc", "the IOC process", &p, false);
    }
    if let Some(p) = s.me {
        process(&mut reg, "process", "the iocrun supervisor", &p, true);
    }
    more(&mut reg);
    let mut out = String::new();
    // writing into a String cannot fail
    let _ = encode(&mut out, &reg);
    out
}

fn info(reg: &mut Registry, i: &Info) {
    let labels: Labels = vec![
        ("ioc_name".into(), i.ioc_name.clone()),
        ("ioc_prefix".into(), i.ioc_prefix.clone()),
        ("image".into(), i.image.clone()),
        ("epics_version".into(), i.epics_version.clone()),
        ("target_arch".into(), i.target_arch.clone()),
        (
            "supervisor_version".into(),
            env!("CARGO_PKG_VERSION").into(),
        ),
    ];
    reg.register(
        "epics_ioc",
        "Static facts about this IOC container",
        InfoMetric::new(labels),
    );
}

fn supervisor(reg: &mut Registry, h: &Health) {
    gauge(
        reg,
        "epics_ioc_up",
        "1 while the IOC process runs",
        bool_f(h.phase == Phase::Running),
    );
    let state: Vec<(String, f64)> = Phase::LABELS
        .iter()
        .map(|l| (l.to_string(), bool_f(*l == h.phase.label())))
        .collect();
    gauge_family(
        reg,
        "epics_ioc_state",
        "The supervisor's state, one-hot",
        "state",
        &state,
    );
    if let Some(t) = h.ioc_started {
        gauge(
            reg,
            "epics_ioc_start_time_seconds",
            "Unix time the current IOC process started",
            unix(t),
        );
    }
    let restarts = with_every_label(&RESTART_REASONS, h.restarts.iter().copied());
    counter_family(
        reg,
        "epics_ioc_restarts",
        "IOC restarts inside this container",
        "reason",
        &restarts,
    );
    match h.last_exit {
        Some(LastExit::Code(c)) => gauge(
            reg,
            "epics_ioc_last_exit_code",
            "Exit code of the previous IOC process",
            c.into(),
        ),
        Some(LastExit::Signal(s)) => gauge(
            reg,
            "epics_ioc_last_exit_signal",
            "Signal that ended the previous IOC process",
            s.into(),
        ),
        None => {}
    }
}

fn start_steps(reg: &mut Registry, h: &Health) {
    let took: Vec<(String, f64)> = h
        .steps
        .iter()
        .map(|s| (s.step.to_string(), s.duration.as_secs_f64()))
        .collect();
    gauge_family(
        reg,
        "epics_ioc_generate_duration_seconds",
        "Time each start step took",
        "step",
        &took,
    );
    let failed = with_every_label(&START_STEPS, h.steps.iter().map(|s| (s.step, s.errors)));
    counter_family(
        reg,
        "epics_ioc_generate_errors",
        "Start steps that failed",
        "step",
        &failed,
    );
    let pending: Vec<(String, f64)> = h.hw_pending.iter().map(|d| (d.clone(), 1.0)).collect();
    gauge_family(
        reg,
        "epics_ioc_hw_wait_pending",
        "Hardware of wait_list.yaml not reachable yet",
        "device",
        &pending,
    );
    gauge(
        reg,
        "epics_ioc_opi_files",
        "OPI screens published",
        h.opi_files as f64,
    );
    gauge(
        reg,
        "epics_ioc_pvi_failures",
        "PVI screens that could not be made",
        h.pvi_failures as f64,
    );
    config(reg, h);
}

/// The config folder's health: a typo keeps the IOC on its last good outputs (gauge at 1), and
/// each change `--watch-config` saw, by whether it could be used (both labels from the start).
fn config(reg: &mut Registry, h: &Health) {
    gauge(
        reg,
        "epics_ioc_config_error",
        "1 while the config folder cannot be used and the IOC runs on its last good outputs",
        bool_f(h.config_error.is_some()),
    );
    let (ok, invalid) = h.reloads;
    let reloads = [
        ("ok".to_owned(), ok as f64),
        ("invalid".to_owned(), invalid as f64),
    ];
    counter_family(
        reg,
        "epics_ioc_config_reloads",
        "Config folder changes seen, by whether they could be used",
        "result",
        &reloads,
    );
}

fn channel_access(reg: &mut Registry, ca: &CaReport) {
    let ok = matches!(ca.status, CaStatus::Ok { .. });
    gauge(
        reg,
        "epics_ioc_ready",
        "1 when the IOC runs and answers channel access",
        bool_f(ok),
    );
    gauge(
        reg,
        "epics_ioc_ca_probe_success",
        "1 when the last channel access check read the PV",
        bool_f(ok),
    );
    if let CaStatus::Ok {
        duration, uptime, ..
    } = &ca.status
    {
        gauge(
            reg,
            "epics_ioc_ca_probe_duration_seconds",
            "Round trip of the last channel access check",
            duration.as_secs_f64(),
        );
        if let Some(up) = uptime {
            gauge(
                reg,
                "epics_ioc_uptime_seconds",
                "The IOC's UPTIME PV, in seconds",
                *up,
            );
        }
    }
    let totals = with_every_label(&CA_RESULTS, ca.totals.iter().copied());
    counter_family(
        reg,
        "epics_ioc_ca_probes",
        "Channel access checks by result",
        "result",
        &totals,
    );
}

fn console(reg: &mut Registry, h: &Health) {
    gauge(
        reg,
        "epics_ioc_console_clients",
        "Attached console sessions",
        h.console_clients as f64,
    );
    let bytes = [
        ("in".to_owned(), h.console_bytes_in as f64),
        ("out".to_owned(), h.console_bytes_out as f64),
    ];
    counter_family(
        reg,
        "epics_ioc_console_bytes",
        "Console bytes by direction",
        "direction",
        &bytes,
    );
}

/// The standard process figures under `prefix`; the supervisor also gets its start time.
fn process(reg: &mut Registry, prefix: &str, what: &str, p: &ProcStats, start_time: bool) {
    counter(
        reg,
        &format!("{prefix}_cpu_seconds"),
        &format!("CPU time of {what}"),
        p.cpu_seconds,
    );
    gauge(
        reg,
        &format!("{prefix}_resident_memory_bytes"),
        &format!("Resident memory of {what}"),
        p.resident_bytes as f64,
    );
    gauge(
        reg,
        &format!("{prefix}_virtual_memory_bytes"),
        &format!("Virtual memory of {what}"),
        p.virtual_bytes as f64,
    );
    gauge(
        reg,
        &format!("{prefix}_open_fds"),
        &format!("Open file descriptors of {what}"),
        p.open_fds as f64,
    );
    gauge(
        reg,
        &format!("{prefix}_max_fds"),
        &format!("File descriptor limit of {what}"),
        p.max_fds as f64,
    );
    if start_time {
        gauge(
            reg,
            &format!("{prefix}_start_time_seconds"),
            &format!("Unix time {what} started"),
            p.start_time_seconds,
        );
    } else {
        gauge(
            reg,
            &format!("{prefix}_threads"),
            &format!("Threads of {what}"),
            p.threads as f64,
        );
    }
}

/// Counts summed by label, every label of `fixed` included (at 0 until something happens, so
/// `rate()` and alerts see the series from the start), then any other label seen, in order.
fn with_every_label(
    fixed: &[&'static str],
    counts: impl Iterator<Item = (&'static str, u64)>,
) -> Vec<(String, f64)> {
    let mut out: Vec<(&str, u64)> = fixed.iter().map(|l| (*l, 0)).collect();
    for (label, n) in counts {
        match out.iter_mut().find(|(l, _)| *l == label) {
            Some((_, total)) => *total += n,
            None => out.push((label, n)),
        }
    }
    out.into_iter()
        .map(|(l, n)| (l.to_owned(), n as f64))
        .collect()
}

fn gauge(reg: &mut Registry, name: &str, help: &str, value: f64) {
    let g = F64Gauge::default();
    g.set(value);
    reg.register(name, help, g);
}

pub(super) fn counter(reg: &mut Registry, name: &str, help: &str, value: f64) {
    let c = F64Counter::default();
    c.inc_by(value);
    reg.register(name, help, c);
}

/// A label value as the text formats need it: backslash, double quote and line feed escaped
/// (prometheus-client writes label values verbatim).
pub(crate) fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A help text: backslash and line feed escaped.
pub(crate) fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn gauge_family(reg: &mut Registry, name: &str, help: &str, label: &str, items: &[(String, f64)]) {
    let fam = Family::<Labels, F64Gauge>::default();
    for (value, v) in items {
        fam.get_or_create(&vec![(label.to_owned(), escape_label(value))])
            .set(*v);
    }
    reg.register(name, help, fam);
}

fn counter_family(
    reg: &mut Registry,
    name: &str,
    help: &str,
    label: &str,
    items: &[(String, f64)],
) {
    let fam = Family::<Labels, F64Counter>::default();
    for (value, v) in items {
        fam.get_or_create(&vec![(label.to_owned(), escape_label(value))])
            .inc_by(*v);
    }
    reg.register(name, help, fam);
}

fn bool_f(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The files autosave writes by default (`epics_ioc_autosave_file_age_seconds`).
pub const AUTOSAVE_FILES: [&str; 2] = ["autosave_settings.sav", "autosave_positions.sav"];

/// How long ago each autosave file in `dir` was written; missing files are left out.
pub fn autosave_ages(dir: &std::path::Path) -> Vec<(String, f64)> {
    AUTOSAVE_FILES
        .iter()
        .filter_map(|name| {
            let modified = std::fs::metadata(dir.join(name)).ok()?.modified().ok()?;
            let age = SystemTime::now()
                .duration_since(modified)
                .unwrap_or_default();
            Some((name.to_string(), age.as_secs_f64()))
        })
        .collect()
}

/// Rewrite OpenMetrics text into the classic Prometheus format: counters' HELP/TYPE lines name
/// the `_total` sample, the info family becomes a gauge named `*_info`, and `# EOF` and
/// `# UNIT` lines go.
pub fn to_classic(openmetrics: &str) -> String {
    let mut renamed = std::collections::HashMap::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            match rest.rsplit_once(' ') {
                Some((name, "counter")) => {
                    renamed.insert(name.to_owned(), (format!("{name}_total"), "counter"))
                }
                Some((name, "info")) => {
                    renamed.insert(name.to_owned(), (format!("{name}_info"), "gauge"))
                }
                _ => None,
            };
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = classic_line(line, &renamed);
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn classic_line(
    line: &str,
    renamed: &std::collections::HashMap<String, (String, &str)>,
) -> Option<String> {
    if let Some(rest) = line.strip_prefix("# HELP ") {
        let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
        let (new, _) = renamed.get(name)?;
        return Some(format!("# HELP {new} {help}"));
    }
    let rest = line.strip_prefix("# TYPE ")?;
    let (name, _) = rest.rsplit_once(' ')?;
    let (new, kind) = renamed.get(name)?;
    Some(format!("# TYPE {new} {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        let health = Health {
            phase: Phase::Running,
            restarts: vec![("exit", 2)],
            last_exit: Some(LastExit::Code(1)),
            ..Health::default()
        };
        let ca = CaReport::default();
        openmetrics(&Snapshot {
            health: &health,
            ca: &ca,
            info: &Info::default(),
            ioc: None,
            me: None,
            autosave_ages: vec![("autosave_settings.sav".into(), 3.0)],
        })
    }

    #[test]
    fn label_values_from_outside_are_escaped() {
        // a wait_list.yaml device name is the instance author's text
        let health = Health {
            hw_pending: vec!["dev \"a\"\\b\nc".into()],
            ..Health::default()
        };
        let ca = CaReport::default();
        let text = openmetrics(&Snapshot {
            health: &health,
            ca: &ca,
            info: &Info::default(),
            ioc: None,
            me: None,
            autosave_ages: vec![],
        });
        let want = r#"epics_ioc_hw_wait_pending{device="dev \"a\"\\b\nc"} 1.0"#;
        assert!(
            text.lines().any(|l| l == want),
            "missing {want:?} in\n{text}"
        );
    }

    #[test]
    fn names_from_the_spec() {
        let text = sample();
        for line in [
            "epics_ioc_up 1.0",
            "epics_ioc_state{state=\"running\"} 1.0",
            "epics_ioc_state{state=\"failed\"} 0.0",
            "epics_ioc_restarts_total{reason=\"exit\"} 2.0",
            "epics_ioc_last_exit_code 1.0",
            "epics_ioc_ready 0.0",
            "epics_ioc_autosave_file_age_seconds{file=\"autosave_settings.sav\"} 3.0",
            "epics_ioc_config_error 0.0",
            "epics_ioc_config_reloads_total{result=\"ok\"} 0.0",
            "epics_ioc_config_reloads_total{result=\"invalid\"} 0.0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn counters_have_every_label_from_the_start() {
        let text = openmetrics(&Snapshot {
            health: &Health::default(),
            ca: &CaReport::default(),
            info: &Info::default(),
            ioc: None,
            me: None,
            autosave_ages: Vec::new(),
        });
        let zero = |family: &str, label: &str, values: &[&str]| {
            for v in values {
                let line = format!("{family}_total{{{label}=\"{v}\"}} 0.0");
                assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
            }
        };
        zero("epics_ioc_restarts", "reason", &RESTART_REASONS);
        zero("epics_ioc_ca_probes", "result", &CA_RESULTS);
        zero("epics_ioc_generate_errors", "step", &START_STEPS);
    }

    #[test]
    fn counts_add_up_by_label_and_keep_unknown_labels() {
        let got = with_every_label(&["a", "b"], [("b", 1), ("c", 2), ("b", 1)].into_iter());
        assert_eq!(
            got,
            vec![("a".into(), 0.0), ("b".into(), 2.0), ("c".into(), 2.0)]
        );
    }

    #[test]
    fn classic_names_counters_by_their_samples() {
        let text = to_classic(sample().as_str());
        assert!(
            text.contains("# TYPE epics_ioc_restarts_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE epics_ioc_info gauge\n"), "{text}");
        assert!(!text.contains("# EOF"));
    }
}
