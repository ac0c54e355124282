//! `iocrun wait`: ibek's `ioc do-wait`, start step 8 on its own.

use std::process::ExitCode;

use crate::cli::WaitArgs;
use crate::error::Error;
use crate::paths::Paths;
use crate::wait::{self, Lines, Options};

/// Wait for the listed hardware, then create the done file.
pub fn run(args: WaitArgs) -> Result<ExitCode, Error> {
    let paths = Paths::from_env();
    let source = args
        .source
        .unwrap_or_else(|| paths.runtime("wait_list.yaml"));
    let opts = Options {
        progress_every: args.progress,
        overall: args.timeout,
    };
    let skip = args.disable.as_deref() == Some("true");
    let mut out = Lines(std::io::stdout());
    wait::do_wait(&source, &args.done_file, skip, &opts, &mut out)?;
    Ok(ExitCode::SUCCESS)
}
