//! The set of entity models from all definition files, keyed `module.name`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use super::support::{EntityModel, Support};
use super::{yaml, ConfigError};

/// Entity models by published type name, in definition order. A later file's model with the
/// same full name replaces the earlier one in place, as ibek's dict assignment does.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    pub models: IndexMap<String, Arc<EntityModel>>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

/// Support files already read, by path, for [`Definitions::load_cached`]. A file that failed
/// is not kept: it fails again, with the same error, for the next instance that loads it.
#[derive(Debug, Default)]
pub struct DefinitionCache {
    files: HashMap<PathBuf, Definitions>,
}

impl Definitions {
    /// Read every support file in order.
    pub fn load(files: &[PathBuf]) -> Result<Definitions, ConfigError> {
        let mut defs = Definitions::default();
        for file in files {
            defs.add_file(file)?;
        }
        Ok(defs)
    }

    /// [`Definitions::load`] for a run that loads the same support files for many instances
    /// (`iocrun check DIR…`): each file is read and checked once, then its models are shared.
    /// Same result as `load`: a later file's model replaces an earlier one in place.
    pub fn load_cached(
        files: &[PathBuf],
        cache: &mut DefinitionCache,
    ) -> Result<Definitions, ConfigError> {
        let mut defs = Definitions::default();
        for file in files {
            let one = match cache.files.get(file) {
                Some(one) => one,
                None => {
                    let mut one = Definitions::default();
                    one.add_file(file)?;
                    cache.files.entry(file.clone()).or_insert(one)
                }
            };
            for (name, model) in &one.models {
                defs.models.insert(name.clone(), model.clone());
            }
            defs.files.push(file.clone());
        }
        Ok(defs)
    }

    /// Read one support file and add its models.
    pub fn add_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = yaml::read(path)?;
        let value = yaml::parse(path, &text)?;
        self.add_value(path, &text, value)
    }

    /// Add the models of an already parsed support document (`text` only locates errors).
    pub fn add_value(
        &mut self,
        path: &Path,
        text: &str,
        value: serde_yaml::Value,
    ) -> Result<(), ConfigError> {
        let err = |line: Option<usize>, message: String| ConfigError::Support {
            path: path.to_owned(),
            line,
            message,
        };
        let mut map = match value {
            serde_yaml::Value::Mapping(m) => m,
            _ => {
                return Err(err(
                    None,
                    "expected a mapping with 'module' and 'entity_models'".into(),
                ))
            }
        };
        // check models one by one so an error can name the model
        let models = map.shift_remove("entity_models");
        let mut head: Support = serde_yaml::from_value(serde_yaml::Value::Mapping({
            let mut m = map.clone();
            m.insert("entity_models".into(), serde_yaml::Value::Sequence(vec![]));
            m
        }))
        .map_err(|e| err(None, e.to_string()))?;
        let models = match models {
            Some(serde_yaml::Value::Sequence(s)) => s,
            Some(_) => return Err(err(None, "entity_models: expected a list".into())),
            None => {
                return Err(err(
                    None,
                    "entity_models: Field required [type=missing]".into(),
                ))
            }
        };
        let mut names = Vec::new();
        for (i, raw) in models.into_iter().enumerate() {
            let name = raw
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("?")
                .to_owned();
            // only looked up when the model is bad
            let line = || find_line(text, &format!("name: {name}"));
            let mut model: EntityModel = serde_yaml::from_value(raw)
                .map_err(|e| err(line(), format!("entity_models.{i} ({name}): {e}")))?;
            check_model(&mut model)
                .map_err(|m| err(line(), format!("entity_models.{i} ({name}): {m}")))?;
            if names.contains(&model.name) {
                return Err(err(line(), format!("Duplicate entity name {}", model.name)));
            }
            names.push(model.name.clone());
            model.module = head.module.clone();
            head.entity_models.push(model);
        }
        for model in head.entity_models {
            self.models.insert(model.full_name(), Arc::new(model));
        }
        self.files.push(path.to_owned());
        Ok(())
    }

    /// The model for a published type name.
    pub fn get(&self, full_name: &str) -> Option<&Arc<EntityModel>> {
        self.models.get(full_name)
    }
}

/// The checks pydantic makes that serde's derive does not.
fn check_model(model: &mut EntityModel) -> Result<(), String> {
    use super::support::ParamKind;
    use serde_yaml::Value;
    for (name, p) in model.parameters.iter_mut() {
        // pydantic validates the support file's defaults against the param's own type
        // (`FloatParam.default: float | JinjaString`): an int default becomes a float
        let bad = |p: &super::support::Param| {
            format!(
                "parameters.{name}.{}.default: Input should be a valid {} [input_value={:?}]",
                p.kind.as_str(),
                p.kind.as_str(),
                p.default
            )
        };
        match (&p.kind, &p.default) {
            (ParamKind::Float, Some(Value::Number(n))) => {
                p.default = Some(Value::from(n.as_f64().unwrap_or(0.0)));
            }
            (ParamKind::Int, Some(Value::Number(n))) if !(n.is_i64() || n.is_u64()) => {
                let f = n.as_f64().unwrap_or(0.5);
                if f.fract() != 0.0 {
                    return Err(bad(p));
                }
                p.default = Some(Value::from(f as i64));
            }
            (ParamKind::Str | ParamKind::Id, Some(d))
                if !matches!(d, Value::String(_) | Value::Null) =>
            {
                return Err(bad(p));
            }
            // a non-Jinja string default is read in lax mode: "12" → 12, "yes" → True
            (ParamKind::Int | ParamKind::Float | ParamKind::Bool, Some(Value::String(t)))
                if !is_jinja(t) =>
            {
                let converted = match p.kind {
                    ParamKind::Int => t
                        .trim()
                        .replace('_', "")
                        .parse::<i64>()
                        .ok()
                        .map(Value::from),
                    ParamKind::Float => t.trim().parse::<f64>().ok().map(Value::from),
                    _ => match t.to_ascii_lowercase().as_str() {
                        "0" | "off" | "f" | "false" | "n" | "no" => Some(Value::Bool(false)),
                        "1" | "on" | "t" | "true" | "y" | "yes" => Some(Value::Bool(true)),
                        _ => None,
                    },
                };
                match converted {
                    Some(v) => p.default = Some(v),
                    None => return Err(bad(p)),
                }
            }
            (ParamKind::Bool, Some(Value::Number(n))) => match n.as_f64() {
                Some(f) if f == 0.0 || f == 1.0 => p.default = Some(Value::Bool(f == 1.0)),
                _ => return Err(bad(p)),
            },
            _ => {}
        }
        if p.kind == ParamKind::Enum && p.values.is_none() {
            return Err(format!(
                "parameters.{name}.enum.values: Field required [type=missing]"
            ));
        }
        if p.kind != ParamKind::Enum && p.values.is_some() {
            return Err(format!(
                "parameters.{name}.{}.values: Extra inputs are not permitted [type=extra_forbidden]",
                p.kind.as_str()
            ));
        }
    }
    for (name, d) in model.pre_defines.iter().chain(&model.post_defines) {
        if let Some(k) = &d.kind {
            if !["str", "float", "int", "bool", "list"].contains(&k.as_str()) {
                return Err(format!(
                    "defines.{name}.type: Input should be 'str', 'float', 'int', 'bool' or 'list' [type=enum]"
                ));
            }
        }
    }
    for item in model.pre_init.iter().chain(&model.post_init) {
        match item.kind.as_deref() {
            None | Some("text") => {}
            Some("comment") => {
                if !["first", "every", "last"].contains(&item.when()) {
                    return Err(format!(
                        "Text.type Input should be 'text'; Comment.when Input should be 'first', 'every' or 'last' [type=enum, input_value='{}']",
                        item.when()
                    ));
                }
            }
            Some(other) => {
                return Err(format!(
                    "script item type Input should be 'text' or 'comment' [input_value='{other}']"
                ))
            }
        }
    }
    for sub in &model.sub_entities {
        if !matches!(sub.get("type"), Some(serde_yaml::Value::String(_))) {
            return Err("sub_entities: type: Field required [type=missing]".into());
        }
    }
    Ok(())
}

/// ibek's Jinja pattern `.*\{\{.*\}\}.*`: `{{` then `}}` on one line.
fn is_jinja(s: &str) -> bool {
    s.lines()
        .any(|l| l.find("{{").is_some_and(|i| l[i + 2..].contains("}}")))
}

fn find_line(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().trim_start_matches("- ").trim_end() == needle)
        .map(|i| i + 1)
}

/// The default definition files of `generate2`: `$EPICS_ROOT/ibek-defs/**` then
/// `CONFIG_DIR/**`, each `*.ibek.support.yaml`, symlinks followed. ibek takes directory
/// order; we sort for reproducibility (order only matters for duplicate names). A folder that
/// is absent is skipped; one inside them that cannot be listed is an error naming it (ibek's
/// glob skips it silently, and its definitions would be missing without a word).
pub fn default_definition_files(
    ibek_defs: &Path,
    config_dir: Option<&Path>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    for dir in std::iter::once(ibek_defs).chain(config_dir) {
        let mut found = Vec::new();
        if dir.is_dir() {
            walk(dir, &mut found, 0)?;
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), ConfigError> {
    if depth > 16 {
        return Ok(());
    }
    let unreadable = |source| ConfigError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.is_dir() {
            walk(&path, out, depth + 1)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("ibek.support.yaml"))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn support(module: &str, names: &[&str], description: &str) -> String {
        let mut s = format!("module: {module}\nentity_models:\n");
        for n in names {
            s.push_str(&format!("  - name: {n}\n    description: {description}\n"));
        }
        s
    }

    #[test]
    fn cached_loads_are_the_plain_load() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = tmp.path().join("a.ibek.support.yaml");
        let b = tmp.path().join("b.ibek.support.yaml");
        std::fs::write(&a, support("m", &["one", "two"], "from a")).expect("write a");
        // b replaces m.one in place and adds m.three
        std::fs::write(&b, support("m", &["three", "one"], "from b")).expect("write b");
        let files = [a.clone(), b.clone()];
        let plain = Definitions::load(&files).expect("plain load");
        let mut cache = DefinitionCache::default();
        for _ in 0..2 {
            let cached = Definitions::load_cached(&files, &mut cache).expect("cached load");
            let names = |d: &Definitions| d.models.keys().cloned().collect::<Vec<_>>();
            assert_eq!(names(&cached), names(&plain));
            assert_eq!(names(&cached), ["m.one", "m.two", "m.three"]);
            assert_eq!(cached.models["m.one"].description, "from b");
            assert_eq!(cached.files, plain.files);
        }
        // one file alone, from the same cache
        let only_a = Definitions::load_cached(&files[..1], &mut cache).expect("a alone");
        assert_eq!(only_a.models["m.one"].description, "from a");
    }
}
