//! What to export: the entries of a `--pv-metrics` file (checked at start, errors name the
//! file and line) and the devIocStats PVs exported by default.
//!
//! A file is a YAML list of `{pv, metric, help?, labels?}`. `$(IOC_PREFIX)` and `$(IOC_NAME)`
//! in `pv`, `help` and label values come from the environment; any other `$(…)` is an error,
//! so a typo never turns into a PV nobody serves.

use std::collections::HashMap;
use std::path::Path;

use serde_yaml::Value;

use crate::config::{parse_located, ConfigError};

/// Most entries a file (plus the devIocStats defaults) may hold; each is one subscription.
pub const MAX_ENTRIES: usize = 10_000;
/// Most labels on one entry.
pub const MAX_LABELS: usize = 16;
/// Longest PV name (CA sends names in one message; EPICS record names are far shorter).
pub const MAX_PV_NAME: usize = 255;
/// Longest metric or label name, and label value.
pub const MAX_NAME: usize = 200;

/// Metric-name prefixes iocrun's own metrics use; a file may not take them.
pub const RESERVED_PREFIXES: [&str; 3] = ["epics_ioc_", "epics_pv_", "process_"];
/// Sample-name suffixes OpenMetrics gives other metric types: a gauge may not end with one.
const RESERVED_SUFFIXES: [&str; 8] = [
    "_total", "_created", "_count", "_sum", "_bucket", "_gcount", "_gsum", "_info",
];
/// The label of the enum state family (`METRIC_state{…, state="…"}`).
pub const STATE_LABEL: &str = "state";

/// How a PV's value becomes the gauge's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// Numbers as they are, enums as their index, strings parsed as a number (else NaN).
    Plain,
    /// devIocStats' UPTIME text (`3 days, 04:05:06`) in seconds.
    UptimeText,
}

/// One exported gauge series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub pv: String,
    pub metric: String,
    pub help: String,
    pub labels: Vec<(String, String)>,
    pub transform: Transform,
}

/// devIocStats PVs exported without a file when the instance has an iocStats entity:
/// (record suffix, metric, help, transform). Names follow the iocAdminSoft database.
pub const IOC_STATS: [(&str, &str, &str, Transform); 15] = [
    (
        "IOC_CPU_LOAD",
        "epics_ioc_stats_cpu_load_percent",
        "CPU load of the IOC process (devIocStats IOC_CPU_LOAD)",
        Transform::Plain,
    ),
    (
        "SYS_CPU_LOAD",
        "epics_ioc_stats_system_cpu_load_percent",
        "CPU load of the whole host (devIocStats SYS_CPU_LOAD)",
        Transform::Plain,
    ),
    (
        "MEM_USED",
        "epics_ioc_stats_memory_used_bytes",
        "Memory the IOC allocated (devIocStats MEM_USED)",
        Transform::Plain,
    ),
    (
        "MEM_FREE",
        "epics_ioc_stats_memory_free_bytes",
        "Free memory on the host (devIocStats MEM_FREE)",
        Transform::Plain,
    ),
    (
        "MEM_MAX",
        "epics_ioc_stats_memory_max_bytes",
        "Total memory on the host (devIocStats MEM_MAX)",
        Transform::Plain,
    ),
    (
        "CA_CLNT_CNT",
        "epics_ioc_stats_ca_clients",
        "Channel access clients connected (devIocStats CA_CLNT_CNT)",
        Transform::Plain,
    ),
    (
        "CA_CONN_CNT",
        "epics_ioc_stats_ca_connections",
        "Channel access channels connected (devIocStats CA_CONN_CNT)",
        Transform::Plain,
    ),
    (
        "RECORD_CNT",
        "epics_ioc_stats_records",
        "Records in the IOC database (devIocStats RECORD_CNT)",
        Transform::Plain,
    ),
    (
        "FD_CNT",
        "epics_ioc_stats_fds",
        "File descriptors in use (devIocStats FD_CNT)",
        Transform::Plain,
    ),
    (
        "FD_MAX",
        "epics_ioc_stats_fds_max",
        "File descriptor limit (devIocStats FD_MAX)",
        Transform::Plain,
    ),
    (
        "SCANONCE_Q_USED",
        "epics_ioc_stats_scan_once_queue_used",
        "Entries in the scan-once queue (devIocStats SCANONCE_Q_USED)",
        Transform::Plain,
    ),
    (
        "SCANONCE_Q_HIGH",
        "epics_ioc_stats_scan_once_queue_high_water",
        "Most entries the scan-once queue held (devIocStats SCANONCE_Q_HIGH)",
        Transform::Plain,
    ),
    (
        "SCANONCE_Q_SIZE",
        "epics_ioc_stats_scan_once_queue_size",
        "Capacity of the scan-once queue (devIocStats SCANONCE_Q_SIZE)",
        Transform::Plain,
    ),
    (
        "HEARTBEAT",
        "epics_ioc_stats_heartbeat",
        "1 Hz counter since the IOC started (devIocStats HEARTBEAT)",
        Transform::Plain,
    ),
    (
        "UPTIME",
        "epics_ioc_stats_uptime_seconds",
        "Seconds since the IOC started (devIocStats UPTIME)",
        Transform::UptimeText,
    ),
];

/// The devIocStats entries for an iocStats entity whose `IOC` argument is `prefix`.
pub fn ioc_stats(prefix: &str) -> Vec<Entry> {
    IOC_STATS
        .iter()
        .map(|(suffix, metric, help, transform)| Entry {
            pv: format!("{prefix}:{suffix}"),
            metric: (*metric).to_owned(),
            help: (*help).to_owned(),
            labels: Vec::new(),
            transform: *transform,
        })
        .collect()
}

/// Read and check a `--pv-metrics` file; `get` looks up environment variables.
pub fn load(path: &Path, get: impl Fn(&str) -> Option<String>) -> Result<Vec<Entry>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text, get)
}

/// Check the text of a `--pv-metrics` file (named `path` in errors).
pub fn parse(
    path: &Path,
    text: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>, ConfigError> {
    let (value, at) = parse_located(path, text)?;
    let err = |pos: Option<(usize, usize)>, message: String| ConfigError::Yaml {
        path: path.to_owned(),
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
        message,
    };
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items,
        _ => {
            return Err(err(
                Some((1, 1)),
                "expected a list of {pv, metric, help, labels} entries".into(),
            ))
        }
    };
    if items.len() > MAX_ENTRIES {
        return Err(err(
            None,
            format!(
                "{} entries, more than the {MAX_ENTRIES} allowed",
                items.len()
            ),
        ));
    }
    let mut out: Vec<Entry> = Vec::with_capacity(items.len());
    // (metric, labels) → line of the first entry, and each metric's help
    let mut series: HashMap<(String, Vec<(String, String)>), usize> = HashMap::new();
    // each metric's explicit help and label names, and the line that set them
    let mut helps: HashMap<String, (Option<String>, usize)> = HashMap::new();
    let mut label_names: HashMap<String, (Vec<String>, usize)> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let item_at = at.items.get(i).copied();
        let key_at = |key: &str| {
            at.keys
                .get(i)
                .and_then(|ks| ks.iter().find(|(k, _, _)| k == key))
                .map(|(_, l, c)| (*l, *c))
                .or(item_at)
        };
        let (entry, explicit_help) =
            entry(item, &get).map_err(|(key, message)| err(key_at(key), message))?;
        let line = item_at.map_or(0, |p| p.0);
        let key = (entry.metric.clone(), sorted(&entry.labels));
        if let Some(first) = series.insert(key, line) {
            return Err(err(
                item_at,
                format!(
                    "duplicate series {}{} (first at line {first})",
                    entry.metric,
                    label_text(&entry.labels)
                ),
            ));
        }
        let names: Vec<String> = sorted(&entry.labels).into_iter().map(|(k, _)| k).collect();
        match label_names.get(&entry.metric) {
            Some((first_names, first)) if *first_names != names => {
                return Err(err(
                    key_at("labels"),
                    format!(
                        "metric {} has other label names at line {first}: every series of a metric needs the same label names",
                        entry.metric
                    ),
                ))
            }
            Some(_) => {}
            None => {
                label_names.insert(entry.metric.clone(), (names, line));
            }
        }
        match (helps.get_mut(&entry.metric), explicit_help) {
            (Some((Some(help), first)), Some(h)) if *help != h => {
                return Err(err(
                    key_at("help"),
                    format!(
                        "metric {} has another help text at line {first}: one metric, one help",
                        entry.metric
                    ),
                ))
            }
            (Some(slot), Some(h)) if slot.0.is_none() => *slot = (Some(h), line),
            (Some(_), _) => {}
            (None, h) => {
                helps.insert(entry.metric.clone(), (h, line));
            }
        }
        out.push(entry);
    }
    // one help per metric: the explicit one, else the PV's name when the metric has one series
    let mut series_of: HashMap<String, usize> = HashMap::new();
    for e in &out {
        *series_of.entry(e.metric.clone()).or_default() += 1;
    }
    for e in &mut out {
        e.help = match &helps[&e.metric].0 {
            Some(h) => h.clone(),
            None if series_of[&e.metric] == 1 => format!("EPICS PV {}", e.pv),
            None => format!("EPICS PVs exported as {}", e.metric),
        };
    }
    for e in &out {
        if let Some(base) = e.metric.strip_suffix("_state") {
            if helps.contains_key(base) {
                let line = helps[&e.metric].1;
                return Err(err(
                    Some((line, 1)),
                    format!(
                        "metric {} clashes with the enum state family of {base}",
                        e.metric
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// One list item (its help empty until the caller settles it) and its explicit help, or the
/// key at fault and why.
fn entry(
    item: &Value,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(Entry, Option<String>), (&'static str, String)> {
    let Value::Mapping(map) = item else {
        return Err(("", "an entry must be a mapping with pv and metric".into()));
    };
    for k in map.keys() {
        let name = k.as_str().unwrap_or_default();
        if !["pv", "metric", "help", "labels"].contains(&name) {
            return Err((
                "",
                format!(
                    "unknown key '{}' (allowed: pv, metric, help, labels)",
                    yaml_text(k)
                ),
            ));
        }
    }
    let text = |key: &'static str| -> Result<Option<String>, (&'static str, String)> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err((key, format!("{key} must be text, not {}", yaml_text(other)))),
        }
    };
    let pv = text("pv")?.ok_or(("", "missing pv".to_owned()))?;
    let pv = expand(&pv, get).map_err(|m| ("pv", m))?;
    if pv.is_empty() || pv.len() > MAX_PV_NAME || pv.chars().any(char::is_whitespace) {
        return Err((
            "pv",
            format!("bad PV name '{pv}': 1 to {MAX_PV_NAME} characters, no blanks"),
        ));
    }
    let metric = text("metric")?.ok_or(("", "missing metric".to_owned()))?;
    check_name(&metric, "metric").map_err(|m| ("metric", m))?;
    if let Some(p) = RESERVED_PREFIXES.iter().find(|p| metric.starts_with(*p)) {
        return Err((
            "metric",
            format!("metric name '{metric}' starts with '{p}', which iocrun's own metrics use"),
        ));
    }
    if let Some(s) = RESERVED_SUFFIXES.iter().find(|s| metric.ends_with(*s)) {
        return Err((
            "metric",
            format!("metric name '{metric}' ends with '{s}', which OpenMetrics keeps for other metric types"),
        ));
    }
    let help = match text("help")? {
        Some(h) => Some(expand(&h, get).map_err(|m| ("help", m))?),
        None => None,
    };
    let labels = match map.get("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Mapping(m)) => {
            if m.len() > MAX_LABELS {
                return Err(("labels", format!("more than {MAX_LABELS} labels")));
            }
            let mut labels = Vec::with_capacity(m.len());
            for (k, v) in m {
                let name = k.as_str().unwrap_or_default().to_owned();
                check_name(&name, "label").map_err(|m| ("labels", m))?;
                if name.starts_with("__") || name == STATE_LABEL {
                    return Err(("labels", format!("label name '{name}' is reserved")));
                }
                let value = match v {
                    Value::String(s) => expand(s, get).map_err(|m| ("labels", m))?,
                    Value::Number(_) | Value::Bool(_) => yaml_text(v),
                    other => {
                        return Err((
                            "labels",
                            format!("label {name} must be text, not {}", yaml_text(other)),
                        ))
                    }
                };
                if value.len() > MAX_NAME {
                    return Err((
                        "labels",
                        format!("label {name}'s value is over {MAX_NAME} bytes"),
                    ));
                }
                labels.push((name, value));
            }
            labels
        }
        Some(other) => {
            return Err((
                "labels",
                format!(
                    "labels must be a mapping of name: value, not {}",
                    yaml_text(other)
                ),
            ))
        }
    };
    let entry = Entry {
        pv,
        metric,
        help: String::new(),
        labels,
        transform: Transform::Plain,
    };
    Ok((entry, help))
}

/// A Prometheus metric or label name: `[a-zA-Z_][a-zA-Z0-9_]*`, at most [`MAX_NAME`] bytes
/// (colons are left to recording rules).
fn check_name(name: &str, what: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && name.len() <= MAX_NAME && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "bad {what} name '{name}': letters, digits and '_', not starting with a digit"
        ))
    }
}

/// Expand `$(IOC_PREFIX)` and `$(IOC_NAME)`; any other `$(…)`, or one of these unset, is an
/// error.
fn expand(text: &str, get: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find(')')
            .ok_or_else(|| format!("unclosed '$(' in '{text}'"))?;
        let name = &after[..end];
        if name != "IOC_PREFIX" && name != "IOC_NAME" {
            return Err(format!(
                "unknown macro $({name}) in '{text}' (only $(IOC_PREFIX) and $(IOC_NAME) are expanded)"
            ));
        }
        let value = get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("$({name}) is used but {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn sorted(labels: &[(String, String)]) -> Vec<(String, String)> {
    let mut l = labels.to_vec();
    l.sort();
    l
}

fn label_text(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

fn yaml_text(v: &Value) -> String {
    serde_yaml::to_string(v)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "IOC_PREFIX" => Some("BL01T-EA-IOC-01".into()),
            "IOC_NAME" => Some("bl01t-ea-ioc-01".into()),
            _ => None,
        }
    }

    fn check(text: &str) -> Result<Vec<Entry>, String> {
        parse(Path::new("pv.yaml"), text, env).map_err(|e| e.to_string())
    }

    #[test]
    fn entries_with_macros_help_and_labels() {
        let got = check(
            "- pv: $(IOC_PREFIX):TEMP\n  metric: hutch_temperature_celsius\n  labels: {sensor: t1, n: 2}\n\
             - pv: X:MODE\n  metric: pump_mode\n  help: Mode of $(IOC_NAME)\n",
        )
        .unwrap();
        assert_eq!(got[0].pv, "BL01T-EA-IOC-01:TEMP");
        assert_eq!(
            got[0].labels,
            vec![("sensor".into(), "t1".into()), ("n".into(), "2".into())]
        );
        assert_eq!(got[0].help, "EPICS PV BL01T-EA-IOC-01:TEMP");
        assert_eq!(got[1].help, "Mode of bl01t-ea-ioc-01");
        assert_eq!(check("").unwrap(), Vec::new());
    }

    #[test]
    fn bad_entries_name_the_line() {
        let cases = [
            (
                "- pv: A\n  metric: ok_one\n- pv: B\n  metric: 9bad\n",
                "pv.yaml:4:3: bad metric name '9bad'",
            ),
            (
                "- pv: A\n  metric: m\n- pv: B\n  metric: m\n",
                "pv.yaml:3:3: duplicate series m (first at line 1)",
            ),
            (
                "- pv: A\n  metric: epics_ioc_up\n",
                "pv.yaml:2:3: metric name 'epics_ioc_up' starts with 'epics_ioc_'",
            ),
            (
                "- pv: A\n  metric: m\n  colour: red\n",
                "pv.yaml:1:3: unknown key 'colour'",
            ),
            (
                "- pv: $(P):A\n  metric: m\n",
                "pv.yaml:1:3: unknown macro $(P)",
            ),
            (
                "- pv: A\n  metric: hits_total\n",
                "pv.yaml:2:3: metric name 'hits_total' ends with '_total'",
            ),
            (
                "- pv: A\n  metric: m\n  labels: {state: x}\n",
                "pv.yaml:3:3: label name 'state' is reserved",
            ),
            (
                "- {pv: A, metric: m, labels: {a: x}, help: one}\n- pv: B\n  metric: m\n  labels: {a: y}\n  help: two\n",
                "pv.yaml:5:3: metric m has another help text at line 1",
            ),
            (
                "- pv: A\n  metric: m\n- pv: B\n  metric: m\n  labels: {a: b}\n",
                "pv.yaml:5:3: metric m has other label names at line 1",
            ),
            ("pv: A\n", "pv.yaml:1:1: expected a list"),
        ];
        for (text, want) in cases {
            let e = check(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}:\n got  {e}\n want {want}");
        }
    }

    #[test]
    fn unset_macro_is_an_error() {
        let e = parse(
            Path::new("f"),
            "- pv: $(IOC_PREFIX):A\n  metric: m\n",
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("IOC_PREFIX is not set"), "{e}");
    }

    #[test]
    fn same_metric_with_other_labels_is_fine() {
        let got = check(
            "- {pv: A, metric: m, labels: {n: '1'}}\n- {pv: B, metric: m, labels: {n: '2'}, help: H}\n",
        )
        .unwrap();
        assert_eq!((got[0].help.as_str(), got[1].help.as_str()), ("H", "H"));
    }

    #[test]
    fn ioc_stats_names_follow_the_database() {
        let e = ioc_stats("BL01T");
        assert!(e
            .iter()
            .any(|e| e.pv == "BL01T:CA_CLNT_CNT" && e.metric == "epics_ioc_stats_ca_clients"));
        assert!(e.iter().all(|e| e.metric.starts_with("epics_ioc_stats_")));
    }
}
