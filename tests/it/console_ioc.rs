//! The console end to end: `iocrun start` supervising the real softIoc (or a small shell
//! script), with clients on its console socket and `iocrun attach` in a PTY.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

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
        let dir = tempfile::tempdir().expect("tempdir");
        setup(dir.path());
        let mut child = util::iocrun()
            .current_dir(dir.path())
            .env_remove("IOCRUN_CONSOLE_SOCKET")
            .args(["start", "--restart", "never", "--console-socket"])
            .arg(dir.path().join("console.sock"))
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
    let bin = util::epics_bin()?;
    let soft_ioc = bin.join("softIoc").display().to_string();
    Some(Running::start(&[&soft_ioc, "-d", "test.db"], |dir| {
        std::fs::write(dir.join("test.db"), DB).expect("write db");
    }))
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
