//! The JSON schema of `ioc.yaml` for a set of definitions, as `ibek ioc generate-schema`
//! writes it: pydantic's `model_json_schema()` of ibek's dynamic
//! `NewIOC` model, dumped by Python's `json.dumps(indent=2)` plus a newline.
//!
//! Editors (yaml-language-server) use it for completion and checking, so the shape follows
//! ibek's exactly, down to pydantic's habits reproduced here: keys sorted except inside
//! `properties` and `default`; enum definitions named after the parameter, with pydantic's
//! renaming when two different enums share a name; titles made by Python's `str.title()`;
//! the literal `{typ}` in the union descriptions (an ibek bug, kept); non-ASCII escaped.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use serde_yaml::Value as Yaml;

use super::{Definitions, EntityModel, Param, ParamKind};

/// ibek's three built-in entity types, as pydantic describes them (their docstrings included).
const BUILTINS: &str = include_str!("schema_builtins.json");

/// The JSON schema text for instances of `defs`, ending with a newline like ibek's file.
pub fn ioc_schema(defs: &Definitions) -> String {
    let mut out = String::new();
    write_json(&mut out, &sort_keys(ioc_schema_value(defs), None), 0);
    out.push('\n');
    out
}

/// The schema as a JSON value (keys not yet sorted).
pub fn ioc_schema_value(defs: &Definitions) -> Value {
    let mut enums = EnumDefs::default();
    let mut model_defs = Map::new();
    let mut one_of = Vec::new();
    let mut mapping = Map::new();
    for (full_name, model) in &defs.models {
        let class = class_name(model);
        model_defs.insert(
            class.clone(),
            model_schema(full_name, &class, model, &mut enums),
        );
        one_of.push(json!({ "$ref": format!("#/$defs/{class}") }));
        mapping.insert(full_name.clone(), json!(format!("#/$defs/{class}")));
    }
    let builtins: Map<String, Value> =
        serde_json::from_str(BUILTINS).expect("schema_builtins.json is valid JSON");
    for (class, type_name) in [
        ("RepeatEntity", "ibek.repeat"),
        ("Wait4IPEntity", "ibek.wait_ip"),
        ("Wait4USBEntity", "ibek.wait_usb"),
    ] {
        one_of.push(json!({ "$ref": format!("#/$defs/{class}") }));
        mapping.insert(type_name.to_owned(), json!(format!("#/$defs/{class}")));
    }
    let mut all_defs = builtins;
    all_defs.extend(model_defs);
    enums.resolve(&mut all_defs);
    json!({
        "$defs": all_defs,
        "additionalProperties": false,
        "properties": {
            "ioc_name": {"description": "Name of IOC instance", "title": "Ioc Name", "type": "string"},
            "description": {"description": "Description of what the IOC does", "title": "Description", "type": "string"},
            "entities": {
                "description": "List of entities this IOC instantiates",
                "items": {
                    "discriminator": {"mapping": mapping, "propertyName": "type"},
                    "oneOf": one_of,
                },
                "title": "Entities",
                "type": "array",
            },
            "shared": {
                "default": [],
                "description": "A place to create any anchors required for repeating YAML",
                "items": {},
                "title": "Shared",
                "type": "array",
            },
        },
        "required": ["ioc_name", "description", "entities"],
        "title": "NewIOC",
        "type": "object",
    })
}

/// ibek names each dynamic entity class `<module>_<name>`.
fn class_name(model: &EntityModel) -> String {
    format!("{}_{}", model.module, model.name)
}

fn model_schema(full_name: &str, class: &str, model: &EntityModel, enums: &mut EnumDefs) -> Value {
    let mut props = Map::new();
    props.insert(
        "type".into(),
        json!({"const": full_name, "description": model.description, "title": "Type", "type": "string"}),
    );
    props.insert(
        "entity_enabled".into(),
        json!({"default": true, "description": "enable or disable this entity instance",
               "title": "Entity Enabled", "type": "boolean"}),
    );
    let mut required = vec![json!("type")];
    for (name, param) in &model.parameters {
        // ibek sets the `type` field (the discriminator) after the parameters, so a parameter
        // called `type` (ADCore.NDAttributes has one) disappears from the model
        if name == "type" {
            continue;
        }
        props.insert(name.clone(), param_schema(name, param, enums));
        if default_of(param).is_none() {
            required.push(json!(name));
        }
    }
    json!({
        "additionalProperties": false,
        "properties": props,
        "required": required,
        "title": class,
        "type": "object",
    })
}

/// A parameter's default, `None` when it is required (no default or `default: null`).
fn default_of(param: &Param) -> Option<&Yaml> {
    param.default.as_ref().filter(|d| !d.is_null())
}

fn param_schema(name: &str, param: &Param, enums: &mut EnumDefs) -> Value {
    let mut s = Map::new();
    let desc = json!(param.description);
    let default = default_of(param).map(|d| default_json(param.kind, d));
    match param.kind {
        ParamKind::Str | ParamKind::Id | ParamKind::Object => {
            s.insert("description".into(), desc);
            s.insert("title".into(), json!(python_title(name)));
            if param.kind != ParamKind::Object {
                s.insert("type".into(), json!("string"));
            }
        }
        ParamKind::Enum => {
            let def = enums.add(name, param.values.as_ref());
            s.insert("$ref".into(), json!(format!("#/$defs/{def}")));
            s.insert("description".into(), desc);
        }
        _ => {
            let (class, mut plain) = match param.kind {
                ParamKind::Int => ("int", json!({"type": "integer"})),
                ParamKind::Float => ("float", json!({"type": "number"})),
                ParamKind::Bool => ("bool", json!({"type": "boolean"})),
                ParamKind::List => ("list", json!({"items": {}, "type": "array"})),
                _ => (
                    "dict",
                    json!({"additionalProperties": true, "type": "object"}),
                ),
            };
            plain["description"] = desc;
            let jinja = json!({
                "description": format!("jinja that renders to <class '{class}'>"),
                "pattern": ".*\\{\\{.*\\}\\}.*",
                "type": "string",
            });
            s.insert("anyOf".into(), json!([jinja, plain]));
            // `{typ}` is literally in ibek's f-string-less description
            s.insert(
                "description".into(),
                json!(format!(
                    "union of <class '{class}'> and jinja representation of {{typ}}"
                )),
            );
            s.insert("title".into(), json!(python_title(name)));
        }
    }
    if let Some(d) = default {
        s.insert("default".into(), d);
    }
    Value::Object(s)
}

/// A default as pydantic stores it: ibek's support model types float defaults as float, so
/// an integer default of a float parameter becomes `2.0`.
fn default_json(kind: ParamKind, value: &Yaml) -> Value {
    match (kind, value) {
        (ParamKind::Float, Yaml::Number(n)) if !n.is_f64() => {
            json!(n.as_f64().unwrap_or_default())
        }
        _ => yaml_to_json(value),
    }
}

/// YAML data to JSON data; non-string mapping keys become strings as Python's json does.
fn yaml_to_json(value: &Yaml) -> Value {
    match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => json!(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                serde_json::Number::from_f64(n.as_f64().unwrap_or_default())
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Yaml::String(s) => json!(s),
        Yaml::Sequence(seq) => Value::Array(seq.iter().map(yaml_to_json).collect()),
        Yaml::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (key_text(k), yaml_to_json(v)))
                .collect(),
        ),
        Yaml::Tagged(t) => yaml_to_json(&t.value),
    }
}

fn key_text(key: &Yaml) -> String {
    match key {
        Yaml::String(s) => s.clone(),
        Yaml::Bool(true) => "true".into(),
        Yaml::Bool(false) => "false".into(),
        Yaml::Null => "null".into(),
        Yaml::Number(n) => n.to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// Python's `str.title()` after pydantic's `_` → space: a cased letter is upper case after
/// a non-letter and lower case after a letter (`NDARRAY_PORT` → `Ndarray Port`, `x1y` → `X1Y`).
fn python_title(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev_cased = false;
    for c in name.chars() {
        if c.is_alphabetic() {
            if prev_cased {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_cased = true;
        } else {
            out.push(if c == '_' { ' ' } else { c });
            prev_cased = false;
        }
    }
    out
}

/// The enum definitions of a schema and pydantic's naming of them.
///
/// Each enum parameter is its own Python `Enum` class titled with the parameter name. The
/// definition is named after the parameter when every enum of that name has the same schema
/// (they then share one definition); otherwise each gets `ibek__entity_factory__<name>__<n>`,
/// numbered in order of appearance (pydantic's `DefsRef` collision rule).
#[derive(Default)]
struct EnumDefs {
    /// (placeholder name, normalised parameter name, schema), in order of appearance.
    defs: Vec<(String, String, Value)>,
}

impl EnumDefs {
    /// Register one enum parameter; returns a placeholder name fixed up by `resolve`.
    fn add(&mut self, param: &str, values: Option<&serde_yaml::Mapping>) -> String {
        let keys: Vec<Value> = values
            .map(|m| m.keys().map(yaml_to_json).collect())
            .unwrap_or_default();
        let mut schema = json!({"enum": keys, "title": param});
        if let Some(t) = json_type_of_all(&keys) {
            schema["type"] = json!(t);
        }
        let placeholder = format!("\u{0}enum{}", self.defs.len());
        self.defs
            .push((placeholder.clone(), normalize_name(param), schema));
        placeholder
    }

    /// Name every enum definition, add them to `defs` and rewrite the placeholders.
    fn resolve(self, defs: &mut Map<String, Value>) {
        let mut by_name: HashMap<&str, Vec<&Value>> = HashMap::new();
        for (_, name, schema) in &self.defs {
            let seen = by_name.entry(name).or_default();
            if !seen.contains(&schema) {
                seen.push(schema);
            }
        }
        // a model or built-in already holding the name also forces the long form
        let taken: Vec<String> = defs.keys().cloned().collect();
        let mut counters: HashMap<&str, usize> = HashMap::new();
        let mut renames = HashMap::new();
        for (placeholder, name, schema) in &self.defs {
            let unique = by_name[name.as_str()].len() == 1 && !taken.contains(name);
            let final_name = if unique {
                name.clone()
            } else {
                let n = counters.entry(name).or_default();
                *n += 1;
                format!("ibek__entity_factory__{name}__{n}")
            };
            defs.insert(final_name.clone(), schema.clone());
            renames.insert(
                format!("#/$defs/{placeholder}"),
                format!("#/$defs/{final_name}"),
            );
        }
        for def in defs.values_mut() {
            rename_refs(def, &renames);
        }
    }
}

fn rename_refs(value: &mut Value, renames: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if k == "$ref" => {
                        if let Some(new) = renames.get(s.as_str()) {
                            *s = new.clone();
                        }
                    }
                    _ => rename_refs(v, renames),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renames)),
        _ => {}
    }
}

/// pydantic's `normalize_name`: characters outside `[a-zA-Z0-9.\-_]` become `_`, `.` → `__`.
fn normalize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c.to_string()
            } else {
                "_".to_owned()
            }
        })
        .collect::<String>()
        .replace('.', "__")
}

/// The JSON type pydantic gives an enum whose members all have one type.
fn json_type_of_all(values: &[Value]) -> Option<&'static str> {
    let type_of = |v: &Value| match v {
        Value::String(_) => Some("string"),
        Value::Bool(_) => Some("boolean"),
        Value::Number(n) if n.is_f64() => Some("number"),
        Value::Number(_) => Some("integer"),
        Value::Array(_) => Some("array"),
        _ => None,
    };
    let first = type_of(values.first()?)?;
    values
        .iter()
        .all(|v| type_of(v) == Some(first))
        .then_some(first)
}

/// pydantic sorts every mapping's keys, except the contents of `properties` and `default`.
fn sort_keys(value: Value, parent: Option<&str>) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            if !matches!(parent, Some("properties" | "default")) {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let v = sort_keys(v, Some(&k));
                        (k, v)
                    })
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| sort_keys(v, parent)).collect())
        }
        other => other,
    }
}

/// Python's `json.dumps(value, indent=2)` (ensure_ascii on, `", "`-less item separator).
fn write_json(out: &mut String, value: &Value, depth: usize) {
    let pad = |out: &mut String, depth: usize| out.extend(std::iter::repeat_n("  ", depth));
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&crate::pyfmt::json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => crate::pyfmt::json_string(out, s, false),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                pad(out, depth + 1);
                write_json(out, item, depth + 1);
            }
            out.push('\n');
            pad(out, depth);
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                pad(out, depth + 1);
                crate::pyfmt::json_string(out, k, false);
                out.push_str(": ");
                write_json(out, v, depth + 1);
            }
            out.push('\n');
            pad(out, depth);
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_follow_python_str_title() {
        assert_eq!(python_title("NDARRAY_PORT"), "Ndarray Port");
        assert_eq!(python_title("x1y_z"), "X1Y Z");
        assert_eq!(python_title("IOC"), "Ioc");
        assert_eq!(python_title("max_bytes"), "Max Bytes");
    }

    #[test]
    fn enum_names_collide_like_pydantic() {
        let mut enums = EnumDefs::default();
        let m = |keys: &[&str]| {
            let mut map = serde_yaml::Mapping::new();
            for k in keys {
                map.insert(Yaml::String((*k).into()), Yaml::Null);
            }
            map
        };
        let a = enums.add("mode", Some(&m(&["x", "y"])));
        let b = enums.add("mode", Some(&m(&["z"])));
        let c = enums.add("same", Some(&m(&["p"])));
        let d = enums.add("same", Some(&m(&["p"])));
        let mut defs = Map::new();
        defs.insert(
            "M".into(),
            json!({"a": {"$ref": format!("#/$defs/{a}")}, "b": {"$ref": format!("#/$defs/{b}")},
            "c": {"$ref": format!("#/$defs/{c}")}, "d": {"$ref": format!("#/$defs/{d}")}}),
        );
        enums.resolve(&mut defs);
        assert_eq!(
            defs["M"]["a"]["$ref"],
            "#/$defs/ibek__entity_factory__mode__1"
        );
        assert_eq!(
            defs["M"]["b"]["$ref"],
            "#/$defs/ibek__entity_factory__mode__2"
        );
        assert_eq!(defs["M"]["c"]["$ref"], "#/$defs/same");
        assert_eq!(defs["M"]["d"]["$ref"], "#/$defs/same");
        assert_eq!(defs["same"]["type"], "string");
    }
}
