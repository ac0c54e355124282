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
pub fn ca_env(cmd: &mut Command, port: u16) -> &mut Command {
    cmd.env("EPICS_CA_SERVER_PORT", port.to_string())
        .env("EPICS_CA_REPEATER_PORT", (port + 1).to_string())
        .env("EPICS_CA_ADDR_LIST", "127.0.0.1")
        .env("EPICS_CA_AUTO_ADDR_LIST", "NO")
}

pub fn free_port() -> u16 {
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

/// What the hostile server does when asked to read.
#[derive(Clone, Copy)]
enum Hostile {
    /// Announce a 4 GiB reply in the extended header, then stream zeros.
    HugeReply,
    /// Reply `CA_PROTO_ERROR` whose text is `len` bytes of escape sequences and letters.
    ErrorText(usize),
}

/// A fake CA server on loopback (one thread) that answers the search and the channel create
/// like an IOC, then misbehaves as told. Returns the UDP port to search.
fn hostile_server(how: Hostile) -> u16 {
    use std::io::{Read, Write};
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let udp_port = udp.local_addr().expect("addr").port();
    let tcp = TcpListener::bind("127.0.0.1:0").expect("tcp");
    let tcp_port = tcp.local_addr().expect("addr").port();
    let header = |cmd: u16, size: u16, dtype: u16, count: u16, p1: u32, p2: u32| {
        let mut h = Vec::new();
        for x in [cmd, size, dtype, count] {
            h.extend_from_slice(&x.to_be_bytes());
        }
        h.extend_from_slice(&p1.to_be_bytes());
        h.extend_from_slice(&p2.to_be_bytes());
        h
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            // the search is the second message of the datagram: cid in p2
            if n >= 32 {
                let cid = u32::from_be_bytes([buf[28], buf[29], buf[30], buf[31]]);
                let mut reply = header(6, 8, tcp_port, 0, u32::MAX, cid);
                reply.extend_from_slice(&[0, 13, 0, 0, 0, 0, 0, 0]);
                let _ = udp.send_to(&reply, from);
            }
        }
    });
    std::thread::spawn(move || {
        for stream in tcp.incoming() {
            let Ok(mut s) = stream else { return };
            loop {
                let mut h = [0u8; 16];
                if s.read_exact(&mut h).is_err() {
                    break;
                }
                let size = u16::from_be_bytes([h[2], h[3]]) as usize;
                let mut skip = vec![0u8; size];
                if s.read_exact(&mut skip).is_err() {
                    break;
                }
                let p1 = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
                let p2 = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
                match u16::from_be_bytes([h[0], h[1]]) {
                    // create: a DOUBLE of one element, server id 7
                    18 => {
                        let _ = s.write_all(&header(18, 0, 6, 1, p1, 7));
                    }
                    15 => {
                        let _ = match how {
                            Hostile::HugeReply => {
                                let mut m = header(15, 0xFFFF, 20, 0, 1, p2);
                                m.extend_from_slice(&0xFFFF_FFF8u32.to_be_bytes());
                                m.extend_from_slice(&1u32.to_be_bytes());
                                let zeros = vec![0u8; 1 << 16];
                                s.write_all(&m).and_then(|()| loop {
                                    s.write_all(&zeros)?;
                                })
                            }
                            Hostile::ErrorText(len) => {
                                let mut text = b"\x1b[2J\x1b]0;owned\x07".repeat(len / 16);
                                text.resize(len, b'A');
                                text.push(0);
                                text.resize(text.len().div_ceil(8) * 8, 0);
                                let size = 16 + text.len();
                                let mut m = if size < 0xFFFF {
                                    header(11, size as u16, 0, 0, 7, 1)
                                } else {
                                    let mut m = header(11, 0xFFFF, 0, 0, 7, 1);
                                    m.extend_from_slice(&(size as u32).to_be_bytes());
                                    m.extend_from_slice(&0u32.to_be_bytes());
                                    m
                                };
                                m.extend_from_slice(&h);
                                m.extend_from_slice(&text);
                                s.write_all(&m)
                            }
                        };
                    }
                    _ => {}
                }
            }
        }
    });
    udp_port
}

/// `iocrun caget -w 2` against the hostile server, its address space capped at 512 MiB.
fn caget_hostile(how: Hostile) -> Output {
    let port = hostile_server(how);
    let mut cmd = util::iocrun();
    ca_env(&mut cmd, port).args(["caget", "-w", "2", "EVIL:PV"]);
    util::rlimit(&mut cmd, libc::RLIMIT_AS, 512 << 20)
        .output()
        .expect("iocrun caget")
}

#[test]
fn caget_refuses_an_announced_4gib_reply() {
    let out = caget_hostile(Hostile::HugeReply);
    let err = String::from_utf8_lossy(&out.stderr);
    // caget exits 1 when the PV cannot be read; under 512 MiB a buffer grown to the
    // announced size would abort instead
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(err.contains("EPICS_CA_MAX_ARRAY_BYTES"), "{err}");
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
}

#[test]
fn caget_bounds_a_servers_error_text() {
    // 50 MB: refused on its announced size
    let out = caget_hostile(Hostile::ErrorText(50 << 20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("EPICS_CA_MAX_ARRAY_BYTES"), "{err}");
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    // 8 KB (within the limit): shown, cut at 512 characters, escape sequences defused
    let out = caget_hostile(Hostile::ErrorText(8 << 10));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the server reported an error for 'EVIL:PV'"),
        "{err}"
    );
    assert!(err.contains("\\u{1b}[2J"), "{err}");
    assert!(!err.contains('\x1b'), "raw escape on stderr: {err}");
    assert!(err.len() < 4 * 512, "{} bytes of stderr", err.len());
}

/// Several PVs, as caget takes them: one line each in the order given (a repeated PV twice).
#[test]
fn several_pvs_print_like_caget() {
    let Some(ioc) = SoftIoc::start(DB) else {
        return;
    };
    let pvs = ["T:AI", "T:LI", "T:SI", "T:WD", "T:MB", "T:AI"];
    let reference = ioc.tool("caget").args(pvs).output().expect("caget");
    let ours = ioc
        .client(&util::iocrun_bin())
        .arg("caget")
        .args(pvs)
        .output()
        .expect("iocrun");
    util::assert_success(&reference);
    util::assert_success(&ours);
    assert_eq!(text(&ours).lines().count(), pvs.len(), "{}", text(&ours));
    util::assert_text_eq("caget T:AI T:LI …", &text(&reference), &text(&ours));
}

/// One PV missing among several: caget prints nothing and exits 1; so does iocrun, naming it.
#[test]
fn one_missing_pv_among_several_fails_like_caget() {
    let Some(ioc) = SoftIoc::start(DB) else {
        return;
    };
    let args = ["-w", "0.5", "T:AI", "T:NONE", "T:LI"];
    let reference = ioc.tool("caget").args(args).output().expect("caget");
    let ours = ioc
        .client(&util::iocrun_bin())
        .arg("caget")
        .args(args)
        .output()
        .expect("iocrun");
    assert_eq!(reference.status.code(), Some(1));
    assert_eq!(ours.status.code(), reference.status.code());
    assert_eq!(text(&ours), text(&reference), "nothing on stdout");
    let err = String::from_utf8_lossy(&ours.stderr);
    assert!(
        err.contains("channel connect timed out: some PV(s) not found: 'T:NONE'"),
        "{err}"
    );
}
