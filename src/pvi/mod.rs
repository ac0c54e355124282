//! PVI: `*.pvi.device.yaml` → Phoebus `.bob` engineering screens, `index.bob` and the
//! `.pvi.template` that publishes a device's PVI structure over PVAccess.
//!
//! This module owns the device model (`device`, with its YAML mirror in `raw`) and its
//! parent/include resolution (`resolve`), the DLS screen layout (`layout`, producing `widget`s),
//! the `.bob` XML (`bob`, `xml`), the template (`template`), and the ibek glue for a whole IOC
//! (`ioc`). The reference is pvi 0.14.4 as ibek 4.8.2 drives it; outputs are byte for
//! byte the same, apart from the write-button fix listed in docs/compat.md. It reads files
//! only; callers decide where outputs go.

mod bob;
mod device;
mod ioc;
mod layout;
mod raw;
mod resolve;
mod template;
mod widget;
mod xml;

use std::path::PathBuf;

use indexmap::IndexMap;

pub use device::{Component, Device, Kind, Node};
pub use ioc::{generate, generate_into, Discard, EntityPvi, IocPvi, Sink};
pub use resolve::{device_name, load, load_resolved};
pub use template::format_template;

/// What can go wrong reading or formatting a device.
#[derive(Debug, thiserror::Error)]
pub enum PviError {
    #[error("cannot read pvi device '{path}'")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}': a pvi device file name must end in .pvi.device.yaml")]
    FileName { path: PathBuf },
    #[error("invalid pvi device '{path}': {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("invalid pvi device '{path}' at {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error(
        "pvi device '{path}' includes '{name}', but {name}.pvi.device.yaml is not in {search:?}"
    )]
    MissingInclude {
        path: PathBuf,
        name: String,
        search: Vec<PathBuf>,
    },
    #[error("cannot lay out the screen: {0}")]
    Layout(String),
    #[error("pvi screens cannot be made")]
    Screens(#[source] Box<PviError>),
    #[error("pvi for entity {entity}")]
    Entity {
        entity: usize,
        #[source]
        source: Box<PviError>,
    },
    #[error("cannot format pvi device '{device}'")]
    Device {
        device: String,
        #[source]
        source: Box<PviError>,
    },
}

/// One button of `index.bob`: the device's label, its screen and the macros it opens with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub label: String,
    pub ui: String,
    pub macros: IndexMap<String, String>,
}

/// The screens of a resolved device: `<name>.pvi.bob` first, then each sub-screen file, as
/// (file name, contents). A later sub-screen with the same file name replaces an earlier one.
pub fn format_screens(device: &Device, name: &str) -> Result<Vec<(String, String)>, PviError> {
    let wrap = |source| PviError::Device {
        device: name.to_owned(),
        source: Box::new(source),
    };
    let components = top_components(device).map_err(wrap)?;
    let (screen, subs) =
        layout::layout(components, &device.label, &format!("{name}.pvi")).map_err(wrap)?;
    let mut files: IndexMap<String, String> = IndexMap::new();
    files.insert(
        format!("{name}.pvi.bob"),
        bob::format_screen(&screen).map_err(wrap)?,
    );
    for (file_name, sub) in subs {
        files.insert(
            format!("{file_name}.bob"),
            bob::format_screen(&sub).map_err(wrap)?,
        );
    }
    Ok(files.into_iter().collect())
}

/// `index.bob`: one full-width button per entry under the IOC name (0.14.4 form).
pub fn format_index(title: &str, entries: &[IndexEntry]) -> Result<String, PviError> {
    let mut children = Vec::new();
    for e in entries {
        let name = device::enforce_pascal_case(&e.label)
            .filter(|n| device::is_pascal(n))
            .ok_or_else(|| {
                PviError::Layout(format!(
                    "index entry label '{}' cannot be made PascalCase",
                    e.label
                ))
            })?;
        children.push(Component {
            name,
            label: Some(e.label.clone()),
            description: None,
            kind: Kind::DeviceRef {
                pv: e.label.to_uppercase(),
                ui: e.ui.clone(),
                macros: e.macros.clone(),
            },
        });
    }
    let (screen, _) = layout::layout(children, title, "index")?;
    bob::format_screen(&screen)
}

fn top_components(device: &Device) -> Result<Vec<Component>, PviError> {
    device
        .children
        .iter()
        .map(|n| match n {
            Node::Component(c) => Ok(c.clone()),
            Node::Include(inc) => Err(PviError::Layout(format!(
                "Include '{}' should have been resolved (parent asynPortDriver stops resolution)",
                inc.file_name
            ))),
        })
        .collect()
}
