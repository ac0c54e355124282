//! The latest state of every monitored PV, written by the monitor task and read by scrapes
//! (which only lock, copy numbers into the registry and unlock: no Channel Access at scrape).
//!
//! Honesty rules: a gauge has a sample only while its PV is connected and has sent a value
//! on the current connection; a disconnect drops the value at once (no stale number is shown
//! as current). `epics_pv_connected{pv}` is always there, 0 or 1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use prometheus_client::registry::Registry;

use super::file::{Entry, Transform, STATE_LABEL};
use crate::serve::ca::monitor::{Event, SentCounter};
use crate::serve::ca::{TimeValue, Values};
use crate::serve::metrics::{counter, escape_help, escape_label as escape, F64Gauge, Labels};

/// Seconds from the Unix epoch to the EPICS epoch (1990-01-01 UTC).
const EPICS_EPOCH: f64 = 631_152_000.0;

/// The last value of one PV.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    value: Scalar,
    status: i16,
    severity: i16,
    /// The record's time stamp, Unix seconds.
    stamp: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Number(f64),
    Enum(u16),
    /// At most 40 bytes (`MAX_STRING_SIZE`).
    Text(String),
}

/// One PV, whatever number of entries export it. Its size is bounded: a 40-byte string at
/// most, and an enum's 16 state strings of at most 26 bytes.
#[derive(Debug, Clone, Default)]
struct Pv {
    /// The name, escaped for a label value.
    name: String,
    connected: bool,
    sample: Option<Sample>,
    /// Escaped for label values.
    enum_strings: Vec<String>,
}

#[derive(Debug, Default)]
struct Plan {
    /// Help texts and label values escaped for the text format (the encoder writes them as
    /// they are).
    entries: Vec<Entry>,
    /// Each entry's PV, as an index into `pvs`.
    entry_pv: Vec<usize>,
    pvs: Vec<Pv>,
}

/// Shared between the monitor task and the HTTP handler.
#[derive(Debug, Default)]
pub struct Table {
    plan: Mutex<Plan>,
    /// Messages sent on monitor circuits (`epics_ioc_ca_messages_sent_total`).
    pub sent: SentCounter,
    /// Updates received (`epics_pv_updates_total`).
    pub updates: AtomicU64,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, Plan> {
        // a panic while holding the lock leaves plain data: keep using it
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace what is exported (every PV starts disconnected); returns the distinct PV names
    /// to monitor, in order.
    pub fn set_entries(&self, entries: Vec<Entry>) -> Vec<String> {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut pvs: Vec<Pv> = Vec::new();
        let entry_pv = entries
            .iter()
            .map(|e| {
                *index.entry(e.pv.clone()).or_insert_with(|| {
                    pvs.push(Pv {
                        name: e.pv.clone(),
                        ..Pv::default()
                    });
                    pvs.len() - 1
                })
            })
            .collect();
        let names = pvs.iter().map(|p| p.name.clone()).collect();
        for pv in &mut pvs {
            pv.name = escape(&pv.name);
        }
        let entries = entries
            .into_iter()
            .map(|e| Entry {
                help: escape_help(&e.help),
                labels: e
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), escape(v)))
                    .collect(),
                ..e
            })
            .collect();
        *self.lock() = Plan {
            entries,
            entry_pv,
            pvs,
        };
        names
    }

    /// Every PV is disconnected (the circuit dropped or the IOC stopped).
    pub fn disconnect_all(&self) {
        for pv in &mut self.lock().pvs {
            pv.connected = false;
            pv.sample = None;
        }
    }

    /// Apply one monitor event to PV `index`.
    pub fn apply(&self, index: usize, event: Event) {
        let mut plan = self.lock();
        let Some(pv) = plan.pvs.get_mut(index) else {
            return;
        };
        match event {
            Event::Connected { .. } => {
                pv.connected = true;
                pv.sample = None;
            }
            Event::NotFound | Event::Disconnected => {
                pv.connected = false;
                pv.sample = None;
            }
            Event::EnumStrings(s) => pv.enum_strings = s.iter().map(|s| escape(s)).collect(),
            Event::Failed => pv.sample = None,
            Event::Value(v) => {
                self.updates.fetch_add(1, Ordering::Relaxed);
                pv.sample = sample(v);
            }
        }
    }

    /// Add every PV metric to `reg`.
    pub fn register(&self, reg: &mut Registry) {
        let plan = self.lock();
        let mut families: Vec<(String, String, Series)> = Vec::new();
        let mut states: Vec<(String, String, Series)> = Vec::new();
        for (entry, &pvi) in plan.entries.iter().zip(&plan.entry_pv) {
            let pv = &plan.pvs[pvi];
            let series = family(&mut families, &entry.metric, &entry.help, &entry.labels);
            let Some(s) = pv.sample.as_ref().filter(|_| pv.connected) else {
                continue;
            };
            series.set(&entry.labels, number(&s.value, entry.transform));
            if let Scalar::Enum(i) = s.value {
                if pv.enum_strings.is_empty() {
                    continue;
                }
                let name = format!("{}_state", entry.metric);
                let help = format!("{} (one-hot by enum state)", entry.help);
                let state_labels = [(STATE_LABEL.to_owned(), String::new())];
                let series = family(&mut states, &name, &help, &state_labels);
                for (k, state) in pv.enum_strings.iter().enumerate() {
                    let mut labels = entry.labels.clone();
                    labels.push((STATE_LABEL.to_owned(), state.clone()));
                    series.set(&labels, if k == usize::from(i) { 1.0 } else { 0.0 });
                }
            }
        }
        for (name, help, series) in families.into_iter().chain(states) {
            match series {
                // a metric without labels has one series: a plain gauge, or nothing yet
                Series::Plain(Some(v)) => {
                    let g = F64Gauge::default();
                    g.set(v);
                    reg.register(name, help, g);
                }
                Series::Plain(None) => reg.register(name, help, Family::default()),
                Series::Labelled(fam) => reg.register(name, help, fam),
            }
        }
        let per_pv = |f: &dyn Fn(&Pv) -> Option<f64>| {
            let fam = Family::default();
            for pv in &plan.pvs {
                if let Some(v) = f(pv) {
                    fam.get_or_create(&vec![("pv".to_owned(), pv.name.clone())])
                        .set(v);
                }
            }
            fam
        };
        reg.register(
            "epics_pv_connected",
            "1 while the PV's channel is connected",
            per_pv(&|pv| Some(if pv.connected { 1.0 } else { 0.0 })),
        );
        let current = |pv: &Pv| pv.sample.clone().filter(|_| pv.connected);
        reg.register(
            "epics_pv_alarm_severity",
            "Alarm severity of the PV's last update: 0 none, 1 minor, 2 major, 3 invalid",
            per_pv(&|pv| current(pv).map(|s| f64::from(s.severity))),
        );
        reg.register(
            "epics_pv_alarm_status",
            "Alarm status code of the PV's last update (0 none)",
            per_pv(&|pv| current(pv).map(|s| f64::from(s.status))),
        );
        reg.register(
            "epics_pv_timestamp_seconds",
            "The record's time stamp of the PV's last update, Unix seconds",
            per_pv(&|pv| current(pv).map(|s| s.stamp)),
        );
        drop(plan);
        counter(
            reg,
            "epics_pv_updates",
            "Monitor updates received from the IOC",
            self.updates.load(Ordering::Relaxed) as f64,
        );
        counter(
            reg,
            "epics_ioc_ca_messages_sent",
            "Channel access messages sent by the PV monitors (scrapes send none)",
            self.sent.load(Ordering::Relaxed) as f64,
        );
    }
}

type Family = prometheus_client::metrics::family::Family<Labels, F64Gauge>;

/// The series of one metric: every entry of a metric has the same label names (checked when
/// the file is read), so a metric is either one unlabelled gauge or a labelled family.
enum Series {
    Plain(Option<f64>),
    Labelled(Family),
}

impl Series {
    fn set(&mut self, labels: &Labels, v: f64) {
        match self {
            Series::Plain(value) => *value = Some(v),
            Series::Labelled(fam) => {
                fam.get_or_create(labels).set(v);
            }
        }
    }
}

/// The series named `name` in `list`, created on first use.
fn family<'a>(
    list: &'a mut Vec<(String, String, Series)>,
    name: &str,
    help: &str,
    labels: &[(String, String)],
) -> &'a mut Series {
    let i = match list.iter().position(|(n, _, _)| n == name) {
        Some(i) => i,
        None => {
            let series = if labels.is_empty() {
                Series::Plain(None)
            } else {
                Series::Labelled(Family::default())
            };
            list.push((name.to_owned(), help.to_owned(), series));
            list.len() - 1
        }
    };
    &mut list[i].2
}

fn sample(v: TimeValue) -> Option<Sample> {
    let value = match &v.values {
        Values::Strings(s) => Scalar::Text(String::from_utf8_lossy(s.first()?).into_owned()),
        Values::Enums(e) => Scalar::Enum(*e.first()?),
        Values::Shorts(x) => Scalar::Number(f64::from(*x.first()?)),
        Values::Floats(x) => Scalar::Number(f64::from(*x.first()?)),
        Values::Chars(x) => Scalar::Number(f64::from(*x.first()?)),
        Values::Longs(x) => Scalar::Number(f64::from(*x.first()?)),
        Values::Doubles(x) => Scalar::Number(*x.first()?),
    };
    Some(Sample {
        value,
        status: v.status,
        severity: v.severity,
        stamp: EPICS_EPOCH + f64::from(v.secs) + f64::from(v.nsec) / 1e9,
    })
}

/// The gauge's number: enums as their index, text parsed (NaN when it is not a number).
fn number(value: &Scalar, transform: Transform) -> f64 {
    match (value, transform) {
        (Scalar::Number(x), _) => *x,
        (Scalar::Enum(i), _) => f64::from(*i),
        (Scalar::Text(t), Transform::UptimeText) => {
            crate::serve::check::uptime(&Values::Strings(vec![t.as_bytes().to_vec()]))
                .unwrap_or(f64::NAN)
        }
        (Scalar::Text(t), Transform::Plain) => t.trim().parse().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn entry(pv: &str, metric: &str, labels: &[(&str, &str)]) -> Entry {
        Entry {
            pv: pv.into(),
            metric: metric.into(),
            help: "h".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            transform: Transform::Plain,
        }
    }

    fn text(t: &Table) -> String {
        let mut reg = Registry::default();
        t.register(&mut reg);
        let mut out = String::new();
        encode(&mut out, &reg).unwrap();
        out
    }

    fn value(values: Values, severity: i16) -> Event {
        Event::Value(TimeValue {
            status: 0,
            severity,
            secs: 1,
            nsec: 0,
            values,
        })
    }

    #[test]
    fn values_show_only_while_connected() {
        let t = Table::default();
        let names = t.set_entries(vec![
            entry("A", "temp", &[("n", "1")]),
            entry("A", "temp_copy", &[]),
            entry("M", "mode", &[]),
        ]);
        assert_eq!(names, vec!["A", "M"], "one subscription per PV");
        let before = text(&t);
        assert!(
            before.contains("epics_pv_connected{pv=\"A\"} 0.0"),
            "{before}"
        );
        assert!(
            !before.contains("temp{"),
            "no value before the first update:\n{before}"
        );
        t.apply(0, Event::Connected { native_type: 6 });
        t.apply(0, value(Values::Doubles(vec![21.5]), 1));
        t.apply(1, Event::Connected { native_type: 3 });
        t.apply(1, Event::EnumStrings(vec!["Off".into(), "On".into()]));
        t.apply(1, value(Values::Enums(vec![1]), 0));
        let on = text(&t);
        for line in [
            "temp{n=\"1\"} 21.5",
            "temp_copy 21.5",
            "mode 1.0",
            "mode_state{state=\"Off\"} 0.0",
            "mode_state{state=\"On\"} 1.0",
            "epics_pv_connected{pv=\"A\"} 1.0",
            "epics_pv_alarm_severity{pv=\"A\"} 1.0",
            "epics_pv_timestamp_seconds{pv=\"A\"} 631152001.0",
            "epics_pv_updates_total 2.0",
        ] {
            assert!(on.lines().any(|l| l == line), "missing {line:?} in\n{on}");
        }
        t.disconnect_all();
        let off = text(&t);
        assert!(off.contains("epics_pv_connected{pv=\"A\"} 0.0"), "{off}");
        assert!(
            !off.contains("temp{n"),
            "a stale value stays hidden:\n{off}"
        );
        assert!(!off.contains("epics_pv_alarm_severity{"), "{off}");
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let t = Table::default();
        t.set_entries(vec![Entry {
            labels: vec![("k".into(), "q\"\\\n".into())],
            help: "two\nlines \\".into(),
            ..entry("A\"", "m", &[])
        }]);
        t.apply(0, Event::Connected { native_type: 3 });
        t.apply(0, Event::EnumStrings(vec!["a\"b".into()]));
        t.apply(0, value(Values::Enums(vec![0]), 0));
        let out = text(&t);
        for line in [
            "# HELP m two\\nlines \\\\.",
            "m{k=\"q\\\"\\\\\\n\"} 0.0",
            "m_state{k=\"q\\\"\\\\\\n\",state=\"a\\\"b\"} 1.0",
            "epics_pv_connected{pv=\"A\\\"\"} 1.0",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    }

    #[test]
    fn text_values() {
        assert_eq!(number(&Scalar::Text(" 42 ".into()), Transform::Plain), 42.0);
        assert!(number(&Scalar::Text("abc".into()), Transform::Plain).is_nan());
        assert_eq!(
            number(
                &Scalar::Text("1 day, 00:00:02".into()),
                Transform::UptimeText
            ),
            86402.0
        );
    }
}
