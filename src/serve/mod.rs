//! What the running supervisor tells the outside world: probe verdicts on a unix control
//! socket (`iocrun probe`), optionally HTTP health endpoints and Prometheus metrics, all built
//! on a periodic Channel Access read of the IOC's own PV.
//!
//! serve reads state others publish and never drives the child. Its input is a
//! `watch::Receiver<`[`Health`]`>`: the start sequence and the supervisor replace the snapshot
//! whenever something changes, through a small adapter in `cmd/start.rs`. From it serve runs
//! three tasks (see [`run`]):
//!
//! * the CA checker (`check`) reads the PV whenever the IOC runs, every second until it first
//!   answers, then every `--ca-check-period`, and caches the outcome;
//! * the control socket (`control`) answers `startup`/`ready`/`live` from the cached verdicts,
//!   `status` from the snapshot, and passes `restart`/`stop` on as a [`Request`];
//! * the HTTP server (`http`), only with `--http ADDR`: a bind failure is logged and never
//!   stops the IOC.
//!
//! Verdicts (`health::verdict`): startup passes once the start sequence is done; ready needs
//! the IOC running and its PV answering; live fails only when a running IOC that had answered
//! stops answering for `--live-failures` checks in a row.

pub mod ca;
mod check;
mod control;
mod health;
mod http;
mod metrics;
mod procstat;
pub mod pvmetrics;
mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use check::{listening_addrs, CheckConfig};
pub use control::{
    ask, probe, reply as control_reply, ProbeError, Request, DEFAULT_SOCKET, SOCKET_ENV,
};
pub use health::{
    verdict, CaReport, CaStatus, Health, LastExit, Phase, ProbeKind, StepTiming, Verdict,
    CA_RESULTS, RESTART_REASONS, START_STEPS,
};
pub use http::{
    app, serve_connection as http_connection, AppState, Limits as HttpLimits, Settings,
};
pub use metrics::Info;

/// A serve task that could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot serve the {what} on '{at}'")]
    Bind {
        what: &'static str,
        at: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    SocketPath(#[from] crate::files::FilesError),
}

/// The serve flags of `iocrun start`, each with its `IOCRUN_` twin (flattened in by
/// `cmd/start.rs`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Serve /healthz, /readyz, /startupz and /metrics on this address (off when unset).
    #[arg(long = "http", env = "IOCRUN_HTTP_ADDR", value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// HTTP connections open at once; more are closed as soon as they are accepted.
    #[arg(
        long,
        env = "IOCRUN_HTTP_MAX_CONNECTIONS",
        value_name = "N",
        default_value = "32"
    )]
    pub http_max_connections: usize,
    /// Unix socket `iocrun probe` asks; `none` serves no socket.
    #[arg(long, env = SOCKET_ENV, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub control_socket: PathBuf,
    /// PV read to decide readiness and liveness [default: $K8S_IOC_PV, else
    /// ${IOC_PREFIX^^}:UPTIME]; `none` turns the check off.
    #[arg(long, env = "IOCRUN_CA_CHECK_PV", value_name = "PV")]
    pub ca_check_pv: Option<String>,
    /// Seconds between checks once the PV has answered.
    #[arg(
        long,
        env = "IOCRUN_CA_CHECK_PERIOD",
        value_name = "SECONDS",
        default_value = "10"
    )]
    pub ca_check_period: f64,
    /// Seconds one check may take (search and read).
    #[arg(
        long,
        env = "IOCRUN_CA_CHECK_TIMEOUT",
        value_name = "SECONDS",
        default_value = "3"
    )]
    pub ca_check_timeout: f64,
    /// Failed checks in a row (after the PV first answered) before liveness fails.
    #[arg(
        long,
        env = "IOCRUN_LIVE_FAILURES",
        value_name = "N",
        default_value = "3"
    )]
    pub live_failures: u32,
    /// Folder whose autosave .sav files' ages are exported as metrics.
    #[arg(
        long,
        env = "IOCRUN_AUTOSAVE_DIR",
        value_name = "DIR",
        default_value = "/autosave"
    )]
    pub autosave_dir: PathBuf,
    /// YAML list of PVs to export as gauges, pushed by CA monitors (see docs/metrics.md).
    #[arg(long, env = "IOCRUN_PV_METRICS", value_name = "FILE")]
    pub pv_metrics: Option<PathBuf>,
}

/// The entries of `--pv-metrics`, checked (none without the flag); `get` looks up the
/// `$(IOC_PREFIX)` and `$(IOC_NAME)` macros.
pub fn load_pv_metrics(
    args: &ServeArgs,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Vec<pvmetrics::Entry>, crate::config::ConfigError> {
    match &args.pv_metrics {
        Some(path) => pvmetrics::load(path, get),
        None => Ok(Vec::new()),
    }
}

impl ServeArgs {
    /// The control socket's path; `None` for `none`.
    pub fn control_socket(&self) -> Option<PathBuf> {
        Some(self.control_socket.clone()).filter(|p| p.as_os_str() != "none")
    }
}

/// Everything [`run`] needs, resolved from the flags and the container's environment.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub http_addr: Option<SocketAddr>,
    pub http_limits: http::Limits,
    pub control_socket: Option<PathBuf>,
    pub check: CheckConfig,
    pub settings: Settings,
    /// The PV monitors behind `/metrics` (run only with `--http`).
    pub pv: pvmetrics::PvConfig,
}

impl ServeConfig {
    /// Resolve the flags; `get` looks up environment variables (`std::env::var` in main).
    /// The CA settings follow liveness.sh: `K8S_IOC_ADDRESS` becomes the address list (a
    /// remote IOC), `K8S_IOC_PORT` the server port.
    pub fn resolve(args: &ServeArgs, get: impl Fn(&str) -> Option<String>) -> ServeConfig {
        let nonempty = |name: &str| get(name).filter(|v| !v.is_empty());
        let remote = nonempty("K8S_IOC_ADDRESS");
        let port = nonempty("K8S_IOC_PORT");
        let ca = ca::Config::from_lookup(|name| match name {
            "EPICS_CA_ADDR_LIST" if remote.is_some() => remote.clone(),
            "EPICS_CA_SERVER_PORT" if port.is_some() => port.clone(),
            _ => get(name),
        });
        let pv = match args.ca_check_pv.as_deref() {
            Some("none") => None,
            Some(pv) => Some(pv.to_owned()),
            None => CheckConfig::default_pv(&get),
        };
        let secs = |s: f64, fallback: u64| {
            Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(fallback))
        };
        let period = secs(args.ca_check_period, 10);
        let info = Info {
            ioc_name: get("IOC_NAME").unwrap_or_default(),
            ioc_prefix: get("IOC_PREFIX").unwrap_or_default(),
            image: get("IOC_IMAGE").unwrap_or_default(),
            epics_version: get("EPICS_VERSION").unwrap_or_default(),
            target_arch: get("EPICS_TARGET_ARCH").unwrap_or_default(),
        };
        ServeConfig {
            http_addr: args.http_addr,
            http_limits: http::Limits {
                max_connections: args.http_max_connections.max(1),
                ..http::Limits::default()
            },
            control_socket: args.control_socket(),
            settings: Settings {
                info,
                checks_on: pv.is_some(),
                live_failures: args.live_failures.max(1),
                autosave_dir: Some(args.autosave_dir.clone()),
                pv_table: None,
                requests: None,
            },
            pv: pvmetrics::PvConfig {
                entries: Vec::new(),
                ca: ca.clone(),
                remote: remote.is_some(),
            },
            check: CheckConfig {
                pv,
                period,
                first_period: period.min(Duration::from_secs(1)),
                timeout: secs(args.ca_check_timeout, 3),
                ca,
                remote: remote.is_some(),
            },
        }
    }
}

/// Run the checker, the control socket and (if configured) HTTP until `shutdown` completes.
/// A socket that cannot be bound is logged and skipped: serving must never stop the IOC.
pub async fn run(
    cfg: ServeConfig,
    health: watch::Receiver<Health>,
    shutdown: impl Future<Output = ()>,
) {
    let (ca_tx, ca_rx) = watch::channel(CaReport::default());
    let mut tasks = tokio::task::JoinSet::new();
    let mut settings = cfg.settings;
    if cfg.http_addr.is_some() {
        let table = Arc::new(pvmetrics::Table::default());
        tasks.spawn(pvmetrics::run(cfg.pv, table.clone(), health.clone()));
        settings.pv_table = Some(table);
    }
    let state = AppState {
        health: health.clone(),
        ca: ca_rx,
        settings: Arc::new(settings),
    };
    tasks.spawn(check::run(cfg.check, health, ca_tx));
    let mut bound = None;
    if let Some(path) = &cfg.control_socket {
        match control::bind(path) {
            Ok(listener) => {
                tasks.spawn(control::serve(listener, state.clone()));
                bound = Some(path);
            }
            Err(e) => tracing::error!("{}", crate::error::chain(&e)),
        }
    }
    if let Some(addr) = cfg.http_addr {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                tasks.spawn(http::serve(listener, http::app(state), cfg.http_limits));
            }
            Err(source) => {
                let e = ServeError::Bind {
                    what: "http endpoint",
                    at: addr.to_string(),
                    source,
                };
                tracing::error!("{}", crate::error::chain(&e));
            }
        }
    }
    shutdown.await;
    tasks.shutdown().await;
    // only our own socket: a failed bind may mean another supervisor owns the path
    if let Some(path) = bound {
        let _ = std::fs::remove_file(path);
    }
}
