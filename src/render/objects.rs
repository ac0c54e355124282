//! The Python objects templates see: entities (print as their id, attributes are fields),
//! shared mutable lists (`.append` on a list define), the `_global` helper
//! (`Utils`) and the read-only `env` mapping.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use minijinja::value::{from_args, Enumerator, Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};

use crate::config::EntityModel;

use super::pyvalue::{py_str, py_truthy};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // a panic while holding the lock cannot leave the data inconsistent for our uses
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One entity instance: its model, its fields in `__dict__` order (type, entity_enabled,
/// parameters, then defines as they are added) and the names declared by the model.
#[derive(Debug)]
pub struct Entity {
    pub model: Option<Arc<EntityModel>>,
    pub type_name: String,
    fields: Mutex<IndexMap<String, Value>>,
    declared: Vec<String>,
    origin: Mutex<String>,
}

impl Entity {
    /// A new entity with its declared fields.
    pub fn new(
        model: Option<Arc<EntityModel>>,
        type_name: &str,
        fields: IndexMap<String, Value>,
    ) -> Entity {
        let declared = fields.keys().cloned().collect();
        Entity {
            model,
            type_name: type_name.to_owned(),
            fields: Mutex::new(fields),
            declared,
            origin: Mutex::default(),
        }
    }

    /// Where this entity came from (`ioc.yaml:12: entities.3`), for Phase-2 error messages.
    pub fn origin(&self) -> String {
        let o = lock(&self.origin).clone();
        format!("{o} `{}`", self.type_name)
    }

    /// Record where this entity came from.
    pub fn set_origin(&self, origin: String) {
        *lock(&self.origin) = origin;
    }

    /// A field's current value.
    pub fn get(&self, name: &str) -> Option<Value> {
        lock(&self.fields).get(name).cloned()
    }

    /// Set a field (a new name is appended, as `setattr` adds to `__dict__`).
    pub fn set(&self, name: &str, value: Value) {
        lock(&self.fields).insert(name.to_owned(), value);
    }

    /// A copy of all fields, in order (`dict(entity)`).
    pub fn fields(&self) -> IndexMap<String, Value> {
        lock(&self.fields).clone()
    }

    /// Call `f` on every field in order, without copying the map.
    pub fn for_each_field(&self, f: &mut dyn FnMut(&str, &Value)) {
        for (k, v) in lock(&self.fields).iter() {
            f(k, v);
        }
    }

    /// Whether a name is in `__dict__`.
    pub fn has(&self, name: &str) -> bool {
        lock(&self.fields).contains_key(name)
    }

    /// `entity_enabled` (default true).
    pub fn enabled(&self) -> bool {
        self.get("entity_enabled")
            .map(|v| py_truthy(&v))
            .unwrap_or(true)
    }

    /// `str(entity)`: the value of the model's first id parameter.
    pub fn id_string(&self) -> String {
        match self.model.as_ref().and_then(|m| m.id_param()) {
            Some(id) => self.get(id).map(|v| py_str(&v)).unwrap_or_default(),
            None => format!("<{} object>", self.type_name),
        }
    }

    /// Whether this entity can be printed (it has an id parameter).
    pub fn has_id(&self) -> bool {
        self.model.as_ref().and_then(|m| m.id_param()).is_some()
    }

    /// pydantic `model_dump()`: the declared fields only (no defines), with referenced
    /// entities dumped to plain dicts.
    pub fn model_dump(&self) -> IndexMap<String, Value> {
        let fields = lock(&self.fields);
        self.declared
            .iter()
            .filter_map(|k| fields.get(k).map(|v| (k.clone(), dump_value(v))))
            .collect()
    }
}

fn dump_value(v: &Value) -> Value {
    if let Some(e) = v.downcast_object_ref::<Entity>() {
        return Value::from_iter(e.model_dump());
    }
    if let Some(l) = v.downcast_object_ref::<PyList>() {
        return Value::from(l.items().iter().map(dump_value).collect::<Vec<_>>());
    }
    v.clone()
}

impl Object for Entity {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str().and_then(|k| self.get(k))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id_string())
    }
}

/// A Python list shared by reference: every holder sees `.append`.
#[derive(Debug, Default)]
pub struct PyList {
    items: Mutex<Vec<Value>>,
}

impl PyList {
    /// A shared list holding `items`.
    pub fn new(items: Vec<Value>) -> PyList {
        PyList {
            items: Mutex::new(items),
        }
    }

    /// A copy of the items.
    pub fn items(&self) -> Vec<Value> {
        lock(&self.items).clone()
    }
}

impl Object for PyList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = lock(&self.items);
        let i = i64::try_from(key.clone()).ok()?;
        let i = if i < 0 { items.len() as i64 + i } else { i };
        items.get(usize::try_from(i).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(lock(&self.items).len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "append" => {
                let (item,): (Value,) = from_args(args)?;
                lock(&self.items).push(item);
                Ok(Value::from(()))
            }
            "extend" => {
                let (more,): (Value,) = from_args(args)?;
                let new: Vec<Value> = more.try_iter()?.collect();
                lock(&self.items).extend(new);
                Ok(Value::from(()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::pyvalue::py_str(&Value::from_dyn_object(
            self.clone(),
        )))
    }
}

/// The `_global` object (ibek's `Utils`): variables shared by every render.
#[derive(Debug, Default)]
pub struct Globals {
    /// Copied on write: a render holds the variables as they were when it started (ibek passes
    /// them by name into each render), so taking them costs one reference count.
    vars: Mutex<Arc<IndexMap<String, Value>>>,
}

impl Globals {
    /// The variables now (they are passed by name into each render); later changes do not
    /// show in the snapshot.
    pub fn snapshot(&self) -> Arc<IndexMap<String, Value>> {
        lock(&self.vars).clone()
    }

    /// Call `f` on every variable in order.
    pub fn for_each(&self, f: &mut dyn FnMut(&str, &Value)) {
        for (k, v) in lock(&self.vars).iter() {
            f(k, v);
        }
    }

    /// Whether a variable exists (`arg in UTILS.variables`).
    pub fn contains(&self, key: &str) -> bool {
        lock(&self.vars).contains_key(key)
    }

    fn incrementor(&self, args: &[Value]) -> Result<Value, Error> {
        let (name, start, increment, stop, kwargs): (
            Value,
            Option<Value>,
            Option<Value>,
            Option<Value>,
            Kwargs,
        ) = from_args(args)?;
        let start = match start {
            Some(v) => v,
            None => kwargs
                .get::<Option<Value>>("start")?
                .unwrap_or(Value::from(0)),
        };
        let increment = match increment {
            Some(v) => v,
            None => kwargs
                .get::<Option<Value>>("increment")?
                .unwrap_or(Value::from(1)),
        };
        let stop = match stop {
            Some(v) => Some(v),
            None => kwargs.get::<Option<Value>>("stop")?,
        }
        .filter(|v| !v.is_none());
        kwargs.assert_all_used()?;
        let index = py_str(&name);
        let mut guard = lock(&self.vars);
        let vars = Arc::make_mut(&mut guard);
        match vars.get(&index).filter(|v| !v.is_none()).cloned() {
            None => {
                vars.insert(index.clone(), start);
            }
            Some(counter) => {
                let Some(c) = as_py_int(&counter) else {
                    return Err(value_error(format!("Variable {index} is not an integer")));
                };
                let inc = as_py_int(&increment)
                    .ok_or_else(|| value_error("increment must be an integer".into()))?;
                let new = c + inc;
                vars.insert(index.clone(), Value::from(new));
                if let Some(stop) = stop {
                    let s = f64::try_from(stop.clone()).unwrap_or(f64::INFINITY);
                    if (new as f64) > s {
                        return Err(value_error(format!(
                            "Counter {index} exceeded maximum value of {}",
                            py_str(&stop)
                        )));
                    }
                }
            }
        }
        Ok(vars.get(&index).cloned().unwrap_or_default())
    }
}

fn as_py_int(v: &Value) -> Option<i128> {
    if v.kind() == minijinja::value::ValueKind::Bool {
        return Some(v.is_true() as i128);
    }
    if v.is_integer() {
        i128::try_from(v.clone()).ok()
    } else {
        None
    }
}

/// A Python `ValueError` raised inside a template.
pub fn value_error(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

impl Object for Globals {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "get_env" => {
                let (key,): (Value,) = from_args(args)?;
                Ok(Value::from(std::env::var(py_str(&key)).unwrap_or_default()))
            }
            "set" => {
                let (key, value): (Value, Value) = from_args(args)?;
                Arc::make_mut(&mut lock(&self.vars)).insert(py_str(&key), value.clone());
                Ok(value)
            }
            "get" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                let found = lock(&self.vars).get(&py_str(&key)).cloned();
                Ok(found.or(default).unwrap_or(Value::from("")))
            }
            "incrementor" => self.incrementor(args),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<ibek.utils.Utils object>")
    }
}

/// The `env` global: a read-only view of the process environment (new in ibek 4.8.2).
#[derive(Debug, Default)]
pub struct EnvMap;

impl Object for EnvMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str()
            .and_then(|k| std::env::var(k).ok())
            .map(Value::from)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<Value> = std::env::vars().map(|(k, _)| Value::from(k)).collect();
        Enumerator::Values(keys)
    }
}

/// A Python tuple: a sequence that prints as `(1, 2)` (minijinja parses tuples as lists).
#[derive(Debug, Default)]
pub struct PyTuple(pub Vec<Value>);

impl Object for PyTuple {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = i64::try_from(key.clone()).ok()?;
        let i = if i < 0 { self.0.len() as i64 + i } else { i };
        self.0.get(usize::try_from(i).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.len())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::pyvalue::py_str(&Value::from_dyn_object(
            self.clone(),
        )))
    }
}
