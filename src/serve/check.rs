//! The periodic Channel Access check behind readiness and liveness: read the IOC's own PV
//! (default `${IOC_PREFIX^^}:UPTIME`, as liveness.sh does) and cache the outcome on a `watch`
//! channel, so probes answer from memory in microseconds.
//!
//! Finding the server: when the IOC's pid is known, its own listening TCP sockets
//! (from `/proc/<pid>/fd` and `/proc/net/tcp{,6}`) are tried on loopback first, which is
//! unambiguous with `hostNetwork` and several IOCs per node; otherwise, or when
//! `K8S_IOC_ADDRESS` names a remote IOC, a normal UDP search.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use super::ca::{self, CaError, Values};
use super::health::{CaReport, CaStatus, Health, Phase};

/// What to read and how often.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// The PV to read; `None` turns checks off.
    pub pv: Option<String>,
    /// Between checks once the PV has answered.
    pub period: Duration,
    /// Between checks until it first answers (so readiness follows iocInit closely).
    pub first_period: Duration,
    /// For one whole check (search and read).
    pub timeout: Duration,
    pub ca: ca::Config,
    /// True when the IOC is remote (`K8S_IOC_ADDRESS`): skip the `/proc` shortcut.
    pub remote: bool,
}

impl CheckConfig {
    /// The PV liveness.sh reads: `K8S_IOC_PV`, else the upper-cased `IOC_PREFIX` + `:UPTIME`.
    pub fn default_pv(get: impl Fn(&str) -> Option<String>) -> Option<String> {
        get("K8S_IOC_PV").filter(|pv| !pv.is_empty()).or_else(|| {
            get("IOC_PREFIX")
                .filter(|p| !p.is_empty())
                .map(|p| format!("{}:UPTIME", p.to_uppercase()))
        })
    }
}

/// Check for ever, publishing each outcome; returns when the health channel closes.
pub async fn run(
    cfg: CheckConfig,
    mut health: watch::Receiver<Health>,
    out: watch::Sender<CaReport>,
) {
    let Some(pv) = cfg.pv.clone() else {
        return;
    };
    // consecutive failures count only once this IOC process has answered (startup grace)
    let (mut answered_pid, mut streak) = (None::<Option<u32>>, 0u32);
    let mut log = FailureLog::default();
    loop {
        let snapshot = health.borrow_and_update().clone();
        let wait = if snapshot.phase != Phase::Running {
            (answered_pid, streak) = (None, 0);
            out.send_modify(|r| r.status = CaStatus::Unknown);
            None
        } else {
            let status = check_once(&cfg, &pv, snapshot.ioc_pid).await;
            if answered_pid != Some(snapshot.ioc_pid) {
                streak = 0;
            }
            let status = match status {
                Ok((duration, uptime)) => {
                    log.answered(&pv);
                    (answered_pid, streak) = (Some(snapshot.ioc_pid), 0);
                    CaStatus::Ok {
                        at: SystemTime::now(),
                        duration,
                        uptime,
                    }
                }
                Err((e, tried)) => {
                    let answered = answered_pid == Some(snapshot.ioc_pid);
                    if answered {
                        streak += 1;
                    }
                    let running_for = snapshot
                        .ioc_started
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .unwrap_or_default();
                    if answered || running_for >= STARTUP_QUIET {
                        log.failed(&pv, &e, &tried);
                    }
                    CaStatus::Failed {
                        at: SystemTime::now(),
                        result: result_label(&e),
                        message: e.to_string(),
                        streak,
                    }
                }
            };
            out.send_modify(|r| r.record(status));
            Some(if answered_pid.is_some() {
                cfg.period
            } else {
                cfg.first_period
            })
        };
        // a phase change (the IOC started or stopped) wakes us at once
        let changed = async {
            match wait {
                Some(d) => tokio::time::timeout(d, health.changed())
                    .await
                    .unwrap_or(Ok(())),
                None => health.changed().await,
            }
        };
        if changed.await.is_err() {
            return;
        }
    }
}

/// How long a starting IOC may leave its PV unanswered before failures are logged.
const STARTUP_QUIET: Duration = Duration::from_secs(30);
/// At most one failure message per this long while checks keep failing.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Failed checks as log lines a person can follow: the first at once, then at most one per
/// [`LOG_EVERY`] with the number left out, and one line when the PV answers again.
#[derive(Debug, Default)]
struct FailureLog {
    last: Option<Instant>,
    /// Failures since the last line.
    unlogged: u32,
    /// Failures since the PV last answered.
    failures: u32,
}

impl FailureLog {
    fn failed(&mut self, pv: &str, e: &CaError, tried: &str) {
        self.failures += 1;
        if self.last.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            self.unlogged += 1;
            return;
        }
        let more = match self.unlogged {
            0 => String::new(),
            n => format!(" ({n} more failures since the last message)"),
        };
        tracing::warn!("channel access check of {pv} failed: {e}; tried {tried}{more}");
        self.last = Some(Instant::now());
        self.unlogged = 0;
    }

    fn answered(&mut self, pv: &str) {
        if self.last.is_some() {
            tracing::warn!(
                "channel access check of {pv} answers again (after {} failures)",
                self.failures
            );
        }
        *self = FailureLog::default();
    }
}

/// One check: read the PV, return how long it took and the uptime it shows; on failure, the
/// error and the addresses tried.
async fn check_once(
    cfg: &CheckConfig,
    pv: &str,
    pid: Option<u32>,
) -> Result<(Duration, Option<f64>), (CaError, String)> {
    let started = Instant::now();
    let deadline = started + cfg.timeout;
    let local = local_servers(&cfg.ca, cfg.remote, pid);
    let mut last = None;
    for (i, addr) in local.iter().enumerate() {
        // share the time out, so one silent port cannot use all of it
        let left = deadline.saturating_duration_since(Instant::now());
        let slice = (left / (local.len() - i + 1) as u32).max(Duration::from_millis(200));
        match ca::read(*addr, pv, &cfg.ca, Instant::now() + slice).await {
            Ok(r) => return Ok((started.elapsed(), uptime(&r.value.values))),
            Err(e) => last = Some(e),
        }
    }
    let mut tried: Vec<String> = local.iter().map(|a| format!("tcp {a}")).collect();
    if Instant::now() < deadline {
        let to: Vec<String> = cfg.ca.search_to.iter().map(|a| a.to_string()).collect();
        tried.push(format!("udp search to [{}]", to.join(", ")));
        let tried = tried.join(", ");
        let server = ca::search(&cfg.ca, pv, deadline)
            .await
            .map_err(|e| (e, tried.clone()))?;
        let r = ca::read(server, pv, &cfg.ca, deadline)
            .await
            .map_err(|e| (e, format!("{tried}, then tcp {server}")))?;
        return Ok((started.elapsed(), uptime(&r.value.values)));
    }
    let e = last.unwrap_or(CaError::NotFound { pv: pv.to_owned() });
    Err((e, tried.join(", ")))
}

/// Where the IOC process `pid` listens, to try before any search: the CA server port first
/// (an IOC with QSRV also listens for pvAccess); nothing for a remote IOC or an unknown pid.
pub(super) fn local_servers(ca: &ca::Config, remote: bool, pid: Option<u32>) -> Vec<SocketAddr> {
    let mut local = match pid {
        Some(pid) if !remote => listening_addrs(pid),
        _ => Vec::new(),
    };
    local.sort_by_key(|a| a.port() != ca.server_port);
    local
}

/// The `epics_ioc_ca_probes_total{result}` label of a failure.
fn result_label(e: &CaError) -> &'static str {
    match e {
        CaError::NotFound { .. } | CaError::CreateFailed { .. } => "not_found",
        CaError::Timeout { .. } => "timeout",
        CaError::Io { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused => {
            "refused"
        }
        _ => "error",
    }
}

/// devIocStats' UPTIME text (`00:01:02`, `3 days, 04:05:06`) in seconds.
pub(super) fn uptime(values: &Values) -> Option<f64> {
    let Values::Strings(s) = values else {
        return None;
    };
    let text = String::from_utf8_lossy(s.first()?).into_owned();
    let (days, clock) = match text.split_once(',') {
        Some((d, rest)) => (
            d.split_whitespace().next()?.parse::<f64>().ok()?,
            rest.trim().to_owned(),
        ),
        None => (0.0, text.trim().to_owned()),
    };
    let mut secs = 0.0;
    for part in clock.split(':') {
        secs = secs * 60.0 + part.trim().parse::<f64>().ok()?;
    }
    Some(days * 86400.0 + secs)
}

/// Where process `pid` listens for TCP connections, read from `/proc` (option 2): a
/// wildcard address becomes loopback.
pub fn listening_addrs(pid: u32) -> Vec<SocketAddr> {
    let inodes: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    let mut addrs = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for (addr, inode) in text.lines().skip(1).filter_map(listen_row) {
            if inodes.contains(&inode) && !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
    }
    addrs
}

/// `(address, inode)` of a `/proc/net/tcp{,6}` row in state LISTEN (`0A`). The kernel prints
/// IPv4 addresses as one native-endian 32-bit word; IPv6 rows count only when unspecified
/// (`::`, which also accepts IPv4 on loopback).
fn listen_row(line: &str) -> Option<(SocketAddr, u64)> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    if cols.get(3) != Some(&"0A") {
        return None;
    }
    let (ip_hex, port_hex) = cols.get(1)?.rsplit_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let ip = match ip_hex.len() {
        8 => {
            let raw = u32::from_str_radix(ip_hex, 16).ok()?;
            let ip = Ipv4Addr::from(raw.to_ne_bytes());
            if ip.is_unspecified() {
                Ipv4Addr::LOCALHOST
            } else {
                ip
            }
        }
        _ if ip_hex.bytes().all(|b| b == b'0') => Ipv4Addr::LOCALHOST,
        _ => return None,
    };
    Some((SocketAddr::from((ip, port)), cols.get(9)?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn default_pv_follows_liveness_sh() {
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            CheckConfig::default_pv(move |k| m.get(k).cloned())
        };
        assert_eq!(
            env(&[("IOC_PREFIX", "bl47p-mo-ioc-01")]),
            Some("BL47P-MO-IOC-01:UPTIME".into())
        );
        assert_eq!(
            env(&[("IOC_PREFIX", "x"), ("K8S_IOC_PV", "A:B")]),
            Some("A:B".into())
        );
        assert_eq!(env(&[]), None);
    }

    #[test]
    fn uptime_texts() {
        let up = |s: &str| uptime(&Values::Strings(vec![s.as_bytes().to_vec()]));
        assert_eq!(up("00:01:02"), Some(62.0));
        assert_eq!(up("3 days, 04:05:06"), Some(3.0 * 86400.0 + 14706.0));
        assert_eq!(up("1 day, 00:00:01"), Some(86401.0));
        assert_eq!(up("soon"), None);
    }

    #[test]
    fn finds_our_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(listening_addrs(std::process::id()).contains(&addr));
    }

    #[test]
    fn listen_rows_only() {
        let row = "   0: 0100007F:13D8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000";
        let lo: SocketAddr = "127.0.0.1:5080".parse().unwrap();
        assert_eq!(listen_row(row), Some((lo, 4242)));
        assert_eq!(listen_row(&row.replace(" 0A ", " 01 ")), None);
        let any = row.replace("0100007F:13D8", "00000000:13D8");
        assert_eq!(
            listen_row(&any),
            Some((lo, 4242)),
            "wildcard means loopback"
        );
        let v6 = row.replace("0100007F:13D8", "00000000000000000000000000000000:13D8");
        assert_eq!(listen_row(&v6), Some((lo, 4242)));
    }
}
