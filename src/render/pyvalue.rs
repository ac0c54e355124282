//! Python value semantics on minijinja values: `str()`, `repr()`, float repr, the
//! `ast.literal_eval` + cast coercion of `Utils.render`, and YAML → value.

use minijinja::value::{Value, ValueKind};

use super::objects::{Entity, PyList, PyTuple};

/// YAML as loaded by ruamel becomes Python objects; here, minijinja values.
pub fn from_yaml(v: &serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::from(()),
        Y::Bool(b) => Value::from(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Y::String(s) => Value::from(s.as_str()),
        Y::Sequence(s) => Value::from(s.iter().map(from_yaml).collect::<Vec<_>>()),
        Y::Mapping(m) => Value::from_iter(m.iter().map(|(k, v)| (from_yaml(k), from_yaml(v)))),
        Y::Tagged(t) if t.tag == "date" => match PyDate::parse(t.value.as_str().unwrap_or("")) {
            Some(d) => Value::from_object(d),
            None => from_yaml(&t.value),
        },
        Y::Tagged(t) => from_yaml(&t.value),
    }
}

/// A YAML date (`2001-01-01`), which ruamel loads as `datetime.date`.
#[derive(Debug, Clone, Copy)]
pub struct PyDate {
    year: u32,
    month: u32,
    day: u32,
}

impl PyDate {
    fn parse(s: &str) -> Option<PyDate> {
        let mut it = s.split('-').map(|p| p.parse::<u32>().ok());
        Some(PyDate {
            year: it.next()??,
            month: it.next()??,
            day: it.next()??,
        })
    }

    /// `repr(date)`.
    pub fn repr(&self) -> String {
        format!("datetime.date({}, {}, {})", self.year, self.month, self.day)
    }
}

impl minijinja::value::Object for PyDate {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn render(self: &std::sync::Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

pub use crate::pyfmt::float_repr;

/// Python `str(value)`.
pub fn py_str(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => v.as_str().unwrap_or_default().to_owned(),
        _ => py_repr_inner(v, false),
    }
}

/// Python `repr(value)`.
pub fn py_repr(v: &Value) -> String {
    py_repr_inner(v, true)
}

fn py_repr_inner(v: &Value, quote: bool) -> String {
    if let Some(e) = v.downcast_object_ref::<Entity>() {
        return e.id_string();
    }
    if let Some(l) = v.downcast_object_ref::<PyList>() {
        return seq_repr(l.items().iter());
    }
    if let Some(t) = v.downcast_object_ref::<PyTuple>() {
        let parts: Vec<String> = t.0.iter().map(py_repr).collect();
        return match parts.len() {
            1 => format!("({},)", parts[0]),
            _ => format!("({})", parts.join(", ")),
        };
    }
    if let Some(d) = v.downcast_object_ref::<PyDate>() {
        return if quote { d.repr() } else { v.to_string() };
    }
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number => {
            if let Some(f) = as_float_only(v) {
                float_repr(f)
            } else {
                v.to_string()
            }
        }
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            if quote {
                str_repr(s)
            } else {
                s.to_owned()
            }
        }
        ValueKind::Seq | ValueKind::Iterable => match v.try_iter() {
            Ok(it) => seq_repr(it.collect::<Vec<_>>().iter()),
            Err(_) => v.to_string(),
        },
        ValueKind::Map => {
            let mut out = String::from("{");
            if let Ok(keys) = v.try_iter() {
                for (i, k) in keys.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let val = v.get_item(&k).unwrap_or_default();
                    out.push_str(&py_repr(&k));
                    out.push_str(": ");
                    out.push_str(&py_repr(&val));
                }
            }
            out.push('}');
            out
        }
        _ => v.to_string(),
    }
}

fn seq_repr<'a>(items: impl Iterator<Item = &'a Value>) -> String {
    let parts: Vec<String> = items.map(py_repr).collect();
    format!("[{}]", parts.join(", "))
}

/// The f64 of a float value (not of an integer).
pub fn as_float_only(v: &Value) -> Option<f64> {
    if v.kind() == ValueKind::Number && !v.is_integer() {
        f64::try_from(v.clone()).ok()
    } else {
        None
    }
}

/// Python's string repr: single quotes unless the text has a `'` and no `"`.
pub fn str_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Python truthiness.
pub fn py_truthy(v: &Value) -> bool {
    if let Some(l) = v.downcast_object_ref::<PyList>() {
        return !l.items().is_empty();
    }
    v.is_true()
}

/// `cast(ast.literal_eval(text))` for `typ` in int/float/bool/list/dict.
pub fn coerce(text: &str, typ: &str) -> Result<Value, String> {
    let v = super::literal::literal_eval(text)?;
    cast(&v, typ)
}

/// Python's builtin `int()`, `float()`, `bool()`, `list()`, `dict()` of a value.
pub fn cast(v: &Value, typ: &str) -> Result<Value, String> {
    match typ {
        "int" => {
            if v.kind() == ValueKind::Bool {
                return Ok(Value::from(v.is_true() as i64));
            }
            if v.is_integer() {
                return Ok(v.clone());
            }
            if let Some(f) = as_float_only(v) {
                if !f.is_finite() {
                    return Err("cannot convert float infinity to integer".into());
                }
                return Ok(Value::from(f.trunc() as i64));
            }
            if let Some(s) = v.as_str() {
                let t = s.trim().replace('_', "");
                return t.parse::<i64>().map(Value::from).map_err(|_| {
                    format!("invalid literal for int() with base 10: {}", str_repr(s))
                });
            }
            Err(format!(
                "int() argument must be a string, a bytes-like object or a real number, not '{}'",
                type_name(v)
            ))
        }
        "float" => {
            if v.kind() == ValueKind::Bool {
                return Ok(Value::from(if v.is_true() { 1.0 } else { 0.0 }));
            }
            if v.kind() == ValueKind::Number {
                return Ok(Value::from(f64::try_from(v.clone()).unwrap_or(0.0)));
            }
            if let Some(s) = v.as_str() {
                return parse_py_float(s)
                    .map(Value::from)
                    .ok_or_else(|| format!("could not convert string to float: {}", str_repr(s)));
            }
            Err(format!(
                "float() argument must be a string or a real number, not '{}'",
                type_name(v)
            ))
        }
        "bool" => Ok(Value::from(py_truthy(v))),
        "list" => match v.kind() {
            ValueKind::String => Ok(Value::from(
                v.as_str()
                    .unwrap_or_default()
                    .chars()
                    .map(|c| Value::from(c.to_string()))
                    .collect::<Vec<_>>(),
            )),
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => Ok(Value::from(
                v.try_iter().map_err(|e| e.to_string())?.collect::<Vec<_>>(),
            )),
            _ => Err(format!("'{}' object is not iterable", type_name(v))),
        },
        "dict" => match v.kind() {
            ValueKind::Map => Ok(v.clone()),
            ValueKind::Seq => {
                let mut pairs = Vec::new();
                for item in v.try_iter().map_err(|e| e.to_string())? {
                    let k = item.get_item_by_index(0).map_err(|e| e.to_string())?;
                    let val = item.get_item_by_index(1).map_err(|e| e.to_string())?;
                    pairs.push((k, val));
                }
                Ok(Value::from_iter(pairs))
            }
            _ => Err(format!("'{}' object is not iterable", type_name(v))),
        },
        _ => Ok(v.clone()),
    }
}

/// Python `float(str)`: decimal, exponent, `inf`/`nan`, underscores between digits.
pub fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim().replace('_', "");
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if ["inf", "infinity", "nan"].contains(&body) {
        return lower.parse::<f64>().ok();
    }
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || ".e+-".contains(c))
    {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Python's type name of a value, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    if v.downcast_object_ref::<Entity>().is_some() {
        return "Entity";
    }
    match v.kind() {
        ValueKind::None | ValueKind::Undefined => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number => {
            if v.is_integer() {
                "int"
            } else {
                "float"
            }
        }
        ValueKind::String => "str",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_of_containers() {
        let v = Value::from(vec![Value::from("a"), Value::from(1.0), Value::from(())]);
        assert_eq!(py_str(&v), "['a', 1.0, None]");
        let m = Value::from_iter([(Value::from("k"), Value::from(true))]);
        assert_eq!(py_str(&m), "{'k': True}");
        assert_eq!(str_repr("it's"), "\"it's\"");
    }

    #[test]
    fn casts() {
        assert_eq!(coerce("5", "float").unwrap().to_string(), "5.0");
        assert!(coerce("true", "bool").is_err());
        assert!(py_truthy(&coerce("True", "bool").unwrap()));
        assert!(coerce("range(3)", "list")
            .unwrap_err()
            .starts_with("malformed node"));
        assert_eq!(py_str(&coerce("[1, 2]", "list").unwrap()), "[1, 2]");
    }
}
