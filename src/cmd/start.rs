//! `iocrun` / `iocrun start`: the start sequence of spec 00-overview.md, one function per step,
//! called in order, then supervision of the IOC until told to stop.
//!
//! Step 2 runs while iocrun is still single-threaded (it exports into the environment). Then
//! the console, the probes/metrics server and signal handling come up, and steps 3–8 run on a
//! blocking thread so `iocrun probe` answers while the IOC is generated and hardware is
//! awaited; a SIGTERM meanwhile ends iocrun at once. A failure in steps 2–8 prints one error,
//! is published to the probes, and exits non-zero after `--fail-pause`, as start.sh's
//! `sleep 10` did, so the pod does not hot-loop. With `-- COMMAND`, steps 2–8 are skipped and
//! COMMAND is supervised instead (a plain init, like tini; for Python IOCs and for tests).

mod health;
mod release_shell;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::cli::StartArgs;
use crate::console::{self, ConsoleInput};
use crate::error::Error;
use crate::files;
use crate::paths::Paths;
use crate::serve::{self, Health, Phase, StepTiming};
use crate::supervise::{
    self, CommandSpec, Config, Control, Handle, OutputSink, Policy, Pty, RealSys, State, Supervisor,
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
    #[error("start step {step} stopped unexpectedly")]
    StepPanicked { step: &'static str },
}

/// Run the start sequence and supervise; returns the IOC's exit code (or 128+signal, or 75
/// after a crash loop, or the failed step's code after the pause).
pub fn run(args: StartArgs) -> Result<ExitCode, Error> {
    step0_one_supervisor(&args)?;
    step1_signals();
    let paths = Paths::from_env();
    let (health, health_rx) = watch::channel(Health {
        phase: Phase::Generating,
        ..Health::default()
    });
    if args.command.is_empty() {
        if let Err(err) = step2_environment(&paths) {
            return Ok(fail_now(&err, args.fail_pause));
        }
    }
    let hub = console::Hub::new(args.console.hub_config());
    let sink: Arc<dyn OutputSink> = Arc::new(hub.clone());
    let pty = Pty::open(
        supervise::stdin_size().unwrap_or(supervise::DEFAULT_SIZE),
        sink.clone(),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // the start steps' blocking thread (and its stack) goes soon after them
        .thread_keep_alive(Duration::from_secs(1))
        .build()
        .map_err(|source| StartError::Runtime { source })?;
    let (state, state_rx) = watch::channel(State::generating());
    let supervisor = Supervisor::new(RealSys::new(pty), config(&args), sink.clone(), state);
    let (stop, stopped) = watch::channel(None::<i32>);
    install_signals(supervisor.handle(), stop)?;
    let mut serve_cfg = serve::ServeConfig::resolve(&args.serve, |n| std::env::var(n).ok());
    match serve::load_pv_metrics(&args.serve, |n| std::env::var(n).ok()) {
        Ok(entries) => serve_cfg.pv.entries = entries,
        Err(err) => return Ok(fail_now(&err.into(), args.fail_pause)),
    }
    let code = runtime.block_on(async {
        let (done, done_rx) = watch::channel(false);
        let console = tokio::spawn(serve_console(
            args.console.server_config(),
            hub.clone(),
            supervisor.handle(),
            until_true(done_rx.clone()),
        ));
        let server = tokio::spawn(serve::run(serve_cfg, health_rx, until_true(done_rx)));
        tokio::spawn(health::publish(state_rx, hub.clone(), health.clone()));
        let code = prepare_and_supervise(&args, paths, supervisor, health, stopped, &hub).await;
        let _ = done.send(true);
        let _ = console.await;
        let _ = server.await;
        code
    });
    // a start step abandoned by a stop (a hardware wait) must not hold the exit: dropping the
    // runtime would wait for its blocking thread
    runtime.shutdown_timeout(Duration::from_millis(100));
    sink.flush(Duration::from_secs(1));
    Ok(code)
}

/// How long after the IOC's first start iocrun gives back its start-up memory.
const SETTLE_AFTER: Duration = Duration::from_secs(1);

/// iocrun's exit status from the supervisor's number (0–255 by construction).
fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Steps 3–8 on a blocking thread, then step 9; a stop signal during the steps ends iocrun.
async fn prepare_and_supervise(
    args: &StartArgs,
    paths: Paths,
    mut supervisor: Supervisor<RealSys>,
    health: watch::Sender<Health>,
    mut stopped: watch::Receiver<Option<i32>>,
    hub: &console::Hub,
) -> ExitCode {
    let steps = {
        let (args, health, hub) = (args.clone(), health.clone(), hub.clone());
        tokio::task::spawn_blocking(move || prepare(&args, &paths, &health, &hub))
    };
    let prepared = tokio::select! {
        joined = steps => joined.unwrap_or(Err(StartError::StepPanicked { step: "3-8" }.into())),
        sig = stopped.wait_for(Option::is_some) => {
            let sig = sig.ok().and_then(|s| *s).unwrap_or(libc::SIGTERM);
            hub.notice(&format!("received {} during the start steps: exiting", supervise::signal_name(sig)));
            return exit_code(128 + sig);
        }
    };
    match prepared {
        Ok(command) => {
            health.send_modify(|h| h.start_done = true);
            supervisor.set_command(command);
            // the start steps are over: what they used need not stay resident
            tokio::spawn(async {
                tokio::time::sleep(SETTLE_AFTER).await;
                crate::footprint::settle();
            });
            exit_code(supervisor.run().await)
        }
        Err(err) => {
            let pause = fail_published(&err, args.fail_pause, &health);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stopped.wait_for(Option::is_some) => {}
            }
            err.exit_code()
        }
    }
}

/// Steps 3–8: everything before the IOC can be spawned; returns what to spawn.
fn prepare(
    args: &StartArgs,
    paths: &Paths,
    health: &watch::Sender<Health>,
    hub: &console::Hub,
) -> Result<CommandSpec, Error> {
    if !args.command.is_empty() {
        return Ok(CommandSpec {
            argv: args.command.clone(),
            cwd: None,
        });
    }
    if let Some(command) = step3_start_sh_override(paths) {
        return Ok(command);
    }
    step4_copy_handwritten(paths)?;
    if paths.config_dir.join("ioc.yaml").is_file() {
        timed(health, "ibek_generate", || step5_render(paths, health))?;
    }
    timed(health, "autosave", || step5_autosave(paths))?;
    timed(health, "msi", || step6_expand(paths))?;
    timed(health, "place_files", || {
        crate::cmd::place_files::place_step(paths)
    })?;
    health.send_modify(|h| h.phase = Phase::WaitingHardware);
    timed(health, "do_wait", || step8_wait(args, paths, health, hub))?;
    Ok(ioc_command(paths))
}

/// Step 0, before any file is touched: refuse to start beside a live supervisor (its control
/// or console socket answers), or on a socket path held by something that is not a socket.
/// A stale socket is left for the server that binds it to replace.
fn step0_one_supervisor(args: &StartArgs) -> Result<(), Error> {
    let console = args.console.server_config();
    let sockets = [
        (args.serve.control_socket(), serve::SOCKET_ENV),
        (console.socket, console::SOCKET_ENV),
        (console.ro_socket, console::RO_SOCKET_ENV),
    ];
    for (path, env) in sockets {
        if let Some(path) = path {
            files::check_socket_path(&path, env)?;
        }
    }
    Ok(())
}

/// Step 1: a clean signal mask before any thread exists, and the reaper role when not PID 1.
/// The console puts the container's stdin in raw mode when it is a terminal, as soon as it
/// starts serving; nothing reads stdin before that.
fn step1_signals() {
    supervise::unblock_signals();
    if let Err(e) = supervise::become_subreaper() {
        // tini's warning: without it, orphans of the IOC would never be reaped
        tracing::warn!("{e}: zombie reaping won't work");
    }
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
        let lookup = |n: &str| std::env::var(n).ok();
        for (name, value) in release_shell::parse_release_shell(&text, lookup) {
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

/// Step 5: render ioc.yaml (st.cmd, ioc.subst, wait_list.yaml, PVI screens); screens that
/// could not be made are reported to the probes, not fatal.
fn step5_render(paths: &Paths, health: &watch::Sender<Health>) -> Result<(), Error> {
    let generated = crate::cmd::generate::generate_step(paths)?;
    let bobs = glob::glob(&format!("{}/*.bob", paths.opi_dir().display()))
        .map(|g| g.filter_map(Result::ok).count() as u64)
        .unwrap_or(0);
    health.send_modify(|h| {
        h.pvi_failures = u64::from(generated.pvi_failed.is_some());
        h.opi_files = bobs;
        h.iocstats_prefixes = generated.iocstats_prefixes;
    });
    Ok(())
}

/// Step 5, after rendering: autosave request files, for ibek instances (config/ioc.yaml)
/// whose ioc.subst exists. Expansion problems inside are logged, not fatal, as with ibek.
fn step5_autosave(paths: &Paths) -> Result<(), Error> {
    if !paths.config_dir.join("ioc.yaml").is_file() || !paths.runtime("ioc.subst").is_file() {
        return Ok(());
    }
    crate::cmd::autosave::autosave_step(paths)
}

/// Step 6: `$RUNTIME_DIR/ioc.subst` (rendered or hand-written) expanded in-process into
/// `ioc.db`, searching config, `$SUPPORT/*/db`, runtime; a missing template stops start-up.
fn step6_expand(paths: &Paths) -> Result<(), Error> {
    crate::cmd::expand::ioc_db_step(paths)
}

/// Step 8: wait for the hardware in wait_list.yaml; progress goes to the console stream.
fn step8_wait(
    args: &StartArgs,
    paths: &Paths,
    health: &watch::Sender<Health>,
    hub: &console::Hub,
) -> Result<(), Error> {
    let mut report = WaitReport { health, hub };
    crate::cmd::wait::wait_step(paths, &args.wait, &mut report)
}

struct WaitReport<'a> {
    health: &'a watch::Sender<Health>,
    hub: &'a console::Hub,
}

impl crate::wait::Report for WaitReport<'_> {
    fn line(&mut self, text: &str) {
        self.hub.publish(format!("{text}\r\n").as_bytes());
    }
    fn pending(&mut self, devices: &[&str]) {
        let devices: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
        self.health.send_modify(|h| h.hw_pending = devices);
    }
}

/// Run one step, recording its duration and outcome for the metrics.
fn timed<T>(
    health: &watch::Sender<Health>,
    step: &'static str,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let started = Instant::now();
    let result = f();
    let timing = StepTiming {
        step,
        duration: started.elapsed(),
        failed: result.is_err(),
    };
    health.send_modify(|h| h.steps.push(timing));
    result
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

fn config(args: &StartArgs) -> Config {
    Config {
        command: CommandSpec {
            argv: Vec::new(),
            cwd: None,
        },
        policy: Policy {
            restart: args.restart,
            initial_delay: args.restart_delay,
            max_delay: args.restart_delay_max,
            stable_after: args.stable_after,
            crash_limit: args.crash_limit,
        },
        grace: args.grace,
        stop_input: args.stop_input.clone().into_bytes(),
        hangup_stops: supervise::interactive(),
    }
}

/// Every signal goes to the supervisor; stop signals (and a hang-up of the terminal iocrun runs
/// in) also end the start steps early.
fn install_signals(handle: Handle, stop: watch::Sender<Option<i32>>) -> Result<(), Error> {
    let hangup_stops = supervise::interactive();
    supervise::install_signals(move |sig| {
        if matches!(sig, libc::SIGTERM | libc::SIGINT) || (sig == libc::SIGHUP && hangup_stops) {
            stop.send_replace(Some(sig));
        }
        handle.signal(sig);
    })?;
    Ok(())
}

/// Serve console clients until `done`, passing their input to the supervisor. A socket that
/// cannot be bound is reported and dropped: the IOC runs on with stdin and stdout only.
async fn serve_console(
    cfg: console::ServerConfig,
    hub: console::Hub,
    handle: Handle,
    done: impl std::future::Future<Output = ()>,
) {
    let (input_tx, mut input_rx) = tokio::sync::mpsc::channel::<ConsoleInput>(64);
    // asked now: a terminal that hung up is no longer a terminal
    let interactive = supervise::interactive();
    tokio::spawn(async move {
        while let Some(input) = input_rx.recv().await {
            handle.send(match input {
                ConsoleInput::Bytes(bytes) => Control::Input(bytes),
                ConsoleInput::Resize { rows, cols } => Control::Resize { rows, cols },
                // the terminal went away without a SIGHUP: behave as if one came
                ConsoleInput::HangUp if interactive => {
                    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP);
                    continue;
                }
                ConsoleInput::HangUp => continue,
            });
        }
    });
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

async fn until_true(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|done| *done).await;
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

/// Print the error once and publish it; returns how long to pause.
fn fail_published(err: &Error, pause: Duration, health: &watch::Sender<Health>) -> Duration {
    let message = crate::error::chain(err);
    eprintln!("iocrun: {message} (exiting in {})", supervise::human(pause));
    health.send_modify(|h| h.phase = Phase::Failed { message });
    pause
}

/// Step 2 failed before anything else runs: report, pause, exit.
fn fail_now(err: &Error, pause: Duration) -> ExitCode {
    let (health, _) = watch::channel(Health::default());
    std::thread::sleep(fail_published(err, pause, &health));
    err.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

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
