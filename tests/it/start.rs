//! `iocrun` / `iocrun start` end to end with the real softIoc (EPICS base 7.0.8.1) as
//! `$IOC/bin/linux-x86_64/ioc` in a temporary EPICS tree: the start sequence's steps 2–4 and 9,
//! console input, restarts, the crash-loop limit, the start.sh override and the failure pause.

use std::path::PathBuf;
use std::process::Command;

use nix::sys::signal::Signal;

use crate::pid1::{self, Mode};
use crate::util::{self, TestEnv};

const IOC_DB: &str = "record(ai, \"DEMO:TEMP\") {\n    field(VAL, \"21.5\")\n}\n";
const ST_CMD: &str = "dbLoadRecords(\"$(RUNTIME_DIR)/ioc.db\")\niocInit\ndbl\n";

/// A temporary EPICS tree whose IOC binary is softIoc and whose config folder holds a
/// hand-written st.cmd and ioc.db; `None` (skip) when softIoc is not installed.
fn softioc_tree() -> Option<TestEnv> {
    let bin = util::epics_bin()?;
    let env = TestEnv::new();
    let ioc_bin = env.root().join("ioc/bin/linux-x86_64");
    std::fs::create_dir_all(&ioc_bin).expect("ioc bin dir");
    std::os::unix::fs::symlink(bin.join("softIoc"), ioc_bin.join("ioc")).expect("symlink ioc");
    env.write("ioc/config/ioc.db", IOC_DB);
    env.write("ioc/config/st.cmd", ST_CMD);
    Some(env)
}

/// `iocrun ARGS` in the tree, with Channel Access kept on the loopback interface.
fn iocrun_in(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = env.iocrun_ioc();
    cmd.args(args);
    cmd
}

#[test]
fn softioc_runs_from_the_copied_st_cmd_and_stops_on_term() {
    let Some(env) = softioc_tree() else { return };
    for mode in pid1::modes() {
        let r = pid1::start(mode, iocrun_in(&env, &[]));
        r.wait_for("DEMO:TEMP");
        r.signal(Signal::SIGTERM);
        let (code, out) = r.wait();
        // iocsh has no SIGTERM handler, so softIoc dies of it
        assert_eq!(code, 128 + libc::SIGTERM, "{mode:?}:\n{out}");
        assert!(out.contains("iocRun: All initialization complete"), "{out}");
        assert!(out.contains("received SIGTERM: stopping"), "{out}");
        let copied = std::fs::read_to_string(env.runtime_dir().join("st.cmd")).expect("st.cmd");
        assert_eq!(copied, ST_CMD);
        assert!(env.runtime_dir().join("ioc.db").is_file());
    }
}

#[test]
fn exit_typed_on_the_console_ends_softioc_cleanly() {
    let Some(env) = softioc_tree() else { return };
    for mode in pid1::modes() {
        let mut r = pid1::start(mode, iocrun_in(&env, &["--restart", "on-failure"]));
        r.wait_for("DEMO:TEMP");
        r.type_text("exit\n");
        let (code, out) = r.wait();
        assert_eq!(code, 0, "{mode:?}:\n{out}");
        assert!(out.contains("ended: exit status 0"), "{out}");
    }
}

#[test]
fn softioc_is_restarted_after_exit_then_stopped() {
    let Some(env) = softioc_tree() else { return };
    let mut r = pid1::start(
        Mode::Subreaper,
        iocrun_in(&env, &["--restart", "always", "--restart-delay", "50ms"]),
    );
    r.wait_for("DEMO:TEMP");
    r.type_text("exit\n");
    r.wait_for("restarting in 50ms");
    r.wait_for("started pid");
    // the second run prints the record list again
    let until = std::time::Instant::now() + pid1::DEADLINE;
    while r.output().matches("DEMO:TEMP\n").count() < 2 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    r.signal(Signal::SIGTERM);
    let (code, out) = r.wait();
    assert_eq!(out.matches("started pid").count(), 2, "{out}");
    assert_eq!(code, 128 + libc::SIGTERM, "{out}");
}

#[test]
fn a_crash_loop_gives_up_with_code_75() {
    // an IOC binary that fails at once, every time (softIoc would drop to its prompt)
    let env = TestEnv::new();
    let ioc = env.write(
        "ioc/bin/linux-x86_64/ioc",
        "#!/bin/sh\necho \"cannot start $1\"\nexit 1\n",
    );
    env.write("ioc/config/st.cmd", "iocInit\n");
    std::fs::set_permissions(&ioc, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let args = [
        "--restart",
        "always",
        "--restart-delay",
        "10ms",
        "--crash-limit",
        "3",
    ];
    let (code, out) = pid1::start(Mode::Subreaper, iocrun_in(&env, &args)).wait();
    assert_eq!(code, 75, "{out}");
    assert_eq!(out.matches("started pid").count(), 3, "{out}");
    assert!(out.contains("giving up after 3 quick failures"), "{out}");
}

#[test]
fn config_start_sh_replaces_the_built_in_steps() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.root().join("ioc")).expect("ioc dir");
    env.write(
        "support/configure/RELEASE.shell",
        "export ASYN=\"/epics/support/asyn\"\nexport DB_PATH=\"${ASYN}/db\"\n",
    );
    env.write(
        "ioc/config/start.sh",
        "echo \"override in $(pwd) config=$CONFIG_DIR runtime=$RUNTIME_DIR db=$DB_PATH\"\nexit 4\n",
    );
    env.write("ioc/config/st.cmd", "not copied\n");
    for mode in pid1::modes() {
        let (code, out) = pid1::start(mode, iocrun_in(&env, &["--restart", "never"])).wait();
        assert_eq!(code, 4, "{mode:?}:\n{out}");
        let want = format!(
            "override in {} config={} runtime={} db=/epics/support/asyn/db",
            env.root().join("ioc").display(),
            env.config_dir().display(),
            env.runtime_dir().display()
        );
        assert!(out.contains(&want), "{out}");
        assert!(out.contains("started pid"), "{out}");
        // step 4 did not run: the override replaces it
        assert!(!env.runtime_dir().join("st.cmd").exists());
    }
}

#[test]
fn a_failed_start_step_reports_once_and_pauses_before_exiting() {
    let env = TestEnv::new();
    let missing = PathBuf::from(env.root()).join("no-such-ioc");
    let mut cmd = iocrun_in(&env, &["--fail-pause", "100ms"]);
    cmd.env("IOC", &missing);
    let (code, out) = pid1::start(Mode::Subreaper, cmd).wait();
    assert_eq!(code, 1, "{out}");
    let want = format!(
        "iocrun: cannot change to the IOC folder '{}': No such file or directory (os error 2) (exiting in 100ms)",
        missing.display()
    );
    assert!(out.contains(&want), "{out}");
    assert_eq!(out.matches("iocrun:").count(), 1, "one error only:\n{out}");
    assert!(!out.contains("started pid"), "{out}");
}

#[test]
fn the_pause_has_an_env_twin() {
    let env = TestEnv::new();
    let mut cmd = iocrun_in(&env, &[]);
    cmd.env("IOC", env.root().join("missing"))
        .env("IOCRUN_FAIL_PAUSE", "20ms");
    let (code, out) = pid1::start(Mode::Subreaper, cmd).wait();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("(exiting in 20ms)"), "{out}");
}

#[test]
fn a_failing_expand_step_stops_the_start_before_the_ioc() {
    let Some(env) = softioc_tree() else { return };
    // step 6 expands ioc.subst; its template does not exist
    env.write(
        "ioc/config/ioc.subst",
        "file \"missing.template\" {\n    { P=DEMO }\n}\n",
    );
    let (code, out) =
        pid1::start(Mode::Subreaper, iocrun_in(&env, &["--fail-pause", "10ms"])).wait();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("missing.template"), "{out}");
    assert!(out.contains("(exiting in 10ms)"), "{out}");
    assert!(!out.contains("started pid"), "{out}");
}

/// A temporary EPICS tree holding the example instance (`examples/demo/config`) with
/// `examples/demo/bin/ioc` (softIoc) as the IOC binary; `None` (skip) without softIoc.
pub fn example_tree() -> Option<TestEnv> {
    util::epics_bin()?;
    let env = TestEnv::new();
    let example = util::repo_root().join("examples/demo");
    for entry in std::fs::read_dir(example.join("config")).expect("example config") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name");
        std::fs::copy(&path, env.config_dir().join(name)).expect("copy config");
    }
    let bin = env.root().join("ioc/bin/linux-x86_64");
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::copy(example.join("bin/ioc"), bin.join("ioc")).expect("copy ioc wrapper");
    Some(env)
}

/// The example instance through the whole start sequence (render, expand, place files, wait)
/// on softIoc, with `examples/demo/bin/ioc` as the IOC binary, as `scripts/demo.sh` runs it.
#[test]
fn the_example_instance_renders_and_runs_under_iocrun() {
    let Some(env) = example_tree() else { return };
    let command = || {
        let mut cmd = iocrun_in(&env, &[]);
        cmd.env("IOC_NAME", "it-demo")
            .env("IOCRUN_WAIT_DONE_FILE", env.root().join("done.txt"));
        cmd
    };
    for mode in pid1::modes() {
        let r = pid1::start(mode, command());
        // the post-iocInit dbpf of the instance ran on the rendered database
        r.wait_for("DBF_DOUBLE:         50");
        r.signal(Signal::SIGTERM);
        let (code, out) = r.wait();
        assert_eq!(code, 128 + libc::SIGTERM, "{mode:?}:\n{out}");
        assert!(out.contains("dbLoadRecords"), "{out}");
        let db = std::fs::read_to_string(env.runtime_dir().join("ioc.db")).expect("ioc.db");
        assert!(db.contains("IT-DEMO:TICK"), "{db}");
        assert!(
            env.root().join("done.txt").is_file(),
            "step 8 marks the wait done"
        );
    }
}

#[test]
fn stop_input_lets_softioc_exit_cleanly_on_term() {
    let Some(env) = softioc_tree() else { return };
    for mode in pid1::modes() {
        let args = ["--stop-input", "exit\\n", "--grace", "20s"];
        let r = pid1::start(mode, iocrun_in(&env, &args));
        r.wait_for("DEMO:TEMP");
        r.signal(Signal::SIGTERM);
        let (code, out) = r.wait();
        // iocsh ran `exit` (its exit hooks, autosave's among them): a clean 0, no signal sent
        assert_eq!(code, 0, "{mode:?}:\n{out}");
        assert!(out.contains("ended: exit status 0"), "{out}");
    }
}

/// A stop while start step 8 waits for hardware ends iocrun at once: no IOC is started and the
/// wait is not sat out.
#[test]
fn term_during_the_hardware_wait_exits_without_starting_the_ioc() {
    let Some(env) = example_tree() else { return };
    // a device on a port nobody listens on, with a long timeout
    let absent = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let yaml = env.config_dir().join("ioc.yaml");
    let text = std::fs::read_to_string(&yaml).expect("ioc.yaml")
        + &format!(
            "\n  - type: ibek.wait_ip\n    device: absent\n    address: 127.0.0.1:{absent}\n    timeout: 600\n"
        );
    std::fs::write(&yaml, text).expect("write ioc.yaml");
    for mode in pid1::modes() {
        let mut cmd = iocrun_in(&env, &[]);
        cmd.env("IOCRUN_WAIT_DONE_FILE", env.root().join("done.txt"))
            .env("IOCRUN_WAIT_PROGRESS", "0.1")
            .env_remove("IBEK_DO_WAIT_DISABLE");
        let r = pid1::start(mode, cmd);
        r.wait_for("absent");
        r.signal(Signal::SIGTERM);
        let (code, out) = r.wait();
        assert_eq!(code, 128 + libc::SIGTERM, "{mode:?}:\n{out}");
        assert!(
            out.contains("received SIGTERM during the start steps"),
            "{out}"
        );
        assert!(!out.contains("started pid"), "{out}");
        assert!(!env.root().join("done.txt").exists());
    }
}

/// Every file under `dir` with its modification time and contents, sorted by path.
fn snapshot(dir: &std::path::Path) -> Vec<(PathBuf, std::time::SystemTime, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                todo.push(path.clone());
            }
            let contents = if meta.is_file() {
                std::fs::read(&path).expect("read")
            } else {
                Vec::new()
            };
            out.push((path, meta.modified().expect("mtime"), contents));
        }
    }
    out.sort();
    out
}

/// One supervisor at a time: a second iocrun on the same sockets refuses before touching any
/// file (the first IOC's runtime folder keeps its files, contents and times) and the first IOC
/// runs on.
#[test]
fn a_second_iocrun_on_the_same_sockets_refuses_and_touches_nothing() {
    let Some(env) = softioc_tree() else { return };
    let control = env.root().join("control.sock");
    let console = env.root().join("console.sock");
    let command = || {
        let mut cmd = iocrun_in(&env, &[]);
        cmd.env("IOCRUN_CONTROL_SOCKET", &control)
            .env("IOCRUN_CONSOLE_SOCKET", &console);
        cmd
    };
    let first = pid1::start(Mode::Subreaper, command());
    first.wait_for("DEMO:TEMP");
    let before = snapshot(&env.runtime_dir());
    assert!(before.len() >= 2, "st.cmd and ioc.db: {before:?}");
    let (code, out) = pid1::start(Mode::Subreaper, command()).wait();
    assert_eq!(code, 1, "{out}");
    let want = format!(
        "iocrun: socket '{}' is in use by a running process (another iocrun?); stop it, or \
         choose another path with IOCRUN_CONTROL_SOCKET",
        control.display()
    );
    assert!(out.contains(&want), "{out}");
    assert!(!out.contains("started pid"), "{out}");
    assert_eq!(
        snapshot(&env.runtime_dir()),
        before,
        "runtime folder touched"
    );
    // the first one is untouched too: its sockets still answer and its IOC still runs
    assert!(std::os::unix::net::UnixStream::connect(&control).is_ok());
    assert!(std::os::unix::net::UnixStream::connect(&console).is_ok());
    first.signal(Signal::SIGTERM);
    let (_, first_out) = first.wait();
    assert_eq!(first_out.matches("started pid").count(), 1, "{first_out}");
    assert!(
        first_out.contains("received SIGTERM: stopping"),
        "{first_out}"
    );
}

/// A regular file or a symbolic link where a socket should go is refused, named with the
/// variable that moves it, and left as it was (issue 11 item 5: the control socket used to
/// delete them).
#[test]
fn a_file_or_link_at_a_socket_path_is_refused_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("precious.txt");
    std::fs::write(&file, "keep me").expect("write");
    let link = dir.path().join("link.sock");
    std::os::unix::fs::symlink(&file, &link).expect("symlink");
    for var in ["IOCRUN_CONTROL_SOCKET", "IOCRUN_CONSOLE_SOCKET"] {
        for (path, what) in [(&file, "a regular file"), (&link, "a symbolic link")] {
            let mut cmd = pid1::iocrun_with(&[], &["true"]);
            cmd.env(var, path);
            let (code, out) = pid1::start(Mode::Subreaper, cmd).wait();
            assert_eq!(code, 1, "{var} {what}: {out}");
            let want = format!(
                "iocrun: '{}' is {what}, not a socket; refusing to replace it (remove it, or \
                 choose another path with {var})",
                path.display()
            );
            assert!(out.contains(&want), "{out}");
            assert!(!out.contains("started pid"), "nothing started: {out}");
            assert_eq!(std::fs::read_to_string(&file).expect("file"), "keep me");
            assert!(std::fs::symlink_metadata(&link)
                .expect("link")
                .file_type()
                .is_symlink());
        }
    }
}
