//! The IOC's own PVs as Prometheus gauges, pushed by Channel Access monitors (never polled,
//! never read at scrape time): the entries of a `--pv-metrics` file (`file`), plus the
//! devIocStats PVs when the rendered instance has an iocStats entity, kept up to date in a
//! shared [`Table`] that `/metrics` reads (`table`).
//!
//! The monitor task follows the supervisor's [`Health`]: while the IOC runs it holds one
//! circuit to the IOC's CA server, found through the IOC's own listening sockets in `/proc`
//! (unambiguous with `hostNetwork`), else by the usual UDP search; when the circuit drops it
//! tries again after 0.5 s, doubling to at most [`MAX_BACKOFF`]; when the IOC stops or is
//! replaced every PV goes disconnected at once and the task starts over with the new process.

mod file;
mod table;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

pub use file::{ioc_stats, load, Entry, Transform, IOC_STATS, MAX_ENTRIES};
pub use table::Table;

use super::ca::{self, monitor};
use super::check::local_servers;
use super::health::{Health, Phase};

/// The longest wait between two attempts to open the monitor circuit.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Time a UDP search for the IOC's server may take.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the monitor task needs besides the health channel.
#[derive(Debug, Clone)]
pub struct PvConfig {
    /// Entries of the `--pv-metrics` file.
    pub entries: Vec<Entry>,
    pub ca: ca::Config,
    /// True when the IOC is remote (`K8S_IOC_ADDRESS`): no `/proc` shortcut.
    pub remote: bool,
}

/// What the monitors depend on: the IOC process and the iocStats prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    pid: Option<u32>,
    running: bool,
    ioc_stats: Option<String>,
}

impl Target {
    fn of(h: &Health) -> Target {
        Target {
            pid: h.ioc_pid,
            running: h.phase == Phase::Running,
            ioc_stats: h.iocstats_prefixes.first().cloned(),
        }
    }
}

/// Keep `table` current until the health channel closes.
pub async fn run(cfg: PvConfig, table: Arc<Table>, mut health: watch::Receiver<Health>) {
    let mut planned: Option<Option<String>> = None;
    let mut names = Vec::new();
    loop {
        let target = Target::of(&health.borrow_and_update());
        if planned.as_ref() != Some(&target.ioc_stats) {
            names = table.set_entries(entries(&cfg.entries, target.ioc_stats.as_deref()));
            planned = Some(target.ioc_stats.clone());
        }
        table.disconnect_all();
        if target.running && !names.is_empty() {
            let monitor = monitor_ioc(&cfg, &table, &names, target.pid);
            tokio::pin!(monitor);
            loop {
                tokio::select! {
                    never = &mut monitor => match never {},
                    changed = health.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if Target::of(&health.borrow()) != target {
                            break;
                        }
                    }
                }
            }
        } else if health.changed().await.is_err() {
            return;
        }
    }
}

/// The file's entries and, with an iocStats prefix, the devIocStats ones, within the bound.
fn entries(file: &[Entry], ioc_stats: Option<&str>) -> Vec<Entry> {
    let mut all = file.to_vec();
    if let Some(prefix) = ioc_stats {
        all.extend(file::ioc_stats(prefix));
    }
    if all.len() > MAX_ENTRIES {
        tracing::warn!(
            "PV metrics: only the first {MAX_ENTRIES} of {} are monitored",
            all.len()
        );
        all.truncate(MAX_ENTRIES);
    }
    all
}

/// Hold a monitor circuit to the IOC for ever, reopening it when it drops.
async fn monitor_ioc(
    cfg: &PvConfig,
    table: &Table,
    names: &[String],
    pid: Option<u32>,
) -> std::convert::Infallible {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut servers = local_servers(&cfg.ca, cfg.remote, pid);
        let mut searched = false;
        let mut i = 0;
        loop {
            if i == servers.len() {
                if searched {
                    break;
                }
                searched = true;
                let deadline = Instant::now() + SEARCH_TIMEOUT;
                match ca::search(&cfg.ca, &names[0], deadline).await {
                    Ok(server) => servers.push(server),
                    Err(e) => {
                        tracing::debug!("PV metrics: no server found for {}: {e}", names[0]);
                        break;
                    }
                }
            }
            let server = servers[i];
            i += 1;
            tracing::debug!("PV metrics: monitoring {} PVs on {server}", names.len());
            let ended = monitor::run(server, names, &cfg.ca.user, &table.sent, &mut |i, e| {
                if matches!(e, monitor::Event::NotFound) {
                    tracing::warn!("PV metrics: the IOC does not serve {}", names[i]);
                }
                table.apply(i, e);
            })
            .await;
            table.disconnect_all();
            if ended.created_any {
                tracing::info!(
                    "PV metrics: the monitor circuit to {server} ended: {}",
                    ended.error
                );
                backoff = FIRST_BACKOFF;
                break;
            }
            tracing::debug!("PV metrics: {server}: {}", ended.error);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
