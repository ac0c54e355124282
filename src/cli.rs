//! The command line exactly as the contract table in `spec/00-overview.md` names it.
//!
//! Raw arguments only: no logic here. Each subcommand arrives with the stage that implements it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// PID 1 for EPICS IOC containers.
#[derive(Debug, Parser)]
#[command(name = "iocrun", version, about, propagate_version = true)]
pub struct Cli {
    /// More diagnostics on stderr (-v info, -vv debug); `IOCRUN_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// One variant per subcommand of the contract table.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render st.cmd, ioc.subst and wait_list.yaml from ioc.yaml (ibek runtime generate2).
    Generate(GenerateArgs),
    /// Validate an instance without writing anything.
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
    /// Read one PV over Channel Access and print it as caget does.
    Caget(CagetArgs),
    /// Exit 0/1 from the running supervisor's cached verdict (for Kubernetes exec probes).
    Probe(ProbeArgs),
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
    /// The PV name.
    pub pv: String,
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

/// `iocrun check [CONFIG_DIR] [--definitions FILE]...`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The instance folder (default $CONFIG_DIR).
    pub config_dir: Option<PathBuf>,
    /// Support YAML files (default: $EPICS_ROOT/ibek-defs/** and CONFIG_DIR/**).
    #[arg(long)]
    pub definitions: Vec<PathBuf>,
    /// Do not check the pvi sections (device files).
    #[arg(long)]
    pub no_pvi: bool,
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
