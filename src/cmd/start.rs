//! `iocrun` / `iocrun start`: the start sequence of spec 00-overview.md, one function per step,
//! called in order, then supervision of the IOC until told to stop.
//!
//! Steps 5 (render), 7 and 8 (place files, wait for hardware) join this list as their modules
//! land. A failure in steps 2–8 prints one error, is published as `StartFailed`, and exits
//! non-zero after `--fail-pause`, as start.sh's `sleep 10` did, so the pod does not hot-loop.
//! With `-- COMMAND`, steps 2–8 are skipped and COMMAND is supervised instead (a plain init,
//! like tini; useful for Python IOCs and for tests).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::cli::StartArgs;
use crate::console::{self, ConsoleInput};
use crate::error::Error;
use crate::files;
use crate::paths::Paths;
use crate::supervise::{
    self, ChildState, CommandSpec, Config, Control, Handle, OutputSink, Policy, Pty, RealSys,
    State, Supervisor,
};

/// A start step that failed outside any stage module.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot change to the IOC folder '{path}'")]
    ChangeDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
}

/// Run the start sequence and supervise; returns the IOC's exit code (or 128+signal, or 75
/// after a crash loop, or the failed step's code after the pause).
pub fn run(args: StartArgs) -> Result<ExitCode, Error> {
    step1_signals_and_terminal();
    let (state, _watchers) = watch::channel(State::generating());
    let paths = Paths::from_env();
    let command = match prepare(&args, &paths) {
        Ok(command) => command,
        Err(err) => return Ok(fail_after_pause(&err, args.fail_pause, &state)),
    };
    step9_supervise(&args, command, state)
}

/// Steps 2–8: everything before the IOC can be spawned; returns what to spawn.
fn prepare(args: &StartArgs, paths: &Paths) -> Result<CommandSpec, Error> {
    if !args.command.is_empty() {
        return Ok(CommandSpec {
            argv: args.command.clone(),
            cwd: None,
        });
    }
    step2_environment(paths)?;
    if let Some(command) = step3_start_sh_override(paths) {
        return Ok(command);
    }
    step4_copy_handwritten(paths)?;
    step5_autosave(paths)?;
    step6_expand(paths)?;
    Ok(ioc_command(paths))
}

/// Step 1: a clean signal mask before any thread exists. The console puts the container's
/// stdin in raw mode when it is a terminal, as soon as it starts serving (step 9); until then
/// nothing reads stdin.
fn step1_signals_and_terminal() {
    supervise::unblock_signals();
}

/// Step 2: `cd $IOC`; export `CONFIG_DIR` and `RUNTIME_DIR`; create `RUNTIME_DIR`; load the
/// `export` lines of `$SUPPORT/configure/RELEASE.shell`.
fn step2_environment(paths: &Paths) -> Result<(), Error> {
    std::env::set_current_dir(&paths.ioc).map_err(|source| StartError::ChangeDir {
        path: paths.ioc.clone(),
        source,
    })?;
    // single-threaded here: nothing else reads the environment concurrently
    std::env::set_var("CONFIG_DIR", &paths.config_dir);
    std::env::set_var("RUNTIME_DIR", &paths.runtime_dir);
    files::create_dir_all(&paths.runtime_dir)?;
    let release = paths.release_shell();
    if release.is_file() {
        let text = files::read_to_string(&release)?;
        for (name, value) in parse_release_shell(&text, |n| std::env::var(n).ok()) {
            std::env::set_var(name, value);
        }
    }
    Ok(())
}

/// Step 3: a `start.sh` in the config folder replaces the built-in steps; it is supervised
/// like the IOC (console, signals and restarts still apply).
fn step3_start_sh_override(paths: &Paths) -> Option<CommandSpec> {
    let script = paths.config_dir.join("start.sh");
    script.is_file().then(|| CommandSpec {
        argv: vec![OsString::from("bash"), script.into_os_string()],
        cwd: None,
    })
}

/// Step 4: hand-written `ioc.db`, `ioc.subst` and `st.cmd` from the config folder.
fn step4_copy_handwritten(paths: &Paths) -> Result<(), Error> {
    for name in ["ioc.db", "ioc.subst", "st.cmd"] {
        let from = paths.config_dir.join(name);
        if from.is_file() {
            files::copy_file(&from, &paths.runtime(name))?;
        }
    }
    Ok(())
}

/// Step 5, after rendering: autosave request files, for ibek instances (config/ioc.yaml)
/// whose ioc.subst exists. Expansion problems inside are logged, not fatal, as with ibek.
fn step5_autosave(paths: &Paths) -> Result<(), Error> {
    if !paths.config_dir.join("ioc.yaml").is_file() || !paths.runtime("ioc.subst").is_file() {
        return Ok(());
    }
    super::autosave::autosave_step(paths)
}

/// Step 6: `$RUNTIME_DIR/ioc.subst` (rendered or hand-written) expanded in-process into
/// `ioc.db`, searching config, `$SUPPORT/*/db`, runtime; a missing template stops start-up.
fn step6_expand(paths: &Paths) -> Result<(), Error> {
    super::expand::ioc_db_step(paths)
}

/// Step 9: the console hub and PTY, signal handling, the console server, then supervise
/// until everything is gone.
fn step9_supervise(
    args: &StartArgs,
    command: CommandSpec,
    state: watch::Sender<State>,
) -> Result<ExitCode, Error> {
    if let Err(e) = supervise::become_subreaper() {
        tracing::warn!("{e}: orphans will not be reaped by iocrun");
    }
    let hub = console::Hub::new(args.console.hub_config());
    let sink: Arc<dyn OutputSink> = Arc::new(hub.clone());
    let size = supervise::stdin_size().unwrap_or(supervise::DEFAULT_SIZE);
    let pty = Pty::open(size, sink.clone())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| StartError::Runtime { source })?;
    let supervisor = Supervisor::new(
        RealSys::new(pty),
        config(args, command),
        sink.clone(),
        state,
    );
    let handle = supervisor.handle();
    supervise::install_signals(handle.clone())?;
    let code = runtime.block_on(async {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let console = tokio::spawn(serve_console(
            args.console.server_config(),
            hub,
            handle,
            done_rx,
        ));
        let code = supervisor.run().await;
        let _ = done_tx.send(());
        let _ = console.await;
        code
    });
    sink.flush(Duration::from_secs(1));
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Serve console clients until `done`, passing their input to the supervisor. A socket that
/// cannot be bound is reported and dropped: the IOC runs on with stdin and stdout only.
async fn serve_console(
    cfg: console::ServerConfig,
    hub: console::Hub,
    handle: Handle,
    done: tokio::sync::oneshot::Receiver<()>,
) {
    let (input_tx, mut input_rx) = tokio::sync::mpsc::channel::<ConsoleInput>(64);
    tokio::spawn(async move {
        while let Some(input) = input_rx.recv().await {
            handle.send(match input {
                ConsoleInput::Bytes(bytes) => Control::Input(bytes),
                ConsoleInput::Resize { rows, cols } => Control::Resize { rows, cols },
            });
        }
    });
    let done = async {
        let _ = done.await;
    };
    tokio::pin!(done);
    let first = console::serve(cfg.clone(), hub.clone(), input_tx.clone(), &mut done).await;
    if let Err(err) = first {
        hub.notice(&format!(
            "console socket unavailable ({}); console on stdin and stdout only",
            crate::error::chain(&err)
        ));
        let fallback = console::ServerConfig {
            socket: None,
            ro_socket: None,
            ..cfg
        };
        if let Err(err) = console::serve(fallback, hub, input_tx, &mut done).await {
            tracing::error!("console: {}", crate::error::chain(&err));
        }
    }
}

/// The hub is the supervisor's output: stdout, scrollback, clients and the console log.
impl OutputSink for console::Hub {
    fn publish(&self, bytes: &[u8]) {
        console::Hub::publish(self, bytes);
    }
    fn notice(&self, text: &str) {
        console::Hub::notice(self, text);
    }
    fn reopen(&self) {
        self.reopen_log();
    }
    fn flush(&self, timeout: Duration) {
        console::Hub::flush(self, timeout);
    }
}

/// The built-in child: `$IOC/bin/$EPICS_HOST_ARCH/ioc $RUNTIME_DIR/st.cmd`, run in `$IOC`.
fn ioc_command(paths: &Paths) -> CommandSpec {
    CommandSpec {
        argv: vec![
            paths.ioc_binary().into_os_string(),
            paths.runtime("st.cmd").into_os_string(),
        ],
        cwd: Some(paths.ioc.clone()),
    }
}

fn config(args: &StartArgs, command: CommandSpec) -> Config {
    Config {
        command,
        policy: Policy {
            restart: args.restart,
            initial_delay: args.restart_delay,
            max_delay: args.restart_delay_max,
            stable_after: args.stable_after,
            crash_limit: args.crash_limit,
        },
        grace: args.grace,
    }
}

/// Print the error once, publish it, pause, and give the exit code.
fn fail_after_pause(err: &Error, pause: Duration, state: &watch::Sender<State>) -> ExitCode {
    let message = crate::error::chain(err);
    eprintln!("iocrun: {message} (exiting in {})", supervise::human(pause));
    state.send_modify(|s| {
        s.child = ChildState::StartFailed {
            at: SystemTime::now(),
            message,
        }
    });
    std::thread::sleep(pause);
    err.exit_code()
}

/// The `export NAME=VALUE` lines of a RELEASE.shell, as bash would set them: double quotes and
/// bare words expand `$VAR` and `${VAR}` (from earlier lines, then `lookup`), single quotes do
/// not. Other lines are ignored (spec deploy-k8s §1.1).
fn parse_release_shell(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("export ") else {
            continue;
        };
        let Some((name, raw)) = rest.trim().split_once('=') else {
            continue;
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            continue;
        }
        let known = |n: &str| {
            out.iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .or_else(|| lookup(n))
        };
        let value = if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            inner.to_owned()
        } else {
            let inner = raw
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .unwrap_or(raw);
            expand_vars(inner, known)
        };
        out.push((name.to_owned(), value));
    }
    out
}

fn expand_vars(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, skip) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(&lookup(name).unwrap_or_default());
            rest = &after[skip..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_shell_exports_quoted_and_expanded() {
        let text = r#"# generated
export SUPPORT="/epics/support"
export ASYN="${SUPPORT}/asyn"
export CALC=$SUPPORT/calc
export LITERAL='$SUPPORT'
export EPICS_DB_INCLUDE_PATH="$ASYN/db:$CALC/db:$HOME/x"
not an export
export 1BAD="x"
"#;
        let got = parse_release_shell(text, |n| (n == "HOME").then(|| "/tmp".to_owned()));
        let want = [
            ("SUPPORT", "/epics/support"),
            ("ASYN", "/epics/support/asyn"),
            ("CALC", "/epics/support/calc"),
            ("LITERAL", "$SUPPORT"),
            (
                "EPICS_DB_INCLUDE_PATH",
                "/epics/support/asyn/db:/epics/support/calc/db:/tmp/x",
            ),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_and_lone_dollars() {
        assert_eq!(expand_vars("a$NOPE-b", |_| None), "a-b");
        assert_eq!(expand_vars("cost $ 5", |_| None), "cost $ 5");
        assert_eq!(expand_vars("x${Y", |_| None), "x${Y");
    }

    #[test]
    fn the_ioc_runs_st_cmd_from_runtime() {
        let paths = Paths::from_lookup(|n| (n == "EPICS_ROOT").then(|| PathBuf::from("/e")));
        let cmd = ioc_command(&paths);
        assert_eq!(
            cmd.display(),
            "/e/ioc/bin/linux-x86_64/ioc /e/runtime/st.cmd"
        );
        assert_eq!(cmd.cwd, Some(PathBuf::from("/e/ioc")));
    }
}
