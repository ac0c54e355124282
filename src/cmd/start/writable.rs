//! Before anything is written: every place the start writes must be writable, else one error
//! names the place and the variable that moves it.
//!
//! With a read-only root filesystem (Kubernetes `readOnlyRootFilesystem: true`, `podman run
//! --read-only`) and any uid, these are the only places iocrun writes; each needs a writable
//! volume (an emptyDir, a tmpfs) or its variable pointed at one. The list is in
//! docs/adopting.md.

use std::path::{Path, PathBuf};

use crate::cli::StartArgs;
use crate::paths::Paths;

/// A place the start writes that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot write in '{path}' ({var} moves it; a read-only root needs a writable volume there)"
)]
pub struct NotWritable {
    pub path: PathBuf,
    pub var: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// The folders this start will write in, each with the variable that moves it.
pub(super) fn places(args: &StartArgs, paths: &Paths) -> Vec<(PathBuf, &'static str)> {
    let rendered = paths.config_dir.join("ioc.yaml").is_file();
    let mut places: Vec<(PathBuf, &'static str)> = paths
        .written()
        .into_iter()
        .filter(|(_, var)| rendered || *var == "RUNTIME_DIR")
        .map(|(dir, var)| (dir.to_owned(), var))
        .collect();
    let files = [
        (Some(&args.wait.wait_done_file), "IOCRUN_WAIT_DONE_FILE"),
        (Some(&args.console.console_socket), "IOCRUN_CONSOLE_SOCKET"),
        (Some(&args.serve.control_socket), "IOCRUN_CONTROL_SOCKET"),
        (args.console.console_log.as_ref(), "IOCRUN_CONSOLE_LOG"),
    ];
    for (file, var) in files {
        let Some(file) = file.filter(|f| f.as_os_str() != "none") else {
            continue;
        };
        let dir = file.parent().filter(|p| !p.as_os_str().is_empty());
        places.push((dir.unwrap_or(Path::new(".")).to_owned(), var));
    }
    places
}

/// Create each folder if needed and prove it writable with a file that is removed at once.
pub(super) fn check(places: &[(PathBuf, &'static str)]) -> Result<(), NotWritable> {
    for (dir, var) in places {
        let err = |source| NotWritable {
            path: dir.clone(),
            var,
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        tempfile::Builder::new()
            .prefix(".iocrun-probe-")
            .tempfile_in(dir)
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_unwritable_folder_is_named_with_its_variable() {
        let tmp = tempfile::tempdir().expect("tmp");
        let locked = tmp.path().join("locked");
        std::fs::create_dir(&locked).expect("mkdir");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        let ok = tmp.path().join("runtime");
        let places = vec![(ok.clone(), "RUNTIME_DIR")];
        check(&places).expect("writable");
        assert!(ok.is_dir(), "created");
        assert_eq!(
            std::fs::read_dir(&ok).expect("list").count(),
            0,
            "nothing left"
        );
        // root writes anywhere but on a read-only filesystem: a path below a file fails for all
        let file = tmp.path().join("file");
        std::fs::write(&file, "").expect("write");
        let places = vec![(ok, "RUNTIME_DIR"), (file.join("opi"), "IOCRUN_OPI_DIR")];
        let err = check(&places).expect_err("not writable");
        let text = err.to_string();
        assert!(
            text.contains("IOCRUN_OPI_DIR") && text.contains("file/opi"),
            "{text}"
        );
    }
}
