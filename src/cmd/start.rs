//! `iocrun` / `iocrun start`: the start sequence, one function per step,
//! called in order, then supervision of the IOC until told to stop.
//!
//! Step 2 runs while iocrun is still single-threaded (it exports into the environment). Then
//! the console, the probes/metrics server and signal handling come up, and steps 3–8 run on a
//! blocking thread so `iocrun probe` answers while the IOC is generated and hardware is
//! awaited; a SIGTERM meanwhile ends iocrun at once. A failure in steps 2–8 prints one error,
//! is published to the probes, and exits non-zero after `--fail-pause`, as start.sh's
//! `sleep 10` did, so the pod does not hot-loop. With `-- COMMAND`, steps 2–8 are skipped and
//! COMMAND is supervised instead (a plain init, like tini; for Python IOCs and for tests).
//!
//! Every later start is a fresh start: the supervisor asks `FreshStart` (its `Prepare`r)
//! before each restart, which runs steps 3–7 again (hooks, render, autosave, msi, place
//! files; not the hardware wait). Those steps build into a staging folder (`outputs.rs`), so a
//! config that no longer works leaves the last good outputs whole: the error is published and
//! the IOC starts from them. With `--watch-config`, `reload.rs` asks for a restart when the
//! config folder changes and checks out. Control-socket requests (`iocrun restart`, `iocrun
//! stop`) arrive from serve as `serve::Request`s and become supervisor controls here.

mod health;
mod hooks;
mod nested;
mod outputs;
mod release_shell;
mod reload;
mod writable;

use outputs::Staging;

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
use crate::serve::{self, Health, Phase};
use crate::supervise::{
    self, CommandSpec, Config, Control, Handle, OutputSink, Policy, Prepare, Prepared, Pty,
    RealSys, RestartReason, State, Supervisor,
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
    #[error("config folder '{path}' has none of ioc.yaml, st.cmd or start.sh: nothing to start")]
    NoConfig { path: PathBuf },
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error("start step {step} stopped unexpectedly")]
    StepPanicked { step: &'static str },
    #[error(transparent)]
    NotWritable(#[from] writable::NotWritable),
}

/// Run the start sequence and supervise; returns the IOC's exit code (or 128+signal, or 75
/// after a crash loop, or the failed step's code after the pause).
pub fn run(args: StartArgs) -> Result<ExitCode, Error> {
    // before the one-supervisor check: the outer iocrun's sockets are live, by design
    if let Some(outer) = nested::outer_supervisor() {
        return Ok(nested::run(&args, &outer));
    }
    step0_one_supervisor(&args)?;
    nested::mark_children();
    step1_signals();
    let paths = Paths::from_env();
    let (health, health_rx) = watch::channel(Health {
        phase: Phase::Generating,
        ..Health::default()
    });
    if args.command.is_empty() {
        if let Err(err) = writable_then_step2(&args, &paths) {
            return Ok(fail_now(&err, args.fail_pause));
        }
    }
    // asked once, now: a terminal that hangs up later is no longer a terminal
    let interactive = supervise::interactive();
    let hub = console::Hub::new(args.console.hub_config());
    let sink: Arc<dyn OutputSink> = Arc::new(hub.clone());
    let pty = Pty::open(
        supervise::stdin_size().unwrap_or(supervise::DEFAULT_SIZE),
        sink.clone(),
    )?;
    let end_of_input = pty.end_of_input().filter(|_| args.one_shot());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // the start steps' blocking thread (and its stack) goes soon after them
        .thread_keep_alive(Duration::from_secs(1))
        .build()
        .map_err(|source| StartError::Runtime { source })?;
    let (state, state_rx) = watch::channel(State::generating());
    let supervisor = Supervisor::new(
        RealSys::new(pty),
        config(&args, interactive),
        sink.clone(),
        state,
    );
    let (stop, stopped) = watch::channel(None::<i32>);
    let deliver = deliver_signals(supervisor.handle(), stop, interactive);
    supervise::install_signals({
        let deliver = deliver.clone();
        move |sig| deliver(sig)
    })?;
    let mut serve_cfg = serve::ServeConfig::resolve(&args.serve, |n| std::env::var(n).ok());
    match serve::load_pv_metrics(&args.serve, |n| std::env::var(n).ok()) {
        Ok(entries) => serve_cfg.pv.entries = entries,
        Err(err) => return Ok(fail_now(&err.into(), args.fail_pause)),
    }
    let (requests, requests_rx) = tokio::sync::mpsc::unbounded_channel();
    serve_cfg.settings.requests = Some(requests);
    let code = runtime.block_on(async {
        let (done, done_rx) = watch::channel(false);
        let console = tokio::spawn(serve_console(
            args.console.server_config(),
            hub.clone(),
            (supervisor.handle(), end_of_input),
            interactive,
            until_true(done_rx.clone()),
        ));
        let server = tokio::spawn(serve::run(serve_cfg, health_rx, until_true(done_rx)));
        tokio::spawn(health::publish(state_rx, hub.clone(), health.clone()));
        tokio::spawn(act_on_requests(requests_rx, supervisor.handle(), deliver));
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
    // the folder as the first start reads it: a change from here on is a reload
    let seen = match args.watch_config && args.command.is_empty() {
        true => Some(reload::look(&paths).await),
        false => None,
    };
    let steps = {
        let (args, paths, health, hub) = (args.clone(), paths.clone(), health.clone(), hub.clone());
        tokio::task::spawn_blocking(move || {
            let report = Report {
                health: &health,
                hub: &hub,
            };
            prepare(&args, &paths, &report)
        })
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
            if args.command.is_empty() {
                let fresh = FreshStart {
                    args: args.clone(),
                    paths,
                    health,
                    hub: hub.clone(),
                };
                if let Some(seen) = seen {
                    tokio::spawn(fresh.watch(seen, supervisor.handle()));
                }
                supervisor.set_preparer(Box::new(fresh));
            }
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

/// Steps 3–8 of the first start: the fresh start, then the hardware wait; returns what to
/// spawn.
fn prepare(args: &StartArgs, paths: &Paths, report: &Report) -> Result<CommandSpec, Error> {
    if !args.command.is_empty() {
        return Ok(CommandSpec {
            argv: args.command.clone(),
            cwd: None,
        });
    }
    let command = fresh_start(args, paths, report, "first")?;
    report
        .health
        .send_modify(|h| h.phase = Phase::WaitingHardware);
    report.timed("do_wait", || step8_wait(args, paths, report))?;
    Ok(command)
}

/// Steps 3–7, the ones that read the config folder: start hooks, the `start.sh` override,
/// copy, render, autosave, msi, place files. They run at the first start and again before
/// every restart, so an edited config is live after `exit`, a crash or `iocrun restart`.
fn fresh_start(
    args: &StartArgs,
    paths: &Paths,
    report: &Report,
    reason: &str,
) -> Result<CommandSpec, Error> {
    report.timed("start_d", || {
        hooks::run_hooks(&start_d(args, paths), reason, report.hub)
            .map_err(|e| Error::from(StartError::from(e)))
    })?;
    if let Some(command) = step3_start_sh_override(paths) {
        return Ok(command);
    }
    step3_config_present(paths)?;
    // steps 4–7 write into a staging folder, published only once they all succeeded
    let staging = Staging::new(&paths.runtime_dir)?;
    let staged = Paths {
        runtime_dir: staging.dir().to_owned(),
        ..paths.clone()
    };
    step4_copy_handwritten(&staged)?;
    if paths.config_dir.join("ioc.yaml").is_file() {
        report.timed("ibek_generate", || step5_render(&staged, report.health))?;
    }
    report.timed("autosave", || step5_autosave(&staged))?;
    report.timed("msi", || step6_expand(&staged, paths))?;
    report.timed("place_files", || {
        crate::cmd::place_files::place_step(&staged)
    })?;
    let removed = staging.publish(&paths.runtime_dir)?;
    if !removed.is_empty() {
        let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
        report.hub.notice(&format!(
            "removed outputs of an earlier start: {}",
            names.join(", ")
        ));
    }
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

/// The start hook folder: `--start-d`, else `$IOC/start.d`.
fn start_d(args: &StartArgs, paths: &Paths) -> PathBuf {
    args.start_d
        .clone()
        .unwrap_or_else(|| paths.ioc.join("start.d"))
}

/// Before a restart: the fresh start again (not the hardware wait: the devices were reached
/// once, and a restart should be quick; a device that went away makes the IOC fail and back
/// off). When the config folder no longer works, the error is published and the IOC starts
/// from the outputs of the last good start, which every step leaves intact when it fails.
struct FreshStart {
    args: StartArgs,
    paths: Paths,
    health: watch::Sender<Health>,
    hub: console::Hub,
}

impl FreshStart {
    /// `--watch-config`: restart on a changed config folder that checks out.
    fn watch(
        &self,
        seen: crate::files::Fingerprint,
        handle: Handle,
    ) -> impl std::future::Future<Output = ()> {
        reload::watch_config(
            self.paths.clone(),
            seen,
            handle,
            self.health.clone(),
            self.hub.clone(),
        )
    }
}

impl Prepare for FreshStart {
    fn prepare(&mut self, reason: RestartReason) -> Prepared {
        let (args, paths) = (self.args.clone(), self.paths.clone());
        let (health, hub) = (self.health.clone(), self.hub.clone());
        let fallback = ioc_command(&self.paths);
        Box::pin(async move {
            let steps = tokio::task::spawn_blocking(move || {
                let report = Report {
                    health: &health,
                    hub: &hub,
                };
                health.send_modify(|h| h.phase = Phase::Generating);
                match fresh_start(&args, &paths, &report, reason.label()) {
                    Ok(command) => {
                        health.send_modify(|h| h.config_error = None);
                        command
                    }
                    Err(err) => {
                        let message = crate::error::chain(&err);
                        hub.notice(&format!(
                            "config error: {message}; starting the IOC from the last good outputs"
                        ));
                        health.send_modify(|h| h.config_error = Some(message));
                        ioc_command(&paths)
                    }
                }
            });
            steps.await.unwrap_or(fallback)
        })
    }
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

/// The writable check, then step 2.
fn writable_then_step2(args: &StartArgs, paths: &Paths) -> Result<(), Error> {
    writable::check(&writable::places(args, paths)).map_err(StartError::from)?;
    step2_environment(paths)
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

/// Step 3, without an override: the config folder must hold an instance (`ioc.yaml`) or a
/// hand-written `st.cmd`; otherwise the IOC would crash-loop on a missing st.cmd.
fn step3_config_present(paths: &Paths) -> Result<(), Error> {
    if paths.config_dir.join("ioc.yaml").is_file() || paths.config_dir.join("st.cmd").is_file() {
        return Ok(());
    }
    Err(StartError::NoConfig {
        path: paths.config_dir.clone(),
    }
    .into())
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

/// Step 6: the staged ioc.subst (rendered or hand-written) expanded in-process into `ioc.db`,
/// searching config, `$SUPPORT/*/db`, the staged outputs, then `$RUNTIME_DIR` (where start
/// hooks may have written databases); a missing template stops start-up.
fn step6_expand(staged: &Paths, paths: &Paths) -> Result<(), Error> {
    crate::cmd::expand::ioc_db_step(staged, std::slice::from_ref(&paths.runtime_dir))
}

/// Step 8: wait for the hardware in wait_list.yaml; progress goes to the console stream.
fn step8_wait(args: &StartArgs, paths: &Paths, report: &Report) -> Result<(), Error> {
    let mut report = WaitReport {
        health: report.health,
        hub: report.hub,
    };
    crate::cmd::wait::wait_step(paths, &args.wait, &mut report)
}

/// Where the start steps say how they went: the probes and metrics, and the console stream.
pub(super) struct Report<'a> {
    pub(super) health: &'a watch::Sender<Health>,
    pub(super) hub: &'a console::Hub,
}

impl Report<'_> {
    /// Run one step; its duration and outcome go to the metrics and, as one `@@@` line, to
    /// the console stream (so `kubectl logs` shows where a start spends its time).
    fn timed<T>(
        &self,
        step: &'static str,
        f: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let result = f();
        let took = started.elapsed();
        let outcome = if result.is_ok() { "done" } else { "failed" };
        self.hub
            .notice(&format!("start step {step} {outcome} in {}", seconds(took)));
        self.health
            .send_modify(|h| h.record_step(step, took, result.is_err()));
        result
    }
}

/// `0.012s`: a step's duration, to the millisecond.
fn seconds(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
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

fn config(args: &StartArgs, interactive: bool) -> Config {
    Config {
        command: CommandSpec {
            argv: Vec::new(),
            cwd: None,
        },
        policy: Policy {
            restart: args.restart(),
            initial_delay: args.restart_delay,
            max_delay: args.restart_delay_max,
            stable_after: args.stable_after,
            crash_limit: args.crash_limit,
        },
        grace: args.grace,
        stop_input: args.stop_input.clone().into_bytes(),
        hangup_stops: interactive,
    }
}

/// What a signal does: every signal goes to the supervisor; stop signals (and a hang-up of
/// the terminal iocrun runs in) also end the start steps early.
fn deliver_signals(
    handle: Handle,
    stop: watch::Sender<Option<i32>>,
    hangup_stops: bool,
) -> Arc<dyn Fn(i32) + Send + Sync> {
    Arc::new(move |sig| {
        if matches!(sig, libc::SIGTERM | libc::SIGINT) || (sig == libc::SIGHUP && hangup_stops) {
            stop.send_replace(Some(sig));
        }
        handle.signal(sig);
    })
}

/// Control-socket requests: `restart` is a graceful restart with a fresh start, `stop` is
/// SIGTERM to iocrun.
async fn act_on_requests(
    mut requests: tokio::sync::mpsc::UnboundedReceiver<serve::Request>,
    handle: Handle,
    deliver: Arc<dyn Fn(i32) + Send + Sync>,
) {
    while let Some(request) = requests.recv().await {
        match request {
            serve::Request::Restart => {
                handle.send(Control::Restart(RestartReason::Request));
            }
            serve::Request::Stop => deliver(libc::SIGTERM),
        }
    }
}

/// Serve console clients until `done`, passing their input to the supervisor. A socket that
/// cannot be bound is reported and dropped: the IOC runs on with stdin and stdout only.
///
/// The end of iocrun's stdin (not a terminal) reaches a one-shot COMMAND as the end of its
/// console's input (`end_of_input`), so `podman run IMAGE CMD` without `-i` ends as it does
/// without iocrun; the IOC, a server, has no such trigger and ignores it.
async fn serve_console(
    cfg: console::ServerConfig,
    hub: console::Hub,
    (handle, mut end_of_input): (Handle, Option<supervise::EndOfInput>),
    interactive: bool,
    done: impl std::future::Future<Output = ()>,
) {
    let (input_tx, mut input_rx) = tokio::sync::mpsc::channel::<ConsoleInput>(64);
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
                ConsoleInput::StdinEnd => {
                    if let Some(Err(err)) = end_of_input.take().map(supervise::EndOfInput::pull) {
                        tracing::warn!("the end of stdin cannot reach the command: {err}");
                    }
                    continue;
                }
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
