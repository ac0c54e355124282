//! One IOC instance file (`ioc.yaml` / `runtime.yaml`), checked for the top-level
//! keys ibek's `IOC` model requires. Entities stay loose mappings here; their arguments are
//! checked against their model in `render` (Phase 1), because defaults and Jinja matter there.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::{yaml, ConfigError};

/// An instance file as written.
#[derive(Debug, Clone)]
pub struct Instance {
    pub path: PathBuf,
    /// The raw `ioc_name` value (rendered later with the globals).
    pub ioc_name: Value,
    pub description: String,
    pub entities: Vec<RawEntity>,
}

/// One item of `entities:` with where it sits in the file.
#[derive(Debug, Clone)]
pub struct RawEntity {
    /// Position in this file's `entities` list.
    pub index: usize,
    /// 1-based line and column of the item.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Where each key of the item is (name, line, column).
    pub keys: Vec<(String, usize, usize)>,
    pub value: Value,
}

impl RawEntity {
    /// The `type` key, when it is a string.
    pub fn type_name(&self) -> Option<&str> {
        self.value.get("type").and_then(Value::as_str)
    }

    /// The line and column of one of the item's keys.
    pub fn key_position(&self, key: &str) -> Option<(usize, usize)> {
        self.keys
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, l, c)| (*l, *c))
    }

    /// The mapping, when the item is one.
    pub fn mapping(&self) -> Option<&Mapping> {
        self.value.as_mapping()
    }
}

impl Instance {
    /// Read and check one instance file.
    pub fn load(path: &Path) -> Result<Instance, ConfigError> {
        let text = yaml::read(path)?;
        Instance::parse(path, &text)
    }

    /// Check instance text (named by `path` in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Instance, ConfigError> {
        let (value, locations) = yaml::parse_located(path, text)?;
        let err = |line: Option<usize>, message: String| ConfigError::Instance {
            path: path.to_owned(),
            line,
            message,
        };
        let map = match value {
            Value::Mapping(m) if m.contains_key("ioc_name") => m,
            // ibek: RuntimeError("Failed to load a valid ioc config from <path>")
            _ => {
                return Err(err(
                    None,
                    format!("Failed to load a valid ioc config from {}", path.display()),
                ))
            }
        };
        for key in map.keys() {
            let k = key.as_str().unwrap_or("?");
            if !["ioc_name", "description", "entities", "shared"].contains(&k) {
                return Err(err(
                    None,
                    format!("{k}: Extra inputs are not permitted [type=extra_forbidden]"),
                ));
            }
        }
        let description = match map.get("description") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(err(
                    None,
                    "description: Input should be a valid string [type=string_type]".into(),
                ))
            }
            None => {
                return Err(err(
                    None,
                    "description: Field required [type=missing]".into(),
                ))
            }
        };
        let entities = match map.get("entities") {
            Some(Value::Sequence(seq)) => seq
                .iter()
                .enumerate()
                .map(|(index, v)| RawEntity {
                    index,
                    line: locations.items.get(index).map(|p| p.0),
                    column: locations.items.get(index).map(|p| p.1),
                    keys: locations.keys.get(index).cloned().unwrap_or_default(),
                    value: v.clone(),
                })
                .collect(),
            Some(_) => {
                return Err(err(
                    None,
                    "entities: Input should be an instance of Sequence [type=is_instance_of]"
                        .into(),
                ))
            }
            None => return Err(err(None, "entities: Field required [type=missing]".into())),
        };
        Ok(Instance {
            path: path.to_owned(),
            ioc_name: map.get("ioc_name").cloned().unwrap_or(Value::Null),
            description,
            entities,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Instance, ConfigError> {
        Instance::parse(Path::new("ioc.yaml"), text)
    }

    #[test]
    fn empty_file_is_not_an_ioc() {
        let e = parse("").unwrap_err().to_string();
        assert!(
            e.contains("Failed to load a valid ioc config from ioc.yaml"),
            "{e}"
        );
    }

    #[test]
    fn null_entities_rejected() {
        let e = parse("ioc_name: a\ndescription: b\nentities:\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Input should be an instance of Sequence"), "{e}");
    }

    #[test]
    fn entities_carry_lines() {
        let i = parse("ioc_name: a\ndescription: b\nentities:\n  - type: x.Y\n  - type: x.Z\n")
            .unwrap();
        assert_eq!(i.entities[1].line, Some(5));
        assert_eq!(i.entities[1].type_name(), Some("x.Z"));
    }
}
