//! What ibek's `generate_pvi` + `generate_index` do for a whole IOC: for each entity whose
//! model has a `pvi:` section, in entity order and whether or not the entity is enabled, find
//! its device file, write its screens once per device, its `.pvi.template` when `pv` is set,
//! and one `index.bob` button when `ui_index` is.
//!
//! The caller renders the Jinja parts (`yaml_path`, the `ui_macros` values) and decides where
//! the files go; this only reads device files.

use std::collections::hash_map::{Entry, HashMap};
use std::path::PathBuf;

use indexmap::IndexMap;

use super::device::Device;
use super::template::check_resolved;
use super::{format_index, format_screens, format_template, resolve, IndexEntry, PviError};

/// One entity's `pvi:` section, with its Jinja rendered and its device file located by the
/// caller (`<config>/<basename>` when present, else under `pvi-defs`, as ibek).
#[derive(Debug, Clone)]
pub struct EntityPvi {
    /// Index of the entity, for messages.
    pub entity: usize,
    pub device_file: PathBuf,
    pub ui_index: bool,
    /// `render_map(entity, ui_macros)`: the index button's macros.
    pub ui_macros: IndexMap<String, String>,
    pub pv: bool,
    /// Written verbatim into the template, as ibek does (it is not rendered).
    pub pv_prefix: String,
}

/// Where [`generate_into`] puts each file as soon as it is made, so an IOC's screens (most of
/// the memory a generate uses) are never all held at once.
pub trait Sink {
    /// A file for the OPI folder (`*.pvi.bob`, a sub-screen, `index.bob`). A later file of the
    /// same name replaces an earlier one.
    fn screen(&mut self, name: &str, text: &str);
    /// A `.pvi.template` for the runtime folder, at most once per name (handed over: the
    /// runtime folder is published after the screens).
    fn template(&mut self, name: &str, text: String);
}

/// Everything PVI produces for an IOC, held in memory ([`generate`]). Screens are best effort:
/// a device whose screen cannot be made is reported in `screen_errors` and the rest are still
/// produced.
#[derive(Debug, Default)]
pub struct IocPvi {
    /// Files for the OPI folder (`*.pvi.bob`, sub-screens, `index.bob`), by file name.
    pub screens: Vec<(String, String)>,
    /// Files for the runtime folder (`*.pvi.template`), by file name.
    pub templates: Vec<(String, String)>,
    /// Why some screens are missing.
    pub screen_errors: Vec<PviError>,
}

impl Sink for IocPvi {
    fn screen(&mut self, name: &str, text: &str) {
        match self.screens.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => text.clone_into(old),
            None => self.screens.push((name.to_owned(), text.to_owned())),
        }
    }
    fn template(&mut self, name: &str, text: String) {
        self.templates.push((name.to_owned(), text));
    }
}

/// A sink that keeps nothing: every file is still made (so whatever cannot be made is
/// reported), then dropped. For checks, which must not hold an IOC's screens in memory.
#[derive(Debug, Default)]
pub struct Discard;

impl Sink for Discard {
    fn screen(&mut self, _name: &str, _text: &str) {}
    fn template(&mut self, _name: &str, _text: String) {}
}

/// [`generate_into`] an [`IocPvi`] in memory.
pub fn generate(
    ioc_name: &str,
    entities: &[EntityPvi],
    search: &[PathBuf],
) -> Result<IocPvi, PviError> {
    let mut out = IocPvi::default();
    out.screen_errors = generate_into(ioc_name, entities, search, &mut out)?;
    Ok(out)
}

/// Generate screens, templates and `index.bob` (titled `ioc_name`) for the entities, in order,
/// handing each file to `sink` as it is made. Parents are searched in `search` (ibek: the
/// instance config folder, then `pvi-defs`). Returns why some screens are missing.
///
/// Fails only when a `.pvi.template` cannot be made (its `ioc.subst` row would break the
/// database); everything else that goes wrong only costs screens.
pub fn generate_into(
    ioc_name: &str,
    entities: &[EntityPvi],
    search: &[PathBuf],
    sink: &mut dyn Sink,
) -> Result<Vec<PviError>, PviError> {
    let mut screen_errors = Vec::new();
    let mut formatted: Vec<String> = Vec::new();
    let mut index = Vec::new();
    let mut devices = resolve::Devices::default();
    // resolved devices by file: repeated entities (a plugin per channel) share one
    let mut resolved: HashMap<PathBuf, Device> = HashMap::new();
    // a later entity's template replaces an earlier one of the same device name: format only
    // the last, and check the others can be formatted
    let mut last_pv: HashMap<String, usize> = HashMap::new();
    for (i, e) in entities.iter().enumerate().filter(|(_, e)| e.pv) {
        last_pv.insert(resolve::device_name(&e.device_file), i);
    }
    for (i, e) in entities.iter().enumerate() {
        let name = resolve::device_name(&e.device_file);
        let first = !formatted.contains(&name);
        if !(e.pv || e.ui_index || first) {
            continue;
        }
        formatted.push(name.clone());
        let device = match resolved.entry(e.device_file.clone()) {
            Entry::Occupied(d) => d.into_mut(),
            Entry::Vacant(slot) => match devices.resolved(&e.device_file, search) {
                Ok(d) => slot.insert(d),
                Err(err) if !e.pv => {
                    screen_errors.push(entity_error(e, err));
                    continue;
                }
                Err(err) => return Err(entity_error(e, err)),
            },
        };
        if e.pv {
            if last_pv.get(&name) == Some(&i) {
                let text =
                    format_template(device, &e.pv_prefix).map_err(|err| entity_error(e, err))?;
                sink.template(&format!("{name}.pvi.template"), text);
            } else {
                check_resolved(device).map_err(|err| entity_error(e, err))?;
            }
        }
        if first {
            match format_screens(device, &name) {
                Ok(files) => files
                    .iter()
                    .for_each(|(file, text)| sink.screen(file, text)),
                Err(err) => screen_errors.push(entity_error(e, err)),
            }
        }
        if e.ui_index {
            index.push(IndexEntry {
                label: device.label.clone(),
                ui: format!("{name}.pvi.bob"),
                macros: e.ui_macros.clone(),
            });
        }
    }
    match format_index(ioc_name, &index) {
        Ok(text) => sink.screen("index.bob", &text),
        Err(err) => screen_errors.push(err),
    }
    Ok(screen_errors)
}

fn entity_error(e: &EntityPvi, source: PviError) -> PviError {
    PviError::Entity {
        entity: e.entity,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn entity(i: usize, path: &Path, pv: bool) -> EntityPvi {
        EntityPvi {
            entity: i,
            device_file: path.to_owned(),
            ui_index: true,
            ui_macros: IndexMap::from([("P".to_owned(), format!("X{i}:"))]),
            pv,
            pv_prefix: "$(P)".into(),
        }
    }

    #[test]
    fn devices_format_once_and_parents_search_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let (config, defs) = (tmp.path().join("config"), tmp.path().join("defs"));
        std::fs::create_dir_all(&config).unwrap();
        std::fs::create_dir_all(&defs).unwrap();
        let base = "children:\n  - {type: SignalR, name: A, read_pv: $(P)A}\n";
        write(
            &defs,
            "Base.pvi.device.yaml",
            &format!("label: Shipped\n{base}"),
        );
        write(
            &config,
            "Base.pvi.device.yaml",
            &format!("label: Override\n{base}"),
        );
        write(&defs, "Dev.pvi.device.yaml", "label: Dev\nparent: Base\n");
        let dev = defs.join("Dev.pvi.device.yaml");
        let ents = [entity(0, &dev, true), entity(3, &dev, false)];
        let out = generate("my-ioc", &ents, &[config, defs]).unwrap();
        let names: Vec<_> = out.screens.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Dev.pvi.bob", "index.bob"]);
        assert_eq!(out.templates.len(), 1);
        assert!(out.templates[0].1.contains("$(P)A"));
        let index = &out.screens[1].1;
        assert_eq!(index.matches("<P>X").count(), 2, "{index}");
        assert!(out.screen_errors.is_empty());
    }

    #[test]
    fn a_missing_device_costs_only_screens_unless_it_has_a_template() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("Nope.pvi.device.yaml");
        let out = generate("i", &[entity(0, &missing, false)], &[]).unwrap();
        assert_eq!(out.screen_errors.len(), 1);
        assert_eq!(out.screens.len(), 1, "index.bob is still written");
        let err = generate("i", &[entity(0, &missing, true)], &[]).unwrap_err();
        assert!(
            crate::error::chain(&err).contains("Nope.pvi.device.yaml"),
            "{err}"
        );
    }
}
