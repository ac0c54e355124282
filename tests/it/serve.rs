//! The serve module from outside: /metrics checked by the strict OpenMetrics parser and by
//! `promtool`, and `iocrun probe` against a supervisor-side serve task watching a real softIoc.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{header, Request};
use http_body_util::BodyExt;
use iocrun::serve::{self, CaReport, CaStatus, Health, LastExit, Phase, StepTiming};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::ca::SoftIoc;
use crate::util;

/// A snapshot with every optional part filled, so every metric family appears.
fn busy_health() -> Health {
    Health {
        phase: Phase::Running,
        ioc_pid: Some(std::process::id()),
        ioc_started: Some(SystemTime::now()),
        start_done: true,
        restarts: vec![("exit", 2), ("signal", 1)],
        last_exit: Some(LastExit::Signal(9)),
        console_clients: 1,
        console_bytes_in: 10,
        console_bytes_out: 2000,
        hw_pending: vec!["ctrl".into()],
        steps: vec![StepTiming {
            step: "msi",
            duration: Duration::from_millis(20),
            failed: false,
        }],
        pvi_failures: 1,
        opi_files: 4,
    }
}

fn busy_ca() -> CaReport {
    let mut r = CaReport::default();
    r.record(CaStatus::Failed {
        at: SystemTime::now(),
        result: "timeout",
        message: "t".into(),
        streak: 0,
    });
    r.record(CaStatus::Ok {
        at: SystemTime::now(),
        duration: Duration::from_millis(4),
        uptime: Some(62.0),
    });
    r
}

async fn scrape(accept: &str) -> String {
    let (_h, health) = watch::channel(busy_health());
    let (_c, ca) = watch::channel(busy_ca());
    let settings = Arc::new(serve::Settings {
        checks_on: true,
        live_failures: 3,
        ..Default::default()
    });
    let app = serve::app(serve::AppState {
        health,
        ca,
        settings,
    });
    let req = Request::builder()
        .uri("/metrics")
        .header(header::ACCEPT, accept)
        .body(Body::empty())
        .expect("request");
    let resp = app.oneshot(req).await.expect("response");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(body.to_vec()).expect("utf-8")
}

/// Run a checker with `text` on stdin; panics with its output when it rejects the text.
fn check_with(mut cmd: Command, text: &str) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{cmd:?} rejected the metrics:\n{}{}\n--- text ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_pass_the_strict_openmetrics_parser() {
    let Some(python) = util::tool_var("IOCRUN_PYTHON") else {
        return;
    };
    let text = scrape("application/openmetrics-text; version=1.0.0").await;
    assert!(text.contains("epics_ioc_uptime_seconds 62.0"), "{text}");
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
         names = [f.name for f in p(sys.stdin.read())]\nassert 'epics_ioc_restarts' in names, names",
    ]);
    check_with(cmd, &text);
}

#[tokio::test]
async fn classic_metrics_pass_promtool() {
    let text = scrape("text/plain; version=0.0.4").await;
    let Ok(_) = Command::new("promtool").arg("--version").output() else {
        assert!(!util::in_ci(), "CI=true but promtool is missing");
        eprintln!("SKIP: promtool not installed");
        return;
    };
    let mut cmd = Command::new("promtool");
    cmd.args(["check", "metrics"]);
    check_with(cmd, &text);
}

/// Run `iocrun probe` off the runtime's thread, so the serve tasks can answer it.
async fn probe(socket: &std::path::Path, kind: &str) -> (bool, String) {
    let mut cmd = util::iocrun();
    cmd.args(["probe", kind, "--socket"]).arg(socket);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("iocrun probe"))
        .await
        .expect("join");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Poll a probe (each answer is cached, so this is cheap) until it gives `want`.
async fn until(socket: &std::path::Path, kind: &str, want: bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        let (ok, text) = probe(socket, kind).await;
        if ok == want {
            return text;
        }
        last = text;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("probe {kind} never became {want}; last answer {last:?}");
}

#[tokio::test]
async fn probes_follow_a_real_ioc_found_through_proc() {
    let db = r#"record(stringin, "T:UPTIME") { field(VAL, "00:01:02") }"#;
    let Some(mut ioc) = SoftIoc::start(db) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let socket = dir.path().join("control.sock");
    std::fs::write(dir.path().join("autosave_settings.sav"), "").expect("sav file");
    let http: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let args = serve::ServeArgs {
        http_addr: Some(http),
        control_socket: socket.clone(),
        ca_check_pv: Some("T:UPTIME".into()),
        ca_check_period: 0.2,
        ca_check_timeout: 1.0,
        live_failures: 2,
        autosave_dir: dir.path().to_owned(),
    };
    // no search can reach the IOC: only its own listening socket, found through /proc, can
    let cfg = serve::ServeConfig::resolve(&args, |name| {
        (name == "EPICS_CA_AUTO_ADDR_LIST").then(|| "NO".to_owned())
    });
    let (tx, rx) = watch::channel(Health {
        phase: Phase::Generating,
        ..Health::default()
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve::run(cfg, rx, async move {
        let _ = stopped.await;
    }));

    let text = until(&socket, "startup", false).await;
    assert_eq!(text, "startup: fail: still generating\n");
    tx.send_replace(Health {
        phase: Phase::Running,
        start_done: true,
        ioc_pid: Some(ioc.pid()),
        ..Health::default()
    });
    until(&socket, "startup", true).await;
    let text = until(&socket, "ready", true).await;
    assert_eq!(
        text,
        "ready: ok: ioc running and answering channel access\n"
    );

    let metrics = reqwest_free_get(http, "/metrics").await;
    assert!(
        metrics.contains("epics_ioc_uptime_seconds 62.0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("epics_ioc_ca_probe_success 1.0"),
        "{metrics}"
    );

    // the IOC wedges (here: is gone) while the supervisor still thinks it runs
    ioc.kill();
    let text = until(&socket, "live", false).await;
    assert!(
        text.starts_with("live: fail: ioc running but 2 channel access checks failed"),
        "{text}"
    );
    assert!(!probe(&socket, "ready").await.0);

    let _ = stop.send(());
    server.await.expect("serve task");
    assert!(
        !socket.exists(),
        "the control socket is removed on shutdown"
    );
    let (ok, _) = probe(&socket, "live").await;
    assert!(!ok, "no supervisor, no pass");
}

/// A minimal HTTP/1.0 GET over a plain socket (no HTTP client crate needed).
async fn reqwest_free_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}
