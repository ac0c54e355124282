//! `iocrun schema` = `ibek ioc generate-schema`: the JSON schema
//! of ioc.yaml for the definitions in use, for yaml-language-server and services-repo CI.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::SchemaArgs;
use crate::config::{self, default_definition_files, Definitions};
use crate::error::Error;
use crate::files;
use crate::paths::Paths;

/// Run the subcommand. With `--definitions`, exactly those files (as `ibek ioc generate-schema
/// --no-ibek-defs FILE...`, byte for byte). Without, the image's `$EPICS_ROOT/ibek-defs/**`
/// plus iocrun's embedded `epics.*` when the image defines no `epics` module, so the schema
/// describes what `iocrun generate` accepts in that container.
pub fn run(args: &SchemaArgs) -> Result<ExitCode, Error> {
    let paths = Paths::from_env();
    let defs = if args.definitions.is_empty() {
        let mut defs = Definitions::load(&default_definition_files(&paths.ibek_defs(), None)?)?;
        defs.add_embedded_fallbacks()?;
        defs
    } else {
        Definitions::load(&args.definitions)?
    };
    let text = config::ioc_schema(&defs);
    match &args.output {
        Some(path) => {
            files::write_atomic(path, text.as_bytes())?;
            tracing::info!("wrote {}", path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            // a closed pipe (`iocrun schema | head`) is not an error worth reporting
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        }
    }
    Ok(ExitCode::SUCCESS)
}
