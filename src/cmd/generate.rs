//! `iocrun generate` = `ibek runtime generate2` (spec `render-ibek.md` §6.1): find the
//! instance and definition files, render, then publish the outputs all at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::GenerateArgs;
use crate::config::default_definition_files;
use crate::error::Error;
use crate::files::{self, Staged};
use crate::paths::Paths;
use crate::render::{self, Inputs, Outputs};

/// Run the subcommand.
pub fn run(args: &GenerateArgs) -> Result<ExitCode, Error> {
    let paths = Paths::from_env();
    let inputs = inputs(
        &paths,
        args.config_dir.as_deref(),
        &args.instances,
        &args.definitions,
        !args.no_pvi,
    )?;
    let out = render::generate(&inputs)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| paths.runtime_dir.clone());
    write(&output, &out)?;
    tracing::info!("wrote {}", output.display());
    Ok(ExitCode::SUCCESS)
}

/// The render inputs `generate2` would use: instance files are the `-i` files, then
/// `CONFIG_DIR/ioc.yaml` and `CONFIG_DIR/runtime.yaml` when they exist; without
/// `--definitions`, `$EPICS_ROOT/ibek-defs/**` then `CONFIG_DIR/**` support YAML.
pub fn inputs(
    paths: &Paths,
    config_dir: Option<&Path>,
    instances: &[PathBuf],
    definitions: &[PathBuf],
    pvi: bool,
) -> Result<Inputs, Error> {
    if config_dir.is_none() && instances.is_empty() {
        return Err(Error::Usage(
            "either a config folder or instance files (-i) must be given".into(),
        ));
    }
    let mut instance_files = instances.to_vec();
    if let Some(dir) = config_dir {
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "config folder '{}' does not exist",
                dir.display()
            )));
        }
        for name in ["ioc.yaml", "runtime.yaml"] {
            let p = dir.join(name);
            if p.exists() {
                instance_files.push(p);
            }
        }
    }
    if instance_files.is_empty() {
        return Err(Error::Usage("no instance yaml files found".into()));
    }
    let definitions = if definitions.is_empty() {
        default_definition_files(&paths.ibek_defs(), config_dir)
    } else {
        definitions.to_vec()
    };
    Ok(Inputs {
        instance_files,
        definitions,
        pvi,
        pvi_defs: paths.pvi_defs(),
        pvi_override_dir: paths.epics_root.join("ioc").join("config"),
        ioc_env: std::env::var("IOC").unwrap_or_default(),
        runtime_env: std::env::var("RUNTIME_DIR").unwrap_or_default(),
    })
}

/// Replace the output folder with exactly the rendered files, as ibek's rmtree + write does,
/// but all-or-nothing: the previous outputs stay intact if anything fails.
pub fn write(output: &Path, out: &Outputs) -> Result<(), Error> {
    let mut staged = Staged::new();
    staged.add("st.cmd", out.st_cmd.as_bytes());
    staged.add("ioc.subst", out.ioc_subst.as_bytes());
    if let Some(w) = &out.wait_list {
        staged.add("wait_list.yaml", w.as_bytes());
    }
    files::refill_dir(output, &staged)?;
    Ok(())
}
