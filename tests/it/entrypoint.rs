//! iocrun as a container ENTRYPOINT, without a container: `iocrun CMD ARGS…` like tini (a
//! one-shot: no restart, its exit code, the end of stdin reaches it), the ioc-template's
//! `ioc/start.sh` shim nested under iocrun (the smoke test: runs st.cmd, prints the `dbgf`
//! line, ends by itself), the IOC start that ignores the end of stdin (a server), and start
//! settings that never break other subcommands. `container.rs` repeats the first two under
//! podman.

use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;

use crate::pid1::{self, Mode};
use crate::util::{self, TestEnv};

/// What the smoke instance's `dbgf EXAMPLE:IBEK:SUM` prints (2.54 + 2.61).
pub const DBGF_LINE: &str = "DBF_DOUBLE:         5.15";

/// A tree laid out as a Generic IOC image: the demo's ioc wrapper (softIoc), the smoke
/// instance as config and the two-line `ioc/start.sh` shim; `None` (skip) without softIoc.
fn smoke_tree() -> Option<TestEnv> {
    util::epics_bin()?;
    let env = TestEnv::new();
    let repo = util::repo_root();
    let bin = env.root().join("ioc/bin/linux-x86_64");
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::copy(repo.join("examples/demo/bin/ioc"), bin.join("ioc")).expect("ioc wrapper");
    std::fs::copy(
        repo.join("examples/adopt/start.sh"),
        env.root().join("ioc/start.sh"),
    )
    .expect("shim");
    for name in ["ioc.yaml", "ioc.db"] {
        let from = repo.join("tests/fixtures/smoke/config").join(name);
        std::fs::copy(from, env.config_dir().join(name)).expect("smoke config");
    }
    Some(env)
}

/// `iocrun ARGS` in the tree, with iocrun on PATH (the shim calls it by name).
fn iocrun_in(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = env.iocrun_ioc();
    let bin_dir = util::iocrun_bin();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.parent().expect("bin dir").to_owned()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ),
    )
    .expect("PATH");
    cmd.args(args)
        .env("PATH", path)
        .env("IOCRUN_WAIT_DONE_FILE", env.root().join("done.txt"))
        .env_remove("IOCRUN_SUPERVISOR_PID")
        .env_remove("IOCRUN_RESTART");
    cmd
}

fn started_lines(out: &str) -> usize {
    out.lines().filter(|l| l.contains(" started pid ")).count()
}

#[test]
fn a_first_word_that_is_not_a_subcommand_runs_once_with_its_exit_code() {
    let env = TestEnv::new();
    for args in [&["sh", "-c", "exit 3"][..], &["--", "sh", "-c", "exit 3"]] {
        let out = iocrun_in(&env, args).output().expect("run iocrun");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {text}");
        assert_eq!(
            started_lines(&text),
            1,
            "a one-shot is not restarted:\n{text}"
        );
    }
    // --restart still decides when given
    let out = iocrun_in(
        &env,
        &[
            "--restart",
            "on-failure",
            "--restart-delay",
            "10ms",
            "--crash-limit",
            "2",
        ],
    )
    .args(["sh", "-c", "exit 1"])
    .output()
    .expect("run iocrun");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(75), "{text}");
    assert_eq!(started_lines(&text), 2, "{text}");
}

#[test]
fn a_bad_start_setting_in_the_environment_breaks_only_start() {
    let env = TestEnv::new();
    let socket = env.root().join("no-such.sock");
    let probe = iocrun_in(&env, &["probe", "ready", "--socket"])
        .arg(&socket)
        .env("IOCRUN_GRACE", "bogus")
        .output()
        .expect("run probe");
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert_eq!(probe.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach the supervisor"), "{stderr}");
    let start = iocrun_in(&env, &["true"])
        .env("IOCRUN_GRACE", "bogus")
        .output()
        .expect("run start");
    let stderr = String::from_utf8_lossy(&start.stderr);
    assert_eq!(start.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--grace"), "{stderr}");
}

#[test]
fn version_names_the_commit_and_the_target() {
    let out = util::iocrun()
        .arg("--version")
        .output()
        .expect("run --version");
    util::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("iocrun {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains("x86_64-unknown-linux") || text.contains("-linux-"),
        "{text}"
    );
}

#[test]
fn the_end_of_stdin_reaches_a_one_shot_command_on_its_terminal() {
    let env = TestEnv::new();
    let mut r = pid1::start(
        Mode::Subreaper,
        iocrun_in(&env, &["sh", "-c", "read line; echo \"read ended: $?\""]),
    );
    r.close_stdin();
    let (code, out) = r.wait();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("read ended: 1"), "{out}");
}

#[test]
fn the_start_sh_shim_under_iocrun_runs_st_cmd_and_ends_by_itself() {
    let Some(env) = smoke_tree() else { return };
    let shim = env.root().join("ioc/start.sh");
    let mut r = pid1::start(
        Mode::Subreaper,
        iocrun_in(&env, &[shim.to_str().expect("utf-8 path")]),
    );
    r.close_stdin();
    let (code, out) = r.wait();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(DBGF_LINE), "{out}");
    let st_cmd = env.runtime_dir().join("st.cmd");
    assert!(out.contains(&st_cmd.display().to_string()), "{out}");
    // what the template's run-tests.sh rejects
    assert!(!out.to_lowercase().contains("error"), "{out}");
    // one supervisor: the inner iocrun ran the start steps and became the IOC
    assert_eq!(started_lines(&out), 1, "{out}");
    assert!(out.contains("under the iocrun of pid"), "{out}");
    assert!(Path::new(&st_cmd).is_file());
}

#[test]
fn the_ioc_start_ignores_the_end_of_stdin() {
    let Some(env) = smoke_tree() else { return };
    let mut r = pid1::start(Mode::Subreaper, iocrun_in(&env, &[]));
    r.close_stdin();
    r.wait_for(DBGF_LINE);
    // a one-shot would have ended at the prompt after the dbgf line; the IOC answers on
    r.wait_for("epics> ");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(r.running(), "the IOC ended:\n{}", r.output());
    r.signal(Signal::SIGTERM);
    let (code, out) = r.wait();
    assert_eq!(code, 128 + libc::SIGTERM, "{out}");
    assert_eq!(started_lines(&out), 1, "{out}");
}
