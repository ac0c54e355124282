//! The console end to end: `iocrun start` supervising the real softIoc (or a small shell
//! script), with clients on its console socket, `iocrun attach` in a PTY, and iocrun itself
//! on a terminal (as a subreaper and as PID 1): the Ctrl-C/Ctrl-D guard and hang-ups.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

use crate::pid1::{self, Mode};
use crate::util;

const PATIENCE: Duration = Duration::from_secs(20);

/// `iocrun start` running a command, its stdout collected by a thread.
struct Running {
    dir: tempfile::TempDir,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
}

impl Running {
    fn start(command: &[&str], setup: impl FnOnce(&Path)) -> Running {
        Running::start_with(&["--restart", "never"], command, setup)
    }

    /// `iocrun start FLAGS -- COMMAND` with its console and control sockets in a temp folder.
    fn start_with(flags: &[&str], command: &[&str], setup: impl FnOnce(&Path)) -> Running {
        let dir = tempfile::tempdir().expect("tempdir");
        setup(dir.path());
        let mut child = util::iocrun()
            .current_dir(dir.path())
            .env_remove("IOCRUN_CONSOLE_SOCKET")
            .env("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
            .env("EPICS_CA_AUTO_ADDR_LIST", "NO")
            .arg("start")
            // stdin is /dev/null: left alone, so its end does not end the one-shot COMMAND
            .args(["--console-stdin", "off"])
            .args(flags)
            .arg("--console-socket")
            .arg(dir.path().join("console.sock"))
            .arg("--control-socket")
            .arg(dir.path().join("control.sock"))
            .arg("--")
            .args(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn iocrun start");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stdout.take().expect("stdout pipe");
        let sink = stdout.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        Running { dir, child, stdout }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("console.sock")
    }

    fn connect(&self) -> Client {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match UnixStream::connect(self.socket()) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_millis(200)))
                        .expect("timeout");
                    return Client {
                        s,
                        seen: Vec::new(),
                    };
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "no console socket: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    fn stdout_until(&self, want: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = String::from_utf8_lossy(&self.stdout.lock().expect("lock")).into_owned();
            if text.contains(want) {
                return text;
            }
            assert!(Instant::now() < deadline, "no {want:?} on stdout: {text:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM: iocrun stops the child within its grace period
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

struct Client {
    s: UnixStream,
    seen: Vec<u8>,
}

impl Client {
    fn read_until(&mut self, want: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut buf = [0u8; 8192];
        loop {
            let text = String::from_utf8_lossy(&self.seen).into_owned();
            if text.contains(want) {
                return text;
            }
            assert!(Instant::now() < deadline, "no {want:?} in {text:?}");
            match self.s.read(&mut buf) {
                Ok(0) => panic!("console closed before {want:?}: {text:?}"),
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn send(&mut self, text: &str) {
        self.s.write_all(text.as_bytes()).expect("send");
    }
}

const DB: &str = r#"
record(ai, "CONSOLE:TEST:AI") {
    field(VAL, "1.5")
}
record(calc, "CONSOLE:TEST:CALC") {
    field(CALC, "A+1")
    field(INPA, "CONSOLE:TEST:AI")
}
"#;

fn soft_ioc() -> Option<Running> {
    soft_ioc_with(&["--restart", "never"])
}

/// softIoc on [`DB`] under `iocrun start FLAGS`.
fn soft_ioc_with(flags: &[&str]) -> Option<Running> {
    let bin = util::epics_bin()?;
    let soft_ioc = bin.join("softIoc").display().to_string();
    Some(Running::start_with(
        flags,
        &[&soft_ioc, "-d", "test.db"],
        |dir| std::fs::write(dir.join("test.db"), DB).expect("write db"),
    ))
}

#[test]
fn softioc_attach_type_dbl_and_see_the_records() {
    let Some(ioc) = soft_ioc() else { return };
    let mut a = ioc.connect();
    // the boot happened before we attached: it comes from the scrollback
    a.read_until("iocInit");
    a.send("dbl\r");
    let text = a.read_until("CONSOLE:TEST:CALC");
    assert!(text.contains("CONSOLE:TEST:AI"), "{text}");
    // everything is mirrored to iocrun's stdout (kubectl logs), attach lines included
    let out = ioc.stdout_until("CONSOLE:TEST:CALC");
    assert!(
        out.contains("console client 1 attached (read-write)"),
        "{out}"
    );
}

#[test]
fn softioc_two_clients_see_each_others_commands() {
    let Some(ioc) = soft_ioc() else { return };
    let mut a = ioc.connect();
    let mut b = ioc.connect();
    a.read_until("2 attached");
    b.read_until("2 attached");
    a.send("dbl\r");
    b.read_until("CONSOLE:TEST:CALC");
    b.send("dbgf CONSOLE:TEST:AI\r");
    a.read_until("DBF_DOUBLE:");
}

#[test]
fn softioc_history_replays_the_boot_to_a_late_client() {
    let Some(ioc) = soft_ioc() else { return };
    let mut first = ioc.connect();
    first.read_until("epics>");
    first.send("dbl\r");
    first.read_until("CONSOLE:TEST:CALC");
    drop(first);
    // a second client, later: boot banner and the earlier dbl output, then live output
    let mut late = ioc.connect();
    let text = late.read_until("console client 2 attached");
    let boot = text.find("iocInit").expect("boot in replay");
    let dbl = text
        .find("CONSOLE:TEST:CALC")
        .expect("earlier output in replay");
    let notice = text.find("console client 2 attached").expect("notice");
    assert!(boot < dbl && dbl < notice, "{text}");
}

/// T12 end to end: the size of the terminal `iocrun attach` runs in reaches the child's PTY.
#[test]
fn attach_window_size_reaches_the_child_pty() {
    let script = "while [ ! -f flag ]; do sleep 0.1; done; echo size=$(stty size); sleep 30";
    let run = Running::start(&["sh", "-c", script], |_| {});
    run.connect();
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 33,
            cols: 111,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut cmd = CommandBuilder::new(util::iocrun_bin());
    cmd.args(["attach", "--socket"]);
    cmd.arg(run.socket());
    let mut attach = pair.slave.spawn_command(cmd).expect("spawn attach");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("lock").extend_from_slice(&buf[..n]);
        }
    });
    run.stdout_until("console client 2 attached");
    std::fs::write(run.dir.path().join("flag"), "").expect("flag");
    run.stdout_until("size=33 111");
    // and the attached terminal shows it too
    let deadline = Instant::now() + PATIENCE;
    while !String::from_utf8_lossy(&seen.lock().expect("lock")).contains("size=33 111") {
        assert!(Instant::now() < deadline, "attach did not show the size");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut writer = pair.master.take_writer().expect("writer");
    writer.write_all(b"\x1d").expect("detach");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = attach.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "attach did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.exit_code(), 0, "detach exits 0");
}

/// A process whose stdin, stdout and stderr are a terminal of its own (it is the session
/// leader and the terminal is its controlling one), as under `podman run -it` or in an ssh
/// session; everything it prints is collected by a thread.
struct OnTerminal {
    child: Child,
    /// The process that matters: iocrun itself (inside the namespace in PID-1 mode).
    target: i32,
    master: Option<OwnedFd>,
    out: Arc<Mutex<Vec<u8>>>,
    stop_reading: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl OnTerminal {
    /// Run `cmd` on a new terminal, its controlling one; in PID-1 mode as PID 1 of a new PID
    /// namespace.
    fn spawn(mode: Mode, cmd: Command) -> OnTerminal {
        OnTerminal::spawn_with(mode, cmd, true)
    }

    /// As [`OnTerminal::spawn`]; with `controlling` false the terminal is only the process's
    /// stdin/stdout/stderr (no new session), so its hang-up sends no SIGHUP: reads just fail.
    fn spawn_with(mode: Mode, cmd: Command, controlling: bool) -> OnTerminal {
        let mut cmd = pid1::in_mode(mode, cmd);
        let (master, slave) = open_terminal();
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs between fork and exec
        unsafe {
            cmd.pre_exec(move || {
                if !controlling {
                    return Ok(());
                }
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on a terminal");
        drop(cmd); // the parent's copies of the terminal's slave side
        let out = Arc::new(Mutex::new(Vec::new()));
        let stop_reading = Arc::new(AtomicBool::new(false));
        let reader = {
            let fd = master.try_clone().expect("dup master");
            let (out, stop) = (out.clone(), stop_reading.clone());
            std::thread::spawn(move || read_terminal(&fd, &out, &stop))
        };
        let target = match mode {
            Mode::Subreaper => child.id() as i32,
            Mode::Pid1 => {
                let deadline = Instant::now() + PATIENCE;
                loop {
                    if let Some(pid) = pid1::children_of(child.id() as i32).first() {
                        break *pid;
                    }
                    assert!(Instant::now() < deadline, "unshare never forked iocrun");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        OnTerminal {
            child,
            target,
            master: Some(master),
            out,
            stop_reading,
            reader: Some(reader),
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().expect("lock")).into_owned()
    }

    /// Wait until the terminal shows `want`; returns everything shown so far.
    fn until(&self, want: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.output();
            if text.contains(want) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {want:?} on the terminal: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_keys(&self, keys: &[u8]) {
        let master = self.master.as_ref().expect("terminal open");
        let mut done = 0;
        while done < keys.len() {
            done += nix::unistd::write(master, &keys[done..]).expect("type");
        }
    }

    /// Close the terminal, as when its window or ssh session goes away.
    fn hang_up(&mut self) {
        self.stop_reading.store(true, Ordering::Release);
        if let Some(reader) = self.reader.take() {
            reader.join().expect("reader thread");
        }
        self.master = None;
    }

    /// Wait for the process to end; its exit code.
    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                use std::os::unix::process::ExitStatusExt;
                return status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            }
            assert!(
                Instant::now() < deadline,
                "still running; terminal: {:?}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        // SIGKILL to iocrun: as PID 1 that ends its whole namespace; as a subreaper the test's
        // IOC is a softIoc that the closed terminal then hangs up
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.target),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + PATIENCE;
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.hang_up();
    }
}

/// A new terminal's master and slave sides, both close-on-exec from the start: a copy of the
/// master leaked into any child (this test's or a concurrent one's) would keep the terminal
/// from ever hanging up.
fn open_terminal() -> (OwnedFd, OwnedFd) {
    use nix::fcntl::{open, OFlag};
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = nix::pty::posix_openpt(flags).expect("posix_openpt");
    nix::pty::grantpt(&master).expect("grantpt");
    nix::pty::unlockpt(&master).expect("unlockpt");
    let name = nix::pty::ptsname_r(&master).expect("ptsname");
    let slave = open(name.as_str(), flags, nix::sys::stat::Mode::empty()).expect("open slave");
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: both descriptors were just opened here and nothing else owns them
    unsafe {
        (
            OwnedFd::from_raw_fd(master.into_raw_fd()),
            OwnedFd::from_raw_fd(slave),
        )
    }
}

/// Copy what the terminal shows into `out` until told to stop or the terminal closes; polls
/// so that [`OnTerminal::hang_up`] can close every copy of the master side.
fn read_terminal(fd: &OwnedFd, out: &Mutex<Vec<u8>>, stop: &AtomicBool) {
    use nix::poll::{poll, PollFd, PollFlags};
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Acquire) {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, 50u16) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => return,
        }
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return,
            Ok(n) => out.lock().expect("lock").extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            // EIO: every process holding the slave side has gone
            Err(_) => return,
        }
    }
}

/// `iocrun --restart RESTART -- softIoc -d test.db` in `dir` with no sockets: its stdin is
/// its only console.
fn soft_ioc_alone(bin: &Path, dir: &Path, restart: &str) -> Command {
    std::fs::write(dir.join("test.db"), DB).expect("write db");
    let mut cmd = util::iocrun();
    cmd.current_dir(dir)
        .env("IOCRUN_CONSOLE_SOCKET", "none")
        .env("IOCRUN_CONTROL_SOCKET", "none")
        .env("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
        .env("EPICS_CA_AUTO_ADDR_LIST", "NO")
        .args(["--restart", restart, "--"])
        .arg(bin.join("softIoc"))
        .args(["-d", "test.db"]);
    cmd
}

/// The guard through `iocrun attach`: Ctrl-D and Ctrl-C never reach softIoc (its pid stays,
/// nothing restarts), the one who typed them is told how to leave, and `dbl` still works.
#[test]
fn ctrl_d_and_ctrl_c_through_iocrun_attach_leave_softioc_running() {
    let Some(ioc) = soft_ioc_with(&["--restart", "on-failure"]) else {
        return;
    };
    ioc.stdout_until("epics>");
    let mut attach = util::iocrun();
    attach.arg("attach").arg("--socket").arg(ioc.socket());
    let mut a = OnTerminal::spawn(Mode::Subreaper, attach);
    a.until("attached (read-write)");
    a.type_keys(b"\x04");
    a.until("Ctrl-D not sent: it would stop the IOC. Leave with Ctrl-] (iocrun attach)");
    a.type_keys(b"\x03");
    a.type_keys(b"dbl\r");
    a.until("CONSOLE:TEST:CALC");
    let out = ioc.stdout_until("CONSOLE:TEST:CALC");
    assert_eq!(out.matches("started pid").count(), 1, "{out}");
    assert!(!out.contains("ended:"), "{out}");
    assert!(
        !out.contains("not sent"),
        "the hint is for the typist only: {out}"
    );
    a.type_keys(b"\x1d");
    assert_eq!(a.wait(), 0, "detached");
}

/// The guard on iocrun's own stdin, a terminal as under `kubectl attach -it` / `podman run
/// -it` (PID 1) or in someone's shell (a subreaper): the IOC keeps its pid, the hint says how
/// to leave (the runtime's detach keys as PID 1), and a typed `exit` still ends softIoc (and
/// with it iocrun).
#[test]
fn ctrl_c_and_ctrl_d_on_iocruns_terminal_leave_softioc_running() {
    let Some(bin) = util::epics_bin() else { return };
    for mode in pid1::modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cmd = soft_ioc_alone(&bin, dir.path(), "on-failure");
        let mut t = OnTerminal::spawn(mode, cmd);
        t.until("epics>");
        t.type_keys(b"\x03");
        let leave = match mode {
            Mode::Pid1 => {
                "Ctrl-P Ctrl-Q (podman attach) or by closing this terminal (kubectl attach)"
            }
            Mode::Subreaper => "`exit` (ends the IOC) or by closing this terminal",
        };
        t.until(&format!(
            "Ctrl-C not sent: it would stop the IOC. Leave with {leave}; to send Ctrl-C/Ctrl-D, \
             run iocrun with --console-guard off (IOCRUN_CONSOLE_GUARD=off)"
        ));
        t.type_keys(b"\x04");
        t.type_keys(b"dbl\r");
        let out = t.until("CONSOLE:TEST:CALC");
        assert_eq!(out.matches("started pid").count(), 1, "{mode:?}: {out}");
        assert!(!out.contains("ended:"), "{mode:?}: {out}");
        t.type_keys(b"exit\r");
        assert_eq!(t.wait(), 0, "{mode:?}: exit ends softIoc: {}", t.output());
    }
}

/// Closing the terminal of an interactive run (not PID 1) stops the IOC and ends iocrun,
/// although the restart policy is `always`: when the terminal is iocrun's controlling one
/// (SIGHUP from the kernel) and when it is only its stdin (reads fail, no signal).
#[test]
fn a_hung_up_terminal_stops_an_interactive_iocrun() {
    let Some(bin) = util::epics_bin() else { return };
    for controlling in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cmd = soft_ioc_alone(&bin, dir.path(), "always");
        hang_up_and_check(OnTerminal::spawn_with(Mode::Subreaper, cmd, controlling));
    }
}

fn hang_up_and_check(mut t: OnTerminal) {
    let out = t.until("epics>");
    let ioc: i32 = out
        .split("started pid ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|pid| pid.trim().parse().ok())
        .expect("the IOC's pid");
    t.hang_up();
    t.wait();
    assert!(
        !Path::new(&format!("/proc/{ioc}")).exists(),
        "the IOC (pid {ioc}) outlived the hang-up"
    );
}
