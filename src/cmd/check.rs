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

/// Whether the config folder would start, as the start sequence reads it, writing nothing:
/// a `start.sh` or a hand-written `st.cmd` is taken as it is; an `ioc.yaml` must render, with
/// its PVI templates (screens that cannot be made only warn at start, so they pass here).
/// Used by `--watch-config` before it restarts the IOC on a changed folder.
pub fn config_would_start(paths: &Paths) -> Result<(), Error> {
    let dir = &paths.config_dir;
    if !dir.join("ioc.yaml").is_file() {
        if dir.join("start.sh").is_file() || dir.join("st.cmd").is_file() {
            return Ok(());
        }
        return Err(Error::Usage(format!(
            "config folder '{}' has none of ioc.yaml, st.cmd or start.sh",
            dir.display()
        )));
    }
    let inputs = super::generate::inputs(paths, Some(dir), &[], &[], true)?;
    let out = render::generate(&inputs)?;
    super::generate::make_pvi(&inputs, &out)?;
    Ok(())
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
