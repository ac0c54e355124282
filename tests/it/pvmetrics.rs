//! PV metrics end to end: `iocrun start` renders an instance with a devIocStats entity (soft
//! records named as devIocStats names them) and serves `--pv-metrics` entries; values follow
//! `caput` in `/metrics` (checked by the strict OpenMetrics parser), go disconnected when the
//! IOC is killed and come back after the restart, and scrapes send no Channel Access message.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ca::{ca_env, free_port};
use crate::util::{self, TestEnv};

/// ibek-support's iocStats entity, loading a stand-in for `iocAdminSoft.db`.
const IOCSTATS_SUPPORT: &str = r#"module: devIocStats
entity_models:
  - name: iocAdminSoft
    description: IOC statistics records
    parameters:
      IOC:
        type: str
        description: Device prefix
    databases:
      - file: $(IOCSTATS)/db/iocAdminSoft.db
        args:
          IOC:
"#;

/// Soft records under the devIocStats names (the real ones need the devIocStats device
/// support, which a plain softIoc lacks).
const ADMIN_DB: &str = r#"
record(ai, "$(IOC):IOC_CPU_LOAD") { field(VAL, "1.5") field(HIHI, "80") field(HHSV, "MAJOR") }
record(ai, "$(IOC):SYS_CPU_LOAD") { field(VAL, "3") }
record(ai, "$(IOC):MEM_USED") { field(VAL, "1048576") }
record(ai, "$(IOC):MEM_FREE") { field(VAL, "2048") }
record(ai, "$(IOC):CA_CLNT_CNT") { field(VAL, "2") }
record(ai, "$(IOC):CA_CONN_CNT") { field(VAL, "4") }
record(ai, "$(IOC):RECORD_CNT") { field(VAL, "21") }
record(ai, "$(IOC):FD_CNT") { field(VAL, "12") }
record(ai, "$(IOC):SCANONCE_Q_USED") { field(VAL, "0") }
record(stringin, "$(IOC):UPTIME") { field(VAL, "00:01:02") }
record(calcout, "$(IOC):HEARTBEAT") {
    field(CALC, "A+1") field(INPA, "$(IOC):HEARTBEAT") field(SCAN, "1 second")
}
"#;

const SITE_SUPPORT: &str = r#"module: site
entity_models:
  - name: Extras
    description: A few device records
    parameters:
      P:
        type: str
        description: Prefix
    databases:
      - file: extras.db
        args:
          P:
"#;

const EXTRAS_DB: &str = r#"
record(ai, "$(P):TEMP") { field(VAL, "21.5") }
record(mbbo, "$(P):MODE") { field(ZRST, "Idle") field(ONST, "Busy") field(VAL, "0") }
"#;

const IOC_YAML: &str = r#"ioc_name: "{{ _global.get_env('IOC_NAME') }}"
description: pv metrics test
entities:
  - type: devIocStats.iocAdminSoft
    IOC: "{{ ioc_name | upper }}"
  - type: site.Extras
    P: "{{ ioc_name | upper }}"
"#;

const PV_METRICS: &str = r#"# device PVs besides devIocStats
- pv: $(IOC_PREFIX):TEMP
  metric: site_temperature_celsius
  help: Room temperature
  labels: {room: lab}
- pv: $(IOC_PREFIX):MODE
  metric: site_mode
"#;

struct Run {
    child: Child,
    http: String,
    port: u16,
    bin: std::path::PathBuf,
    env: TestEnv,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Run {
    fn start() -> Option<Run> {
        let bin = util::epics_bin()?;
        let env = TestEnv::new();
        let cfg = env.config_dir();
        std::fs::write(cfg.join("ioc.yaml"), IOC_YAML).expect("ioc.yaml");
        std::fs::write(cfg.join("iocStats.ibek.support.yaml"), IOCSTATS_SUPPORT).expect("yaml");
        std::fs::write(cfg.join("site.ibek.support.yaml"), SITE_SUPPORT).expect("yaml");
        std::fs::write(cfg.join("extras.db"), EXTRAS_DB).expect("db");
        let iocstats = env.root().join("support/iocStats");
        env.write("support/iocStats/db/iocAdminSoft.db", ADMIN_DB);
        let file = env.write("pv-metrics.yaml", PV_METRICS);
        let ioc_bin = env.root().join("ioc/bin/linux-x86_64");
        std::fs::create_dir_all(&ioc_bin).expect("ioc bin dir");
        std::fs::copy(
            util::repo_root().join("examples/demo/bin/ioc"),
            ioc_bin.join("ioc"),
        )
        .expect("copy ioc wrapper");
        let port = free_port();
        let http = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(env.root().join("iocrun.log")).expect("log");
        let mut cmd = env.iocrun_ioc();
        ca_env(&mut cmd, port)
            .env("IOC_NAME", "it-pvm")
            .env("IOC_PREFIX", "IT-PVM")
            .env("IOCSTATS", &iocstats)
            .env("IOCRUN_EPICS_BIN", &bin)
            .env("IOCRUN_HTTP_ADDR", &http)
            .env("IOCRUN_PV_METRICS", &file)
            .env("IOCRUN_RESTART_DELAY", "3s")
            .env("IBEK_DO_WAIT_DISABLE", "true")
            .env("RUST_LOG", "iocrun=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn iocrun");
        Some(Run {
            child,
            http,
            port,
            bin,
            env,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.env.root().join("iocrun.log")).unwrap_or_default()
    }

    fn scrape(&self) -> String {
        self.scrape_as("application/openmetrics-text; version=1.0.0")
    }

    fn scrape_as(&self, accept: &str) -> String {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(&self.http) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!("GET /metrics HTTP/1.0\r\nHost: x\r\nAccept: {accept}\r\n\r\n");
        let _ = s.write_all(request.as_bytes());
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }

    /// Scrape until `ok` holds for the body (generous deadline: a loaded machine is slow).
    fn until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.scrape();
            if ok(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "never saw {what}; last /metrics:\n{last}\n--- iocrun log ---\n{}",
            self.log()
        );
    }

    fn caput(&self, pv: &str, value: &str) {
        let mut cmd = Command::new(self.bin.join("caput"));
        ca_env(&mut cmd, self.port).args(["-w", "5", pv, value]);
        let out = cmd.output().expect("caput");
        util::assert_success(&out);
    }

    /// The IOC process: iocrun's child (the wrapper execs softIoc).
    fn ioc_pid(&self) -> Option<i32> {
        let me = self.child.id();
        let text = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }
}

fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

/// The value of the one sample line starting with `prefix ` (name and labels).
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

/// The strict OpenMetrics parser of prometheus_client accepts the text.
fn strict_parse(text: &str) {
    let Some(python) = util::tool_var("IOCRUN_PYTHON") else {
        return;
    };
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
                  fams = list(p(sys.stdin.read()))\nassert any(f.name == 'epics_pv_connected' for f in fams)";
    let mut cmd = Command::new(python);
    cmd.args(["-c", script]);
    crate::serve::check_with(cmd, text);
}

#[test]
fn pv_values_follow_caput_disconnect_and_restart_without_scrape_traffic() {
    let Some(run) = Run::start() else { return };
    let temp = "site_temperature_celsius{room=\"lab\"}";
    let first = run.until("the devIocStats and file PVs", |t| {
        sample(t, temp).as_deref() == Some("21.5")
            && has(t, "epics_ioc_stats_records 21.0")
            && has(t, "epics_ioc_stats_uptime_seconds 62.0")
            && has(t, "site_mode_state{state=\"Idle\"} 1.0")
    });
    strict_parse(&first);
    for line in [
        "epics_ioc_stats_cpu_load_percent 1.5",
        "epics_ioc_stats_memory_used_bytes 1048576.0",
        "epics_ioc_stats_ca_clients 2.0",
        "epics_pv_connected{pv=\"IT-PVM:TEMP\"} 1.0",
        "epics_pv_alarm_severity{pv=\"IT-PVM:TEMP\"} 0.0",
        "site_mode 0.0",
    ] {
        assert!(has(&first, line), "missing {line:?} in\n{first}");
    }
    // a PV the IOC does not serve is shown as disconnected, without a value
    assert!(
        has(&first, "epics_pv_connected{pv=\"IT-PVM:MEM_MAX\"} 0.0"),
        "{first}"
    );
    assert!(
        sample(&first, "epics_ioc_stats_memory_max_bytes").is_none(),
        "{first}"
    );

    // values follow caput, pushed by the monitors
    run.caput("IT-PVM:TEMP", "42.25");
    run.caput("IT-PVM:MODE", "1");
    run.caput("IT-PVM:IOC_CPU_LOAD", "95");
    let after = run.until("the caput values", |t| {
        sample(t, temp).as_deref() == Some("42.25")
            && has(t, "site_mode_state{state=\"Busy\"} 1.0")
            && has(t, "epics_ioc_stats_cpu_load_percent 95.0")
    });
    strict_parse(&after);
    if Command::new("promtool").arg("--version").output().is_ok() {
        let classic = run.scrape_as("text/plain; version=0.0.4");
        assert!(
            classic.contains("site_mode_state{state=\"Busy\"} 1"),
            "{classic}"
        );
        let mut cmd = Command::new("promtool");
        cmd.args(["check", "metrics"]);
        crate::serve::check_with(cmd, &classic);
    }
    assert!(has(&after, "site_mode 1.0"), "{after}");
    assert!(
        has(
            &after,
            "epics_pv_alarm_severity{pv=\"IT-PVM:IOC_CPU_LOAD\"} 2.0"
        ),
        "HIHI alarm is MAJOR:\n{after}"
    );

    // the dashboard and the alert examples use only names iocrun exports
    let all = run.until("the CA check", |t| {
        has(t, "epics_ioc_ca_probe_success 1.0")
            && t.contains("epics_ioc_ca_probe_duration_seconds ")
    });
    for name in documented_metric_names() {
        let family = name.strip_suffix("_total").unwrap_or(&name);
        assert!(
            all.lines()
                .any(|l| l.starts_with(&format!("# TYPE {family} "))),
            "docs use {name}, which /metrics does not have:\n{all}"
        );
    }

    // scrapes send nothing: the sent-message count does not move across scrapes
    let sent = |t: &str| sample(t, "epics_ioc_ca_messages_sent_total");
    let before = sent(&run.scrape());
    assert!(before.is_some(), "the counter is exported");
    for _ in 0..5 {
        run.scrape();
    }
    assert_eq!(sent(&run.scrape()), before, "scrapes caused CA traffic");

    // the IOC dies: every PV goes disconnected and its value disappears
    let pid = run.ioc_pid().expect("the IOC process");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
        .expect("kill the IOC");
    let down = run.until("the disconnect", |t| {
        has(t, "epics_pv_connected{pv=\"IT-PVM:TEMP\"} 0.0")
            && has(t, "epics_pv_connected{pv=\"IT-PVM:RECORD_CNT\"} 0.0")
    });
    strict_parse(&down);
    assert!(sample(&down, temp).is_none(), "no stale value:\n{down}");
    assert!(sample(&down, "epics_ioc_stats_records").is_none(), "{down}");

    // the supervisor restarts it: the monitors reconnect to the new process
    let back = run.until("the reconnection", |t| {
        sample(t, temp).as_deref() == Some("21.5")
            && has(t, "epics_pv_connected{pv=\"IT-PVM:TEMP\"} 1.0")
            && has(t, "epics_ioc_stats_records 21.0")
    });
    strict_parse(&back);
    assert_ne!(run.ioc_pid(), Some(pid), "a new IOC process");
}

/// Every `epics_*` and `process_*` name in the dashboard's and the alert rules' expressions.
fn documented_metric_names() -> Vec<String> {
    let docs = util::repo_root().join("docs");
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(docs.join("grafana-ioc-dashboard.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut exprs: Vec<String> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    let rules: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(docs.join("prometheus-alerts.yaml")).expect("alerts"),
    )
    .expect("the alerts are YAML");
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            exprs.push(rule["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() > 10, "{exprs:?}");
    let word = regex::Regex::new(r"\b(?:epics|process)_[a-z0-9_]+").expect("regex");
    let mut names: Vec<String> = exprs
        .iter()
        .flat_map(|e| word.find_iter(e).map(|m| m.as_str().to_owned()))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_alert_examples_pass_promtool() {
    let Ok(_) = Command::new("promtool").arg("--version").output() else {
        assert!(!util::in_ci(), "CI=true but promtool is missing");
        util::skip("promtool not installed");
        return;
    };
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(util::repo_root().join("docs/prometheus-alerts.yaml"))
        .output()
        .expect("promtool");
    util::assert_success(&out);
}

#[test]
fn a_bad_pv_metrics_file_stops_the_start_naming_the_line() {
    let env = TestEnv::new();
    let file = env.write(
        "pv.yaml",
        "- pv: A:B\n  metric: good_one\n- pv: A:C\n  metric: bad-name\n",
    );
    let out = env
        .iocrun_ioc()
        .args(["start", "--pv-metrics"])
        .arg(&file)
        .args(["--fail-pause", "0s", "--", "sleep", "30"])
        .output()
        .expect("iocrun");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let want = format!("{}:4:3: bad metric name 'bad-name'", file.display());
    assert!(stderr.contains(&want), "want {want:?} in\n{stderr}");
    assert!(
        !stderr.contains("sleep"),
        "the IOC never started:\n{stderr}"
    );
}
