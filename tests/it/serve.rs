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
            errors: 1,
        }],
        pvi_failures: 1,
        opi_files: 4,
        iocstats_prefixes: Vec::new(),
        config_error: Some("ioc.yaml: bad".into()),
        reloads: (2, 1),
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
pub fn check_with(mut cmd: Command, text: &str) {
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
        util::skip("promtool not installed");
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
        http_max_connections: 32,
        control_socket: socket.clone(),
        ca_check_pv: Some("T:UPTIME".into()),
        ca_check_period: 0.2,
        ca_check_timeout: 1.0,
        live_failures: 2,
        autosave_dir: dir.path().to_owned(),
        pv_metrics: None,
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

/// `iocrun start` end to end on the example instance (rendered, expanded, run by softIoc) with
/// an `ibek.wait_ip` entity added: startup fails naming the device while the hardware wait
/// runs, then startup and ready pass once the device is up and the IOC answers its default
/// liveness PV (`${IOC_PREFIX^^}:UPTIME`), found through the IOC's own listening socket.
#[tokio::test]
async fn start_answers_probes_through_the_hardware_wait() {
    let Some(bin) = util::epics_bin() else {
        return;
    };
    let env = util::TestEnv::new();
    let example = util::repo_root().join("examples/demo");
    for entry in std::fs::read_dir(example.join("config")).expect("example config") {
        let path = entry.expect("entry").path();
        std::fs::copy(
            &path,
            env.config_dir().join(path.file_name().expect("name")),
        )
        .expect("copy");
    }
    let late = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let yaml = env.config_dir().join("ioc.yaml");
    let mut text = std::fs::read_to_string(&yaml).expect("ioc.yaml");
    text.push_str(&format!(
        "\n  - type: ibek.wait_ip\n    device: late\n    address: 127.0.0.1:{late}\n    timeout: 60\n"
    ));
    std::fs::write(&yaml, text).expect("write ioc.yaml");
    let ioc_bin = env.root().join("ioc/bin/linux-x86_64");
    std::fs::create_dir_all(&ioc_bin).expect("ioc bin dir");
    std::fs::copy(example.join("bin/ioc"), ioc_bin.join("ioc")).expect("copy ioc wrapper");
    let ca_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let socket = env.root().join("control.sock");
    let done = env.root().join("done.txt");
    let mut child = env
        .iocrun()
        .arg("start")
        .env("IOC_NAME", "it-serve")
        .env("IOC_PREFIX", "it-serve")
        .env("IOCRUN_EPICS_BIN", &bin)
        .env("IOCRUN_CONSOLE_SOCKET", "none")
        .env("IOCRUN_CONTROL_SOCKET", &socket)
        .env("IOCRUN_WAIT_DONE_FILE", &done)
        .env("IOCRUN_CA_CHECK_PERIOD", "0.2")
        .env("IOCRUN_WAIT_PROGRESS", "0.2")
        .env_remove("IBEK_DO_WAIT_DISABLE")
        .env_remove("IOCRUN_CA_CHECK_PV")
        .env_remove("K8S_IOC_PV")
        .env("EPICS_CA_SERVER_PORT", ca_port.to_string())
        .env("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
        .env("EPICS_CA_AUTO_ADDR_LIST", "NO")
        .env("EPICS_CA_ADDR_LIST", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn iocrun start");

    let waiting = until_text(&socket, "startup", "waiting for late").await;
    assert_eq!(waiting, "startup: fail: waiting for late\n");
    assert!(!done.exists());

    let _device = std::net::TcpListener::bind(("127.0.0.1", late)).expect("bind the device port");
    until(&socket, "startup", true).await;
    let ready = until(&socket, "ready", true).await;
    assert_eq!(
        ready,
        "ready: ok: ioc running and answering channel access\n"
    );
    assert!(done.exists(), "the done file follows a successful wait");
    assert!(probe(&socket, "live").await.0);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let status = tokio::task::spawn_blocking(move || child.wait().expect("wait"))
        .await
        .expect("join");
    assert!(
        status.code().is_some(),
        "iocrun exits after SIGTERM: {status:?}"
    );
}

/// Poll a probe until its answer contains `want`.
async fn until_text(socket: &std::path::Path, kind: &str, want: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        let (_, text) = probe(socket, kind).await;
        if text.contains(want) {
            return text;
        }
        last = text;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("probe {kind} never said {want:?}; last answer {last:?}");
}

/// A real `iocrun start` before anything has happened (the child just started: no restart, no
/// failed step, no check): its /metrics, read by the strict OpenMetrics parser, already has
/// every series of the fixed-label counters, at 0, so `rate()` and alerts see them at once.
#[tokio::test]
async fn counters_are_exported_at_zero_from_the_start() {
    let Some(python) = util::tool_var("IOCRUN_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let http: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut child = util::iocrun()
        .args(["start", "--restart", "never", "--http", &http.to_string()])
        .args(["--ca-check-pv", "none", "--", "sleep", "60"])
        .env("IOCRUN_CONSOLE_SOCKET", "none")
        .env("IOCRUN_CONTROL_SOCKET", dir.path().join("control.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn iocrun start");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(http).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "no /metrics on {http}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = reqwest_free_get(http, "/metrics").await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    );
    tokio::task::spawn_blocking(move || child.wait().expect("wait"))
        .await
        .expect("join");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .expect("an HTTP response");
    let out = Command::new(python)
        .args([
            "-c",
            "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
             for f in p(sys.stdin.read()):\n    for s in f.samples:\n        \
             print(s.name, ','.join(f'{k}={v}' for k, v in sorted(s.labels.items())), s.value)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(body.as_bytes())?;
            c.wait_with_output()
        })
        .expect("run the parser");
    util::assert_success(&out);
    let samples = String::from_utf8_lossy(&out.stdout);
    for (family, label, values) in [
        (
            "epics_ioc_restarts_total",
            "reason",
            &serve::RESTART_REASONS[..],
        ),
        (
            "epics_ioc_ca_probes_total",
            "result",
            &serve::CA_RESULTS[..],
        ),
        (
            "epics_ioc_generate_errors_total",
            "step",
            &serve::START_STEPS[..],
        ),
    ] {
        for v in values {
            let want = format!("{family} {label}={v} 0.0");
            assert!(
                samples.lines().any(|l| l == want),
                "no {want:?} in\n{samples}"
            );
        }
    }
    assert!(
        samples
            .lines()
            .any(|l| l == "epics_ioc_restarts_total reason=exit 0.0"),
        "{samples}"
    );
}

/// Issue 11 item 7: under 256 descriptors, 300 idle or half-sent HTTP requests, 100 console
/// clients and 40 silent probe connections neither stop the probes nor the IOC's restarts.
#[test]
fn a_descriptor_flood_leaves_probes_and_restarts_working() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tmp");
    let (control, console, runs) = (
        dir.path().join("control.sock"),
        dir.path().join("console.sock"),
        dir.path().join("runs"),
    );
    let http: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut cmd = util::iocrun();
    cmd.env("IOCRUN_CONSOLE_SOCKET", &console)
        .env("IOCRUN_CONTROL_SOCKET", &control)
        .env("IOCRUN_CA_CHECK_PV", "none")
        .args(["--http", &http.to_string(), "--restart", "on-failure"])
        .args(["--restart-delay", "100ms", "--restart-delay-max", "100ms"])
        .args(["--crash-limit", "0", "--", "sh", "-c"])
        .arg(format!("echo run >> {}; sleep 0.3; exit 3", runs.display()));
    util::rlimit(&mut cmd, libc::RLIMIT_NOFILE, 256);
    let iocrun = crate::pid1::start(crate::pid1::Mode::Subreaper, cmd);
    iocrun.wait_for("started pid");
    let count = || {
        std::fs::read_to_string(&runs)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let until = |what: &str, mut ok: Box<dyn FnMut() -> bool + '_>| {
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while !ok() {
            assert!(
                std::time::Instant::now() < end,
                "{what} never happened; iocrun said:\n{}",
                iocrun.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    until("the control socket", Box::new(|| control.exists()));

    let mut held = Vec::new();
    for i in 0..300 {
        if let Ok(mut s) = std::net::TcpStream::connect(http) {
            // every other one half a request head, the rest nothing at all
            if i % 2 == 0 {
                let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
            }
            held.push(Box::new(s) as Box<dyn std::any::Any>);
        }
    }
    for _ in 0..100 {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&console) {
            held.push(Box::new(s));
        }
    }
    for _ in 0..40 {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&control) {
            held.push(Box::new(s));
        }
    }
    let before = count();
    until(
        "three restarts during the flood",
        Box::new(|| count() >= before + 3),
    );
    until(
        "a passing probe",
        Box::new(|| {
            util::iocrun()
                .args(["probe", "startup", "--socket"])
                .arg(&control)
                .output()
                .is_ok_and(|o| o.status.success())
        }),
    );
    // idle connections are closed after the header timeout, so a new request gets a slot
    until(
        "an HTTP answer",
        Box::new(|| get_or_fail(http, "/startupz").is_some_and(|r| r.starts_with("HTTP/1.0 200"))),
    );
    assert!(
        !iocrun.output().contains("cannot start the IOC"),
        "{}",
        iocrun.output()
    );
    drop(held);
    iocrun.signal(nix::sys::signal::Signal::SIGTERM);
    let (code, out) = iocrun.wait();
    // stopped while running (143) or between two runs (the last run's 3)
    assert!([3, 128 + libc::SIGTERM].contains(&code), "{code}: {out}");
    assert!(out.contains("received SIGTERM: stopping"), "{out}");
}

/// A plain HTTP/1.0 GET that reports failure (refused, reset, silent for 2 s) as `None`.
fn get_or_fail(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
