//! Live operation with the real softIoc: every restart re-reads the config folder (issue 9),
//! a config that no longer renders keeps the IOC on its last good outputs, and start hooks run
//! before the render.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::pid1::{self, Mode, Running};
use crate::start::example_tree;
use crate::util::TestEnv;

/// The demo's post-iocInit `dbpf` of TICK:LIMIT prints the value it wrote.
fn dbpf_line(value: u32) -> String {
    format!("DBF_DOUBLE:         {value}")
}

/// Change the value the demo's ioc.yaml gives TICK:LIMIT after iocInit.
fn set_tick_limit(env: &TestEnv, value: u32) {
    let yaml = env.config_dir().join("ioc.yaml");
    let text = std::fs::read_to_string(&yaml).expect("ioc.yaml");
    let edited = text.replace("    value: \"50\"", &format!("    value: \"{value}\""));
    assert_ne!(text, edited, "the demo's dbpf value moved");
    std::fs::write(&yaml, edited).expect("write ioc.yaml");
}

fn assert_contains_all(text: &str, wanted: &[&str]) {
    for want in wanted {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
}

/// Wait until `text` appears `n` times in the output.
fn wait_count(r: &Running, text: &str, n: usize) {
    let until = Instant::now() + pid1::DEADLINE;
    while r.output().matches(text).count() < n {
        assert!(
            Instant::now() < until,
            "{text:?} not seen {n} times:\n{}",
            r.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn demo_iocrun(env: &TestEnv) -> std::process::Command {
    let mut cmd = env.iocrun_ioc();
    cmd.args(["--restart-delay", "50ms"])
        .env("IOC_NAME", "it-live")
        .env("IOCRUN_WAIT_DONE_FILE", env.root().join("done.txt"));
    cmd
}

#[test]
fn an_edited_ioc_yaml_is_live_after_exit_and_a_broken_one_keeps_the_last_good() {
    let Some(env) = example_tree() else { return };
    let mut r = pid1::start(Mode::Subreaper, demo_iocrun(&env));
    r.wait_for(&dbpf_line(50));
    set_tick_limit(&env, 77);
    r.type_text("exit\n");
    r.wait_for(&dbpf_line(77));
    let st_cmd = std::fs::read_to_string(env.runtime_dir().join("st.cmd")).expect("st.cmd");
    assert!(
        st_cmd.contains("dbpf \"IT-LIVE:TICK:LIMIT\" \"77\""),
        "{st_cmd}"
    );
    // a typo: the IOC still comes back, on the outputs of the last good start
    std::fs::write(env.config_dir().join("ioc.yaml"), "entities: [\n").expect("break");
    r.type_text("exit\n");
    wait_count(&r, &dbpf_line(77), 2);
    r.signal(Signal::SIGTERM);
    let (_, out) = r.wait();
    assert_eq!(out.matches("started pid").count(), 3, "{out}");
    assert!(
        out.contains("config error: ")
            && out.contains("starting the IOC from the last good outputs"),
        "{out}"
    );
    assert!(out.contains("start step ibek_generate failed in"), "{out}");
    let kept = std::fs::read_to_string(env.runtime_dir().join("st.cmd")).expect("st.cmd");
    assert_eq!(kept, st_cmd, "a failed render leaves the last good outputs");
}

/// `iocrun status|restart|stop ARGS` against the supervisor of `env`; (exit code, stdout,
/// stderr).
fn control(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let out = env
        .iocrun()
        .args(args)
        .arg("--socket")
        .arg(env.root().join("control.sock"))
        .output()
        .expect("run iocrun");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `pid: N` line of `iocrun status`.
fn status_pid(env: &TestEnv) -> Option<u32> {
    let (_, out, _) = control(env, &["status"]);
    out.lines()
        .find_map(|l| l.strip_prefix("pid: "))
        .and_then(|p| p.parse().ok())
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + pid1::DEADLINE;
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn iocrun_restart_makes_an_edited_config_live_and_status_and_stop_answer() {
    let Some(env) = example_tree() else { return };
    let mut cmd = demo_iocrun(&env);
    cmd.env("IOCRUN_CONTROL_SOCKET", env.root().join("control.sock"));
    let r = pid1::start(Mode::Subreaper, cmd);
    r.wait_for(&dbpf_line(50));
    wait_until("a pid in iocrun status", || status_pid(&env).is_some());
    let first = status_pid(&env);
    set_tick_limit(&env, 63);
    let (code, out, err) = control(&env, &["restart"]);
    assert_eq!((code, out.as_str()), (0, "restarting\n"), "{err}");
    r.wait_for(&dbpf_line(63));
    wait_until("a new pid", || {
        status_pid(&env).is_some_and(|p| Some(p) != first)
    });
    let (code, text, _) = control(&env, &["status"]);
    assert_eq!(code, 0);
    assert_contains_all(
        &text,
        &[
            "state: running\n",
            "restarts: 1 (request 1)\n",
            "config error: -\n",
            "hardware pending: -\n",
        ],
    );
    assert!(
        text.contains("\nlast exit: signal 15 (SIGTERM)\n"),
        "{text}"
    );
    let (_, json, _) = control(&env, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("status json");
    assert_eq!(v["state"], "running", "{json}");
    assert_eq!(v["restarts_by_reason"]["request"], 1, "{json}");
    assert_eq!(v["pid"].as_u64().map(|p| p as u32), status_pid(&env));
    let (code, out, _) = control(&env, &["stop"]);
    assert_eq!((code, out.as_str()), (0, "stopping\n"));
    let (code, out) = r.wait();
    assert_eq!(code, 128 + libc::SIGTERM, "{out}");
    assert!(out.contains("restart (request): stopping pid"), "{out}");
    let (code, _, err) = control(&env, &["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the supervisor"), "{err}");
}

#[test]
fn a_failing_channel_access_check_is_logged_with_the_address_then_its_recovery() {
    let Some(env) = example_tree() else { return };
    let mut cmd = demo_iocrun(&env);
    cmd.env("IOCRUN_CONTROL_SOCKET", env.root().join("control.sock"))
        .env("IOCRUN_CA_CHECK_PV", "IT-LIVE:UPTIME")
        .env("IOCRUN_CA_CHECK_PERIOD", "0.2")
        .env("IOCRUN_CA_CHECK_TIMEOUT", "0.5");
    let r = pid1::start(Mode::Subreaper, cmd);
    r.wait_for(&dbpf_line(50));
    wait_until("readiness", || {
        control(&env, &["status"]).1.contains("ready: ok")
    });
    let pid = status_pid(&env).expect("pid");
    let ioc = nix::unistd::Pid::from_raw(pid as i32);
    // a wedged IOC: its sockets accept, nothing answers
    nix::sys::signal::kill(ioc, Signal::SIGSTOP).expect("stop the IOC");
    r.wait_for("channel access check of IT-LIVE:UPTIME failed: ");
    nix::sys::signal::kill(ioc, Signal::SIGCONT).expect("continue the IOC");
    r.wait_for("channel access check of IT-LIVE:UPTIME answers again");
    r.signal(Signal::SIGTERM);
    let (_, out) = r.wait();
    let failed = out
        .lines()
        .filter(|l| l.contains("channel access check of IT-LIVE:UPTIME failed"))
        .collect::<Vec<_>>();
    assert_eq!(failed.len(), 1, "rate-limited to one line a minute:\n{out}");
    assert!(failed[0].contains("tried tcp 127.0.0.1:"), "{out}");
}

/// A support module whose screen comes from a device file that only a start hook writes (as
/// images that make PVI files from the camera at start-up do).
const CAMERA_SUPPORT: &str = "module: cam
entity_models:
  - name: Camera
    description: a camera whose PVI device file is generated at start-up
    parameters:
      P:
        type: str
        description: PV prefix
    pvi:
      yaml_path: Camera.pvi.device.yaml
      ui_macros:
        P:
";

const CAMERA_HOOK: &str = "#!/bin/sh
set -eu
echo \"generating Camera.pvi.device.yaml ($IOCRUN_START_REASON start, config $CONFIG_DIR)\"
mkdir -p \"$EPICS_ROOT/pvi-defs\"
cat >\"$EPICS_ROOT/pvi-defs/Camera.pvi.device.yaml\" <<END
label: Camera from hook $IOCRUN_START_REASON
children:
  - {type: SignalR, name: Gain, read_pv: \\$(P)GAIN}
END
";

#[test]
fn a_start_hook_writes_a_pvi_device_file_that_the_render_uses() {
    let Some(env) = example_tree() else { return };
    env.write("ioc/config/cam.ibek.support.yaml", CAMERA_SUPPORT);
    let yaml = env.config_dir().join("ioc.yaml");
    let text = std::fs::read_to_string(&yaml).expect("ioc.yaml")
        + "\n  - type: cam.Camera\n    P: \"IT-LIVE:CAM:\"\n";
    std::fs::write(&yaml, text).expect("write ioc.yaml");
    let hook = env.write("ioc/start.d/10-camera", CAMERA_HOOK);
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    env.write("ioc/start.d/20-notes.txt", "not a program\n");
    let mut r = pid1::start(Mode::Subreaper, demo_iocrun(&env));
    r.wait_for(&dbpf_line(50));
    let screens = || -> String {
        std::fs::read_dir(env.root().join("opi"))
            .expect("opi folder")
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    };
    assert!(
        screens().contains("Camera from hook first"),
        "{}",
        r.output()
    );
    assert!(!env.runtime_dir().join("pvi_failed").exists());
    // and again at the restart after `exit`
    r.type_text("exit\n");
    wait_count(&r, &dbpf_line(50), 2);
    assert!(
        screens().contains("Camera from hook exit"),
        "{}",
        r.output()
    );
    r.signal(Signal::SIGTERM);
    let (_, out) = r.wait();
    let config = env.config_dir();
    let said = format!(
        "generating Camera.pvi.device.yaml (first start, config {})",
        config.display()
    );
    assert!(
        out.contains(&said),
        "hook output in the console stream:\n{out}"
    );
    assert!(
        out.contains("20-notes.txt is not executable: skipped"),
        "{out}"
    );
    assert!(out.contains("start step start_d done in"), "{out}");
}

#[test]
fn a_failing_start_hook_fails_the_start_step() {
    let Some(env) = example_tree() else { return };
    let hook = env.write(
        "hooks/fail",
        "#!/bin/sh\necho 'no camera found' >&2\nexit 3\n",
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mut cmd = demo_iocrun(&env);
    cmd.args(["--fail-pause", "10ms"])
        .env("IOCRUN_START_D", env.root().join("hooks"));
    let (code, out) = pid1::start(Mode::Subreaper, cmd).wait();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no camera found"), "{out}");
    let want = format!("start hook '{}' failed (exit status: 3)", hook.display());
    assert!(out.contains(&want), "{out}");
    assert!(!out.contains("started pid"), "{out}");
}

/// Lay `files` out as Kubernetes mounts a ConfigMap: each name a link through `..data`, which
/// links to a timestamped folder; a new version is swapped in with one atomic rename of the
/// `..data` link, and the old folder is removed afterwards.
fn configmap_version(env: &TestEnv, version: &str, files: &[(String, Vec<u8>)]) {
    use std::os::unix::fs::symlink;
    let config = env.config_dir();
    let folder = format!("..{version}");
    std::fs::create_dir_all(config.join(&folder)).expect("version folder");
    for (name, bytes) in files {
        std::fs::write(config.join(&folder).join(name), bytes).expect("write version file");
    }
    let old = std::fs::read_link(config.join("..data")).ok();
    symlink(&folder, config.join("..data_tmp")).expect("new ..data link");
    std::fs::rename(config.join("..data_tmp"), config.join("..data")).expect("swap ..data");
    for (name, _) in files {
        let link = config.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{name}"), link).expect("file link");
        }
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(config.join(old)).expect("remove the old version");
    }
}

/// The config folder's files, read and removed (to be laid out again as a ConfigMap).
fn take_config(env: &TestEnv) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(env.config_dir()).expect("config") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        files.push((name, std::fs::read(&path).expect("read")));
        std::fs::remove_file(&path).expect("remove");
    }
    files
}

fn with_file(
    files: &[(String, Vec<u8>)],
    name: &str,
    edit: impl Fn(&str) -> String,
) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|(n, b)| match n == name {
            true => (n.clone(), edit(&String::from_utf8_lossy(b)).into_bytes()),
            false => (n.clone(), b.clone()),
        })
        .collect()
}

/// GET `path` from iocrun's HTTP endpoint, as text.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect http");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    text
}

#[test]
fn a_configmap_update_reloads_and_an_invalid_one_leaves_the_ioc_running() {
    let Some(env) = example_tree() else { return };
    let v1 = take_config(&env);
    configmap_version(&env, "2026_01_01_00_00_00.1", &v1);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut cmd = demo_iocrun(&env);
    cmd.arg("--watch-config")
        .env("IOCRUN_CONTROL_SOCKET", env.root().join("control.sock"))
        .env("IOCRUN_HTTP_ADDR", format!("127.0.0.1:{port}"));
    let r = pid1::start(Mode::Subreaper, cmd);
    r.wait_for(&dbpf_line(50));
    let metrics = http_get(port, "/metrics");
    assert_contains_all(
        &metrics,
        &[
            "epics_ioc_config_error 0.0",
            "epics_ioc_config_reloads_total{result=\"ok\"} 0",
            "epics_ioc_config_reloads_total{result=\"invalid\"} 0",
        ],
    );
    // a valid update: the IOC restarts on it within a few seconds
    let v2 = with_file(&v1, "ioc.yaml", |t| {
        t.replace("value: \"50\"", "value: \"88\"")
    });
    configmap_version(&env, "2026_01_01_00_01_00.2", &v2);
    r.wait_for(&dbpf_line(88));
    wait_until("the reloaded IOC's pid", || status_pid(&env).is_some());
    let pid = status_pid(&env);
    // an invalid one: reported, and the IOC runs on untouched
    let v3 = with_file(&v2, "ioc.yaml", |t| {
        t.replace("type: demo.Counter", "type: demo.Nope")
    });
    configmap_version(&env, "2026_01_01_00_02_00.3", &v3);
    r.wait_for("config folder changed but cannot be used, the IOC runs on");
    let (_, status, _) = control(&env, &["status"]);
    assert!(
        status.contains("config error: ") && status.contains("demo.Nope"),
        "{status}"
    );
    assert!(status.contains("state: running"), "{status}");
    assert_eq!(status_pid(&env), pid, "the same IOC process");
    let metrics = http_get(port, "/metrics");
    assert_contains_all(
        &metrics,
        &[
            "epics_ioc_config_error 1.0",
            "epics_ioc_config_reloads_total{result=\"ok\"} 1",
            "epics_ioc_config_reloads_total{result=\"invalid\"} 1",
            "epics_ioc_restarts_total{reason=\"reload\"} 1",
        ],
    );
    let (_, ready, _) = control(&env, &["status", "--json"]);
    assert!(ready.contains("\"config_error\":\""), "{ready}");
    r.signal(Signal::SIGTERM);
    let (_, out) = r.wait();
    assert_eq!(out.matches("started pid").count(), 2, "{out}");
    assert!(out.contains("restart (reload): stopping pid"), "{out}");
}

#[test]
fn outputs_of_an_earlier_start_are_removed_and_foreign_files_kept() {
    let Some(env) = example_tree() else { return };
    let mut r = pid1::start(Mode::Subreaper, demo_iocrun(&env));
    r.wait_for(&dbpf_line(50));
    assert!(env.runtime_dir().join("ioc.subst").is_file());
    // the instance becomes a hand-written one: its old ioc.subst must not be expanded again
    std::fs::remove_file(env.config_dir().join("ioc.yaml")).expect("remove ioc.yaml");
    env.write(
        "ioc/config/st.cmd",
        "dbLoadRecords(\"$(RUNTIME_DIR)/ioc.db\")\niocInit\ndbl\n",
    );
    env.write("ioc/config/ioc.db", "record(ai, \"HAND:WRITTEN\") {\n}\n");
    r.type_text("exit\n");
    r.wait_for("HAND:WRITTEN");
    r.signal(Signal::SIGTERM);
    let (_, out) = r.wait();
    let removed = out
        .lines()
        .find(|l| l.contains("removed outputs of an earlier start: "))
        .unwrap_or_else(|| panic!("no removal line:\n{out}"));
    assert!(removed.contains("ioc.subst"), "{removed}");
    let runtime = env.runtime_dir();
    assert!(!runtime.join("ioc.subst").exists());
    let db = std::fs::read_to_string(runtime.join("ioc.db")).expect("ioc.db");
    assert_eq!(db, "record(ai, \"HAND:WRITTEN\") {\n}\n");
    // written by the demo's IOC wrapper, not by iocrun: kept
    assert!(runtime.join("st-softioc.cmd").is_file());
}

#[test]
fn an_empty_config_folder_is_a_clear_start_error() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.root().join("ioc/bin")).expect("ioc folder");
    env.write("ioc/config/README", "nothing to run here\n");
    let mut cmd = env.iocrun_ioc();
    cmd.args(["--fail-pause", "10ms"]);
    let (code, out) = pid1::start(Mode::Subreaper, cmd).wait();
    assert_eq!(code, 1, "{out}");
    let want = format!(
        "config folder '{}' has none of ioc.yaml, st.cmd or start.sh: nothing to start",
        env.config_dir().display()
    );
    assert!(out.contains(&want), "{out}");
    assert!(!out.contains("started pid"), "{out}");
    assert!(
        !env.runtime_dir().join(".iocrun-outputs").exists(),
        "nothing written"
    );
}
