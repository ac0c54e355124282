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
        Command::Start(args) => start::run(args),
        Command::Generate(args) => generate::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Wait(args) => wait::run(args),
        Command::PlaceFiles(args) => place_files::run(args),
        Command::Pvi(args) => pvi::run(args, &Paths::from_env()),
        Command::Attach(args) => attach::run(args),
        Command::Expand(args) => expand::run(args),
        Command::Autosave(args) => autosave::run(args),
        Command::Schema(args) => schema::run(&args),
        Command::Caget(args) => caget::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Status(args) => control::status(args),
        Command::Restart(args) => control::request(&args, "restart"),
        Command::Stop(args) => control::request(&args, "stop"),
    }
}
