//! The optional HTTP endpoint (`--http ADDR`): `/healthz`, `/readyz`, `/startupz` answer 200 or
//! 503 from the cached verdicts, `/metrics` serves OpenMetrics (or the classic text format when
//! the client asks for `text/plain`). `app` returns the router, so tests call it in-process;
//! [`serve`] runs it on a listener with the connection bounds of [`Limits`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::health::{verdict, CaReport, Health, ProbeKind, Verdict};
use super::metrics::{self, Info, Snapshot};
use super::procstat;

/// What the handlers read: the two watch channels and the fixed settings.
#[derive(Clone)]
pub struct AppState {
    pub health: watch::Receiver<Health>,
    pub ca: watch::Receiver<CaReport>,
    pub settings: Arc<Settings>,
}

/// Fixed for the life of the process.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub info: Info,
    /// Whether a PV is being checked at all (readiness then only needs a running IOC).
    pub checks_on: bool,
    /// Failed checks in a row before liveness fails.
    pub live_failures: u32,
    /// Where autosave writes its `.sav` files (`/autosave` in the images).
    pub autosave_dir: Option<std::path::PathBuf>,
    /// The PV metrics kept current by the monitor task (with `--http` only).
    pub pv_table: Option<Arc<super::pvmetrics::Table>>,
    /// Where control requests (`restart`, `stop`) go; `None` answers them with an error.
    pub requests: Option<tokio::sync::mpsc::UnboundedSender<super::control::Request>>,
}

impl AppState {
    /// The verdict for one probe, from the latest snapshots.
    pub fn verdict(&self, kind: ProbeKind) -> Verdict {
        let s = &self.settings;
        verdict(
            kind,
            &self.health.borrow(),
            &self.ca.borrow().status,
            s.checks_on,
            s.live_failures,
        )
    }
}

/// Bounds on HTTP clients, so probes and the IOC's respawn never starve for descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; a connection beyond it is closed as soon as it is accepted.
    pub max_connections: usize,
    /// A request head (a new connection's or the next on a kept-alive one) must arrive
    /// whole within this time, else the connection is closed: slow and idle clients alike.
    pub header_timeout: Duration,
    /// No connection lives longer than this, whatever it does.
    pub max_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 32,
            header_timeout: Duration::from_secs(5),
            max_lifetime: Duration::from_secs(60),
        }
    }
}

/// Serve `router` on `listener` within `limits`, until the future is dropped.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off a little rather than spin
                tracing::warn!("http accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(
                "http: {} connections open, refusing one",
                limits.max_connections
            );
            drop(stream);
            continue;
        };
        let conn = serve_connection(stream, router.clone(), &limits);
        tokio::spawn(async move {
            if let Ok(Err(e)) = tokio::time::timeout(limits.max_lifetime, conn).await {
                tracing::debug!("http connection: {e}");
            }
            drop(slot);
        });
    }
}

/// One HTTP/1 connection on any byte stream (a socket, or an in-memory pipe in the fuzz
/// target), answered by `router` within the header timeout of `limits` (the caller bounds
/// the lifetime).
pub fn serve_connection<S>(
    stream: S,
    router: Router,
    limits: &Limits,
) -> impl std::future::Future<Output = hyper::Result<()>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    // half_close: a client that shuts its side after the request (`nc -N`) still gets the answer
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .half_close(true);
    http.serve_connection(
        hyper_util::rt::TokioIo::new(stream),
        hyper_util::service::TowerToHyperService::new(router),
    )
}

/// The router with every endpoint.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/startupz", get(startupz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    probe_response(state.verdict(ProbeKind::Live))
}

async fn readyz(State(state): State<AppState>) -> Response {
    probe_response(state.verdict(ProbeKind::Ready))
}

async fn startupz(State(state): State<AppState>) -> Response {
    probe_response(state.verdict(ProbeKind::Startup))
}

/// 200 `ok: reason` or 503 `fail: reason`. A failing probe is a normal answer, not an error
/// to log.
fn probe_response(v: Verdict) -> Response {
    let status = if v.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if v.ok { "ok" } else { "fail" };
    (status, format!("{word}: {}\n", v.reason)).into_response()
}

async fn metrics_text(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let health = state.health.borrow().clone();
    let ca = state.ca.borrow().clone();
    let snapshot = Snapshot {
        health: &health,
        ca: &ca,
        info: &state.settings.info,
        ioc: health.ioc_pid.and_then(|pid| procstat::read(Some(pid))),
        me: procstat::read(None),
        autosave_ages: state
            .settings
            .autosave_dir
            .as_deref()
            .map(metrics::autosave_ages)
            .unwrap_or_default(),
    };
    // the PV values are read from memory: a scrape sends no Channel Access message
    let text = match &state.settings.pv_table {
        Some(table) => metrics::openmetrics_with(&snapshot, |reg| table.register(reg)),
        None => metrics::openmetrics(&snapshot),
    };
    if wants_classic(&headers) {
        (
            [(header::CONTENT_TYPE, metrics::CLASSIC_TYPE)],
            metrics::to_classic(&text),
        )
            .into_response()
    } else {
        ([(header::CONTENT_TYPE, metrics::OPENMETRICS_TYPE)], text).into_response()
    }
}

/// OpenMetrics unless the client accepts `text/plain` and not OpenMetrics.
fn wants_classic(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    accept.contains("text/plain") && !accept.contains("application/openmetrics-text")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::health::Phase;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn state(health: Health) -> (AppState, watch::Sender<Health>) {
        let (tx, rx) = watch::channel(health);
        let (_ca_tx, ca) = watch::channel(CaReport::default());
        let settings = Arc::new(Settings {
            checks_on: false,
            live_failures: 3,
            ..Settings::default()
        });
        (
            AppState {
                health: rx,
                ca,
                settings,
            },
            tx,
        )
    }

    async fn get(app: Router, uri: &str, accept: Option<&str>) -> (StatusCode, String, String) {
        let mut req = Request::builder().uri(uri);
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ctype, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn probes_follow_the_phase() {
        let (st, tx) = state(Health {
            phase: Phase::Generating,
            ..Health::default()
        });
        let (code, _, body) = get(app(st.clone()), "/startupz", None).await;
        assert_eq!(
            (code, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "fail: still generating\n")
        );
        assert_eq!(
            get(app(st.clone()), "/readyz", None).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            get(app(st.clone()), "/healthz", None).await.0,
            StatusCode::OK
        );
        tx.send_replace(Health {
            phase: Phase::Running,
            start_done: true,
            ..Health::default()
        });
        assert_eq!(
            get(app(st.clone()), "/startupz", None).await.0,
            StatusCode::OK
        );
        assert_eq!(get(app(st), "/readyz", None).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_negotiate_the_format() {
        let (st, _tx) = state(Health::default());
        let (code, ctype, body) = get(app(st.clone()), "/metrics", None).await;
        assert_eq!(
            (code, ctype.as_str()),
            (StatusCode::OK, metrics::OPENMETRICS_TYPE)
        );
        assert!(body.ends_with("# EOF\n"));
        let (_, ctype, body) = get(
            app(st.clone()),
            "/metrics",
            Some("text/plain;version=0.0.4"),
        )
        .await;
        assert_eq!(ctype, metrics::CLASSIC_TYPE);
        assert!(!body.contains("# EOF"));
        let prom = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        assert_eq!(
            get(app(st), "/metrics", Some(prom)).await.1,
            metrics::OPENMETRICS_TYPE
        );
    }

    #[tokio::test]
    async fn unknown_path_is_404() {
        let (st, _tx) = state(Health::default());
        assert_eq!(get(app(st), "/nope", None).await.0, StatusCode::NOT_FOUND);
    }
}
