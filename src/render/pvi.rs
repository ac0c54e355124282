//! The render side of ibek's `generate_pvi`: for each entity whose model has a
//! `pvi:` section (enabled or not), render `yaml_path` and `ui_macros`, locate the device
//! file, and queue the `<Device>.pvi.template` row for ioc.subst. Formatting the screens
//! and the template itself is the `pvi` module's job; it reads [`PviEntity`].

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::config::Database;

use super::jinja::Engine;
use super::objects::Entity;
use super::pyvalue::py_str;
use super::{Inputs, RenderError};

/// Everything ibek hands to pvi for one entity.
#[derive(Debug, Clone)]
pub struct PviEntity {
    /// Position among the resolved entities that have a model.
    pub index: usize,
    pub entity_type: String,
    pub entity_enabled: bool,
    /// The entity's id (its `str()`), when its model has an id parameter.
    pub entity_id: Option<String>,
    /// `yaml_path` after rendering.
    pub yaml_path: String,
    /// The device file used: `$EPICS_ROOT/ioc/config/<name>` if present, else under pvi-defs.
    pub device_file: PathBuf,
    /// The device name: the file name up to its first `.`.
    pub device_name: String,
    /// True for the first entity of this device (ibek formats each device's bob once).
    pub first_of_device: bool,
    /// `pv`: write `<device>.pvi.template` (to `$EPICS_ROOT/runtime`) and its subst row.
    pub pv: bool,
    pub pv_prefix: String,
    /// `ui_index`: add a button to index.bob.
    pub ui_index: bool,
    /// `ui_macros` rendered against the entity (`render_map`), when `ui_index` is set.
    pub macros: Option<IndexMap<String, String>>,
    /// `ui_macros` as written (the template row's args).
    pub raw_macros: Option<IndexMap<String, Option<String>>>,
}

/// Resolve every pvi section; returns the entries and the extra ioc.subst rows.
#[allow(clippy::type_complexity)]
pub fn resolve(
    engine: &Engine,
    entities: &[Arc<Entity>],
    inputs: &Inputs,
) -> Result<(Vec<PviEntity>, Vec<(Database, Arc<Entity>)>), RenderError> {
    let mut out = Vec::new();
    let mut rows = Vec::new();
    let mut formatted: Vec<String> = Vec::new();
    for (index, e) in entities.iter().enumerate() {
        let Some(model) = &e.model else { continue };
        let Some(p) = &model.pvi else { continue };
        let fields = Arc::new(e.fields());
        let err = |message: String| RenderError::Output {
            what: "pvi",
            message: format!("{}: {message}", e.origin()),
        };
        let rel = py_str(&engine.render(&fields, &p.yaml_path, "").map_err(err)?);
        let name = std::path::Path::new(&rel)
            .file_name()
            .map(|n| n.to_owned())
            .unwrap_or_default();
        let override_file = inputs.pvi_override_dir.join(&name);
        let device_file = if override_file.is_file() {
            override_file
        } else {
            inputs.pvi_defs.join(&rel)
        };
        let device_name = device_file
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        let first = !formatted.contains(&device_name);
        // only a template ioc.subst names is fatal; a missing screen-only device is the pvi
        // stage's warning (docs/compat.md; ibek fails on either)
        if p.pv && !device_file.is_file() {
            return Err(RenderError::PviMissing {
                index,
                type_name: e.type_name.clone(),
                path: device_file,
            });
        }
        if p.pv {
            rows.push((
                Database {
                    file: format!("{device_name}.pvi.template"),
                    enabled: "True".into(),
                    args: p.ui_macros.clone(),
                },
                e.clone(),
            ));
        }
        if first {
            formatted.push(device_name.clone());
        }
        let macros = if p.ui_index {
            let Some(map) = &p.ui_macros else {
                return Err(err(
                    "ui_index needs ui_macros (AssertionError in ibek)".into()
                ));
            };
            let mut m = IndexMap::new();
            for (k, v) in map {
                let text = v.clone().unwrap_or_else(|| format!("{{{{ {k} }}}}"));
                m.insert(
                    k.clone(),
                    py_str(&engine.render(&fields, &text, "").map_err(err)?),
                );
            }
            Some(m)
        } else {
            None
        };
        out.push(PviEntity {
            index,
            entity_type: e.type_name.clone(),
            entity_enabled: e.enabled(),
            entity_id: e.has_id().then(|| e.id_string()),
            yaml_path: rel,
            device_file,
            device_name,
            first_of_device: first,
            pv: p.pv,
            pv_prefix: p.pv_prefix.clone(),
            ui_index: p.ui_index,
            macros,
            raw_macros: p.ui_macros.clone(),
        });
    }
    Ok((out, rows))
}
