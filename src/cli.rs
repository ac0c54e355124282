//! The command line: one subcommand per stage, plus the container entrypoint forms.
//!
//! `iocrun` alone, `iocrun [START FLAGS] [-- CMD ARGS…]` and `iocrun CMD ARGS…` (the first
//! word not a subcommand, like tini) all mean `iocrun start …`; [`parse`] rewrites them to
//! that before clap sees them, so the start flags' environment twins (`IOCRUN_GRACE`, …) are
//! read only by `start`: a bad value there never breaks `iocrun probe` or another subcommand.
//! Raw arguments only otherwise: no logic here.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::supervise::Restart;

/// PID 1 for EPICS IOC containers.
#[derive(Debug, Parser)]
#[command(
    name = "iocrun",
    version = crate::version::VERSION,
    about,
    propagate_version = true,
    override_usage = "iocrun [START FLAGS] [-- CMD ARGS...]\n       iocrun CMD ARGS...\n       iocrun <SUBCOMMAND>",
    after_help = "Without a subcommand iocrun runs `iocrun start` (flags: `iocrun start --help`): the start \
sequence, then the IOC supervised as PID 1. `iocrun CMD ARGS...` (CMD not a subcommand) or \
`iocrun -- CMD ARGS...` supervises CMD instead, once: iocrun exits with its exit code."
)]
pub struct Cli {
    /// More diagnostics on stderr (-v info, -vv debug); `IOCRUN_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parse the process's arguments (see [`parse_from`]); exits with clap's message on error.
    pub fn parse_args() -> Cli {
        Cli::parse_from(entrypoint_args(std::env::args_os()))
    }

    /// Parse `args` as [`parse_args`] does, returning clap's error.
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        Cli::try_parse_from(entrypoint_args(args.into_iter().map(Into::into)))
    }
}

/// Rewrite the entrypoint forms to `iocrun start …`: bare `iocrun`, leading start flags, `--`,
/// or a first word that is not a subcommand (`iocrun bash`, `iocrun /epics/ioc/start.sh`).
/// `-h`, `-V` and the subcommands pass through; leading `-v` flags are kept in front.
fn entrypoint_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.collect();
    let program = if args.is_empty() {
        OsString::from("iocrun")
    } else {
        args.remove(0)
    };
    let verbose = args
        .iter()
        .take_while(|a| is_verbose_flag(a.to_str().unwrap_or_default()))
        .count();
    let rest = args.split_off(verbose);
    let mut out = vec![program];
    out.append(&mut args);
    let first = rest.first().and_then(|a| a.to_str());
    let passes_through = match first {
        Some("-h" | "--help" | "-V" | "--version" | "help") => true,
        Some(word) if !word.starts_with('-') => is_subcommand(word),
        _ => false,
    };
    if !passes_through {
        out.push(OsString::from("start"));
        if first.is_some_and(|w| !w.starts_with('-')) || (first.is_none() && !rest.is_empty()) {
            // a command that is not UTF-8, or a word that is not a subcommand: the command
            out.push(OsString::from("--"));
        }
    }
    out.extend(rest);
    out
}

fn is_verbose_flag(arg: &str) -> bool {
    arg == "--verbose"
        || (arg.len() > 1 && arg.starts_with('-') && arg[1..].bytes().all(|b| b == b'v'))
}

/// Whether `word` names a subcommand, answered from the derived names without building the
/// clap command (which the parse that follows builds anyway).
fn is_subcommand(word: &str) -> bool {
    <Command as clap::Subcommand>::has_subcommand(word)
}

/// One variant per subcommand of the contract table.
// parsed once per process: the size of the start flags does not matter
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the start sequence, then supervise the IOC until told to stop (the default).
    Start(StartArgs),
    /// Render st.cmd, ioc.subst and wait_list.yaml from ioc.yaml (ibek runtime generate2).
    Generate(GenerateArgs),
    /// Validate instance folders without writing anything (a verdict per folder).
    Check(CheckArgs),
    /// Wait for the hardware listed in wait_list.yaml (ibek ioc do-wait).
    Wait(WaitArgs),
    /// Copy protocol/db files from the config folder into the runtime folders.
    PlaceFiles(PlaceFilesArgs),
    /// Format one PVI device into its .bob screens and .pvi.template (like `pvi format`).
    Pvi(PviArgs),
    /// Attach to the running IOC's console (detach with Ctrl-] by default).
    Attach(crate::console::AttachArgs),
    /// msi-compatible expansion: [-I DIR]… [-M a=b,…] [-S SUBST] [-o OUT] [-V] [-D] [-g] [TEMPLATE]
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Expand(ExpandArgs),
    /// Generate autosave request files from ioc.subst (ibek runtime generate-autosave).
    Autosave(AutosaveArgs),
    /// Write the JSON schema of ioc.yaml for the definitions (ibek ioc generate-schema).
    Schema(SchemaArgs),
    /// Read PVs over Channel Access and print them as caget does.
    Caget(CagetArgs),
    /// Exit 0/1 from the running supervisor's cached verdict (for Kubernetes exec probes).
    Probe(ProbeArgs),
    /// Show the running IOC's state, pid, uptime, restarts, last exit and config error.
    Status(StatusArgs),
    /// Restart the running IOC in place, re-reading the config folder.
    Restart(ControlArgs),
    /// Stop the IOC and iocrun, as SIGTERM to iocrun does.
    Stop(ControlArgs),
}

/// The supervisor to talk to, for `iocrun restart` and `iocrun stop`.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The supervisor's control socket.
    #[arg(long, env = "IOCRUN_CONTROL_SOCKET", value_name = "PATH", default_value = crate::serve::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = seconds)]
    pub timeout: Duration,
}

/// `iocrun status [--json]`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One line of JSON instead of `key: value` lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub control: ControlArgs,
}

/// `iocrun probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Which verdict: startup, ready or live.
    #[arg(value_parser = ["startup", "ready", "live"])]
    pub kind: String,
    /// The supervisor's control socket.
    #[arg(long, env = "IOCRUN_CONTROL_SOCKET", value_name = "PATH", default_value = crate::serve::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = seconds)]
    pub timeout: Duration,
}

/// `iocrun caget`.
#[derive(Debug, Args)]
pub struct CagetArgs {
    /// The PV names (read together; one line each, in this order).
    #[arg(required = true, value_name = "PV")]
    pub pvs: Vec<String>,
    /// Seconds to wait for the search and the read (caget's -w).
    #[arg(short = 'w', value_name = "SECONDS", default_value = "1", value_parser = seconds)]
    pub wait: Duration,
}

/// `iocrun wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The wait list [default: $RUNTIME_DIR/wait_list.yaml].
    #[arg(long, value_name = "FILE")]
    pub source: Option<PathBuf>,
    /// Created when the wait succeeds or is skipped; start-up probes poll it.
    #[arg(
        long,
        value_name = "FILE",
        env = "IOCRUN_WAIT_DONE_FILE",
        default_value = "/tmp/doWait_completed.txt"
    )]
    pub done_file: PathBuf,
    /// Give up after this many seconds in total, whatever the per-target timeouts say.
    #[arg(long, value_name = "SECONDS", env = "IOCRUN_WAIT_TIMEOUT", value_parser = seconds)]
    pub timeout: Option<Duration>,
    /// Say which targets are still pending every this many seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "IOCRUN_WAIT_PROGRESS",
        default_value = "10",
        value_parser = seconds
    )]
    pub progress: Duration,
    /// Skip the wait (only the exact value `true` counts, as in start.sh).
    #[arg(long, value_name = "BOOL", env = "IBEK_DO_WAIT_DISABLE", hide = true)]
    pub disable: Option<String>,
}

/// The hardware-wait settings of `iocrun start` (step 8), with the same environment twins as
/// `iocrun wait`'s flags; flattened in by `cmd/start.rs`.
#[derive(Debug, Clone, Args)]
pub struct WaitFlags {
    /// Created when the hardware wait succeeds or is skipped; start-up probes poll it.
    #[arg(
        long,
        value_name = "FILE",
        env = "IOCRUN_WAIT_DONE_FILE",
        default_value = "/tmp/doWait_completed.txt"
    )]
    pub wait_done_file: PathBuf,
    /// Give up the hardware wait after this many seconds in total.
    #[arg(long, value_name = "SECONDS", env = "IOCRUN_WAIT_TIMEOUT", value_parser = seconds)]
    pub wait_timeout: Option<Duration>,
    /// Say which hardware is still pending every this many seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "IOCRUN_WAIT_PROGRESS",
        default_value = "10",
        value_parser = seconds
    )]
    pub wait_progress: Duration,
    /// Skip the hardware wait (only the exact value `true` counts, as in start.sh).
    #[arg(long, value_name = "BOOL", env = "IBEK_DO_WAIT_DISABLE", hide = true)]
    pub wait_disable: Option<String>,
}

/// `iocrun place-files`.
#[derive(Debug, Args)]
pub struct PlaceFilesArgs {
    /// The instance config folder holding *.proto, *.protocol, *.db, *.template.
    pub config_dir: PathBuf,
}

/// A number of seconds (fractions allowed) as a `Duration`.
fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("'{text}' is not a usable number of seconds"))
}

/// `iocrun pvi DEVICE.pvi.device.yaml [--search DIR]… [-o DIR] [--pv-prefix PREFIX]`.
#[derive(Debug, Args)]
pub struct PviArgs {
    /// The device file, `NAME.pvi.device.yaml`.
    pub device: PathBuf,
    /// Folders to find parent/included devices in, in order (default: the device's folder,
    /// then $EPICS_ROOT/pvi-defs).
    #[arg(long = "search", value_name = "DIR")]
    pub search: Vec<PathBuf>,
    /// Output folder (default: the current folder).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Prefix of the `<prefix>PVI` structure PV in the .pvi.template.
    #[arg(long = "pv-prefix", value_name = "PREFIX", default_value = "")]
    pub pv_prefix: String,
}

/// msi's arguments, verbatim: msi's forms (`-Idir`, `-I dir`, `-ofile`, `-Ma=b`) are parsed
/// by hand in `cmd::expand`, because clap cannot express them exactly.
#[derive(Debug, Args)]
pub struct ExpandArgs {
    /// msi options and the optional template (see `iocrun expand -h`).
    #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub args: Vec<OsString>,
}

/// `iocrun autosave [SUBST]`.
#[derive(Debug, Args)]
pub struct AutosaveArgs {
    /// The substitution file (default `$RUNTIME_DIR/ioc.subst`).
    pub subst: Option<PathBuf>,
}

/// `iocrun generate [CONFIG_DIR] [-i FILE]... [--definitions FILE]... [-o OUT] [--opi DIR] [--no-pvi]`
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The instance folder (reads ioc.yaml and runtime.yaml from it).
    pub config_dir: Option<PathBuf>,
    /// Additional instance files, read before the folder's.
    #[arg(short = 'i', long = "instance")]
    pub instances: Vec<PathBuf>,
    /// Support YAML files (default: $EPICS_ROOT/ibek-defs/** and CONFIG_DIR/**).
    #[arg(long)]
    pub definitions: Vec<PathBuf>,
    /// Output folder (default $RUNTIME_DIR); replaced as a whole.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Folder for the PVI screens (default $EPICS_ROOT/opi).
    #[arg(long)]
    pub opi: Option<PathBuf>,
    /// Skip pvi: no screens and no .pvi.template rows in ioc.subst.
    #[arg(long)]
    pub no_pvi: bool,
}

/// `iocrun check [CONFIG_DIR]... [--definitions FILE]... [--format text|github]`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Instance folders, each checked on its own (default $CONFIG_DIR).
    pub config_dirs: Vec<PathBuf>,
    /// Support YAML files for every folder (default: $EPICS_ROOT/ibek-defs/** and each
    /// folder's own support YAML).
    #[arg(long)]
    pub definitions: Vec<PathBuf>,
    /// Do not check the pvi sections (device files).
    #[arg(long)]
    pub no_pvi: bool,
    /// How to report: `text` (one line per folder) or `github` (also GitHub Actions
    /// `::error`/`::warning` annotations).
    #[arg(long, value_enum, default_value_t = CheckFormat::Text, env = "IOCRUN_CHECK_FORMAT")]
    pub format: CheckFormat,
}

/// The report format of `iocrun check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// `ok DIR`, or `FAIL DIR` and the first errors as `file:line:col: message`.
    Text,
    /// The text lines plus GitHub Actions workflow commands for each error and warning.
    Github,
}

/// `iocrun schema [--definitions FILE]... [-o FILE]`
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Support YAML files, used as given (default: $EPICS_ROOT/ibek-defs/**, plus iocrun's own
    /// epics.* when those define no `epics` module).
    #[arg(long)]
    pub definitions: Vec<PathBuf>,
    /// Where to write the schema (default: stdout).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Flags of `iocrun start` (and of bare `iocrun`).
#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// When to restart the child after it exits on its own [default: always for the IOC,
    /// never for a COMMAND].
    #[arg(long, env = "IOCRUN_RESTART", value_enum)]
    pub restart: Option<Restart>,

    /// How long a stop waits for the IOC (and anything else left) before SIGKILL.
    #[arg(long, env = "IOCRUN_GRACE", default_value = "2s", value_parser = parse_duration)]
    pub grace: Duration,

    /// Text typed on the IOC's console to stop it before the signal, e.g. 'exit\n' so iocsh
    /// runs its exit hooks; the signal follows after half the grace period. `\n`, `\r`,
    /// `\t` and `\\` are unescaped. Empty: signal at once.
    #[arg(long, env = "IOCRUN_STOP_INPUT", value_name = "TEXT", default_value = "", value_parser = unescape)]
    pub stop_input: String,

    /// Delay before the first restart; it doubles with each quick failure.
    #[arg(long, env = "IOCRUN_RESTART_DELAY", default_value = "1s", value_parser = parse_duration)]
    pub restart_delay: Duration,

    /// Upper bound of the restart delay.
    #[arg(long, env = "IOCRUN_RESTART_DELAY_MAX", default_value = "30s", value_parser = parse_duration)]
    pub restart_delay_max: Duration,

    /// A run at least this long is stable: the backoff and the crash count reset.
    #[arg(long, env = "IOCRUN_STABLE_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub stable_after: Duration,

    /// Give up (exit 75) after this many quick failures in a row; 0 restarts forever.
    #[arg(long, env = "IOCRUN_CRASH_LIMIT", default_value_t = 10)]
    pub crash_limit: u32,

    /// Pause before exiting when a start step fails, so the pod does not hot-loop.
    #[arg(long, env = "IOCRUN_FAIL_PAUSE", default_value = "10s", value_parser = parse_duration)]
    pub fail_pause: Duration,

    /// Folder of start hooks: executables run in name order before every render
    /// [default: $IOC/start.d].
    #[arg(long = "start-d", env = "IOCRUN_START_D", value_name = "DIR")]
    pub start_d: Option<PathBuf>,

    /// Watch the config folder (a Kubernetes ConfigMap update too): a change that checks out
    /// restarts the IOC on it; one that does not is reported and the IOC runs on.
    #[arg(long, env = "IOCRUN_WATCH_CONFIG")]
    pub watch_config: bool,

    /// The console: socket, scrollback, log file, stdin.
    #[command(flatten)]
    pub console: crate::console::ConsoleArgs,

    /// Probes, HTTP health and metrics.
    #[command(flatten)]
    pub serve: crate::serve::ServeArgs,

    /// The hardware wait of start step 8.
    #[command(flatten)]
    pub wait: WaitFlags,

    /// Supervise this command once instead of the IOC; start steps 2–8 are skipped.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

impl StartArgs {
    /// The restart policy in force: `--restart` when given, else `always` for the IOC (a
    /// server) and `never` for an explicit COMMAND (a one-shot, as under tini).
    pub fn restart(&self) -> Restart {
        self.restart.unwrap_or(if self.command.is_empty() {
            Restart::Always
        } else {
            Restart::Never
        })
    }

    /// An explicit COMMAND runs once: iocrun ends with its exit code, and the end of iocrun's
    /// own stdin reaches it as the end of its console's input.
    pub fn one_shot(&self) -> bool {
        !self.command.is_empty()
    }
}

/// Backslash escapes of `--stop-input`: `\n`, `\r`, `\t`, `\\`; others stay as typed.
pub fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Ok(out)
}

/// `2s`, `500ms`, `1.5s`, `3m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (examples: 2s, 500ms, 1m)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}' (use ms, s or m)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("'{text}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_units_people_type() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn stop_input_escapes() {
        assert_eq!(unescape(r"exit\n"), Ok("exit\n".to_owned()));
        assert_eq!(unescape(r"a\r\tb\\c\q"), Ok("a\r\tb\\c\\q".to_owned()));
        assert_eq!(unescape(r"end\"), Ok("end\\".to_owned()));
    }

    fn start_args(args: &[&str]) -> StartArgs {
        match Cli::try_parse_args(args).expect("parses").command {
            Command::Start(start) => start,
            other => panic!("not start: {other:?}"),
        }
    }

    #[test]
    fn bare_iocrun_takes_start_flags_and_a_command() {
        let start = start_args(&["iocrun", "--grace", "5s", "--", "sh", "-c", "exit 3"]);
        assert_eq!(start.grace, Duration::from_secs(5));
        assert_eq!(start.command, ["sh", "-c", "exit 3"]);
        assert_eq!(start.restart(), Restart::Never);
        let start = start_args(&["iocrun", "start", "--restart", "never"]);
        assert_eq!(start.restart(), Restart::Never);
        let start = start_args(&["iocrun"]);
        assert!(start.command.is_empty());
        assert_eq!(start.restart(), Restart::Always);
    }

    #[test]
    fn every_subcommand_and_alias_passes_through() {
        use clap::CommandFactory;
        for sub in Cli::command().get_subcommands() {
            for word in std::iter::once(sub.get_name()).chain(sub.get_all_aliases()) {
                assert!(is_subcommand(word), "{word} is a subcommand");
            }
        }
        assert!(!is_subcommand("bash"));
        assert!(!is_subcommand("Generate"));
    }

    #[test]
    fn a_first_word_that_is_not_a_subcommand_is_the_command() {
        let start = start_args(&["iocrun", "/epics/ioc/start.sh", "--grace", "x"]);
        assert_eq!(start.command, ["/epics/ioc/start.sh", "--grace", "x"]);
        assert!(start.one_shot());
        let start = start_args(&["iocrun", "-vv", "bash"]);
        assert_eq!(start.command, ["bash"]);
        let start = start_args(&["iocrun", "--restart", "always", "bash", "-c", "x"]);
        assert_eq!(start.command, ["bash", "-c", "x"]);
        assert_eq!(start.restart(), Restart::Always);
        let start = start_args(&["iocrun", "--", "probe"]);
        assert_eq!(start.command, ["probe"]);
        let cli = Cli::try_parse_args(["iocrun", "-v", "probe", "ready"]).expect("parses");
        assert_eq!(cli.verbose, 1);
        assert!(matches!(cli.command, Command::Probe(_)));
    }
}
