//! msi semantics on text: substitution files and templates in, database text out, and
//! autosave request files built on the same parser.
//!
//! The output is byte-identical to EPICS base 7.0.8.1 `msi`, apart from lines longer than
//! 4094 bytes, which msi truncates and iocrun keeps (vector 56, `docs/compat.md`). This module
//! uses only std and `files`; it knows nothing of ioc.yaml or rendering.
//!
//! * `lex`, `parse`: the substitution-file tokenizer and grammar.
//! * `macros`, `defns`: the macLib macro table, scopes and expansion engine; definition strings.
//! * `template`: template files, the include path and directives.
//! * `driver`: msi's main loop over options, sets and templates.
//! * `autosave`: `autosave_*.req` generation.

mod autosave;
mod defns;
mod driver;
mod lex;
mod macros;
mod parse;
mod template;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::files::{AtomicFile, FilesError};

pub use autosave::{generate_autosave, AutosaveError, AutosavePaths, AutosaveReport};
pub use driver::{Options, Outcome, MAX_INCLUDE_DEPTH};
pub use parse::SyntaxError;
pub use template::split_include_path;

/// Why an expansion stopped. Every variant is msi's exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    #[error("cannot open substitution file '{}'", path.display())]
    OpenSubst {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read substitution file '{}'", path.display())]
    ReadSubst {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{}:{}: {}", path.display(), error.line, error.column, error.message.to_lowercase())]
    Syntax { path: PathBuf, error: SyntaxError },
    #[error("cannot open template file '{name}'{searched}")]
    OpenTemplate {
        name: String,
        /// ` (searched a, b)` when the include path was searched, else empty.
        searched: String,
        trace: String,
    },
    #[error("include of '{name}' nested deeper than {MAX_INCLUDE_DEPTH} files")]
    IncludeDepth { name: String, trace: String },
    /// msi recurses and re-scans without bound here (crashing on a deep enough line, or
    /// running for ever); iocrun stops.
    #[error("{template}:{line}: {cut}")]
    MacroBound {
        template: String,
        line: usize,
        cut: String,
    },
    #[error("no template file for a set in the substitution file")]
    NoTemplate,
    #[error("cannot write the expansion")]
    Write(#[source] std::io::Error),
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error("cannot open '{}' for writing", path.display())]
    CreateOutput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ExpandError {
    fn write(source: std::io::Error) -> ExpandError {
        ExpandError::Write(source)
    }
}

/// Run msi's expansion with `opts`, writing the output (or `-D` dependencies) to `out`.
/// Warnings (macLib, too many pattern values) go to `warn` as msi would print them.
/// On error, what was produced before it has been written to `out`, as msi does.
pub fn run<W: Write>(
    opts: &Options,
    out: W,
    warn: &mut dyn FnMut(&str),
) -> Result<(Outcome, W), (ExpandError, W)> {
    driver::Run::new(opts, out, warn).run()
}

/// Expand a substitution file into `out` (written atomically: nothing changes on error), the
/// way the start sequence runs msi: the given include path, no `-M`, no `-V`. Unexpanded
/// macro names are returned in the outcome for the caller to log.
pub fn expand_subst_file(
    subst: &Path,
    include_path: &[PathBuf],
    out: &Path,
) -> Result<Outcome, ExpandError> {
    let opts = Options {
        include_path: include_path.to_vec(),
        subst: Some(subst.to_owned()),
        ..Options::default()
    };
    let mut warn = |w: &str| tracing::debug!("{w}");
    expand_to_file(&opts, out, &mut warn)
}

/// Run `opts` into the file `out` atomically: a temporary sibling renamed into place when the
/// run succeeds (also when `-V` found undefined macros, as msi keeps the file then).
pub fn expand_to_file(
    opts: &Options,
    out: &Path,
    warn: &mut dyn FnMut(&str),
) -> Result<Outcome, ExpandError> {
    let file = AtomicFile::create(out)?;
    let (outcome, file) = run(opts, file, warn).map_err(|(e, _)| e)?;
    file.commit()?;
    Ok(outcome)
}

/// The start sequence's msi search path: the config folder, every
/// `$SUPPORT/*/db` folder in sorted (shell-glob) order, then the runtime folder.
pub fn ioc_include_path(config_dir: &Path, support: &Path, runtime_dir: &Path) -> Vec<PathBuf> {
    let mut dbs: Vec<PathBuf> = std::fs::read_dir(support)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
        .map(|e| e.path().join("db"))
        .filter(|p| p.is_dir())
        .collect();
    dbs.sort();
    let mut path = vec![config_dir.to_owned()];
    path.extend(dbs);
    path.push(runtime_dir.to_owned());
    path
}
