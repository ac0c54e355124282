//! Runtime files an instance drops into its config folder, put where the IOC looks for them
//! (ibek's `runtime place-files`), and the support protocol copy that
//! precedes it (start step 7).
//!
//! This module owns the placement table only; the copies themselves are `files` helpers. It
//! comes after `expand` in the start sequence because the protocol copy replaces
//! `runtime/protocol` and place-files then adds the instance's own protocols on top.

use std::fs;
use std::path::{Path, PathBuf};

use crate::files::{self, FilesError};

/// Which config files go where, relative to the runtime folder, in ibek's order.
const PLACEMENTS: [(&[&str], &str); 2] = [
    (&[".proto", ".protocol"], "protocol"),
    (&[".db", ".template"], "db"),
];

/// A placement step that failed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("config folder '{path}' is not a folder")]
    NotAFolder { path: PathBuf },
    #[error("cannot list config folder '{path}'")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Files(#[from] FilesError),
}

/// Copy `*.proto`/`*.protocol` into `RUNTIME/protocol` and `*.db`/`*.template` into
/// `RUNTIME/db`, keeping mode and timestamps (Python's `copy2`). Only files directly in
/// `config_dir` count; dotfiles are included, names are case-sensitive, each pattern's matches
/// are copied in sorted order. Returns the files written.
///
/// Unlike ibek, a folder (or a link to one) named like `x.db` is skipped rather than failing
/// the whole step.
pub fn place_files(config_dir: &Path, runtime_dir: &Path) -> Result<Vec<PathBuf>, PlaceError> {
    if !config_dir.is_dir() {
        return Err(PlaceError::NotAFolder {
            path: config_dir.to_owned(),
        });
    }
    let names = file_names(config_dir)?;
    let mut written = Vec::new();
    for (suffixes, folder) in PLACEMENTS {
        let target = runtime_dir.join(folder);
        for suffix in suffixes {
            for name in names.iter().filter(|n| n.ends_with(suffix)) {
                let to = target.join(name);
                files::copy_preserving(&config_dir.join(name), &to)?;
                tracing::debug!("placed {}", to.display());
                written.push(to);
            }
        }
    }
    Ok(written)
}

/// Start step 7: replace `RUNTIME/protocol` with `SUPPORT/configure/protocol` when that
/// folder exists (start.sh's `rm -fr` then `cp -r`). Returns whether anything was copied.
pub fn copy_support_protocols(support: &Path, runtime_dir: &Path) -> Result<bool, PlaceError> {
    let from = support.join("configure").join("protocol");
    if !from.is_dir() {
        return Ok(false);
    }
    let to = runtime_dir.join("protocol");
    if to.exists() {
        fs::remove_dir_all(&to).map_err(|source| FilesError::Write {
            path: to.clone(),
            source,
        })?;
    }
    files::copy_tree(&from, &to)?;
    Ok(true)
}

/// Sorted names of the regular files (following links) directly in `dir`. Names that are not
/// UTF-8 cannot match the ASCII patterns and are left out.
fn file_names(dir: &Path) -> Result<Vec<String>, PlaceError> {
    let entries = fs::read_dir(dir).map_err(|source| PlaceError::List {
        path: dir.to_owned(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_by_suffix_only_at_top_level() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("config");
        for name in [
            "a.proto",
            "b.protocol",
            "c.db",
            "d.template",
            "e.DB",
            "ioc.yaml",
        ] {
            files::write_atomic(&config.join(name), name.as_bytes()).unwrap();
        }
        files::write_atomic(&config.join("sub/f.db"), b"f").unwrap();
        fs::create_dir_all(config.join("dir.db")).unwrap();
        let runtime = tmp.path().join("runtime");
        let written = place_files(&config, &runtime).unwrap();
        let rel: Vec<_> = written
            .iter()
            .map(|p| {
                p.strip_prefix(&runtime)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            rel,
            [
                "protocol/a.proto",
                "protocol/b.protocol",
                "db/c.db",
                "db/d.template"
            ]
        );
    }

    #[test]
    fn missing_config_folder_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = place_files(&tmp.path().join("nope"), tmp.path()).unwrap_err();
        assert!(err.to_string().ends_with("is not a folder"), "{err}");
    }

    #[test]
    fn support_protocols_replace_the_runtime_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let support = tmp.path().join("support");
        files::write_atomic(&support.join("configure/protocol/x.proto"), b"x").unwrap();
        let runtime = tmp.path().join("runtime");
        files::write_atomic(&runtime.join("protocol/stale.proto"), b"old").unwrap();
        assert!(copy_support_protocols(&support, &runtime).unwrap());
        assert!(runtime.join("protocol/x.proto").exists());
        assert!(!runtime.join("protocol/stale.proto").exists());
        assert!(!copy_support_protocols(&tmp.path().join("none"), &runtime).unwrap());
    }
}
