//! Every well-known location, resolved once from the environment.
//!
//! This is the only module that reads the path environment variables; the defaults match ibek
//! and the epics-containers images (`/epics/...`). Tests run entirely inside temporary folders
//! by setting these variables. [`Paths::written`] lists every folder the start sequence
//! writes, with the variable that moves it (docs/adopting.md, read-only root filesystem).

use std::path::{Path, PathBuf};

/// The folders of an EPICS container, as the image and ibek lay them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `$EPICS_ROOT`, default `/epics`.
    pub epics_root: PathBuf,
    /// `$IOC`, default `$EPICS_ROOT/ioc`: the generic IOC's TOP.
    pub ioc: PathBuf,
    /// `$CONFIG_DIR`, default `$IOC/config`: the instance's mounted config folder.
    pub config_dir: PathBuf,
    /// `$RUNTIME_DIR`, default `$EPICS_ROOT/runtime`: where generated files go.
    pub runtime_dir: PathBuf,
    /// `$SUPPORT`, default `$EPICS_ROOT/support`: built support modules.
    pub support: PathBuf,
    /// `$EPICS_HOST_ARCH`, default `linux-x86_64`.
    pub host_arch: String,
    /// `$IOCRUN_OPI_DIR`, default `$EPICS_ROOT/opi`: the PVI screens.
    pub opi: PathBuf,
    /// `$IOCRUN_AUTOSAVE_REQ_DIR`, default `$EPICS_ROOT/autosave`: autosave's req-file links.
    pub autosave_req: PathBuf,
}

impl Paths {
    /// Resolve from the process environment.
    pub fn from_env() -> Paths {
        Paths::from_lookup(|name| std::env::var_os(name).map(PathBuf::from))
    }

    /// Resolve from any variable lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<PathBuf>) -> Paths {
        let epics_root = get("EPICS_ROOT").unwrap_or_else(|| PathBuf::from("/epics"));
        let ioc = get("IOC").unwrap_or_else(|| epics_root.join("ioc"));
        let config_dir = get("CONFIG_DIR").unwrap_or_else(|| ioc.join("config"));
        let runtime_dir = get("RUNTIME_DIR").unwrap_or_else(|| epics_root.join("runtime"));
        let support = get("SUPPORT").unwrap_or_else(|| epics_root.join("support"));
        let host_arch = get("EPICS_HOST_ARCH")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "linux-x86_64".to_owned());
        let opi = get("IOCRUN_OPI_DIR").unwrap_or_else(|| epics_root.join("opi"));
        let autosave_req =
            get("IOCRUN_AUTOSAVE_REQ_DIR").unwrap_or_else(|| epics_root.join("autosave"));
        Paths {
            epics_root,
            ioc,
            config_dir,
            runtime_dir,
            support,
            host_arch,
            opi,
            autosave_req,
        }
    }

    /// The shared OPI volume screens are published to (`IOCRUN_OPI_DIR`).
    pub fn opi_dir(&self) -> PathBuf {
        self.opi.clone()
    }

    /// `$EPICS_ROOT/pvi-defs`: PVI device definitions shipped by the image.
    pub fn pvi_defs(&self) -> PathBuf {
        self.epics_root.join("pvi-defs")
    }

    /// `$EPICS_ROOT/ibek-defs`: support YAML shipped by the image.
    pub fn ibek_defs(&self) -> PathBuf {
        self.epics_root.join("ibek-defs")
    }

    /// Req-template links for autosave (`IOCRUN_AUTOSAVE_REQ_DIR`).
    pub fn autosave_dir(&self) -> PathBuf {
        self.autosave_req.clone()
    }

    /// The folders the start sequence writes into, each with the variable that moves it.
    /// The sockets, the hardware-wait done file and the console log are settings of `start`
    /// (`IOCRUN_CONSOLE_SOCKET`, `IOCRUN_CONTROL_SOCKET`, `IOCRUN_WAIT_DONE_FILE`,
    /// `IOCRUN_CONSOLE_LOG`) and are checked where they are opened.
    pub fn written(&self) -> [(&Path, &'static str); 3] {
        [
            (&self.runtime_dir, "RUNTIME_DIR"),
            (&self.opi, "IOCRUN_OPI_DIR"),
            (&self.autosave_req, "IOCRUN_AUTOSAVE_REQ_DIR"),
        ]
    }

    /// The IOC executable, `$IOC/bin/$EPICS_HOST_ARCH/ioc`.
    pub fn ioc_binary(&self) -> PathBuf {
        self.ioc.join("bin").join(&self.host_arch).join("ioc")
    }

    /// `$SUPPORT/configure/RELEASE.shell`, whose `export` lines join the IOC's environment.
    pub fn release_shell(&self) -> PathBuf {
        self.support.join("configure").join("RELEASE.shell")
    }

    /// A path under the runtime folder.
    pub fn runtime(&self, name: impl AsRef<Path>) -> PathBuf {
        self.runtime_dir.join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Paths {
        let map: HashMap<String, PathBuf> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
            .collect();
        Paths::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_images() {
        let p = with(&[]);
        assert_eq!(p.config_dir, PathBuf::from("/epics/ioc/config"));
        assert_eq!(p.runtime_dir, PathBuf::from("/epics/runtime"));
        assert_eq!(
            p.ioc_binary(),
            PathBuf::from("/epics/ioc/bin/linux-x86_64/ioc")
        );
    }

    #[test]
    fn epics_root_moves_everything_not_set() {
        let p = with(&[("EPICS_ROOT", "/tmp/e"), ("RUNTIME_DIR", "/r")]);
        assert_eq!(p.config_dir, PathBuf::from("/tmp/e/ioc/config"));
        assert_eq!(p.runtime_dir, PathBuf::from("/r"));
        assert_eq!(p.opi_dir(), PathBuf::from("/tmp/e/opi"));
        assert_eq!(p.autosave_dir(), PathBuf::from("/tmp/e/autosave"));
        let p = with(&[("IOCRUN_OPI_DIR", "/o"), ("IOCRUN_AUTOSAVE_REQ_DIR", "/a")]);
        assert_eq!(p.opi_dir(), PathBuf::from("/o"));
        assert_eq!(p.autosave_dir(), PathBuf::from("/a"));
    }
}
