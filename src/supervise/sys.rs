//! The narrow interface between the supervisor and the kernel: spawn, signal, wait, PTY I/O.
//!
//! The supervisor's state machine only talks to [`Sys`], so restart policy and stop timing are
//! tested in milliseconds against [`fake::FakeSys`], which records every call (the youki
//! `syscall/` pattern). [`RealSys`] is the one implementation that touches
//! processes; it owns the PTY from `child.rs`.

use std::ffi::OsString;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid as NixPid;

use super::child::Pty;
use super::state::ExitStatus;
use super::SuperviseError;

/// A process id.
pub type Pid = i32;

/// Who a signal goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One process.
    Pid(Pid),
    /// A whole process group (the IOC is a session and group leader, so its pid is its pgid).
    Group(Pid),
    /// Every other process we may still own: all of the PID namespace when we are PID 1,
    /// our direct children otherwise.
    Others,
}

/// One `waitpid(-1, WNOHANG)` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A child ended.
    Exited(Pid, ExitStatus),
    /// Children exist, none has ended.
    NoneReady,
    /// ECHILD: nothing left to wait for.
    NoChildren,
}

/// What to run: argv plus working folder; the environment is the process's own (the start
/// sequence exports into it before anything is spawned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub argv: Vec<OsString>,
    pub cwd: Option<PathBuf>,
}

impl CommandSpec {
    /// The command as one readable line, for lifecycle messages.
    pub fn display(&self) -> String {
        let words: Vec<String> = self
            .argv
            .iter()
            .map(|a| a.to_string_lossy().replace('\n', "\\n"))
            .collect();
        words.join(" ")
    }
}

/// Everything the supervisor asks of the operating system.
pub trait Sys {
    /// Start the command on the PTY in a new session; returns its pid.
    fn spawn(&mut self, cmd: &CommandSpec) -> Result<Pid, SuperviseError>;
    /// Send `sig`; ESRCH (already gone) is returned for the caller to ignore.
    fn signal(&mut self, target: Target, sig: i32) -> Result<(), Errno>;
    /// One non-blocking `waitpid(-1)`; only `reap.rs` calls this.
    fn wait_any(&mut self) -> Result<Wait, Errno>;
    /// Bytes for the child's terminal (console input).
    fn write_input(&mut self, bytes: Vec<u8>);
    /// Set the PTY window size; the kernel then sends SIGWINCH to the child's foreground group.
    fn resize(&mut self, rows: u16, cols: u16);
    /// The window size of iocrun's own stdin, when it is a terminal.
    fn terminal_size(&self) -> Option<(u16, u16)>;
    /// Wait briefly until output the child already wrote has been passed on.
    fn drain_output(&mut self);
}

/// The real thing: kernel calls and the PTY.
pub struct RealSys {
    pty: Pty,
    pid1: bool,
}

impl RealSys {
    /// Wrap an open PTY. `pid1` selects how [`Target::Others`] is reached.
    pub fn new(pty: Pty) -> RealSys {
        RealSys {
            pty,
            pid1: std::process::id() == 1,
        }
    }
}

impl Sys for RealSys {
    fn spawn(&mut self, cmd: &CommandSpec) -> Result<Pid, SuperviseError> {
        self.pty.spawn(cmd)
    }

    fn signal(&mut self, target: Target, sig: i32) -> Result<(), Errno> {
        let sig = Signal::try_from(sig)?;
        tracing::debug!(?target, %sig, "kill");
        match target {
            Target::Pid(pid) => kill(NixPid::from_raw(pid), sig),
            Target::Group(pgid) => killpg(NixPid::from_raw(pgid), sig),
            // kill(-1) from PID 1 reaches everything in the namespace except ourselves; outside
            // a namespace it would reach the whole host, so a subreaper signals every process
            // descended from it: those are the ones that would be reparented to it.
            Target::Others if self.pid1 => kill(NixPid::from_raw(-1), sig),
            Target::Others => {
                for pid in descendants() {
                    match kill(NixPid::from_raw(pid), sig) {
                        Ok(()) | Err(Errno::ESRCH) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }

    fn wait_any(&mut self) -> Result<Wait, Errno> {
        match waitpid(NixPid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => Ok(Wait::NoneReady),
            Ok(WaitStatus::Exited(pid, code)) => {
                Ok(Wait::Exited(pid.as_raw(), ExitStatus::Exited(code)))
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                Ok(Wait::Exited(pid.as_raw(), ExitStatus::Signaled(sig as i32)))
            }
            // stop/continue reports are not requested (no WUNTRACED); treat as "nothing yet"
            Ok(_) => Ok(Wait::NoneReady),
            Err(Errno::ECHILD) => Ok(Wait::NoChildren),
            Err(e) => Err(e),
        }
    }

    fn write_input(&mut self, bytes: Vec<u8>) {
        self.pty.write(bytes);
    }

    fn resize(&mut self, rows: u16, cols: u16) {
        self.pty.resize(rows, cols);
    }

    fn terminal_size(&self) -> Option<(u16, u16)> {
        super::stdio::stdin_size()
    }

    fn drain_output(&mut self) {
        self.pty.drain();
    }
}

/// Every process whose chain of parents leads to this one (children, grandchildren in other
/// sessions, ...), parents before their children, from one pass over `/proc/*/stat`.
fn descendants() -> Vec<Pid> {
    let me = std::process::id() as Pid;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(Pid, Pid)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<Pid>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    descendants_of(me, &parents)
}

/// The pids below `root` in a `(pid, parent)` table.
fn descendants_of(root: Pid, parents: &[(Pid, Pid)]) -> Vec<Pid> {
    let mut found = vec![root];
    let mut i = 0;
    while let Some(&p) = found.get(i) {
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == p)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The parent pid from `/proc/PID/stat`; the command name may hold spaces and parentheses, so
/// parse after the last `)`.
fn parent_of(pid: Pid) -> Option<Pid> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
pub mod fake {
    //! A recording fake: spawns nothing, logs every call, and lets tests decide when children end.

    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// One recorded call.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Call {
        Spawn(Pid),
        Signal(Target, i32),
        Input(Vec<u8>),
        Resize(u16, u16),
    }

    /// Shared between the test and the supervisor under test.
    #[derive(Debug, Default)]
    pub struct World {
        pub calls: Vec<Call>,
        pub ended: VecDeque<(Pid, ExitStatus)>,
        pub live: Vec<Pid>,
        pub next_pid: Pid,
        /// When set, a signal to a live child's group ends it with this status (an IOC that
        /// obeys); `None` leaves it running (an IOC that ignores the signal).
        pub obey: Option<fn(i32) -> Option<ExitStatus>>,
        pub spawn_fails: bool,
        /// The command of each spawn, in order.
        pub spawned: Vec<CommandSpec>,
        /// Receives SIGCHLD whenever a fake child ends.
        pub notify: Option<crate::supervise::Handle>,
        /// When each call was made, on tokio's (paused) clock.
        pub times: Vec<tokio::time::Instant>,
    }

    impl World {
        fn record(&mut self, call: Call) {
            self.calls.push(call);
            self.times.push(tokio::time::Instant::now());
        }
        fn ended_now(&mut self, pid: Pid, status: ExitStatus) {
            self.live.retain(|p| *p != pid);
            self.ended.push_back((pid, status));
            if let Some(h) = &self.notify {
                h.signal(libc::SIGCHLD);
            }
        }
    }

    /// The fake [`Sys`].
    #[derive(Debug, Clone)]
    pub struct FakeSys(pub Arc<Mutex<World>>);

    impl FakeSys {
        pub fn new() -> FakeSys {
            FakeSys(Arc::new(Mutex::new(World {
                next_pid: 100,
                ..World::default()
            })))
        }
        pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
            self.0.lock().expect("fake world lock")
        }
        /// Make a live child end; the caller then delivers SIGCHLD.
        pub fn end(&self, pid: Pid, status: ExitStatus) {
            self.world().ended_now(pid, status);
        }
        /// A process of ours that is not the IOC (an adopted orphan).
        pub fn adopt(&self) -> Pid {
            let mut w = self.world();
            w.next_pid += 1;
            let pid = w.next_pid;
            w.live.push(pid);
            pid
        }
        pub fn calls(&self) -> Vec<Call> {
            self.world().calls.clone()
        }
    }

    impl Sys for FakeSys {
        fn spawn(&mut self, cmd: &CommandSpec) -> Result<Pid, SuperviseError> {
            let mut w = self.world();
            w.spawned.push(cmd.clone());
            if w.spawn_fails {
                return Err(SuperviseError::NotFound {
                    program: "fake".into(),
                });
            }
            w.next_pid += 1;
            let pid = w.next_pid;
            w.live.push(pid);
            w.record(Call::Spawn(pid));
            Ok(pid)
        }
        fn signal(&mut self, target: Target, sig: i32) -> Result<(), Errno> {
            let mut w = self.world();
            w.record(Call::Signal(target, sig));
            let hit: Vec<Pid> = match target {
                Target::Pid(p) | Target::Group(p) => {
                    w.live.iter().copied().filter(|x| *x == p).collect()
                }
                Target::Others => w.live.clone(),
            };
            if hit.is_empty() {
                return Err(Errno::ESRCH);
            }
            let status = if sig == libc::SIGKILL {
                Some(ExitStatus::Signaled(libc::SIGKILL))
            } else {
                w.obey.and_then(|f| f(sig))
            };
            if let Some(status) = status {
                for pid in hit {
                    w.ended_now(pid, status);
                }
            }
            Ok(())
        }
        fn wait_any(&mut self) -> Result<Wait, Errno> {
            let mut w = self.world();
            Ok(match w.ended.pop_front() {
                Some((pid, status)) => Wait::Exited(pid, status),
                None if w.live.is_empty() => Wait::NoChildren,
                None => Wait::NoneReady,
            })
        }
        fn write_input(&mut self, bytes: Vec<u8>) {
            self.world().record(Call::Input(bytes));
        }
        fn resize(&mut self, rows: u16, cols: u16) {
            self.world().record(Call::Resize(rows, cols));
        }
        fn terminal_size(&self) -> Option<(u16, u16)> {
            None
        }
        fn drain_output(&mut self) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_of_self_is_our_parent() {
        let me = std::process::id() as Pid;
        let ppid = nix::unistd::getppid().as_raw();
        assert_eq!(parent_of(me), Some(ppid));
    }

    #[test]
    fn descendants_follow_the_parent_chain() {
        let table = [(10, 1), (11, 10), (12, 11), (13, 99), (14, 10), (15, 13)];
        assert_eq!(descendants_of(10, &table), vec![11, 14, 12]);
        assert_eq!(descendants_of(12, &table), Vec::<Pid>::new());
    }

    #[test]
    fn descendants_finds_a_spawned_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as Pid;
        assert!(descendants().contains(&pid));
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
}
