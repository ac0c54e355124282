//! iocrun: PID 1 for EPICS IOC containers.
//!
//! `main` is a table of contents: parse the command line, run one command, print the error
//! chain and map the result to an exit code. Everything else lives in the stage modules.

use std::process::ExitCode;

fn main() -> ExitCode {
    iocrun::footprint::one_arena();
    let cli = iocrun::cli::Cli::parse_args();
    iocrun::logging::init(cli.verbose);
    match iocrun::cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("iocrun: {}", iocrun::error::chain(&err));
            err.exit_code()
        }
    }
}
