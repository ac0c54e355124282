//! `iocrun caget` against EPICS base's `caget`, both reading a real `softIoc` served on
//! loopback at a non-default port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};

use crate::util::{self, TestEnv};

/// A softIoc serving `db` on its own CA port on 127.0.0.1; killed on drop.
pub struct SoftIoc {
    child: Child,
    // iocsh exits on end of input, so stdin stays open for the IOC's lifetime
    _stdin: ChildStdin,
    pub port: u16,
    pub bin: PathBuf,
    _env: TestEnv,
}

impl SoftIoc {
    /// Start softIoc, or `None` when the EPICS tools are not installed (outside CI).
    pub fn start(db: &str) -> Option<SoftIoc> {
        let bin = util::epics_bin()?;
        let env = TestEnv::new();
        let db_path = env.write("test.db", db);
        let port = free_port();
        let mut cmd = Command::new(bin.join("softIoc"));
        cmd.arg("-d").arg(&db_path);
        ca_env(&mut cmd, port)
            .env("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
            .env("EPICS_CAS_BEACON_ADDR_LIST", "127.0.0.1")
            .env("EPICS_CAS_AUTO_BEACON_ADDR_LIST", "NO")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn softIoc");
        let stdin = child.stdin.take().expect("stdin");
        // softIoc's console is block-buffered on a pipe, so readiness is its CA port accepting
        let ready = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(ready, "softIoc did not start serving on port {port}");
        Some(SoftIoc {
            child,
            _stdin: stdin,
            port,
            bin,
            _env: env,
        })
    }

    /// Stop the IOC now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The softIoc's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A command (EPICS tool or iocrun) set up to search only this IOC.
    pub fn client(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        ca_env(&mut cmd, self.port);
        cmd
    }

    /// EPICS base's caget / caput.
    pub fn tool(&self, name: &str) -> Command {
        self.client(&self.bin.join(name))
    }
}

impl Drop for SoftIoc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Channel Access settings that confine a client or server to loopback at `port`.
fn ca_env(cmd: &mut Command, port: u16) -> &mut Command {
    cmd.env("EPICS_CA_SERVER_PORT", port.to_string())
        .env("EPICS_CA_REPEATER_PORT", (port + 1).to_string())
        .env("EPICS_CA_ADDR_LIST", "127.0.0.1")
        .env("EPICS_CA_AUTO_ADDR_LIST", "NO")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

const DB: &str = r#"
record(ai, "T:AI") { field(VAL, "3.14159265") field(PREC, "2") }
record(ai, "T:BIG") { field(VAL, "1.5e12") }
record(ai, "T:SMALL") { field(VAL, "-0.0000123") }
record(stringin, "T:SI") { field(VAL, "hello world") }
record(longin, "T:LI") { field(VAL, "-42") }
record(mbbi, "T:MB") { field(ZRST, "Zero") field(ONST, "One") field(VAL, "1") }
record(mbbi, "T:MBX") { field(VAL, "5") }
record(bi, "T:BI") { field(ZNAM, "Off") field(ONAM, "On") field(VAL, "1") }
record(waveform, "T:WF") { field(FTVL, "CHAR") field(NELM, "16") }
record(waveform, "T:WD") { field(FTVL, "DOUBLE") field(NELM, "4") }
record(waveform, "T:W1") { field(FTVL, "LONG") field(NELM, "1") }
"#;

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn caget_output_matches_epics_caget() {
    let Some(ioc) = SoftIoc::start(DB) else {
        return;
    };
    // -S writes a char waveform from a string
    for args in [
        ["-S", "T:WF", "Hi\tthere\\"],
        ["-t", "T:SI", "quote\" and \x01"],
    ] {
        let put = ioc.tool("caput").args(args).output().expect("caput");
        assert!(put.status.success(), "caput {args:?}");
    }
    let pvs = [
        "T:AI",
        "T:BIG",
        "T:SMALL",
        "T:SI",
        "T:LI",
        "T:MB",
        "T:MBX",
        "T:BI",
        "T:WF",
        "T:WD",
        "T:W1",
        "T:AI.EGU",
        "T:AI.SCAN",
        "T:AI.PREC",
    ];
    for pv in pvs {
        let reference = ioc.tool("caget").arg(pv).output().expect("caget");
        let ours = ioc
            .client(&util::iocrun_bin())
            .args(["caget", pv])
            .output()
            .expect("iocrun");
        assert!(reference.status.success(), "caget {pv} failed");
        assert_eq!(
            ours.status.code(),
            Some(0),
            "{pv}: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        util::assert_text_eq(pv, &text(&reference), &text(&ours));
    }
}

#[test]
fn missing_pv_fails_like_caget() {
    let Some(ioc) = SoftIoc::start(DB) else {
        return;
    };
    let reference = ioc
        .tool("caget")
        .args(["-w", "0.3", "T:NONE"])
        .output()
        .expect("caget");
    let ours = ioc
        .client(&util::iocrun_bin())
        .args(["caget", "-w", "0.3", "T:NONE"])
        .output()
        .expect("iocrun");
    assert_eq!(ours.status.code(), reference.status.code());
    assert_eq!(ours.stdout, reference.stdout, "nothing on stdout");
    assert!(
        String::from_utf8_lossy(&ours.stderr)
            .contains("channel connect timed out: 'T:NONE' not found"),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
}

#[test]
fn addr_list_port_overrides_server_port() {
    let Some(ioc) = SoftIoc::start(DB) else {
        return;
    };
    // the default port points nowhere; the list entry names the IOC's port
    let ours = ioc
        .client(&util::iocrun_bin())
        .env("EPICS_CA_SERVER_PORT", free_port().to_string())
        .env("EPICS_CA_ADDR_LIST", format!("127.0.0.1:{}", ioc.port))
        .args(["caget", "T:LI"])
        .output()
        .expect("iocrun");
    util::assert_success(&ours);
    assert!(text(&ours).ends_with(" -42\n"), "{}", text(&ours));
}
