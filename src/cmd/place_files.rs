//! `iocrun place-files CONFIG_DIR`: ibek's `runtime place-files`.

use std::process::ExitCode;

use crate::cli::PlaceFilesArgs;
use crate::error::Error;
use crate::paths::Paths;

/// Copy the config folder's protocol and database files into the runtime folders.
pub fn run(args: PlaceFilesArgs) -> Result<ExitCode, Error> {
    let paths = Paths::from_env();
    crate::place::place_files(&args.config_dir, &paths.runtime_dir)?;
    Ok(ExitCode::SUCCESS)
}
