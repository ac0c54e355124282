//! Start hooks: the executables of an image-level folder (`$IOC/start.d`, or `--start-d`),
//! run in name order before every render, for images that generate support files first (PVI
//! device files, databases) as their `start.sh` used to.
//!
//! Each hook runs in `$IOC` with iocrun's environment (`CONFIG_DIR`, `RUNTIME_DIR`, `IOC`,
//! `EPICS_ROOT`, the `RELEASE.shell` exports) plus `IOCRUN_START_REASON` (`first`, `exit`,
//! `signal`, `request` or `reload`), stdin from `/dev/null`, and its stdout and stderr passed
//! line by line to the console stream. A hook that fails fails the start step. Files that are
//! not executable, hidden files and folders are skipped, the first with a notice (a forgotten
//! `chmod +x` should be visible). No time limit: a hook that hangs holds the start, and a stop
//! signal still ends iocrun.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::console::Hub;

/// A start hook that could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("cannot read the start hook folder '{path}'")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run start hook '{path}'")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("start hook '{path}' failed ({status})")]
    Failed { path: PathBuf, status: String },
}

/// The hooks of `dir` in the order they run; a missing folder has none.
pub fn hooks_in(dir: &Path, hub: &Hub) -> Result<Vec<PathBuf>, HookError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HookError::ReadDir {
                path: dir.to_owned(),
                source,
            })
        }
    };
    let mut hooks: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
        })
        .filter(|p| p.is_file())
        .collect();
    hooks.sort();
    hooks.retain(|p| {
        let executable = std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
        if !executable {
            hub.notice(&format!(
                "start hook {} is not executable: skipped",
                p.display()
            ));
        }
        executable
    });
    Ok(hooks)
}

/// Run every hook of `dir` in order; the first failure stops the rest.
pub fn run_hooks(dir: &Path, reason: &str, hub: &Hub) -> Result<(), HookError> {
    for hook in hooks_in(dir, hub)? {
        hub.notice(&format!("start hook {}", hook.display()));
        run_one(&hook, reason, hub)?;
    }
    Ok(())
}

fn run_one(hook: &Path, reason: &str, hub: &Hub) -> Result<(), HookError> {
    let mut child = Command::new(hook)
        .env("IOCRUN_START_REASON", reason)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HookError::Spawn {
            path: hook.to_owned(),
            source,
        })?;
    let pipes: Vec<Box<dyn Read + Send>> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    let status = std::thread::scope(|scope| {
        for pipe in pipes {
            scope.spawn(move || forward_lines(pipe, hub));
        }
        child.wait()
    })
    .map_err(|source| HookError::Spawn {
        path: hook.to_owned(),
        source,
    })?;
    if status.success() {
        return Ok(());
    }
    Err(HookError::Failed {
        path: hook.to_owned(),
        status: status.to_string(),
    })
}

/// Copy a hook's output to the console stream, one line at a time, with the terminal's CRLF.
fn forward_lines(pipe: impl Read, hub: &Hub) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    // a line longer than this is passed on in pieces
    while let Ok(n) = reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut line) {
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            line.extend_from_slice(b"\r\n");
        }
        hub.publish(&line);
        line.clear();
    }
}

/// Bytes of hook output read before they are passed on without waiting for the line's end.
const MAX_LINE: u64 = 64 * 1024;
