//! Phase 1: instance entities → entity objects with rendered fields, ids
//! registered, enums fixed up per file, then sub-entities and `ibek.repeat` expanded.

use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::{Value, ValueKind};

use crate::config::{Definitions, EntityModel, Instance, ParamKind, RawEntity};

use super::jinja::Engine;
use super::objects::{Entity, PyList};
use super::pyvalue::{from_yaml, py_str};
use super::validate::{check_enabled, check_model_args, FieldError};
use super::{EntityError, RenderError};

pub const REPEAT: &str = "ibek.repeat";
pub const WAIT_IP: &str = "ibek.wait_ip";
pub const WAIT_USB: &str = "ibek.wait_usb";

/// The Phase-1 state of one generate run: the id registry and shared define lists.
pub struct Resolver<'a> {
    pub engine: &'a Engine,
    defs: &'a Definitions,
    ids: IndexMap<String, Arc<Entity>>,
    shared_lists: IndexMap<(String, String), Value>,
    depth: usize,
}

/// How deep sub-entities and repeats may nest.
const MAX_DEPTH: usize = 100;

impl<'a> Resolver<'a> {
    pub fn new(engine: &'a Engine, defs: &'a Definitions) -> Resolver<'a> {
        Resolver {
            engine,
            defs,
            ids: IndexMap::new(),
            shared_lists: IndexMap::new(),
            depth: 0,
        }
    }

    /// Validate one instance file's entities in order, then fix up their enums.
    pub fn load_file(
        &mut self,
        inst: &Instance,
    ) -> Result<Vec<(Arc<Entity>, Origin)>, RenderError> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for raw in &inst.entities {
            let origin = Origin {
                file: inst.path.clone(),
                line: raw.line,
                column: raw.column,
                keys: raw.keys.clone(),
                index: Some(raw.index),
                parent: None,
            };
            match self.build_top(raw, &origin) {
                Ok(e) => {
                    e.set_origin(origin.describe());
                    out.push((e, origin))
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if !errors.is_empty() {
            return Err(RenderError::Entities(errors));
        }
        for (e, _) in &out {
            fixup_enums(e);
        }
        Ok(out)
    }

    fn build_top(
        &mut self,
        raw: &RawEntity,
        origin: &Origin,
    ) -> Result<Arc<Entity>, Vec<EntityError>> {
        let err = |type_name: &str, errs: Vec<FieldError>| -> Vec<EntityError> {
            errs.into_iter()
                .map(|f| entity_error(origin, type_name, f))
                .collect()
        };
        let Some(map) = raw.mapping() else {
            return Err(err(
                "?",
                vec![FieldError {
                    arg: None,
                    message:
                        "Input should be a valid dictionary or instance of Entity [type=model_type]"
                            .into(),
                }],
            ));
        };
        let args: IndexMap<String, Value> = map
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| py_str(&from_yaml(k))),
                    from_yaml(v),
                )
            })
            .collect();
        let Some(type_name) = raw.type_name() else {
            return Err(err("?", vec![FieldError { arg: None, message: "Unable to extract tag using discriminator 'type' [type=union_tag_not_found]".into() }]));
        };
        self.build(type_name, &args).map_err(|e| err(type_name, e))
    }

    /// Validate `args` as an entity of `type_name` and run Phase 1 on it.
    fn build(
        &mut self,
        type_name: &str,
        args: &IndexMap<String, Value>,
    ) -> Result<Arc<Entity>, Vec<FieldError>> {
        match type_name {
            REPEAT | WAIT_IP | WAIT_USB => builtin(type_name, args).map(Arc::new),
            _ => match self.defs.get(type_name).cloned() {
                Some(model) => self.build_model(&model, type_name, args),
                None => Err(vec![FieldError {
                    arg: None,
                    message: self.unknown_type(type_name),
                }]),
            },
        }
    }

    fn unknown_type(&self, type_name: &str) -> String {
        let tags: Vec<String> = self
            .defs
            .models
            .keys()
            .map(String::as_str)
            .chain([REPEAT, WAIT_IP, WAIT_USB])
            .map(|t| format!("'{t}'"))
            .collect();
        let hint = super::suggest::hint(
            type_name,
            self.defs
                .models
                .keys()
                .map(String::as_str)
                .chain([REPEAT, WAIT_IP, WAIT_USB]),
        );
        format!(
            "Input tag '{type_name}' found using 'type' does not match any of the expected tags: {} [type=union_tag_invalid]{hint}",
            tags.join(", ")
        )
    }

    fn build_model(
        &mut self,
        model: &Arc<EntityModel>,
        type_name: &str,
        args: &IndexMap<String, Value>,
    ) -> Result<Arc<Entity>, Vec<FieldError>> {
        let fields = check_model_args(model, type_name, args)?;
        let entity = Arc::new(Entity::new(Some(model.clone()), type_name, fields));
        self.phase1(model, &entity).map_err(|message| {
            vec![FieldError {
                arg: None,
                message: format!("Value error, {message}"),
            }]
        })?;
        Ok(entity)
    }

    /// `Entity.add_ibek_attributes`: pre_defines, parameters (model order), post_defines,
    /// then the `validate` assertions on enabled entities.
    fn phase1(&mut self, model: &Arc<EntityModel>, entity: &Arc<Entity>) -> Result<(), String> {
        for (name, define) in &model.pre_defines {
            let value = self.define_value(model, name, &define.value);
            self.process_field(entity, name, value, define.kind.as_deref().unwrap_or(""))?;
        }
        for (name, param) in &model.parameters {
            if name == "type" {
                // holds the entity's type name, never rendered or validated
                continue;
            }
            let value = entity.get(name).unwrap_or_default();
            self.process_field(entity, name, value, param.kind.as_str())?;
        }
        for (name, define) in &model.post_defines {
            let value = self.define_value(model, name, &define.value);
            self.process_field(entity, name, value, define.kind.as_deref().unwrap_or(""))?;
        }
        if entity.enabled() {
            for v in &model.validations {
                let text = format!(
                    "{{% if {} %}}True{{% else %}}False{{% endif %}}",
                    v.assertion
                );
                let result = self.engine.render(entity, &text, "").map_err(|e| {
                    format!(
                        "{type_name}: could not evaluate validation '{a}': {e}",
                        type_name = entity.type_name,
                        a = v.assertion
                    )
                })?;
                if py_str(&result) != "True" {
                    let msg = self.engine.render(entity, &v.message, "")?;
                    return Err(format!(
                        "{}: validation failed: {}",
                        entity.type_name,
                        py_str(&msg)
                    ));
                }
            }
        }
        Ok(())
    }

    /// A define's value: a non-string value is the very object in the model, so a list is
    /// one shared mutable list for every instance of the model.
    fn define_value(&mut self, model: &EntityModel, name: &str, raw: &serde_yaml::Value) -> Value {
        if let serde_yaml::Value::Sequence(_) = raw {
            let key = (model.full_name(), name.to_owned());
            return self
                .shared_lists
                .entry(key)
                .or_insert_with(|| {
                    let items = from_yaml(raw)
                        .try_iter()
                        .map(|i| i.collect())
                        .unwrap_or_default();
                    Value::from_object(PyList::new(items))
                })
                .clone();
        }
        from_yaml(raw)
    }

    /// `Entity._process_field`: render strings, look up objects, register ids.
    fn process_field(
        &mut self,
        entity: &Arc<Entity>,
        name: &str,
        value: Value,
        typ: &str,
    ) -> Result<(), String> {
        let mut value = value;
        if let Some(s) = value.as_str() {
            value = self.engine.render(entity, s, typ)?;
        }
        value = fresh_list(value);
        if value.as_str().is_some_and(|s| s.contains('\0')) {
            // ibek writes it as is; the IOC shell and msi would silently cut the line there
            return Err(format!(
                "'{name}' contains a NUL character (\\0), which st.cmd and ioc.subst cannot carry"
            ));
        }
        if typ == "object" {
            if let Some(id) = value.as_str() {
                value = match self.ids.get(id) {
                    Some(e) => Value::from_dyn_object(e.clone()),
                    None => return Err(format!("object {id} not found in {}", self.id_list())),
                };
            }
        }
        entity.set(name, value.clone());
        if typ == "id" {
            let key = py_str(&value);
            if self.ids.contains_key(&key) {
                return Err(format!("Duplicate id {key} in {}", self.id_list()));
            }
            self.ids.insert(key, entity.clone());
        }
        Ok(())
    }

    fn id_list(&self) -> String {
        let ids: Vec<String> = self
            .ids
            .keys()
            .map(|k| super::pyvalue::str_repr(k))
            .collect();
        format!("[{}]", ids.join(", "))
    }

    /// `resolve_sub_entities` over the whole top-level list.
    pub fn expand(
        &mut self,
        top: Vec<(Arc<Entity>, Origin)>,
    ) -> Result<Vec<Arc<Entity>>, RenderError> {
        let mut out = Vec::new();
        let items = top.into_iter().map(|(e, o)| (Item::Top(e), o)).collect();
        self.resolve_list(items, &IndexMap::new(), &mut out)?;
        Ok(out)
    }

    fn resolve_list(
        &mut self,
        items: Vec<(Item, Origin)>,
        ctx: &IndexMap<String, Value>,
        out: &mut Vec<Arc<Entity>>,
    ) -> Result<(), RenderError> {
        // a model that lists itself in sub_entities would recurse forever (RecursionError in
        // ibek); stop with an error instead of overflowing the stack
        if self.depth >= MAX_DEPTH {
            let origin = items.first().map(|(_, o)| o.describe()).unwrap_or_default();
            return Err(RenderError::Output {
                what: "sub-entities",
                message: format!(
                    "{origin}: sub_entities / ibek.repeat nested deeper than {MAX_DEPTH} levels (a model that contains itself?)"
                ),
            });
        }
        self.depth += 1;
        let result = self.resolve_items(items, ctx, out);
        self.depth -= 1;
        result
    }

    fn resolve_items(
        &mut self,
        items: Vec<(Item, Origin)>,
        ctx: &IndexMap<String, Value>,
        out: &mut Vec<Arc<Entity>>,
    ) -> Result<(), RenderError> {
        let mut ctx = ctx.clone();
        for (item, origin) in items {
            let entity = match item {
                Item::Top(e) if e.type_name == REPEAT => {
                    self.make_entity(e.model_dump(), &ctx, &origin)?
                }
                Item::Top(e) => e,
                Item::Dict(d) => self.make_entity(d, &ctx, &origin)?,
            };
            ctx.extend(entity.model_dump());
            if entity.type_name == REPEAT {
                self.resolve_repeat(&entity, &mut ctx, out, &origin)?;
                continue;
            }
            out.push(entity.clone());
            if let Some(model) = entity.model.clone() {
                for sub in &model.sub_entities {
                    let mut d: IndexMap<String, Value> = IndexMap::new();
                    // SubEntity.model_dump(): type, entity_enabled, then the extra keys
                    d.insert(
                        "type".into(),
                        sub.get("type").map(from_yaml).unwrap_or_default(),
                    );
                    d.insert(
                        "entity_enabled".into(),
                        sub.get("entity_enabled")
                            .map(from_yaml)
                            .unwrap_or(Value::from(true)),
                    );
                    for (k, v) in sub {
                        let k = k.as_str().unwrap_or_default();
                        if k != "type" && k != "entity_enabled" {
                            d.insert(k.to_owned(), from_yaml(v));
                        }
                    }
                    let o = Origin {
                        parent: Some(format!("sub_entities of {}", entity.type_name)),
                        ..origin.clone()
                    };
                    self.resolve_list(vec![(Item::Dict(d), o)], &ctx, out)?;
                }
            }
        }
        Ok(())
    }

    fn resolve_repeat(
        &mut self,
        repeat: &Arc<Entity>,
        ctx: &mut IndexMap<String, Value>,
        out: &mut Vec<Arc<Entity>>,
        origin: &Origin,
    ) -> Result<(), RenderError> {
        let values = repeat.get("values").unwrap_or_default();
        let variable = repeat
            .get("variable")
            .map(|v| py_str(&v))
            .unwrap_or_else(|| "index".into());
        let template = repeat.get("entity").unwrap_or_default();
        let items: Vec<Value> = match values.as_str() {
            Some(s) => s.chars().map(|c| Value::from(c.to_string())).collect(),
            None => values.try_iter().map(|i| i.collect()).unwrap_or_default(),
        };
        for (i, v) in items.into_iter().enumerate() {
            ctx.insert(variable.clone(), v);
            ctx.insert(format!("{variable}_num"), Value::from(i));
            let d = value_to_map(&template);
            self.resolve_list(vec![(Item::Dict(d), origin.clone())], &ctx.clone(), out)?;
        }
        Ok(())
    }

    /// `EntityFactory._make_entity`: render each top-level value with the context (typ "",
    /// lists element-wise), then validate as the named type (Phase 1 runs again).
    fn make_entity(
        &mut self,
        params: IndexMap<String, Value>,
        ctx: &IndexMap<String, Value>,
        origin: &Origin,
    ) -> Result<Arc<Entity>, RenderError> {
        let mut rendered = IndexMap::new();
        let type_hint = params.get("type").map(py_str).unwrap_or_default();
        // one shared copy of the context for all of this entity's renders
        let ctx = Arc::new(ctx.clone());
        for (k, v) in params {
            let v = self
                .render_arg(&ctx, v)
                .map_err(|message| sub_error(origin, &type_hint, Some(k.clone()), message))?;
            rendered.insert(k, v);
        }
        let type_name = match rendered.get("type") {
            Some(t) if t.kind() == ValueKind::String => py_str(t),
            _ => {
                return Err(sub_error(
                    origin,
                    &type_hint,
                    None,
                    "type: Field required [type=missing]".into(),
                ))
            }
        };
        if type_name != REPEAT
            && type_name != WAIT_IP
            && type_name != WAIT_USB
            && self.defs.get(&type_name).is_none()
        {
            // ibek: a KeyError, not a validation error
            return Err(sub_error(
                origin,
                &type_name,
                None,
                format!(
                    "unknown entity type '{type_name}' (KeyError){}",
                    super::suggest::hint(&type_name, self.defs.models.keys().map(String::as_str))
                ),
            ));
        }
        let built = self.build(&type_name, &rendered);
        if let Ok(e) = &built {
            e.set_origin(format!("{} (expanded)", origin.describe()));
        }
        built.map_err(|errs| {
            let class = type_name.replace('.', "_");
            let n = errs.len();
            let detail: Vec<String> = errs
                .into_iter()
                .map(|f| match f.arg {
                    Some(a) => format!("{a}: {}", f.message),
                    None => f.message,
                })
                .collect();
            sub_error(
                origin,
                &type_name,
                None,
                format!(
                    "{n} validation error{} for {class}: {}",
                    if n == 1 { "" } else { "s" },
                    detail.join("; ")
                ),
            )
        })
    }

    fn render_arg(&self, ctx: &Arc<IndexMap<String, Value>>, v: Value) -> Result<Value, String> {
        if let Some(s) = v.as_str() {
            return self.engine.render(ctx, s, "");
        }
        if v.kind() == ValueKind::Seq && v.downcast_object_ref::<PyList>().is_none() {
            let items: Vec<Value> = v
                .try_iter()
                .map_err(|e| e.to_string())?
                .map(|i| self.render_arg(ctx, i))
                .collect::<Result<_, _>>()?;
            return Ok(Value::from(items));
        }
        Ok(v)
    }
}

/// A list a field gets from rendering (`literal_eval` makes a new Python list) or from the
/// instance (pydantic copies it) is the entity's own mutable list: later entities may
/// `.append` to it through an object parameter. A define's non-string list
/// is already the model's one shared `PyList` and stays as it is.
fn fresh_list(value: Value) -> Value {
    if value.kind() != ValueKind::Seq
        || value.downcast_object_ref::<PyList>().is_some()
        || value
            .downcast_object_ref::<super::objects::PyTuple>()
            .is_some()
    {
        return value;
    }
    let items: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
    Value::from_object(PyList::new(items))
}

/// Where a top-level entity came from, carried into its expansions' errors.
#[derive(Clone, Debug)]
pub struct Origin {
    pub file: std::path::PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Positions of the top-level entity's keys (name, line, column).
    pub keys: Vec<(String, usize, usize)>,
    pub index: Option<usize>,
    pub parent: Option<String>,
}

impl Origin {
    fn describe(&self) -> String {
        let loc = crate::config::location(&self.file, self.line, None);
        match self.index {
            Some(i) => format!("{loc}: entities.{i}"),
            None => loc,
        }
    }
}

enum Item {
    Top(Arc<Entity>),
    Dict(IndexMap<String, Value>),
}

fn value_to_map(v: &Value) -> IndexMap<String, Value> {
    let mut out = IndexMap::new();
    if v.kind() == ValueKind::Map {
        if let Ok(keys) = v.try_iter() {
            for k in keys {
                let val = v.get_item(&k).unwrap_or_default();
                out.insert(py_str(&k), val);
            }
        }
    }
    out
}

fn entity_error(origin: &Origin, type_name: &str, f: FieldError) -> EntityError {
    // point at the argument's key when the instance has it, else at the entity
    let at_key = f
        .arg
        .as_ref()
        .filter(|_| origin.parent.is_none())
        .and_then(|a| origin.keys.iter().find(|(k, _, _)| k == a));
    let (line, column) = match at_key {
        Some((_, l, c)) => (Some(*l), Some(*c)),
        None => (origin.line, origin.column),
    };
    EntityError {
        file: origin.file.to_owned(),
        line,
        column,
        index: origin.index,
        type_name: type_name.to_owned(),
        arg: f.arg,
        context: origin.parent.clone(),
        message: f.message,
    }
}

fn sub_error(
    origin: &Origin,
    type_name: &str,
    arg: Option<String>,
    message: String,
) -> RenderError {
    RenderError::Entities(vec![EntityError {
        file: origin.file.clone(),
        line: origin.line,
        column: origin.column,
        index: origin.index,
        type_name: type_name.to_owned(),
        arg,
        context: origin.parent.clone(),
        message,
    }])
}

/// The built-in entity types: validated, never rendered at the top level.
fn builtin(type_name: &str, args: &IndexMap<String, Value>) -> Result<Entity, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fields = IndexMap::new();
    fields.insert("type".to_owned(), Value::from(type_name));
    match check_enabled(args) {
        Ok(v) => {
            fields.insert("entity_enabled".to_owned(), v);
        }
        Err(e) => errors.push(e),
    }
    let spec: &[(&str, Option<Value>, &str)] = match type_name {
        REPEAT => &[
            ("values", None, "values"),
            ("variable", Some(Value::from("index")), "str"),
            ("entity", None, "dict"),
        ],
        WAIT_IP => &[
            ("device", Some(Value::from("DEVICE")), "str"),
            ("timeout", Some(Value::from(0)), "int"),
            ("address", None, "str"),
        ],
        _ => &[
            ("device", Some(Value::from("DEVICE")), "str"),
            ("timeout", Some(Value::from(0)), "int"),
            ("id", None, "str"),
        ],
    };
    for (name, default, kind) in spec {
        let v = match (args.get(*name), default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => {
                fields.insert((*name).to_owned(), d.clone());
                continue;
            }
            (None, None) => {
                errors.push(FieldError {
                    arg: Some((*name).into()),
                    message: "Field required [type=missing]".into(),
                });
                continue;
            }
        };
        let ok = match *kind {
            "values" => matches!(v.kind(), ValueKind::Seq | ValueKind::String),
            "str" => v.kind() == ValueKind::String,
            "dict" => v.kind() == ValueKind::Map,
            _ => v.is_integer() || v.as_str().is_some_and(|s| s.trim().parse::<i64>().is_ok()),
        };
        if !ok {
            errors.push(FieldError {
                arg: Some((*name).into()),
                message: format!(
                    "Input should be a valid {kind} [input_value={}]",
                    super::pyvalue::py_repr(&v)
                ),
            });
            continue;
        }
        let v = if *kind == "int" {
            v.as_str()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .map(Value::from)
                .unwrap_or(v)
        } else {
            v
        };
        fields.insert((*name).to_owned(), v);
    }
    for key in args.keys() {
        if key != "type" && key != "entity_enabled" && !spec.iter().any(|(n, _, _)| n == key) {
            errors.push(FieldError {
                arg: Some(key.clone()),
                message: "Extra inputs are not permitted [type=extra_forbidden]".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(Entity::new(None, type_name, fields))
    } else {
        Err(errors)
    }
}

/// `IocFactory.fixup_enums`: a top-level entity's enum key becomes its value when the value
/// is not null.
fn fixup_enums(entity: &Arc<Entity>) {
    let Some(model) = entity.model.clone() else {
        return;
    };
    for (name, value) in entity.model_dump() {
        let Some(param) = model.parameters.get(&name).filter(|_| name != "type") else {
            continue;
        };
        if param.kind != ParamKind::Enum {
            continue;
        }
        let Some(values) = &param.values else {
            continue;
        };
        let found = values
            .iter()
            .find(|(k, _)| from_yaml(k) == value)
            .map(|(_, v)| v);
        if let Some(v) = found.filter(|v| !v.is_null()) {
            entity.set(&name, from_yaml(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_yaml;
    use std::path::Path;

    const SUPPORT: &str = "module: m
entity_models:
  - name: Ctrl
    description: c
    parameters:
      name: {type: id, description: n}
      mode: {type: enum, description: m, values: {fast: 1, slow: }, default: fast}
    post_defines:
      axes: {type: list, value: [], description: shared}
    sub_entities:
      - {type: m.Note, text: '{{ name }}-{{ mode }}-{{ type }}'}
  - name: Axis
    description: a
    parameters:
      name: {type: id, description: n}
      ctrl: {type: object, description: c}
    post_defines:
      added: {value: '{{ ctrl.axes.append(name) }}', description: d}
  - name: Note
    description: n
    parameters:
      text: {type: str, description: t}
";

    fn resolve(ioc: &str) -> Result<Vec<Arc<Entity>>, RenderError> {
        resolve_with(SUPPORT, ioc)
    }

    fn resolve_with(support: &str, ioc: &str) -> Result<Vec<Arc<Entity>>, RenderError> {
        let path = Path::new("s.ibek.support.yaml");
        let mut defs = Definitions::default();
        defs.add_value(path, support, parse_yaml(path, support).unwrap())
            .unwrap();
        let engine = Engine::new("ioc");
        let inst = Instance::parse(Path::new("ioc.yaml"), ioc).unwrap();
        let mut r = Resolver::new(&engine, &defs);
        let top = r.load_file(&inst)?;
        r.expand(top)
    }

    fn field(e: &Entity, name: &str) -> String {
        py_str(&e.get(name).unwrap())
    }

    #[test]
    fn objects_shared_lists_enums_and_sub_entities() {
        let all = resolve(
            "ioc_name: x\ndescription: d\nentities:\n  - {type: m.Ctrl, name: c1}\n  - {type: m.Axis, name: a1, ctrl: c1}\n  - {type: m.Axis, name: a2, ctrl: c1}\n",
        )
        .unwrap();
        let types: Vec<&str> = all.iter().map(|e| e.type_name.as_str()).collect();
        assert_eq!(types, ["m.Ctrl", "m.Note", "m.Axis", "m.Axis"]);
        // the enum was fixed up to its value after the file; the sub-entity saw it
        assert_eq!(field(&all[0], "mode"), "1");
        assert_eq!(field(&all[1], "text"), "c1-1-m.Ctrl");
        // both axes appended to the one list the model's define holds; append prints None
        assert_eq!(field(&all[0], "axes"), "['a1', 'a2']");
        assert_eq!(field(&all[2], "added"), "None");
        // an object field prints as the id
        assert_eq!(field(&all[3], "ctrl"), "c1");
    }

    #[test]
    fn a_rendered_list_define_is_each_instances_own() {
        let support = "module: m
entity_models:
  - name: Gauge
    description: g
    parameters:
      name: {type: id, description: n}
    pre_defines:
      relays: {type: list, value: '{{ [] | list }}', description: per instance}
  - name: Relay
    description: r
    parameters:
      gauge: {type: object, description: g}
    post_defines:
      n:
        type: int
        description: relay number on its gauge
        value: |-
          {% set nothing = gauge.relays.append(0) %}
          {{ gauge.relays | length }}
";
        let all = resolve_with(
            support,
            "ioc_name: x\ndescription: d\nentities:\n  - {type: m.Gauge, name: G1}\n  - {type: m.Gauge, name: G2}\n  - {type: m.Relay, gauge: G1}\n  - {type: m.Relay, gauge: G1}\n  - {type: m.Relay, gauge: G2}\n",
        )
        .unwrap();
        assert_eq!(field(&all[0], "relays"), "[0, 0]");
        assert_eq!(field(&all[1], "relays"), "[0]");
        let numbers: Vec<String> = all[2..].iter().map(|e| field(e, "n")).collect();
        assert_eq!(numbers, ["1", "2", "1"]);
    }

    #[test]
    fn a_parameter_named_type_holds_the_type_name() {
        let support = "module: t
entity_models:
  - name: Attr
    description: a
    parameters:
      type: {type: enum, description: k, values: {EPICS_PV: , PARAM: }, default: EPICS_PV}
      label: {type: str, description: l, default: '{{ type }}-x'}
";
        let all = resolve_with(
            support,
            "ioc_name: x\ndescription: d\nentities:\n  - {type: t.Attr}\n",
        )
        .unwrap();
        assert_eq!(field(&all[0], "type"), "t.Attr");
        assert_eq!(field(&all[0], "label"), "t.Attr-x");
    }

    #[test]
    fn ids_are_checked_in_order() {
        let e = resolve("ioc_name: x\ndescription: d\nentities:\n  - {type: m.Axis, name: a1, ctrl: c1}\n  - {type: m.Ctrl, name: c1}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("object c1 not found in ['a1']"), "{e}");
        let e = resolve("ioc_name: x\ndescription: d\nentities:\n  - {type: m.Ctrl, name: c1}\n  - {type: m.Ctrl, name: c1, entity_enabled: false}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Duplicate id c1 in ['c1']"), "{e}");
    }

    #[test]
    fn unknown_type_lists_the_tags() {
        let e = resolve("ioc_name: x\ndescription: d\nentities:\n  - {type: m.Nope}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ioc.yaml:4:5: entities.0.`m.Nope`"), "{e}");
        assert!(
            e.contains(
                "'m.Ctrl', 'm.Axis', 'm.Note', 'ibek.repeat', 'ibek.wait_ip', 'ibek.wait_usb'"
            ),
            "{e}"
        );
    }

    #[test]
    fn repeat_expands_with_index() {
        let all = resolve(
            "ioc_name: x\ndescription: d\nentities:\n  - type: ibek.repeat\n    values: \"{{ range(2) | list }}\"\n    variable: i\n    entity: {type: m.Note, text: 'n{{ i }}/{{ i_num }}'}\n",
        )
        .unwrap();
        let texts: Vec<String> = all.iter().map(|e| field(e, "text")).collect();
        assert_eq!(texts, ["n0/0", "n1/1"]);
    }
}
