//! `iocrun schema` = `ibek ioc generate-schema` (spec `render-ibek.md` §6.5): the JSON schema
//! of ioc.yaml for the definitions in use, for yaml-language-server and services-repo CI.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::SchemaArgs;
use crate::config::{self, default_definition_files, Definitions};
use crate::error::Error;
use crate::files;
use crate::paths::Paths;

/// Run the subcommand: without `--definitions`, the image's `$EPICS_ROOT/ibek-defs/**`; the
/// embedded `epics.*` definitions join when the definitions hold no `epics` module, as they do
/// for `generate`, so the schema describes what iocrun will accept.
pub fn run(args: &SchemaArgs) -> Result<ExitCode, Error> {
    let paths = Paths::from_env();
    let files = if args.definitions.is_empty() {
        default_definition_files(&paths.ibek_defs(), None)
    } else {
        args.definitions.clone()
    };
    let mut defs = Definitions::load(&files)?;
    defs.add_embedded_fallbacks()?;
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
