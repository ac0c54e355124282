//! `iocrun place-files CONFIG_DIR`: ibek's `runtime place-files`; and start step 7.

use std::process::ExitCode;

use crate::cli::PlaceFilesArgs;
use crate::error::Error;
use crate::paths::Paths;
use crate::place;

/// Copy the config folder's protocol and database files into the runtime folders.
pub fn run(args: PlaceFilesArgs) -> Result<ExitCode, Error> {
    let paths = Paths::from_env();
    place::place_files(&args.config_dir, &paths.runtime_dir)?;
    Ok(ExitCode::SUCCESS)
}

/// Start step 7: replace `$RUNTIME_DIR/protocol` with `$SUPPORT/configure/protocol`, then, for
/// ibek instances (`ioc.yaml` present, as start.sh gates it), place the config folder's own
/// files. This order keeps the instance's protocols.
pub fn place_step(paths: &Paths) -> Result<(), Error> {
    place::copy_support_protocols(&paths.support, &paths.runtime_dir)?;
    if paths.config_dir.join("ioc.yaml").is_file() {
        place::place_files(&paths.config_dir, &paths.runtime_dir)?;
    }
    Ok(())
}
