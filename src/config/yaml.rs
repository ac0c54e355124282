//! Loading YAML the way ibek's ruamel `YAML(typ="safe")` loader does (spec §2.2): YAML 1.2
//! scalars, duplicate keys are errors, merge keys (`<<`) resolved with ruamel's ordering.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::ConfigError;

/// Read and parse one YAML file into a generic value with merge keys applied.
pub fn load(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parse YAML text (named by `path` in errors).
pub fn parse(path: &Path, text: &str) -> Result<Value, ConfigError> {
    // an empty document is YAML null, as ruamel returns None for it
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| {
        let loc = e.location();
        ConfigError::Yaml {
            path: path.to_owned(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message: e.to_string(),
        }
    })?;
    merge(&mut value).map_err(|message| ConfigError::Yaml {
        path: path.to_owned(),
        line: None,
        column: None,
        message,
    })?;
    Ok(value)
}

/// Resolve `<<` merge keys bottom-up. ruamel puts merged pairs first (the last map of a merge
/// sequence first), then the explicit pairs, and the first position of a key wins.
fn merge(value: &mut Value) -> Result<(), String> {
    match value {
        Value::Mapping(map) => {
            for v in map.values_mut() {
                merge(v)?;
            }
            // shift_remove keeps the order of the other keys (remove would swap the last one in)
            let Some(m) = map.shift_remove("<<") else {
                return Ok(());
            };
            let sources: Vec<Mapping> = match m {
                Value::Mapping(m) => vec![m],
                Value::Sequence(seq) => seq
                    .into_iter()
                    .map(|v| match v {
                        Value::Mapping(m) => Ok(m),
                        _ => {
                            Err("merge key '<<' expects a mapping or a list of mappings".to_owned())
                        }
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err("merge key '<<' expects a mapping or a list of mappings".to_owned())
                }
            };
            let mut out = Mapping::new();
            for src in sources.into_iter().rev() {
                for (k, v) in src {
                    out.insert(k, v);
                }
            }
            for (k, v) in std::mem::take(map) {
                out.insert(k, v);
            }
            *map = out;
            Ok(())
        }
        Value::Sequence(seq) => seq.iter_mut().try_for_each(merge),
        Value::Tagged(t) => merge(&mut t.value),
        _ => Ok(()),
    }
}

/// The 1-based line of each item of the top-level `entities:` list, found by indentation
/// (block style only; `None` for flow style). Used to point errors at the entity's line.
pub fn entity_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut in_entities = false;
    let mut item_indent: Option<usize> = None;
    for (no, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent == 0 && !trimmed.starts_with("- ") && trimmed != "-" {
            in_entities = trimmed.starts_with("entities:");
            item_indent = None;
            continue;
        }
        if !in_entities || !(trimmed.starts_with("- ") || trimmed == "-") {
            continue;
        }
        match item_indent {
            None => {
                item_indent = Some(indent);
                lines.push(no + 1);
            }
            Some(i) if i == indent => lines.push(no + 1),
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Value, ConfigError> {
        parse(Path::new("t.yaml"), text)
    }

    #[test]
    fn yaml12_scalars_stay_strings() {
        let v = p("a: yes\nb: Y\nc: on\nd: 0x1F\ne: ~\n").unwrap();
        assert_eq!(v["a"], Value::from("yes"));
        assert_eq!(v["b"], Value::from("Y"));
        assert_eq!(v["c"], Value::from("on"));
        assert_eq!(v["d"], Value::from(31));
        assert!(v["e"].is_null());
    }

    #[test]
    fn duplicate_key_is_an_error_with_location() {
        let e = p("a: 1\na: 2\n").unwrap_err().to_string();
        assert!(e.contains("duplicate"), "{e}");
        assert!(e.contains("t.yaml:"), "{e}");
    }

    #[test]
    fn merge_keys_order_like_ruamel() {
        let v = p("x: &x {a: 1, b: 2}\ny: {c: 3, <<: *x, a: 9}\n").unwrap();
        let keys: Vec<_> = v["y"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(v["y"]["a"], Value::from(9));
    }

    #[test]
    fn finds_entity_lines() {
        let text = "ioc_name: x\nentities:\n  - type: a\n    x: 1\n\n  - type: b\n    l:\n      - 1\nother: 2\n";
        assert_eq!(entity_lines(text), vec![3, 6]);
    }
}
