//! The support YAML iocrun carries inside its binary (`support-yaml/` in the repository).
//!
//! A container image normally ships ibek-support's definitions in `$EPICS_ROOT/ibek-defs`. When
//! the definitions in use declare no module of the same name (a bare image, a services repo
//! checking instances in CI), the embedded module is added, so every instance can use the
//! `epics.*` entity types. A module the image does provide always wins, whole: the embedded
//! file never mixes its models into an image's module of the same name.

use std::path::{Path, PathBuf};

use super::{yaml, ConfigError, Definitions};

/// The embedded support files: (file name, the module it declares, text). The module is
/// written here so a run whose image provides it never parses the file.
const EMBEDDED: &[(&str, &str, &str)] = &[(
    "epics.ibek.support.yaml",
    "epics",
    include_str!("../../support-yaml/epics.ibek.support.yaml"),
)];

/// The folder name embedded files report in messages, e.g. `<iocrun>/epics.ibek.support.yaml`.
const EMBEDDED_DIR: &str = "<iocrun>";

/// The embedded support files as (pseudo path, text), for listing or writing them out.
pub fn embedded_support() -> impl Iterator<Item = (PathBuf, &'static str)> {
    EMBEDDED
        .iter()
        .map(|(name, _, text)| (Path::new(EMBEDDED_DIR).join(name), *text))
}

impl Definitions {
    /// Add each embedded module that no loaded definition file declares. Returns the modules
    /// added (empty when the image provides them all).
    pub fn add_embedded_fallbacks(&mut self) -> Result<Vec<String>, ConfigError> {
        let mut added = Vec::new();
        for (name, module, text) in EMBEDDED {
            if self.models.values().any(|m| m.module == *module) {
                continue;
            }
            let path = Path::new(EMBEDDED_DIR).join(name);
            let value = yaml::parse(&path, text)?;
            self.add_value(&path, text, value)?;
            added.push((*module).to_owned());
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(name: &str, text: &str) -> Definitions {
        let mut defs = Definitions::default();
        let path = PathBuf::from(name);
        let value = yaml::parse(&path, text).expect("test YAML parses");
        defs.add_value(&path, text, value)
            .expect("test support is valid");
        defs
    }

    #[test]
    fn embedded_epics_is_added_when_missing() {
        let mut defs = Definitions::default();
        let added = defs
            .add_embedded_fallbacks()
            .expect("embedded support is valid");
        assert_eq!(added, vec!["epics".to_owned()]);
        for name in [
            "epics.EpicsEnvSet",
            "epics.EpicsCaMaxArrayBytes",
            "epics.EpicsTsMinWest",
            "epics.InterruptVectorVME",
            "epics.StartupCommand",
            "epics.PreBootCommandSet",
            "epics.PostStartupCommand",
            "epics.dbpf",
        ] {
            assert!(defs.get(name).is_some(), "{name} missing");
        }
    }

    #[test]
    fn embedded_files_declare_the_module_listed_with_them() {
        for (name, module, text) in EMBEDDED {
            let value = yaml::parse(Path::new(name), text).expect("embedded support parses");
            assert_eq!(value.get("module").and_then(|m| m.as_str()), Some(*module));
        }
    }

    #[test]
    fn an_image_module_wins_whole() {
        let text =
            "module: epics\nentity_models:\n  - name: EpicsEnvSet\n    description: image's own\n";
        let mut defs = load_text("image/epics.ibek.support.yaml", text);
        let added = defs
            .add_embedded_fallbacks()
            .expect("embedded support is valid");
        assert!(added.is_empty());
        assert_eq!(defs.models.len(), 1, "no embedded model mixed in");
        assert_eq!(
            defs.get("epics.EpicsEnvSet").expect("kept").description,
            "image's own"
        );
    }

    #[test]
    fn other_modules_do_not_block_the_fallback() {
        let text = "module: asyn\nentity_models:\n  - name: AsynIP\n    description: port\n";
        let mut defs = load_text("asyn.ibek.support.yaml", text);
        defs.add_embedded_fallbacks()
            .expect("embedded support is valid");
        let names: Vec<&String> = defs.models.keys().collect();
        assert_eq!(
            names[0], "asyn.AsynIP",
            "embedded models come after the image's"
        );
        assert!(defs.get("epics.dbpf").is_some());
    }
}
