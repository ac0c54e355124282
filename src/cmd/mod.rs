//! One file per subcommand; the only place that sequences the stage modules.

pub mod attach;
pub mod autosave;
mod caget;
pub mod check;
mod control;
pub mod expand;
pub mod generate;
pub mod place_files;
mod probe;
mod pvi;
mod schema;
pub mod wait;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::paths::Paths;

pub mod start;

/// Run the command the user asked for.
pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        None => start::run(cli.start),
        Some(Command::Start(args)) => start::run(args),
        Some(Command::Generate(args)) => generate::run(&args),
        Some(Command::Check(args)) => check::run(&args),
        Some(Command::Wait(args)) => wait::run(args),
        Some(Command::PlaceFiles(args)) => place_files::run(args),
        Some(Command::Pvi(args)) => pvi::run(args, &Paths::from_env()),
        Some(Command::Attach(args)) => attach::run(args),
        Some(Command::Expand(args)) => expand::run(args),
        Some(Command::Autosave(args)) => autosave::run(args),
        Some(Command::Schema(args)) => schema::run(&args),
        Some(Command::Caget(args)) => caget::run(args),
        Some(Command::Probe(args)) => probe::run(args),
        Some(Command::Status(args)) => control::status(args),
        Some(Command::Restart(args)) => control::request(&args, "restart"),
        Some(Command::Stop(args)) => control::request(&args, "stop"),
    }
}
