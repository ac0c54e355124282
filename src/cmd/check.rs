//! `iocrun check`: validate an instance exactly as `generate` would render it, writing
//! nothing (for services-repository CI).

use std::process::ExitCode;

use crate::cli::CheckArgs;
use crate::error::Error;
use crate::paths::Paths;
use crate::render;

/// Run the subcommand: render everything in memory, report the first error.
pub fn run(args: &CheckArgs) -> Result<ExitCode, Error> {
    let paths = Paths::from_env();
    let config_dir = args
        .config_dir
        .clone()
        .unwrap_or_else(|| paths.config_dir.clone());
    let inputs = super::generate::inputs(
        &paths,
        Some(&config_dir),
        &[],
        &args.definitions,
        !args.no_pvi,
    )?;
    let out = render::generate(&inputs)?;
    let n = out.st_cmd.lines().count();
    println!(
        "{}: ok ({} instance file(s), {} definition file(s), st.cmd {n} lines)",
        config_dir.display(),
        inputs.instance_files.len(),
        inputs.definitions.len()
    );
    Ok(ExitCode::SUCCESS)
}
