//! One file per subcommand; the only place that sequences the stage modules.

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::Error;

/// Run the command the user asked for.
pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {}
}
