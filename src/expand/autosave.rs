//! Autosave request files, as `ibek runtime generate-autosave` makes them.
//!
//! 1. Link `*.req` files into the autosave folder: support modules' files where the name is
//!    not taken yet (ibek-support's build-time links win), then the instance config's files,
//!    which replace anything.
//! 2. Read ioc.subst with the msi parser (not ibek's regex): each file block whose
//!    template has a `<stem>_settings.req` / `<stem>_positions.req` becomes an entry, with the
//!    block's text copied verbatim. Unquoted file names and `global` blocks therefore work,
//!    where ibek silently drops them (docs/compat.md).
//! 3. Write `autosave_<suffix>.subst` and expand it in-process with the autosave folder as the
//!    include path into `autosave_<suffix>.req`. Like ibek, an expansion error does not fail
//!    the step: the partial output is kept and the error is reported.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::parse::{spans, ParseFail, Span, SyntaxError};
use super::{run, ExpandError, Options};
use crate::files::{self, FilesError};

/// Suffixes in ibek's order.
const SUFFIXES: [&str; 2] = ["settings", "positions"];

/// The folders autosave generation reads and writes.
#[derive(Debug, Clone)]
pub struct AutosavePaths {
    /// `$SUPPORT`: searched recursively for `*.req`.
    pub support: PathBuf,
    /// `$EPICS_ROOT/autosave`: the links, and msi's include path.
    pub autosave: PathBuf,
    /// The instance config folder: its `*.req` files override.
    pub config_dir: PathBuf,
    /// Where `autosave_*.subst` and `autosave_*.req` go.
    pub runtime: PathBuf,
}

/// What generation did.
#[derive(Debug, Default)]
pub struct AutosaveReport {
    /// Files written, in order.
    pub written: Vec<PathBuf>,
    /// Expansion errors that were tolerated (the req file holds the partial output).
    pub expand_errors: Vec<String>,
}

/// A failure that stops autosave generation.
#[derive(Debug, thiserror::Error)]
pub enum AutosaveError {
    #[error("cannot read '{}'", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot link '{}' to '{}'", link.display(), target.display())]
    Link {
        link: PathBuf,
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{}:{}: {}", path.display(), error.line, error.column, error.message.to_lowercase())]
    Syntax { path: PathBuf, error: SyntaxError },
    #[error(transparent)]
    Files(#[from] FilesError),
}

/// Generate the autosave request files for `subst` (normally `$RUNTIME_DIR/ioc.subst`).
pub fn generate_autosave(
    subst: &Path,
    paths: &AutosavePaths,
) -> Result<AutosaveReport, AutosaveError> {
    link_req_files(paths)?;
    let src = fs::read(subst).map_err(|source| AutosaveError::Read {
        path: subst.to_owned(),
        source,
    })?;
    let blocks = spans(&src, &subst.to_string_lossy()).map_err(|e| match e {
        ParseFail::Syntax(error) => AutosaveError::Syntax {
            path: subst.to_owned(),
            error,
        },
        ParseFail::Io(source) => AutosaveError::Read {
            path: subst.to_owned(),
            source,
        },
    })?;
    let mut report = AutosaveReport::default();
    for suffix in SUFFIXES {
        let Some(text) = req_subst(&src, &blocks, suffix, &paths.autosave) else {
            continue;
        };
        let subst_out = paths.runtime.join(format!("autosave_{suffix}.subst"));
        let req_out = paths.runtime.join(format!("autosave_{suffix}.req"));
        files::write_atomic(&subst_out, &text)?;
        let opts = Options {
            include_path: vec![paths.autosave.clone()],
            subst: Some(subst_out.clone()),
            ..Options::default()
        };
        let mut warn = |w: &str| tracing::debug!("{w}");
        let req = match run(&opts, Vec::new(), &mut warn) {
            Ok((_, out)) => out,
            Err((err, out)) => {
                let msg = describe(&err, &subst_out);
                tracing::warn!("{msg}");
                report.expand_errors.push(msg);
                out
            }
        };
        files::write_atomic(&req_out, &req)?;
        report.written.push(subst_out);
        report.written.push(req_out);
    }
    Ok(report)
}

fn describe(err: &ExpandError, subst: &Path) -> String {
    let mut msg = format!("expanding '{}': {err}", subst.display());
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        msg.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    msg
}

/// The autosave substitution text for one suffix, or `None` when no template has a req file
/// (ibek writes nothing then). Top-level globals are kept in place.
fn req_subst(src: &[u8], blocks: &[Span], suffix: &str, autosave: &Path) -> Option<Vec<u8>> {
    let mut text = Vec::new();
    let mut entries = 0;
    for block in blocks {
        match block {
            Span::Global { start, end } => {
                text.extend_from_slice(&universal_newlines(&src[*start..*end]));
                text.extend_from_slice(b"\n\n");
            }
            Span::File { name, start, end } => {
                let req = format!("{}_{suffix}.req", stem(name));
                if !autosave.join(&req).exists() {
                    continue;
                }
                entries += 1;
                text.extend_from_slice(format!("file \"{req}\" ").as_bytes());
                text.extend_from_slice(&universal_newlines(&src[*start..*end]));
                text.extend_from_slice(b"\n\n");
            }
        }
    }
    (entries > 0).then_some(text)
}

/// Python's `Path(name).stem`: the last component without its last extension.
fn stem(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    let last = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    match last.rfind('.') {
        Some(i) if i > 0 && i < last.len() - 1 => last[..i].to_owned(),
        _ => last.to_owned(),
    }
}

/// ibek reads ioc.subst in Python text mode, so CRLF and CR arrive as LF.
fn universal_newlines(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\r' {
            out.push(b'\n');
            if text.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        } else {
            out.push(text[i]);
        }
        i += 1;
    }
    out
}

/// support modules' req files where the name is free, then config overrides.
fn link_req_files(paths: &AutosavePaths) -> Result<(), AutosaveError> {
    files::create_dir_all(&paths.autosave)?;
    let mut found = Vec::new();
    walk_reqs(&paths.support, &mut found);
    found.sort();
    for req in found {
        let link = paths.autosave.join(req.file_name().unwrap_or_default());
        // Python's exists() follows links: a dangling link counts as free (and is replaced
        // here, where ibek would crash on it)
        if !link.exists() {
            relink(&link, &req)?;
        }
    }
    for req in list_reqs(&paths.config_dir) {
        let link = paths.autosave.join(req.file_name().unwrap_or_default());
        relink(&link, &req)?;
    }
    Ok(())
}

fn relink(link: &Path, target: &Path) -> Result<(), AutosaveError> {
    if link.symlink_metadata().is_ok() {
        let _ = fs::remove_file(link);
    }
    std::os::unix::fs::symlink(target, link).map_err(|source| AutosaveError::Link {
        link: link.to_owned(),
        target: target.to_owned(),
        source,
    })
}

fn is_req(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.as_bytes().ends_with(b".req"))
}

/// `*.req` directly in `dir`, sorted; a missing folder has none.
fn list_reqs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_req(p))
        .collect();
    out.sort();
    out
}

/// `**/*.req` under `dir`, not following links to folders (Python 3.13's `glob`).
fn walk_reqs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if is_req(&path) {
            out.push(path.clone());
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk_reqs(&path, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stem_is_pythons() {
        assert_eq!(stem(b"$(IOCSTATS)/db/iocAdminSoft.db"), "iocAdminSoft");
        assert_eq!(stem(b"simple.pvi.template"), "simple.pvi");
        assert_eq!(stem(b".hidden"), ".hidden");
        assert_eq!(stem(b"plain"), "plain");
    }

    #[test]
    fn crlf_becomes_lf() {
        assert_eq!(universal_newlines(b"a\r\nb\rc\n"), b"a\nb\nc\n");
    }
}
