//! Loading device files and resolving `parent`/`Include` through a search path, then merging
//! same-named groups, exactly as pvi's `Device.deserialize_parents`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::device::{Component, Device, Include, Kind, Layout, Node};
use super::raw;
use super::PviError;

/// Read and validate one `*.pvi.device.yaml` (no parents resolved).
pub fn load(path: &Path) -> Result<Device, PviError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    if !name
        .as_deref()
        .is_some_and(|n| n.ends_with(".pvi.device.yaml"))
    {
        return Err(PviError::FileName {
            path: path.to_owned(),
        });
    }
    let text = crate::config::read_yaml(path).map_err(|e| yaml_error(path, e))?;
    let (value, at) =
        crate::config::parse_listed(path, &text, "children").map_err(|e| yaml_error(path, e))?;
    raw::device(path, value, &at.items)
}

/// A file that cannot be read or is not YAML within the bounds of docs/limits.md.
fn yaml_error(path: &Path, e: crate::config::ConfigError) -> PviError {
    use crate::config::ConfigError;
    let message = match e {
        ConfigError::Read { path, source } => return PviError::Read { path, source },
        ConfigError::Yaml {
            line: Some(line),
            column,
            message,
            ..
        } => format!(
            "{message} at line {line} column {}",
            column.unwrap_or_default()
        ),
        other => other.to_string(),
    };
    PviError::Yaml {
        path: path.to_owned(),
        message,
    }
}

/// The device name: the file name up to its first `.`.
pub fn device_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.split('.').next().unwrap_or_default().to_owned()
}

/// Load `path` and resolve its parents and includes through `search` (first hit wins).
pub fn load_resolved(path: &Path, search: &[PathBuf]) -> Result<Device, PviError> {
    Devices::default().resolved(path, search)
}

/// The device files of one run, each read and parsed once: the parents and includes that many
/// devices share (`asynNDArrayDriver` under every areaDetector plugin) and the devices of
/// repeated entities are parsed once, not once per use.
#[derive(Debug, Default)]
pub struct Devices {
    loaded: HashMap<PathBuf, Device>,
}

impl Devices {
    /// [`load`], remembered by path.
    fn load(&mut self, path: &Path) -> Result<Device, PviError> {
        if let Some(d) = self.loaded.get(path) {
            return Ok(d.clone());
        }
        let device = load(path)?;
        self.loaded.insert(path.to_owned(), device.clone());
        Ok(device)
    }

    /// [`load_resolved`] with the files read so far.
    pub fn resolved(&mut self, path: &Path, search: &[PathBuf]) -> Result<Device, PviError> {
        let mut device = self.load(path)?;
        self.resolve_parents(&mut device, path, search)?;
        Ok(device)
    }

    /// pvi's `deserialize_parents`. `asynPortDriver` as parent means "no parent at all", and
    /// then nothing is expanded (a stray Include fails later, as in pvi).
    fn resolve_parents(
        &mut self,
        device: &mut Device,
        path: &Path,
        search: &[PathBuf],
    ) -> Result<(), PviError> {
        if device.parent.as_deref() == Some("asynPortDriver") {
            return Ok(());
        }
        if let Some(parent) = device.parent.clone() {
            device.children.push(Node::Include(include_of(parent)));
        }
        let mut flat = Vec::new();
        for node in std::mem::take(&mut device.children) {
            match node {
                Node::Include(inc) => flat.extend(self.expand(&inc, path, search)?),
                Node::Component(c) => flat.push(c),
            }
        }
        device.children = merge(flat, path)?
            .into_iter()
            .map(Node::Component)
            .collect();
        Ok(())
    }

    /// pvi's `expand_includes`: the included device's children (and its parent's), recursively.
    fn expand(
        &mut self,
        inc: &Include,
        from: &Path,
        search: &[PathBuf],
    ) -> Result<Vec<Component>, PviError> {
        if inc.file_name == "asynPortDriver" {
            return Ok(Vec::new());
        }
        let Some(found) = find(&inc.file_name, search) else {
            return Err(PviError::MissingInclude {
                path: from.to_owned(),
                name: inc.file_name.clone(),
                search: search.to_vec(),
            });
        };
        let mut included = self.load(&found)?;
        if let Some(parent) = included.parent.clone() {
            included.children.push(Node::Include(include_of(parent)));
        }
        let rescoped = inc.macros.as_ref().is_some_and(|m| !m.is_empty());
        let mut resolved = Vec::new();
        for node in included.children {
            match node {
                // a re-scoped sub-device brings only its own components (0.14)
                Node::Include(_) if rescoped => {}
                Node::Include(nested) => resolved.extend(self.expand(&nested, &found, search)?),
                Node::Component(c) => resolved.push(c),
            }
        }
        if let Some(macros) = inc.macros.as_ref().filter(|m| !m.is_empty()) {
            for c in resolved.iter_mut() {
                rescope(c, macros);
            }
        }
        if inc.in_subscreen {
            if !super::device::is_pascal(&inc.file_name) {
                return Err(PviError::Invalid {
                    path: from.to_owned(),
                    key: "Include.file_name".to_owned(),
                    message: format!("'{}' must be PascalCase to be in_subscreen", inc.file_name),
                });
            }
            resolved = vec![Component {
                name: inc.file_name.clone(),
                label: None,
                description: None,
                kind: Kind::Group {
                    layout: Layout::SubScreen {
                        labelled: false,
                        stacked: false,
                    },
                    children: resolved,
                },
            }];
        }
        Ok(resolved)
    }
}

fn include_of(file_name: String) -> Include {
    Include {
        file_name,
        in_subscreen: false,
        macros: None,
    }
}

/// Find `<name>.pvi.device.yaml` as a direct child of a search folder.
fn find(name: &str, search: &[PathBuf]) -> Option<PathBuf> {
    let file = format!("{name}.pvi.device.yaml");
    search
        .iter()
        .map(|dir| dir.join(&file))
        .find(|p| p.is_file())
}

/// Replace `$(NAME)` in a string from `macros`, leaving unknown names alone.
fn substitute(text: &str, macros: &IndexMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        match (
            name_len > 0 && after[name_len..].starts_with(')'),
            macros.get(name),
        ) {
            (true, Some(v)) => {
                out.push_str(v);
                rest = &after[name_len + 1..];
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Include macro re-scoping (pvi 0.14) of every signal under `c`.
fn rescope(c: &mut Component, macros: &IndexMap<String, String>) {
    match &mut c.kind {
        Kind::Group { children, .. } => children.iter_mut().for_each(|c| rescope(c, macros)),
        Kind::SignalR { read_pv, .. } => *read_pv = substitute(read_pv, macros),
        Kind::SignalW { write_pv, .. } | Kind::SignalX { write_pv, .. } => {
            *write_pv = substitute(write_pv, macros)
        }
        Kind::SignalRW {
            read_pv, write_pv, ..
        } => {
            *read_pv = substitute(read_pv, macros);
            *write_pv = substitute(write_pv, macros);
        }
        Kind::DeviceRef {
            pv, macros: own, ..
        } => {
            *pv = substitute(pv, macros);
            for v in own.values_mut() {
                *v = substitute(v, macros);
            }
            for (k, v) in macros {
                own.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        Kind::Ignored | Kind::SignalRef => {}
    }
}

/// A registered group and its slot in the output. A non-group of the same name overwrites the
/// slot but the registration stays, so later same-named groups merge into it invisibly and a
/// later same-named non-group overwrites the slot again (pvi never updates its map).
struct Registered {
    group: Component,
    slot: usize,
}

enum Slot {
    Plain(Box<Component>),
    Group(usize),
}

/// pvi's `merge_components`.
fn merge(flat: Vec<Component>, path: &Path) -> Result<Vec<Component>, PviError> {
    let mut out: Vec<Slot> = Vec::new();
    let mut groups: Vec<Registered> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for mut c in flat {
        let is_group = matches!(c.kind, Kind::Group { .. });
        let known = by_name.get(&c.name).copied();
        match (is_group, known) {
            (false, Some(g)) => {
                // a non-group replaces the same-named group in place; the map keeps the group
                out[groups[g].slot] = Slot::Plain(Box::new(c));
            }
            (false, None) => out.push(Slot::Plain(Box::new(c))),
            (true, None) => {
                if let Kind::Group { children, .. } = &mut c.kind {
                    // first definition wins: drop children already placed in any group
                    children.retain(|ch| !groups.iter().any(|r| has_child(&r.group, &ch.name)));
                }
                by_name.insert(c.name.clone(), groups.len());
                groups.push(Registered {
                    group: c,
                    slot: out.len(),
                });
                out.push(Slot::Group(groups.len() - 1));
            }
            (true, Some(g)) => merge_into(&mut groups[g].group, c, path)?,
        }
    }
    let mut groups: Vec<Option<Component>> = groups.into_iter().map(|r| Some(r.group)).collect();
    Ok(out
        .into_iter()
        .filter_map(|s| match s {
            Slot::Plain(c) => Some(*c),
            Slot::Group(i) => groups[i].take(),
        })
        .collect())
}

fn has_child(group: &Component, name: &str) -> bool {
    match &group.kind {
        Kind::Group { children, .. } => children.iter().any(|c| c.name == name),
        _ => false,
    }
}

/// Merge a later same-named group into the first: same-named children are replaced by the new
/// one (its type may change), the rest appended; differing PVs are an error (0.14).
fn merge_into(existing: &mut Component, new: Component, path: &Path) -> Result<(), PviError> {
    let (
        Kind::Group { children: old, .. },
        Kind::Group {
            children: added, ..
        },
    ) = (&mut existing.kind, new.kind)
    else {
        return Ok(());
    };
    // a dict by name: a later duplicate keeps the first one's position
    let mut new_children: IndexMap<String, Component> = IndexMap::new();
    for c in added {
        new_children.insert(c.name.clone(), c);
    }
    let mut merged = Vec::new();
    for child in std::mem::take(old) {
        match new_children.shift_remove(&child.name) {
            Some(dup) => {
                check_collision(&new.name, &child, &dup, path)?;
                merged.push(dup);
            }
            None => merged.push(child),
        }
    }
    merged.extend(new_children.into_values());
    *old = merged;
    Ok(())
}

fn pv_fields(c: &Component) -> [Option<&str>; 3] {
    let read = c.read().map(|(pv, _)| pv);
    let write = c.write().map(|(pv, _)| pv);
    let pv = match &c.kind {
        Kind::DeviceRef { pv, .. } => Some(pv.as_str()),
        _ => None,
    };
    [read, write, pv]
}

fn check_collision(group: &str, a: &Component, b: &Component, path: &Path) -> Result<(), PviError> {
    let names = ["read_pv", "write_pv", "pv"];
    for ((x, y), field) in pv_fields(a).into_iter().zip(pv_fields(b)).zip(names) {
        if let (Some(x), Some(y)) = (x, y) {
            if x != y {
                return Err(PviError::Invalid {
                    path: path.to_owned(),
                    key: format!("{group}.{}", b.name),
                    message: format!("{field} '{y}' collides with '{x}'"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitute_leaves_unknown_macros() {
        let m = IndexMap::from([("R".to_owned(), "$(R)TS:".to_owned())]);
        assert_eq!(substitute("$(P)$(R)Net", &m), "$(P)$(R)TS:Net");
        assert_eq!(substitute("$(R", &m), "$(R");
    }
}
