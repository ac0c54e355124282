//! The runtime folder as the start steps leave it: every fresh start builds its outputs in a
//! staging folder inside `$RUNTIME_DIR` and publishes them only when every step succeeded, so
//! a failed start leaves the last good outputs whole (never a new st.cmd beside an old
//! ioc.db). A manifest (`$RUNTIME_DIR/.iocrun-outputs`) lists what the last start wrote; the
//! next start removes what it listed and did not write again. Nothing iocrun did not write is
//! ever removed: files a start hook or the IOC put in `$RUNTIME_DIR` stay.

use std::path::{Component, Path, PathBuf};

use crate::files::{self, FilesError};

/// The manifest of the outputs the latest start published, one relative path a line.
pub const MANIFEST: &str = ".iocrun-outputs";
/// Where a start builds its outputs before publishing them.
const STAGING: &str = ".iocrun-staging";

/// A start's outputs being built; dropped without [`Staging::publish`], it is removed and
/// the runtime folder is as it was.
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// A fresh, empty staging folder inside `runtime` (a leftover of a start that was killed
    /// is removed first).
    pub fn new(runtime: &Path) -> Result<Staging, FilesError> {
        let dir = runtime.join(STAGING);
        let _ = std::fs::remove_dir_all(&dir);
        files::create_dir_all(&dir)?;
        Ok(Staging { dir })
    }

    /// Where the steps write.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Move the outputs into `runtime`, remove those of the previous start that were not made
    /// again, and record the new list. Returns the stale files removed.
    pub fn publish(self, runtime: &Path) -> Result<Vec<PathBuf>, FilesError> {
        let previous = read_manifest(runtime);
        let written = files::move_tree(&self.dir, runtime)?;
        let mut removed = Vec::new();
        for stale in previous.iter().filter(|p| !written.contains(p)) {
            let path = runtime.join(stale);
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(stale.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(FilesError::Write { path, source }),
            }
        }
        let list: String = written
            .iter()
            .map(|p| format!("{}\n", p.display()))
            .collect();
        files::write_atomic(&runtime.join(MANIFEST), list.as_bytes())?;
        Ok(removed)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The previous start's outputs; a missing or unreadable manifest lists nothing (a runtime
/// folder from before manifests: nothing is removed). Only plain relative paths count.
fn read_manifest(runtime: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(runtime.join(MANIFEST)).unwrap_or_default();
    text.lines()
        .map(PathBuf::from)
        .filter(|p| {
            !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn publish(runtime: &Path, outputs: &[(&str, &str)]) -> Vec<PathBuf> {
        let staging = Staging::new(runtime).unwrap();
        for (name, text) in outputs {
            let p = staging.dir().join(name);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        staging.publish(runtime).unwrap()
    }

    #[test]
    fn stale_outputs_go_and_foreign_files_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let runtime = tmp.path();
        fs::write(runtime.join("mine-not.txt"), "a hook's").unwrap();
        publish(
            runtime,
            &[
                ("st.cmd", "1"),
                ("ioc.subst", "s"),
                ("protocol/a.proto", "p"),
            ],
        );
        let removed = publish(runtime, &[("st.cmd", "2"), ("ioc.db", "d")]);
        assert_eq!(
            removed,
            [
                PathBuf::from("ioc.subst"),
                PathBuf::from("protocol/a.proto")
            ]
        );
        assert_eq!(fs::read_to_string(runtime.join("st.cmd")).unwrap(), "2");
        assert!(runtime.join("ioc.db").is_file());
        assert!(!runtime.join("ioc.subst").exists());
        assert!(runtime.join("mine-not.txt").is_file(), "not ours: kept");
        assert!(!runtime.join(STAGING).exists());
        assert_eq!(
            fs::read_to_string(runtime.join(MANIFEST)).unwrap(),
            "ioc.db\nst.cmd\n"
        );
    }

    #[test]
    fn an_unpublished_start_leaves_the_runtime_folder_alone() {
        let tmp = tempfile::tempdir().unwrap();
        publish(tmp.path(), &[("st.cmd", "good")]);
        {
            let staging = Staging::new(tmp.path()).unwrap();
            fs::write(staging.dir().join("st.cmd"), "half").unwrap();
        }
        assert_eq!(
            fs::read_to_string(tmp.path().join("st.cmd")).unwrap(),
            "good"
        );
        assert!(!tmp.path().join(STAGING).exists());
    }

    #[test]
    fn a_tampered_manifest_cannot_reach_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let runtime = tmp.path().join("runtime");
        fs::create_dir_all(&runtime).unwrap();
        fs::write(tmp.path().join("victim"), "x").unwrap();
        fs::write(runtime.join(MANIFEST), "../victim\n/etc/passwd\n").unwrap();
        publish(&runtime, &[("st.cmd", "1")]);
        assert!(tmp.path().join("victim").exists());
    }
}
