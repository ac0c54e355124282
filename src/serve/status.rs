//! `iocrun status`: what a person (or a script, with `--json`) wants to know about the running
//! IOC, built from the same snapshots the probes read.

use std::time::SystemTime;

use serde::Serialize;

use super::health::{LastExit, ProbeKind};
use super::http::AppState;

/// One answer to `status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The phase label (`running`, `backoff`, `generating`, `failed`, …).
    pub state: &'static str,
    /// Why the phase is `failed`, when it is.
    pub failure: Option<String>,
    pub pid: Option<u32>,
    /// Seconds since the current IOC process started.
    pub uptime_seconds: Option<f64>,
    /// RFC 3339 time the current IOC process started.
    pub started: Option<String>,
    pub restarts: u64,
    /// Restarts by reason (`exit`, `signal`, `request`, `reload`).
    pub restarts_by_reason: Vec<(&'static str, u64)>,
    /// How the previous IOC process ended: `exit status N` or `signal N (NAME)`.
    pub last_exit: Option<String>,
    /// Why the config folder cannot be used (the IOC runs on its last good outputs).
    pub config_error: Option<String>,
    /// Devices of wait_list.yaml not reachable yet.
    pub hw_pending: Vec<String>,
    /// The readiness verdict and its reason.
    pub ready: bool,
    pub ready_reason: String,
}

impl Status {
    /// The status now, from the latest snapshots.
    pub fn now(state: &AppState) -> Status {
        let ready = state.verdict(ProbeKind::Ready);
        let h = state.health.borrow();
        let uptime = h
            .ioc_started
            .and_then(|t| SystemTime::now().duration_since(t).ok());
        Status {
            state: h.phase.label(),
            failure: match &h.phase {
                super::Phase::Failed { message } => Some(message.clone()),
                _ => None,
            },
            pid: h.ioc_pid,
            uptime_seconds: uptime.map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
            started: h.ioc_started.map(crate::timefmt::rfc3339),
            restarts: h.restart_total(),
            restarts_by_reason: h.restarts.clone(),
            last_exit: h.last_exit.map(|e| match e {
                LastExit::Code(c) => format!("exit status {c}"),
                LastExit::Signal(s) => {
                    format!("signal {s} ({})", crate::supervise::signal_name(s))
                }
            }),
            config_error: h.config_error.clone(),
            hw_pending: h.hw_pending.clone(),
            ready: ready.ok,
            ready_reason: ready.reason,
        }
    }

    /// `key: value` lines for people.
    pub fn text(&self) -> String {
        let none = || "-".to_owned();
        let mut lines = vec![format!("state: {}", self.state)];
        if let Some(f) = &self.failure {
            lines.push(format!("failure: {f}"));
        }
        lines.push(format!(
            "pid: {}",
            self.pid.map_or_else(none, |p| p.to_string())
        ));
        lines.push(format!(
            "uptime: {}",
            match (self.uptime_seconds, &self.started) {
                (Some(u), Some(at)) => format!("{u:.1}s (since {at})"),
                _ => none(),
            }
        ));
        let by: Vec<String> = self
            .restarts_by_reason
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        lines.push(match by.is_empty() {
            true => format!("restarts: {}", self.restarts),
            false => format!("restarts: {} ({})", self.restarts, by.join(", ")),
        });
        lines.push(format!(
            "last exit: {}",
            self.last_exit.clone().unwrap_or_else(none)
        ));
        lines.push(format!(
            "config error: {}",
            self.config_error.clone().unwrap_or_else(none)
        ));
        lines.push(format!(
            "hardware pending: {}",
            match self.hw_pending.is_empty() {
                true => none(),
                false => self.hw_pending.join(", "),
            }
        ));
        let verdict = if self.ready { "ok" } else { "fail" };
        lines.push(format!("ready: {verdict}: {}", self.ready_reason));
        lines.join("\n") + "\n"
    }

    /// One line of JSON for scripts.
    pub fn json(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        // reasons as an object, not a list of pairs
        if let Some(obj) = value.as_object_mut() {
            let by: serde_json::Map<String, serde_json::Value> = self
                .restarts_by_reason
                .iter()
                .map(|(r, n)| (r.to_string(), (*n).into()))
                .collect();
            obj.insert("restarts_by_reason".into(), by.into());
        }
        value.to_string() + "\n"
    }
}
