//! iocrun started by another iocrun: run the start steps, then become the IOC.
//!
//! With `ENTRYPOINT ["iocrun"]` and the two-line `ioc/start.sh` shim (`exec iocrun "$@"`),
//! `podman run IMAGE /epics/ioc/start.sh` nests: the outer iocrun (PID 1) supervises the
//! shim, which execs an inner iocrun. Two supervisors would fight over the console and control
//! sockets and the PID 1 duties, so the outer one marks its children's environment with its
//! pid ([`SUPERVISOR_ENV`]) and an iocrun that finds the mark does not supervise: it runs the
//! start steps (as start.sh did), prints one `@@@` line naming what it runs, and `exec`s the
//! IOC (or its COMMAND) in its own place. The outer iocrun then supervises the IOC directly:
//! one console, one set of sockets, one restart policy (its own).

use std::os::unix::process::CommandExt;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::watch;

use crate::cli::StartArgs;
use crate::console;
use crate::error::Error;
use crate::paths::Paths;
use crate::serve::Health;
use crate::supervise::{self, CommandSpec, OutputSink};

/// Set by a supervising iocrun in its children's environment, to its own pid.
pub(super) const SUPERVISOR_ENV: &str = "IOCRUN_SUPERVISOR_PID";

/// The pid of the iocrun supervising this one, from the environment mark.
pub(super) fn outer_supervisor() -> Option<String> {
    std::env::var(SUPERVISOR_ENV).ok().filter(|v| !v.is_empty())
}

/// Mark the environment every child inherits. Called while iocrun is single-threaded.
pub(super) fn mark_children() {
    std::env::set_var(SUPERVISOR_ENV, std::process::id().to_string());
}

/// Run the start steps (unless a COMMAND was given), then exec; returns only on failure.
pub(super) fn run(args: &StartArgs, outer: &str) -> ExitCode {
    supervise::unblock_signals();
    let paths = Paths::from_env();
    let command = if args.command.is_empty() {
        match prepare(args, &paths) {
            Ok(command) => command,
            Err(err) => return super::fail_now(&err, args.fail_pause),
        }
    } else {
        CommandSpec {
            argv: args.command.clone(),
            cwd: None,
        }
    };
    exec(&command, outer)
}

/// Steps 2–8, with their output on stdout (the outer iocrun's console).
fn prepare(args: &StartArgs, paths: &Paths) -> Result<CommandSpec, Error> {
    super::writable_then_step2(args, paths)?;
    let hub = console::Hub::new(console::HubConfig::default());
    let (health, _published) = watch::channel(Health::default());
    let report = super::Report {
        health: &health,
        hub: &hub,
    };
    let command = super::prepare(args, paths, &report);
    hub.flush(Duration::from_secs(1));
    command
}

/// Replace this process with `command`; 127 (missing) or 126 (not runnable) when that fails.
fn exec(command: &CommandSpec, outer: &str) -> ExitCode {
    let Some((program, rest)) = command.argv.split_first() else {
        return ExitCode::from(127);
    };
    supervise::StdoutSink.notice(&format!(
        "running {} under the iocrun of pid {outer}",
        command.display()
    ));
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    if let Some(cwd) = &command.cwd {
        cmd.current_dir(cwd);
    }
    let err = cmd.exec();
    eprintln!("iocrun: cannot run {}: {err}", command.display());
    ExitCode::from(match err.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    })
}
