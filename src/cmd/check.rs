//! `iocrun check`: validate an instance exactly as `generate` would render it, writing
//! nothing (for services-repository CI).

use std::process::ExitCode;

use crate::cli::CheckArgs;
use crate::error::Error;
use crate::paths::Paths;
use crate::pvi::PviError;
use crate::render::{self, Inputs, Outputs};

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
    if inputs.pvi {
        check_pvi(&inputs, &out)?;
    }
    let n = out.st_cmd.lines().count();
    println!(
        "{}: ok ({} instance file(s), {} definition file(s), st.cmd {n} lines)",
        config_dir.display(),
        inputs.instance_files.len(),
        inputs.definitions.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Make every screen and template in memory; unlike `generate`, a screen that cannot be made
/// fails the check, so a services repository hears about a bad device file before deploying.
fn check_pvi(inputs: &Inputs, out: &Outputs) -> Result<(), Error> {
    let made = super::generate::make_pvi(inputs, out)?;
    match made.screen_errors.into_iter().next() {
        Some(err) => Err(Error::from(PviError::Screens(Box::new(err)))),
        None => Ok(()),
    }
}
