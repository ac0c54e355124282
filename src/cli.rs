//! The command line exactly as the contract table in `spec/00-overview.md` names it.
//!
//! Raw arguments only: no logic here. Each subcommand arrives with the stage that implements it.

use clap::{Parser, Subcommand};

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
pub enum Command {}
