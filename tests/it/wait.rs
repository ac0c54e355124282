//! `iocrun wait` against real listeners on loopback, compared with `ibek ioc do-wait` where
//! the messages matter. Every test has its own done file (`IOCRUN_WAIT_DONE_FILE`).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::{self, TestEnv};

/// A loopback port with nothing listening on it (bound once, then released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn entry(device: &str, address: &str, timeout: &str) -> String {
    format!(
        "- type: ibek.wait_ip\n  device: {device}\n  address: {address}\n  timeout: {timeout}\n"
    )
}

/// The env's iocrun, running `wait` on `list` with a done file inside the tree.
fn wait_cmd(env: &TestEnv, list: &Path) -> (Command, PathBuf) {
    let done = env.root().join("doWait_completed.txt");
    let mut cmd = env.iocrun();
    cmd.arg("wait")
        .arg("--source")
        .arg(list)
        .env("IOCRUN_WAIT_DONE_FILE", &done)
        .env_remove("IBEK_DO_WAIT_DISABLE")
        .env_remove("IOCRUN_WAIT_TIMEOUT")
        .env_remove("IOCRUN_WAIT_PROGRESS");
    (cmd, done)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn listeners_that_appear_late_are_waited_for() {
    let env = TestEnv::new();
    let late = free_port();
    let early = TcpListener::bind("127.0.0.1:0").expect("bind");
    let list = env.write(
        "runtime/wait_list.yaml",
        &(entry("late", &format!("127.0.0.1:{late}"), "60")
            + &entry(
                "early",
                &early.local_addr().expect("addr").to_string(),
                "60",
            )),
    );
    let (mut cmd, done) = wait_cmd(&env, &list);
    let mut child = cmd
        .args(["--progress", "0.1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    // the listener only appears once iocrun has said it is still waiting for both targets
    for line in lines.by_ref() {
        let line = line.expect("line");
        seen.push(line.clone());
        if line.starts_with("Still waiting for late") {
            assert!(line.ends_with("pending: late, early"), "{line}");
            break;
        }
    }
    let _listener = TcpListener::bind(("127.0.0.1", late)).expect("bind the late port");
    seen.extend(lines.map(|l| l.expect("line")));
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit {status:?}; output {seen:#?}");
    assert_eq!(
        seen.first().map(String::as_str),
        Some(
            format!("Waiting up to 60 seconds for late at 127.0.0.1:{late} to respond...").as_str()
        )
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("All 'wait' commands completed successfully.")
    );
    assert!(done.exists(), "done file written on success");
}

#[test]
fn unreachable_target_times_out_without_done_file() {
    let env = TestEnv::new();
    let port = free_port();
    let list = env.write(
        "w.yaml",
        &entry("gone", &format!("127.0.0.1:{port}"), "0.5"),
    );
    let (mut cmd, done) = wait_cmd(&env, &list);
    std::fs::write(&done, "").expect("stale done file");
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "connection to gone at 127.0.0.1:{port} timed out after 0.5 seconds"
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !done.exists(),
        "a failed wait removes and does not recreate the done file"
    );
}

#[test]
fn overall_timeout_bounds_an_endless_target() {
    let env = TestEnv::new();
    let list = env.write(
        "w.yaml",
        &entry("forever", &format!("127.0.0.1:{}", free_port()), "0"),
    );
    let (mut cmd, done) = wait_cmd(&env, &list);
    let out = cmd.args(["--timeout", "0.5"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("Waiting indefinitely for forever at"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("still pending: forever"),
        "{}",
        text(&out.stderr)
    );
    assert!(!done.exists());
}

#[test]
fn dns_failure_is_reported_and_fatal() {
    let env = TestEnv::new();
    let list = env.write("w.yaml", &entry("dev", "no-such-host.invalid:80", "3"));
    let (mut cmd, done) = wait_cmd(&env, &list);
    let out = cmd.args(["--progress", "0.5"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let no_such_name = stderr.contains(
        "error connecting to dev at no-such-host.invalid:80: cannot resolve host 'no-such-host.invalid'",
    );
    // a machine whose resolver cannot be reached answers "try again": waited out, and said so
    let resolver_down = stdout.contains("name lookup of 'no-such-host.invalid' failed for now")
        && stderr.contains("timed out after 3 seconds");
    assert!(
        no_such_name || resolver_down,
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!done.exists());
}

#[test]
fn skip_switch_writes_done_file_without_waiting() {
    let env = TestEnv::new();
    let list = env.write(
        "w.yaml",
        &entry("gone", &format!("127.0.0.1:{}", free_port()), "0"),
    );
    let (mut cmd, done) = wait_cmd(&env, &list);
    let out = cmd
        .env("IBEK_DO_WAIT_DISABLE", "true")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(done.exists(), "done file written when skipped");

    // only the exact string `true` skips, as in start.sh
    let (mut cmd, done) = wait_cmd(&env, &list);
    let out = cmd
        .env("IBEK_DO_WAIT_DISABLE", "yes")
        .args(["--timeout", "0.3"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(!done.exists());
}

/// Run the reference `ibek ioc do-wait`; `None` when ibek is not installed (outside CI).
fn ibek_do_wait(list: &Path) -> Option<Output> {
    let ibek = util::tool_var("IOCRUN_IBEK")?;
    Some(
        Command::new(ibek)
            .args(["ioc", "do-wait", "--source"])
            .arg(list)
            .output()
            .expect("run ibek"),
    )
}

#[test]
fn stdout_matches_ibek_for_present_missing_and_empty_lists() {
    let env = TestEnv::new();
    let a = TcpListener::bind("127.0.0.1:0").expect("bind");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up = env.write(
        "up.yaml",
        &(entry("a", &a.local_addr().expect("addr").to_string(), "10")
            + &entry("b", &b.local_addr().expect("addr").to_string(), "0")),
    );
    let empty = env.write("empty.yaml", "");
    let missing = env.root().join("missing.yaml");
    for list in [up, empty, missing] {
        let Some(reference) = ibek_do_wait(&list) else {
            return;
        };
        let (mut cmd, done) = wait_cmd(&env, &list);
        let ours = cmd.output().expect("run");
        assert_eq!(ours.status.code(), reference.status.code(), "{list:?}");
        util::assert_text_eq("stdout", &text(&reference.stdout), &text(&ours.stdout));
        assert!(done.exists());
    }
}
