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
    #[error("'{path}' is in the way: it exists and is not a folder")]
    NotAFolder { path: PathBuf },
    #[error("'{path}' is in the way: a folder is where a file is to be written")]
    FolderInTheWay { path: PathBuf },
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
    let mut tmp = temp_file_in(dir).map_err(wrap)?;
    tmp.write_all(contents).map_err(wrap)?;
    if sync {
        tmp.as_file().sync_data().map_err(wrap)?;
    }
    tmp.persist(path).map_err(|e| wrap(e.error))?;
    Ok(())
}

/// A temporary file in `dir`, named `.iocrun-*`, created with the mode a plain `File::create`
/// gives (0666 less the umask: generated outputs are shared with the IOC user and Phoebus),
/// so no `chmod` follows the rename.
fn temp_file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(".iocrun-")
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
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
        let tmp = temp_file_in(parent_of(path)).map_err(|source| FilesError::Write {
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

/// The extended attribute that marks a file iocrun wrote into a published folder: the only
/// files a later [`publish_dir`] may remove. It travels with the file (a persistent volume
/// keeps it across restarts) and leaves the folder's listing as ibek's.
const MARK: &std::ffi::CStr = c"user.iocrun";

/// Publish `staged` as the contents of the folder `dir`, all or nothing: [`Publish`] with
/// every staged file added.
pub fn publish_dir(dir: &Path, staged: &Staged) -> Result<(), FilesError> {
    let mut publish = Publish::begin(dir, !staged.unsynced)?;
    for (rel, contents) in &staged.files {
        publish.add(rel, contents)?;
    }
    publish.commit()
}

/// A folder whose contents are being replaced, all or nothing (issue 11), one file at a time
/// as the caller produces them, so a caller never holds them all in memory (an IOC's screens
/// are megabytes):
///
/// 1. [`Publish::begin`]: `dir` must be a folder or absent (a file in its place is an error,
///    left untouched);
/// 2. [`Publish::add`] writes each new file at once to a temporary file inside `dir` (so this
///    also works when `dir` is a mount point), marked as iocrun's ([`MARK`]); adding a name
///    again replaces what was added before;
/// 3. [`Publish::commit`] renames each over its final name (a rename needs no space), then
///    removes the marked files that this publish did not write (left by an earlier one).
///    Nothing else is removed: files iocrun did not write stay where they are. On a file
///    system without user extended attributes nothing is marked, so nothing is ever removed.
///
/// Dropped without a commit (a failed write, a full disk, the caller's own error), it removes
/// its temporary files and the previous outputs are as they were.
#[derive(Debug)]
pub struct Publish {
    dir: PathBuf,
    sync: bool,
    /// What `dir` held when the publish began, by name: one listing instead of a `stat` per
    /// file.
    existing: std::collections::HashMap<std::ffi::OsString, EntryKind>,
    /// Written, not yet renamed: relative name -> (temporary file, final path).
    pending: indexmap::IndexMap<PathBuf, (tempfile::TempPath, PathBuf)>,
}

impl Publish {
    /// Start replacing the contents of `dir` (created if absent). With `sync`, each file's
    /// data reaches the disk before its rename (durable across a power cut; outputs remade at
    /// every start skip it).
    pub fn begin(dir: &Path, sync: bool) -> Result<Publish, FilesError> {
        match fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(FilesError::NotAFolder {
                    path: dir.to_owned(),
                })
            }
            Ok(_) => {}
            Err(_) => create_dir_all(dir)?,
        }
        let existing = fs::read_dir(dir)
            .map_err(|source| FilesError::Read {
                path: dir.to_owned(),
                source,
            })?
            .flatten()
            .map(|e| (e.file_name(), EntryKind::of(&e)))
            .collect();
        Ok(Publish {
            dir: dir.to_owned(),
            sync,
            existing,
            pending: indexmap::IndexMap::new(),
        })
    }

    /// Write the future contents of `relative` (a path inside the folder).
    pub fn add(&mut self, relative: &Path, contents: &[u8]) -> Result<(), FilesError> {
        let path = self.dir.join(relative);
        let wrap = |source| FilesError::Write {
            path: path.clone(),
            source,
        };
        let flat = relative.parent().is_none_or(|p| p.as_os_str().is_empty());
        let folder_in_the_way = if flat {
            self.existing.get(relative.as_os_str()) == Some(&EntryKind::Folder)
        } else {
            fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir())
        };
        if folder_in_the_way {
            return Err(FilesError::FolderInTheWay { path });
        }
        let parent = parent_of(&path);
        if !flat {
            create_dir_all(parent)?;
        }
        let mut tmp = temp_file_in(parent).map_err(wrap)?;
        tmp.write_all(contents).map_err(wrap)?;
        if self.sync {
            tmp.as_file().sync_data().map_err(wrap)?;
        }
        mark(tmp.as_file());
        // closed now: a publish of hundreds of screens holds no descriptor per file
        let tmp = tmp.into_temp_path();
        self.pending.insert(relative.to_owned(), (tmp, path));
        Ok(())
    }

    /// How many files were added.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Rename every added file into place, then remove what an earlier publish wrote and this
    /// one did not.
    pub fn commit(self) -> Result<(), FilesError> {
        let wrap = |path: &Path| {
            let path = path.to_owned();
            move |source| FilesError::Write { path, source }
        };
        let mut current = std::collections::HashSet::with_capacity(self.pending.len());
        for (_, (tmp, path)) in self.pending {
            tmp.persist(&path).map_err(|e| wrap(&path)(e.error))?;
            current.insert(path);
        }
        for (name, kind) in self.existing {
            let path = self.dir.join(name);
            if kind == EntryKind::File && !current.contains(&path) && is_marked(&path) {
                fs::remove_file(&path).map_err(wrap(&path))?;
            }
        }
        Ok(())
    }
}

/// What a folder entry is, as far as [`Publish`] cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    File,
    Folder,
    /// A symbolic link, socket, FIFO or device: never replaced by a folder check, never removed.
    Other,
}

impl EntryKind {
    fn of(entry: &fs::DirEntry) -> EntryKind {
        match entry.file_type() {
            Ok(t) if t.is_file() => EntryKind::File,
            Ok(t) if t.is_dir() => EntryKind::Folder,
            _ => EntryKind::Other,
        }
    }
}

/// Mark a file as written by iocrun; a file system without user xattrs leaves it unmarked.
fn mark(file: &fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor, a NUL-terminated name and a 1-byte value
    let rc =
        unsafe { libc::fsetxattr(file.as_raw_fd(), MARK.as_ptr(), c"1".as_ptr().cast(), 1, 0) };
    if rc != 0 {
        tracing::debug!(
            "cannot mark an output file: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Whether `path` (not followed if a symlink) carries iocrun's mark.
fn is_marked(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: NUL-terminated strings; a null buffer of size 0 only asks for the value's size
    let rc = unsafe { libc::lgetxattr(c_path.as_ptr(), MARK.as_ptr(), std::ptr::null_mut(), 0) };
    rc >= 0
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn publish_dir_removes_only_what_it_wrote_before() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("runtime");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("mine.txt"), "user").unwrap();
        let mut first = Staged::new();
        first.add("st.cmd", "one");
        first.add("pvi_failed", "why");
        publish_dir(&dir, &first).unwrap();
        let mut second = Staged::new();
        second.add("st.cmd", "two");
        publish_dir(&dir, &second).unwrap();
        assert_eq!(fs::read_to_string(dir.join("st.cmd")).unwrap(), "two");
        assert_eq!(names(&dir), ["mine.txt", "st.cmd"]);
        assert_eq!(names(tmp.path()), ["runtime"], "no temporary files remain");
    }

    #[test]
    fn publish_dir_refuses_a_file_in_place_of_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("out");
        fs::write(&file, "precious").unwrap();
        let mut staged = Staged::new();
        staged.add("st.cmd", "new");
        let err = publish_dir(&file, &staged).unwrap_err().to_string();
        assert!(err.contains("not a folder"), "{err}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "precious");
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn publish_dir_refuses_a_folder_in_place_of_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("st.cmd")).unwrap();
        fs::write(tmp.path().join("ioc.subst"), "old").unwrap();
        let mut staged = Staged::new();
        staged.add("ioc.subst", "new");
        staged.add("st.cmd", "new");
        let err = publish_dir(tmp.path(), &staged).unwrap_err().to_string();
        assert!(err.contains("in the way"), "{err}");
        assert_eq!(
            fs::read_to_string(tmp.path().join("ioc.subst")).unwrap(),
            "old"
        );
        assert_eq!(names(tmp.path()), ["ioc.subst", "st.cmd"]);
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
