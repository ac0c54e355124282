//! `iocrun autosave [SUBST]`: what `ibek runtime generate-autosave` does.

use std::process::ExitCode;

use crate::cli::AutosaveArgs;
use crate::error::Error;
use crate::expand::{generate_autosave, AutosavePaths};
use crate::paths::Paths;

/// Link req files, then write `autosave_{settings,positions}.{subst,req}` in the runtime folder.
pub fn run(args: AutosaveArgs) -> Result<ExitCode, Error> {
    let paths = Paths::from_env();
    let subst = args.subst.unwrap_or_else(|| paths.runtime("ioc.subst"));
    let report = generate_autosave(&subst, &autosave_paths(&paths))?;
    for file in &report.written {
        tracing::info!("wrote {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Start step 5 (after rendering): autosave req files from `$RUNTIME_DIR/ioc.subst`.
/// Expansion problems are logged, not fatal, as with ibek.
pub fn autosave_step(paths: &Paths) -> Result<(), Error> {
    let subst = paths.runtime("ioc.subst");
    let report = generate_autosave(&subst, &autosave_paths(paths))?;
    for file in &report.written {
        tracing::debug!("wrote {}", file.display());
    }
    Ok(())
}

/// The folders autosave uses, from the resolved paths (ibek's GLOBALS).
pub fn autosave_paths(paths: &Paths) -> AutosavePaths {
    AutosavePaths {
        support: paths.support.clone(),
        autosave: paths.autosave_dir(),
        config_dir: paths.config_dir.clone(),
        runtime: paths.runtime_dir.clone(),
    }
}
