//! `iocrun pvi DEVICE.pvi.device.yaml [--search DIR]… [-o DIR] [--pv-prefix PREFIX]`: one
//! device's screens and `.pvi.template`, for authors of device files (replaces `pvi format`).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::PviArgs;
use crate::error::Error;
use crate::files::Staged;
use crate::paths::Paths;
use crate::pvi;

/// Format one device into `-o` (default: the current folder). Parents are searched in the
/// `--search` folders in order; without any, in the device's own folder and then
/// `$EPICS_ROOT/pvi-defs`. Nothing is written unless every file was produced.
pub fn run(args: PviArgs, paths: &Paths) -> Result<ExitCode, Error> {
    let search: Vec<PathBuf> = if args.search.is_empty() {
        let own = args
            .device
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        vec![own, paths.pvi_defs()]
    } else {
        args.search.clone()
    };
    let device = pvi::load_resolved(&args.device, &search)?;
    let name = pvi::device_name(&args.device);
    let mut staged = Staged::new();
    for (file, text) in pvi::format_screens(&device, &name)? {
        staged.add(file, text);
    }
    staged.add(
        format!("{name}.pvi.template"),
        pvi::format_template(&device, &args.pv_prefix)?,
    );
    let out = args.output.unwrap_or_else(|| PathBuf::from("."));
    staged.write_into(&out)?;
    tracing::info!(
        "pvi: wrote {} files for {name} into {}",
        staged.names().count(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
