//! What ibek's `generate_pvi` + `generate_index` do for a whole IOC (spec pvi.md §5,
//! render-ibek.md §4.4): for each entity whose model has a `pvi:` section, in entity order and
//! whether or not the entity is enabled, find its device file, write its screens once per
//! device, its `.pvi.template` when `pv` is set, and one `index.bob` button when `ui_index` is.
//!
//! The caller renders the Jinja parts (`yaml_path`, the `ui_macros` values) and decides where
//! the files go; this only reads device files.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::{format_index, format_screens, format_template, resolve, IndexEntry, PviError};

/// One entity's `pvi:` section, with its Jinja already rendered by the caller.
#[derive(Debug, Clone)]
pub struct EntityPvi {
    /// Index of the entity in the resolved entity list (reported back in [`PviDatabase`]).
    pub entity: usize,
    /// `yaml_path` rendered with the entity: relative to `pvi-defs`, or absolute.
    pub yaml_path: String,
    pub ui_index: bool,
    /// `render_map(entity, ui_macros)`; `None` when the model has no `ui_macros`.
    pub ui_macros: Option<IndexMap<String, String>>,
    pub pv: bool,
    /// Written verbatim into the template, as ibek does (it is not rendered; spec §5).
    pub pv_prefix: String,
}

/// A `.pvi.template` the caller adds to `ioc.subst` after all entity databases, with the
/// entity's `ui_macros` as its arguments (ibek's "extra databases").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PviDatabase {
    pub entity: usize,
    pub file: String,
}

/// Everything PVI produces for an IOC.
#[derive(Debug, Default)]
pub struct IocPvi {
    /// Files for the OPI folder (`*.pvi.bob`, sub-screens, `index.bob`), by file name.
    pub screens: Vec<(String, String)>,
    /// Files for the runtime folder (`*.pvi.template`), by file name.
    pub templates: Vec<(String, String)>,
    /// Substitution-file entries, in the order ibek adds them.
    pub databases: Vec<PviDatabase>,
}

/// Where device files are looked up: the instance config folder overrides by file name, then
/// the image's `pvi-defs` (also the parent search path, in that order).
#[derive(Debug, Clone)]
pub struct DeviceDirs {
    pub config_dir: PathBuf,
    pub pvi_defs: PathBuf,
}

impl DeviceDirs {
    /// ibek's `find_pvi_device`: `<config>/<basename>` if it is a file, else `pvi-defs/<rel>`.
    pub fn find(&self, rel: &str) -> PathBuf {
        if let Some(name) = Path::new(rel).file_name() {
            let over = self.config_dir.join(name);
            if over.is_file() {
                return over;
            }
        }
        self.pvi_defs.join(rel)
    }

    fn search(&self) -> Vec<PathBuf> {
        vec![self.config_dir.clone(), self.pvi_defs.clone()]
    }
}

/// Generate screens, templates and index for the IOC `ioc_name`.
pub fn generate(
    ioc_name: &str,
    entities: &[EntityPvi],
    dirs: &DeviceDirs,
) -> Result<IocPvi, PviError> {
    let mut out = IocPvi::default();
    let mut screens: IndexMap<String, String> = IndexMap::new();
    let mut templates: IndexMap<String, String> = IndexMap::new();
    let mut formatted: Vec<String> = Vec::new();
    let mut index = Vec::new();
    for e in entities {
        let path = dirs.find(&e.yaml_path);
        let name = resolve::device_name(&path);
        if !(e.pv || e.ui_index || !formatted.contains(&name)) {
            continue;
        }
        let device = resolve::load_resolved(&path, &dirs.search())?;
        if e.pv {
            let file = format!("{name}.pvi.template");
            templates.insert(file.clone(), format_template(&device, &e.pv_prefix)?);
            out.databases.push(PviDatabase {
                entity: e.entity,
                file,
            });
        }
        if !formatted.contains(&name) {
            for (file, text) in format_screens(&device, &name)? {
                screens.insert(file, text);
            }
            formatted.push(name.clone());
        }
        if e.ui_index {
            let macros = e.ui_macros.clone().ok_or_else(|| {
                PviError::Layout(format!(
                    "entity {} has pvi ui_index but no ui_macros (ibek asserts on this)",
                    e.entity
                ))
            })?;
            index.push(IndexEntry {
                label: device.label.clone(),
                ui: format!("{name}.pvi.bob"),
                macros,
            });
        }
    }
    screens.insert("index.bob".to_owned(), format_index(ioc_name, &index)?);
    out.screens = screens.into_iter().collect();
    out.templates = templates.into_iter().collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn entity(i: usize, path: &str, pv: bool) -> EntityPvi {
        EntityPvi {
            entity: i,
            yaml_path: path.into(),
            ui_index: true,
            ui_macros: Some(IndexMap::from([("P".to_owned(), format!("X{i}:"))])),
            pv,
            pv_prefix: "$(P)".into(),
        }
    }

    #[test]
    fn config_folder_overrides_and_devices_format_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (config, defs) = (tmp.path().join("config"), tmp.path().join("defs"));
        std::fs::create_dir_all(&config).unwrap();
        std::fs::create_dir_all(&defs).unwrap();
        let dev = "children:\n  - {type: SignalR, name: A, read_pv: $(P)A}\n";
        write(
            &defs,
            "Dev.pvi.device.yaml",
            &format!("label: Shipped\n{dev}"),
        );
        write(
            &config,
            "Dev.pvi.device.yaml",
            &format!("label: Override\n{dev}"),
        );
        let dirs = DeviceDirs {
            config_dir: config,
            pvi_defs: defs,
        };
        let ents = [
            entity(0, "Dev.pvi.device.yaml", true),
            entity(3, "Dev.pvi.device.yaml", false),
        ];
        let out = generate("my-ioc", &ents, &dirs).unwrap();
        let names: Vec<_> = out.screens.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Dev.pvi.bob", "index.bob"]);
        assert_eq!(out.templates.len(), 1);
        assert!(out.templates[0].1.contains("Override"));
        assert_eq!(
            out.databases,
            [PviDatabase {
                entity: 0,
                file: "Dev.pvi.template".into()
            }]
        );
        let index = &out.screens[1].1;
        assert_eq!(index.matches("<P>X").count(), 2, "{index}");
    }

    #[test]
    fn missing_device_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = DeviceDirs {
            config_dir: tmp.path().join("c"),
            pvi_defs: tmp.path().join("d"),
        };
        let err = generate("i", &[entity(0, "Nope.pvi.device.yaml", false)], &dirs).unwrap_err();
        assert!(err.to_string().contains("Nope.pvi.device.yaml"), "{err}");
    }
}
