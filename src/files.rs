//! File-system helpers every stage shares: atomic writes and whole-folder replacement.
//!
//! Generated outputs are written into a temporary sibling and renamed into place, so a failed
//! run leaves the previous outputs intact and a reader (Phoebus, the IOC) never sees half a file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file-system step that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("cannot create folder '{path}'")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write '{path}'")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read '{path}'")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot copy '{from}' to '{to}'")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "socket '{path}' is in use by a running process (another iocrun?); stop it, or choose \
         another path with {env}"
    )]
    SocketInUse { path: PathBuf, env: &'static str },
    #[error(
        "'{path}' is {what}, not a socket; refusing to replace it (remove it, or choose another \
         path with {env})"
    )]
    NotASocket {
        path: PathBuf,
        what: &'static str,
        env: &'static str,
    },
    #[error("cannot tell whether socket '{path}' is in use")]
    SocketCheck {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a unix socket path holds before a server binds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketSlot {
    /// Nothing is there.
    Free,
    /// A socket nobody answers on, left by a process that died.
    Stale,
}

/// Look at the path a server is about to bind, changing nothing: free, a stale socket, or an
/// error for a socket that answers and for anything that is not a socket (a regular file, a
/// symbolic link even to a socket, a folder, a FIFO). `env` names the variable that moves it.
pub fn check_socket_path(path: &Path, env: &'static str) -> Result<SocketSlot, FilesError> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        // missing, or not even inspectable: bind will say what is wrong
        return Ok(SocketSlot::Free);
    };
    let kind = meta.file_type();
    let what = if kind.is_socket() {
        None
    } else if kind.is_symlink() {
        Some("a symbolic link")
    } else if kind.is_dir() {
        Some("a folder")
    } else if kind.is_file() {
        Some("a regular file")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else {
        Some("a device file")
    };
    if let Some(what) = what {
        return Err(FilesError::NotASocket {
            path: path.to_owned(),
            what,
            env,
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(FilesError::SocketInUse {
            path: path.to_owned(),
            env,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(SocketSlot::Stale),
        Err(source) => Err(FilesError::SocketCheck {
            path: path.to_owned(),
            source,
        }),
    }
}

/// [`check_socket_path`], then remove a stale socket so the path can be bound.
pub fn clear_socket_path(path: &Path, env: &'static str) -> Result<(), FilesError> {
    if check_socket_path(path, env)? == SocketSlot::Stale {
        fs::remove_file(path).map_err(|source| FilesError::SocketCheck {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Read a whole file as UTF-8 text, naming the path on failure.
pub fn read_to_string(path: &Path) -> Result<String, FilesError> {
    fs::read_to_string(path).map_err(|source| FilesError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Create a folder and its parents.
pub fn create_dir_all(path: &Path) -> Result<(), FilesError> {
    fs::create_dir_all(path).map_err(|source| FilesError::CreateDir {
        path: path.to_owned(),
        source,
    })
}

/// Write `contents` to `path` atomically: a temporary file in the same folder, then rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), FilesError> {
    write_renamed(path, contents, true)
}

/// [`write_atomic`] with or without syncing the data before the rename. Readers see the old or
/// the new file either way; syncing only adds durability across a power cut.
fn write_renamed(path: &Path, contents: &[u8], sync: bool) -> Result<(), FilesError> {
    let dir = parent_of(path);
    create_dir_all(dir)?;
    let wrap = |source| FilesError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".iocrun-")
        .tempfile_in(dir)
        .map_err(wrap)?;
    tmp.write_all(contents).map_err(wrap)?;
    if sync {
        tmp.as_file().sync_data().map_err(wrap)?;
    }
    tmp.persist(path).map_err(|e| wrap(e.error))?;
    set_default_mode(path);
    Ok(())
}

/// A file streamed into a temporary sibling of `path` and renamed over it by
/// [`AtomicFile::commit`]; dropped without a commit, it leaves `path` untouched. For outputs
/// too big to build in memory first (msi's `ioc.db`).
pub struct AtomicFile {
    path: PathBuf,
    tmp: std::io::BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Start writing the future contents of `path` (its folder must exist).
    pub fn create(path: &Path) -> Result<AtomicFile, FilesError> {
        let tmp = tempfile::Builder::new()
            .prefix(".iocrun-")
            .tempfile_in(parent_of(path))
            .map_err(|source| FilesError::Write {
                path: path.to_owned(),
                source,
            })?;
        Ok(AtomicFile {
            path: path.to_owned(),
            tmp: std::io::BufWriter::with_capacity(64 * 1024, tmp),
        })
    }

    /// Flush and rename into place.
    pub fn commit(self) -> Result<(), FilesError> {
        let wrap = |source| FilesError::Write {
            path: self.path.clone(),
            source,
        };
        let tmp = self.tmp.into_inner().map_err(|e| wrap(e.into_error()))?;
        tmp.persist(&self.path).map_err(|e| wrap(e.error))?;
        set_default_mode(&self.path);
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.tmp.write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

/// Files to publish together into one folder.
#[derive(Debug, Default)]
pub struct Staged {
    files: Vec<(PathBuf, Vec<u8>)>,
    /// Skip the per-file data sync: for outputs rebuilt at every start (the PVI screens, where
    /// dozens of syncs cost most of a second on a busy node).
    unsynced: bool,
}

impl Staged {
    /// An empty set.
    pub fn new() -> Staged {
        Staged::default()
    }

    /// An empty set whose files are not synced to disk before they are renamed into place.
    pub fn unsynced() -> Staged {
        Staged {
            unsynced: true,
            ..Staged::default()
        }
    }

    /// Add a file, by its path relative to the target folder.
    pub fn add(&mut self, relative: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) {
        self.files.push((relative.into(), contents.into()));
    }

    /// The staged relative paths, in the order added.
    pub fn names(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }

    /// Write every file into `dir`, each atomically. Nothing is written unless all files were
    /// produced first (the caller stages everything before calling this).
    pub fn write_into(&self, dir: &Path) -> Result<(), FilesError> {
        create_dir_all(dir)?;
        for (rel, contents) in &self.files {
            write_renamed(&dir.join(rel), contents, !self.unsynced)?;
        }
        Ok(())
    }
}

impl Staged {
    /// Write every file into `dir`, a folder this process just created and nobody else sees
    /// yet: each file is created in place (the folder's swap is what makes them appear
    /// together), with the mode a plain `File::create` gives under the process umask.
    fn write_fresh(&self, dir: &Path) -> Result<(), FilesError> {
        for (rel, contents) in &self.files {
            let path = dir.join(rel);
            if let Some(sub) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_dir_all(&dir.join(sub))?;
            }
            let wrap = |source| FilesError::Write {
                path: path.clone(),
                source,
            };
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(wrap)?;
            file.write_all(contents).map_err(wrap)?;
            if !self.unsynced {
                file.sync_data().map_err(wrap)?;
            }
        }
        Ok(())
    }
}

/// Replace the whole folder `dir` with a fresh one holding exactly `staged`, as ibek's
/// `generate2` does with rmtree, but atomically: build a sibling, then swap by rename.
pub fn replace_dir(dir: &Path, staged: &Staged) -> Result<(), FilesError> {
    let parent = parent_of(dir);
    create_dir_all(parent)?;
    let wrap = |source| FilesError::Write {
        path: dir.to_owned(),
        source,
    };
    let fresh = tempfile::Builder::new()
        .prefix(".iocrun-new-")
        .tempdir_in(parent)
        .map_err(wrap)?;
    staged.write_fresh(fresh.path())?;
    let fresh = fresh.keep();
    set_dir_mode(&fresh);
    let old = parent.join(format!(
        ".iocrun-old-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let _ = fs::remove_dir_all(&old);
    let had_old = dir.exists();
    if had_old {
        fs::rename(dir, &old).map_err(wrap)?;
    }
    if let Err(e) = fs::rename(&fresh, dir) {
        if had_old {
            // put the previous outputs back so the failure leaves them intact
            let _ = fs::rename(&old, dir);
        }
        let _ = fs::remove_dir_all(&fresh);
        return Err(wrap(e));
    }
    if had_old {
        // when `dir` is a mount point the rename above fails instead; see the fallback below
        let _ = fs::remove_dir_all(&old);
    }
    Ok(())
}

/// Like [`replace_dir`], but for a folder that may be a mount point (a Kubernetes volume
/// subPath cannot be renamed): empty it and write the files into it, each atomically.
pub fn refill_dir(dir: &Path, staged: &Staged) -> Result<(), FilesError> {
    if replace_dir(dir, staged).is_ok() {
        return Ok(());
    }
    create_dir_all(dir)?;
    let entries = fs::read_dir(dir).map_err(|source| FilesError::Read {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let removed = if path.is_dir() && !path.is_symlink() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|source| FilesError::Write { path, source })?;
    }
    staged.write_into(dir)
}

/// Copy one file, creating the destination's folder.
pub fn copy_file(from: &Path, to: &Path) -> Result<(), FilesError> {
    create_dir_all(parent_of(to))?;
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|source| FilesError::Copy {
            from: from.to_owned(),
            to: to.to_owned(),
            source,
        })
}

/// Copy one file keeping its mode and timestamps, as Python's `shutil.copy2` does (ibek's
/// place-files). Written to a temporary sibling and renamed, so a reader never sees half a file.
pub fn copy_preserving(from: &Path, to: &Path) -> Result<(), FilesError> {
    let dir = parent_of(to);
    create_dir_all(dir)?;
    let wrap = |source| FilesError::Copy {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    };
    let meta = fs::metadata(from).map_err(wrap)?;
    let tmp = tempfile::Builder::new()
        .prefix(".iocrun-")
        .tempfile_in(dir)
        .map_err(wrap)?;
    fs::copy(from, tmp.path()).map_err(wrap)?;
    let times = fs::FileTimes::new()
        .set_accessed(meta.accessed().map_err(wrap)?)
        .set_modified(meta.modified().map_err(wrap)?);
    tmp.as_file().set_times(times).map_err(wrap)?;
    fs::set_permissions(tmp.path(), meta.permissions()).map_err(wrap)?;
    tmp.persist(to).map_err(|e| wrap(e.error))?;
    Ok(())
}

/// Copy a folder tree (files and folders; symlinks are followed).
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), FilesError> {
    create_dir_all(to)?;
    let entries = fs::read_dir(from).map_err(|source| FilesError::Read {
        path: from.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let src = entry.path();
        let dst = to.join(entry.file_name());
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            copy_file(&src, &dst)?;
        }
    }
    Ok(())
}

/// Move every file under `from` to the same relative path under `to`, each by one rename
/// (so `from` must be on the same file system; readers see the old or the new file, never
/// half of one). Returns the relative paths moved, sorted. Folders are created as needed.
pub fn move_tree(from: &Path, to: &Path) -> Result<Vec<PathBuf>, FilesError> {
    let mut moved = Vec::new();
    move_into(from, to, Path::new(""), &mut moved)?;
    moved.sort();
    Ok(moved)
}

fn move_into(
    root: &Path,
    to: &Path,
    rel: &Path,
    moved: &mut Vec<PathBuf>,
) -> Result<(), FilesError> {
    let dir = root.join(rel);
    let entries = fs::read_dir(&dir).map_err(|source| FilesError::Read {
        path: dir.clone(),
        source,
    })?;
    for entry in entries.flatten() {
        let rel = rel.join(entry.file_name());
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            move_into(root, to, &rel, moved)?;
            continue;
        }
        let target = to.join(&rel);
        create_dir_all(parent_of(&target))?;
        fs::rename(entry.path(), &target).map_err(|source| FilesError::Write {
            path: target.clone(),
            source,
        })?;
        moved.push(rel);
    }
    Ok(())
}

/// What a folder looks like, cheaply: each entry's relative path, link target, size and
/// modification time, walking real sub-folders (a Kubernetes ConfigMap's `..data` link and its
/// timestamped folder included), at most [`FINGERPRINT_MAX_ENTRIES`] entries and 4 levels
/// deep. Two equal fingerprints mean no visible change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, Option<PathBuf>, u64, Option<std::time::SystemTime>)>);

/// The bound of a [`Fingerprint`]; entries beyond it are not watched.
pub const FINGERPRINT_MAX_ENTRIES: usize = 4096;

/// The fingerprint of `dir` (empty when it cannot be read).
pub fn fingerprint(dir: &Path) -> Fingerprint {
    let mut entries = Vec::new();
    fingerprint_into(dir, Path::new(""), 0, &mut entries);
    entries.sort();
    Fingerprint(entries)
}

fn fingerprint_into(
    root: &Path,
    rel: &Path,
    depth: usize,
    out: &mut Vec<(PathBuf, Option<PathBuf>, u64, Option<std::time::SystemTime>)>,
) {
    let Ok(entries) = fs::read_dir(root.join(rel)) else {
        return;
    };
    for entry in entries.flatten() {
        if out.len() >= FINGERPRINT_MAX_ENTRIES {
            return;
        }
        let rel = rel.join(entry.file_name());
        let path = entry.path();
        let link = fs::read_link(&path).ok();
        // through links: a ConfigMap's files are links whose targets change
        let meta = fs::metadata(&path).ok();
        let size = meta.as_ref().map_or(0, |m| m.len());
        let modified = meta.as_ref().and_then(|m| m.modified().ok());
        let real_dir = link.is_none() && meta.as_ref().is_some_and(|m| m.is_dir());
        out.push((rel.clone(), link, size, modified));
        if real_dir && depth < 4 {
            fingerprint_into(root, &rel, depth + 1, out);
        }
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// tempfile creates 0600 files; generated outputs are shared (OPI volume, IOC user), so give
/// them the mode a plain `File::create` would under the process umask.
fn set_default_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o666 & !umask()));
}

fn set_dir_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o777 & !umask()));
}

fn umask() -> u32 {
    // umask can only be read by setting it; put it straight back
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(old);
    old.bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_dir_swaps_contents() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("runtime");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("stale.txt"), "old").unwrap();
        let mut staged = Staged::new();
        staged.add("st.cmd", "new");
        replace_dir(&dir, &staged).unwrap();
        assert_eq!(fs::read_to_string(dir.join("st.cmd")).unwrap(), "new");
        assert!(!dir.join("stale.txt").exists());
        let leftovers: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary folders must not remain");
    }

    #[test]
    fn a_fingerprint_sees_a_configmap_link_swap_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for v in ["..v1", "..v2"] {
            fs::create_dir_all(dir.join(v)).unwrap();
            fs::write(dir.join(v).join("ioc.yaml"), "same size").unwrap();
        }
        std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/ioc.yaml", dir.join("ioc.yaml")).unwrap();
        let before = fingerprint(dir);
        assert_eq!(fingerprint(dir), before, "nothing changed");
        std::os::unix::fs::symlink("..v2", dir.join("..tmp")).unwrap();
        fs::rename(dir.join("..tmp"), dir.join("..data")).unwrap();
        assert_ne!(fingerprint(dir), before, "the ..data link moved");
    }

    #[test]
    fn write_atomic_replaces_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a/b.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
    }

    #[test]
    fn socket_paths_are_judged_without_changing_anything() {
        let tmp = tempfile::tempdir().unwrap();
        let at = |name: &str| tmp.path().join(name);
        let judge = |name: &str| check_socket_path(&at(name), "IOCRUN_X");
        assert!(matches!(judge("missing"), Ok(SocketSlot::Free)));
        drop(std::os::unix::net::UnixListener::bind(at("stale")).unwrap());
        assert!(matches!(judge("stale"), Ok(SocketSlot::Stale)));
        let _live = std::os::unix::net::UnixListener::bind(at("live")).unwrap();
        let err = judge("live").unwrap_err().to_string();
        assert!(err.contains("in use") && err.contains("IOCRUN_X"), "{err}");
        fs::create_dir(at("dir")).unwrap();
        nix::unistd::mkfifo(&at("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::os::unix::fs::symlink(at("live"), at("link")).unwrap();
        for (name, what) in [
            ("dir", "a folder"),
            ("fifo", "a FIFO"),
            ("link", "a symbolic link"),
        ] {
            let err = judge(name).unwrap_err().to_string();
            assert!(err.contains(what), "{name}: {err}");
        }
        // clearing removes only the stale socket
        clear_socket_path(&at("stale"), "IOCRUN_X").unwrap();
        assert!(!at("stale").exists());
        assert!(clear_socket_path(&at("link"), "IOCRUN_X").is_err());
        for kept in ["live", "dir", "fifo", "link"] {
            assert!(fs::symlink_metadata(at(kept)).is_ok(), "{kept} removed");
        }
    }
}
