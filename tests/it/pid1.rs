//! PID-1 duties, black-box (T1–T8): each behaviour runs with
//! iocrun as a subreaper (not PID 1) and, when root, as the real PID 1 of a fresh PID
//! namespace (`unshare --pid --fork --mount-proc`). Deadlines are generous and only bound a
//! hang; no assertion depends on timing.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util;

/// How iocrun runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A plain child of the test; iocrun registers itself as subreaper.
    Subreaper,
    /// PID 1 of a new PID namespace, signalled from outside it.
    Pid1,
}

/// The modes this machine can run: PID-1 mode needs root and a working `unshare`.
pub fn modes() -> Vec<Mode> {
    let mut modes = vec![Mode::Subreaper];
    if (unsafe { libc::geteuid() } == 0)
        && Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .status()
            .is_ok_and(|s| s.success())
    {
        modes.push(Mode::Pid1);
    } else {
        assert!(
            !util::in_ci(),
            "CI=true but PID-1 mode (root + unshare) is unavailable"
        );
        util::skip("PID-1 mode needs root and unshare; subreaper mode only");
    }
    modes
}

/// A running iocrun with its output collected in the background.
pub struct Running {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    /// The process to signal: iocrun itself (found inside the namespace in PID-1 mode).
    pub target: i32,
    output: Arc<Mutex<String>>,
}

/// Longest any step may take before the test fails as hung.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Start `cmd` (an iocrun command line) in `mode`.
pub fn start(mode: Mode, cmd: Command) -> Running {
    let mut cmd = in_mode(mode, cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn iocrun");
    let stdin = child.stdin.take();
    let output = Arc::new(Mutex::new(String::new()));
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let output = output.clone();
        std::thread::spawn(move || collect(stream, output));
    }
    let target = match mode {
        Mode::Subreaper => child.id() as i32,
        Mode::Pid1 => only_child_of(child.id() as i32),
    };
    Running {
        child,
        stdin,
        target,
        output,
    }
}

/// `cmd` as it runs in `mode`: itself, or under `unshare` as PID 1 of a new PID namespace.
pub fn in_mode(mode: Mode, cmd: Command) -> Command {
    match mode {
        Mode::Subreaper => cmd,
        Mode::Pid1 => {
            let mut outer = Command::new("unshare");
            outer.args(["--pid", "--fork", "--mount-proc", "--"]);
            outer.arg(cmd.get_program()).args(cmd.get_args());
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => outer.env(k, v),
                    None => outer.env_remove(k),
                };
            }
            if let Some(dir) = cmd.get_current_dir() {
                outer.current_dir(dir);
            }
            outer
        }
    }
}

fn collect(mut stream: Box<dyn Read + Send>, output: Arc<Mutex<String>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            return;
        }
        let text = String::from_utf8_lossy(&buf[..n]);
        output.lock().expect("output lock").push_str(&text);
    }
}

/// The single child of `parent` (iocrun under `unshare --fork`).
fn only_child_of(parent: i32) -> i32 {
    let until = Instant::now() + DEADLINE;
    while Instant::now() < until {
        if let Some(pid) = children_of(parent).first() {
            return *pid;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("unshare {parent} never forked iocrun");
}

/// Pids whose parent is `parent`, from /proc.
pub fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s[s.rfind(')')? + 1..].to_owned();
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

impl Running {
    /// Everything printed so far (stdout and stderr interleaved), `\r` removed.
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").replace('\r', "")
    }

    /// Wait until the output contains `text`; panics with the output at the deadline.
    pub fn wait_for(&self, text: &str) {
        let until = Instant::now() + DEADLINE;
        while Instant::now() < until {
            if self.output().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no {text:?} in output:\n{}", self.output());
    }

    /// Type `text` on iocrun's stdin (the container's console).
    pub fn type_text(&mut self, text: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Close iocrun's stdin: it reads the end, as from `/dev/null` (`podman run` without `-i`).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Whether iocrun is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Send a signal to iocrun (from outside its namespace in PID-1 mode).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.target), sig).expect("kill iocrun");
    }

    /// Wait for iocrun to exit; returns its exit code (unshare passes it on).
    pub fn wait(mut self) -> (i32, String) {
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // give the collector threads a moment to read the last bytes of the pipes
                std::thread::sleep(Duration::from_millis(50));
                let code = status.code().unwrap_or_else(|| {
                    use std::os::unix::process::ExitStatusExt;
                    128 + status.signal().unwrap_or(0)
                });
                return (code, self.output());
            }
            if Instant::now() > until {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(self.target),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("iocrun did not exit; output:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // a failed test must not leave an init (and its IOC) behind
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.target),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `iocrun --restart never [extra...] -- ARGV`.
pub fn iocrun_with(extra: &[&str], argv: &[&str]) -> Command {
    let mut cmd = util::iocrun();
    cmd.env("IOCRUN_CONSOLE_SOCKET", "none")
        .env("IOCRUN_CONTROL_SOCKET", "none")
        .args(["--restart", "never"])
        .args(extra)
        .arg("--")
        .args(argv);
    cmd
}

fn run_to_end(mode: Mode, extra: &[&str], argv: &[&str]) -> (i32, String) {
    start(mode, iocrun_with(extra, argv)).wait()
}

fn python() -> &'static str {
    "python3"
}

// ---------------------------------------------------------------- T1 exit codes

#[test]
fn t1_exit_codes_pass_through() {
    for mode in modes() {
        for n in [0, 1, 2, 3, 32, 64, 126, 127, 128, 254, 255] {
            let (code, out) = run_to_end(mode, &[], &["sh", "-c", &format!("exit {n}")]);
            assert_eq!(code, n, "{mode:?} exit {n}; output:\n{out}");
        }
    }
}

#[test]
fn t1_death_by_signal_is_128_plus_signal() {
    for mode in modes() {
        for sig in [1, 2, 3, 9, 11, 15] {
            let script = format!("import os; os.kill(os.getpid(), {sig})");
            let (code, out) = run_to_end(mode, &[], &[python(), "-c", &script]);
            assert_eq!(code, 128 + sig, "{mode:?} signal {sig}; output:\n{out}");
            assert!(out.contains(&format!("ended: signal {sig}")), "{out}");
        }
    }
}

#[test]
fn t1_exec_failures_use_the_shell_codes() {
    let dir = tempfile::tempdir().expect("tmp");
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").expect("write");
    for mode in modes() {
        let (code, out) = run_to_end(mode, &[], &["/no/such/program"]);
        assert_eq!(code, 127, "{out}");
        assert!(
            out.contains("cannot find program '/no/such/program'"),
            "{out}"
        );
        let (code, out) = run_to_end(mode, &[], &[plain.to_str().expect("utf8")]);
        assert_eq!(code, 126, "{out}");
    }
}

// ---------------------------------------------------------------- T2 orphans

#[test]
fn t2_a_storm_of_orphans_is_reaped_under_output_load() {
    // 100 orphans (each `sleep` re-parented to iocrun when its subshell exits) while the PTY
    // is flooded; then count zombies among iocrun's children ($PPID of this shell is iocrun)
    let script = "(yes | head -c 2000000 >/dev/tty &); \
                  for i in $(seq 100); do (sleep 0.3 &); done; \
                  sleep 2; echo zombies=$(ps -o stat= --ppid $PPID | grep -c ^Z)";
    for mode in modes() {
        let (code, out) = run_to_end(mode, &[], &["sh", "-c", script]);
        assert!(out.contains("zombies=0"), "{mode:?}:\n{}", tail(&out));
        assert_eq!(code, 0, "{mode:?}");
    }
}

fn tail(text: &str) -> &str {
    &text[text.len().saturating_sub(2000)..]
}

// ---------------------------------------------------------------- T4 signals

const PRINT_SIGNALS: &str = r#"
import signal, sys
def h(s, f):
    print("got", s, flush=True)
    if s == signal.SIGTERM:
        sys.exit(7)
for s in (1, 2, 3, 10, 12, 15, 28):
    signal.signal(s, h)
print("rea" "dy", flush=True)
while True:
    signal.pause()
"#;

#[test]
fn t4_signals_reach_the_child_in_order() {
    use nix::sys::signal::Signal::*;
    for mode in modes() {
        let r = start(
            mode,
            iocrun_with(&["--grace", "20s"], &[python(), "-c", PRINT_SIGNALS]),
        );
        r.wait_for("ready\n");
        for sig in [SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGINT] {
            r.signal(sig);
            r.wait_for(&format!("got {}\n", sig as i32));
        }
        // INT started a stop; the child kept running, so a TERM is passed on too
        r.signal(SIGTERM);
        let (code, out) = r.wait();
        assert_eq!(code, 7, "{mode:?}:\n{out}");
        let got: Vec<&str> = out.lines().filter(|l| l.starts_with("got ")).collect();
        assert_eq!(
            got,
            ["got 1", "got 3", "got 10", "got 12", "got 28", "got 2", "got 15"],
            "{mode:?}:\n{out}"
        );
        assert!(out.contains("received SIGINT: stopping"), "{out}");
    }
}

// ---------------------------------------------------------------- T5 process group

#[test]
fn t5_forwarded_signals_reach_the_whole_group() {
    // the grandchild `sleep` keeps SIGUSR1's default action; the shell ignores it
    let script = "sleep 1000 & trap '' USR1; echo rea\"\"dy; wait; echo waited";
    for mode in modes() {
        let r = start(mode, iocrun_with(&[], &["sh", "-c", script]));
        r.wait_for("ready\n");
        r.signal(nix::sys::signal::Signal::SIGUSR1);
        let (code, out) = r.wait();
        assert_eq!(code, 0, "{mode:?}:\n{out}");
        assert!(out.contains("waited"), "{out}");
    }
}

/// Issue 11: 200 SIGALRM killed iocrun when it was not PID 1, orphaning the IOC. Signals whose
/// default action ends a process, and that mean nothing to iocrun, are ignored in both modes.
#[test]
fn t4_stray_terminating_signals_leave_iocrun_running() {
    use nix::sys::signal::Signal::*;
    let script = "echo rea\"\"dy; while :; do sleep 0.05; done";
    for mode in modes() {
        let r = start(mode, iocrun_with(&[], &["sh", "-c", script]));
        r.wait_for("ready\n");
        for _ in 0..200 {
            r.signal(SIGALRM);
        }
        for sig in [
            SIGVTALRM, SIGPROF, SIGIO, SIGXCPU, SIGXFSZ, SIGSYS, SIGSTKFLT, SIGPWR,
        ] {
            r.signal(sig);
        }
        let rt = libc::SIGRTMIN() + 2;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(r.target), None).expect("alive");
        assert_eq!(unsafe { libc::kill(r.target, rt) }, 0);
        // still there to hear TERM and stop the IOC the normal way
        r.signal(SIGTERM);
        let (code, out) = r.wait();
        assert_eq!(code, 128 + libc::SIGTERM, "{mode:?}:\n{out}");
        assert!(
            out.contains("received SIGTERM: stopping"),
            "{mode:?}:\n{out}"
        );
    }
}

// ---------------------------------------------------------------- T6 stop

#[test]
fn t6_a_child_that_traps_term_exits_with_its_own_code_before_the_grace_period() {
    let script = "trap 'sleep 0.3; exit 7' TERM; echo rea\"\"dy; while :; do sleep 0.05; done";
    for mode in modes() {
        let r = start(
            mode,
            iocrun_with(&["--grace", "20s"], &["sh", "-c", script]),
        );
        r.wait_for("ready\n");
        r.signal(nix::sys::signal::Signal::SIGTERM);
        let (code, out) = r.wait();
        assert_eq!(code, 7, "{mode:?}:\n{out}");
        assert!(!out.contains("grace period over"), "{out}");
    }
}

#[test]
fn t6_a_child_that_ignores_term_is_killed_after_the_grace_period() {
    let script = "trap '' TERM; echo rea\"\"dy; while :; do sleep 0.05; done";
    for mode in modes() {
        let cmd = {
            let mut c = util::iocrun();
            c.env("IOCRUN_CONSOLE_SOCKET", "none")
                .env("IOCRUN_CONTROL_SOCKET", "none")
                .args([
                    "--restart",
                    "always",
                    "--grace",
                    "500ms",
                    "--",
                    "sh",
                    "-c",
                    script,
                ]);
            c
        };
        let r = start(mode, cmd);
        r.wait_for("ready\n");
        r.signal(nix::sys::signal::Signal::SIGTERM);
        let (code, out) = r.wait();
        assert_eq!(code, 137, "{mode:?}:\n{out}");
        assert!(out.contains("grace period over"), "{out}");
        assert_eq!(
            out.matches("started pid").count(),
            1,
            "TERM must not restart:\n{out}"
        );
    }
}

#[test]
fn t6_stragglers_are_stopped_and_the_child_code_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let pidfile = dir.path().join("straggler.pid");
    // a setsid'd grandchild outside the IOC's group that even ignores TERM
    let script = format!(
        "setsid sh -c 'trap \"\" TERM; echo $$ > {}; while :; do sleep 0.05; done' & \
         while [ ! -s {} ]; do sleep 0.01; done; exit 5",
        pidfile.display(),
        pidfile.display()
    );
    for mode in modes() {
        let _ = std::fs::remove_file(&pidfile);
        let (code, out) = run_to_end(mode, &["--grace", "500ms"], &["sh", "-c", &script]);
        assert_eq!(code, 5, "{mode:?}:\n{out}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        if mode == Mode::Subreaper {
            // in PID-1 mode the pid belongs to the dead namespace; here it must be gone
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "straggler {pid} survived"
            );
        }
        assert!(out.contains("grace period over"), "{out}");
    }
}

/// Issue 11 item 8: a TERM-ignoring tree in its own session whose leader is still alive at the
/// stop: its grandchild only becomes ours when the leader dies, after the SIGKILL sweep.
#[test]
fn t6_a_setsid_tree_under_a_live_parent_is_killed_and_reaped() {
    let dir = tempfile::tempdir().expect("tmp");
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!(
        "setsid sh -c 'trap \"\" TERM; sleep 1000 & echo $! > {p}; wait' & \
         while [ ! -s {p} ]; do sleep 0.01; done; echo rea\"\"dy; wait",
        p = pidfile.display()
    );
    for mode in modes() {
        let _ = std::fs::remove_file(&pidfile);
        let r = start(
            mode,
            iocrun_with(&["--grace", "500ms"], &["sh", "-c", &script]),
        );
        r.wait_for("ready\n");
        r.signal(nix::sys::signal::Signal::SIGTERM);
        let (code, out) = r.wait();
        assert_eq!(code, 128 + libc::SIGTERM, "{mode:?}:\n{out}");
        assert!(!out.contains("survived SIGKILL"), "{mode:?}:\n{out}");
        if mode == Mode::Subreaper {
            let pid = std::fs::read_to_string(&pidfile).expect("pid file");
            assert!(
                !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
                "grandchild {} survived:\n{out}",
                pid.trim()
            );
        }
    }
}

// ---------------------------------------------------------------- T7 hygiene

#[test]
fn t7_the_child_gets_an_empty_mask_and_no_leaked_fds() {
    // the wrapper ignores TTOU, SEGV, INT and blocks TTIN, ILL, TERM, then execs iocrun
    let wrapper = r#"
import os, signal, sys
for s in (signal.SIGTTOU, signal.SIGSEGV, signal.SIGINT):
    signal.signal(s, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTIN, signal.SIGILL, signal.SIGTERM})
os.dup2(os.open("/dev/null", os.O_RDONLY), 9)  # an inheritable fd iocrun must not pass on
os.execv(sys.argv[1], sys.argv[1:])
"#;
    // the glob lists the shell's own fds (3 is the directory handle the glob itself opens)
    let child = "grep -E '^Sig(Blk|Ign)' /proc/self/status; \
                 for f in /proc/$$/fd/*; do printf '%s ' fd${f##*/}; done; echo";
    for mode in modes() {
        let bin = util::iocrun_bin();
        let mut cmd = Command::new(python());
        cmd.env("IOCRUN_CONSOLE_SOCKET", "none")
            .env("IOCRUN_CONTROL_SOCKET", "none")
            .args(["-c", wrapper])
            .arg(&bin)
            .args(["--restart", "never", "--", "sh", "-c", child]);
        let (code, out) = start(mode, cmd).wait();
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("SigBlk:\t0000000000000000"),
            "{mode:?}:\n{out}"
        );
        // an inherited ignore iocrun never touched (TTOU) is kept, as tini keeps it; INT is
        // one iocrun handles (and SEGV one Rust's runtime handles), so the child gets the
        // default action for those
        let ign = out
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:\t"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .expect("SigIgn line");
        let bit = |sig: i32| ign & (1u64 << (sig - 1)) != 0;
        assert!(bit(libc::SIGTTOU), "{mode:?}: TTOU not kept:\n{out}");
        assert!(!bit(libc::SIGINT), "{mode:?}: INT still ignored:\n{out}");
        assert!(out.contains("fd0 fd1 fd2 fd3 \n"), "{mode:?}:\n{out}");
    }
}

// ---------------------------------------------------------------- T8 terminal

#[test]
fn t8_the_child_owns_its_terminal() {
    let script = "import os; print('tty', os.isatty(0), os.tcgetpgrp(0) == os.getpgrp(), \
                  os.getsid(0) == os.getpid(), os.get_terminal_size(0))";
    for mode in modes() {
        let (code, out) = run_to_end(mode, &[], &[python(), "-c", script]);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("tty True True True os.terminal_size(columns=80, lines=24)"),
            "{mode:?}:\n{out}"
        );
    }
}
