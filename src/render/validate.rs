//! pydantic's checks of one entity's arguments against its model, in lax mode:
//! required and extra keys, `"12"` → 12, `"true"` → True, int → float, Jinja strings kept
//! for later rendering, enum keys. Error texts keep pydantic's wording, which ibek's tests and
//! users grep for (`Field required [type=missing`, `Extra inputs are not permitted`).

use indexmap::IndexMap;
use minijinja::value::{Value, ValueKind};

use crate::config::{EntityModel, Param, ParamKind};

use super::pyvalue::{as_float_only, from_yaml, parse_py_float, py_repr, type_name};

/// One failed field: the argument (None for the entity itself) and pydantic's message.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub arg: Option<String>,
    pub message: String,
}

impl FieldError {
    fn new(arg: &str, message: String) -> FieldError {
        FieldError {
            arg: Some(arg.to_owned()),
            message,
        }
    }
}

/// Check `args` (the instance keys) for `model`; the result is the entity's declared fields in
/// `__dict__` order: `type`, `entity_enabled`, then the parameters in model order.
pub fn check_model_args(
    model: &EntityModel,
    type_name_: &str,
    args: &IndexMap<String, Value>,
) -> Result<IndexMap<String, Value>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fields = IndexMap::new();
    fields.insert("type".to_owned(), Value::from(type_name_));
    match check_enabled(args) {
        Ok(v) => {
            fields.insert("entity_enabled".to_owned(), v);
        }
        Err(e) => errors.push(e),
    }
    for (name, param) in &model.parameters {
        if name == "type" {
            // a parameter named `type` is shadowed by the entity's own type name: it keeps
            // that value and is never validated
            continue;
        }
        let value = match args.get(name) {
            Some(v) => v.clone(),
            None => match &param.default {
                Some(d) if !d.is_null() => from_yaml(d),
                _ => {
                    errors.push(FieldError::new(
                        name,
                        "Field required [type=missing]".into(),
                    ));
                    continue;
                }
            },
        };
        // defaults are not validated by pydantic
        if !args.contains_key(name) {
            fields.insert(name.clone(), value);
            continue;
        }
        match check_param(param, &value) {
            Ok(v) => {
                fields.insert(name.clone(), v);
            }
            Err(msgs) => errors.extend(msgs.into_iter().map(|m| FieldError::new(name, m))),
        }
    }
    for (key, value) in args {
        if key != "type" && key != "entity_enabled" && !model.parameters.contains_key(key) {
            errors.push(FieldError::new(
                key,
                format!(
                    "Extra inputs are not permitted [type=extra_forbidden, input_value={}, input_type={}]{}",
                    py_repr(value),
                    type_name(value),
                    super::suggest::hint(
                        key,
                        model
                            .parameters
                            .keys()
                            .map(String::as_str)
                            .filter(|p| !args.contains_key(*p))
                    )
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(fields)
    } else {
        Err(errors)
    }
}

/// `entity_enabled: bool = True` in lax mode.
pub fn check_enabled(args: &IndexMap<String, Value>) -> Result<Value, FieldError> {
    match args.get("entity_enabled") {
        None => Ok(Value::from(true)),
        Some(v) => lax_bool(v).map(Value::from).ok_or_else(|| {
            FieldError::new(
                "entity_enabled",
                format!(
                    "Input should be a valid boolean [type=bool_type, input_value={}, input_type={}]",
                    py_repr(v),
                    type_name(v)
                ),
            )
        }),
    }
}

/// ibek's Jinja pattern `.*\{\{.*\}\}.*`: `{{` then `}}` on one line.
pub fn is_jinja(s: &str) -> bool {
    s.lines()
        .chain(s.split('\r'))
        .any(|l| l.find("{{").is_some_and(|i| l[i + 2..].contains("}}")))
}

fn input(v: &Value) -> String {
    format!("input_value={}, input_type={}", py_repr(v), type_name(v))
}

/// Validate one argument value for its parameter type.
pub fn check_param(param: &Param, v: &Value) -> Result<Value, Vec<String>> {
    let pattern_err = |v: &Value| {
        format!(
            "constrained-str: String should match pattern '.*\\{{\\{{.*\\}}\\}}.*' [type=string_pattern_mismatch, {}]",
            input(v)
        )
    };
    let str_type_err = |v: &Value| {
        format!(
            "constrained-str: Input should be a valid string [type=string_type, {}]",
            input(v)
        )
    };
    match param.kind {
        ParamKind::Str | ParamKind::Id => match v.kind() {
            ValueKind::String => Ok(v.clone()),
            _ => Err(vec![format!(
                "Input should be a valid string [type=string_type, {}]",
                input(v)
            )]),
        },
        ParamKind::Object => Ok(v.clone()),
        ParamKind::Enum => check_enum(param, v),
        ParamKind::Int | ParamKind::Float | ParamKind::Bool | ParamKind::List | ParamKind::Dict => {
            if let Some(s) = v.as_str() {
                if is_jinja(s) {
                    return Ok(v.clone());
                }
            }
            let kind = param.kind.as_str();
            let (converted, err) = match param.kind {
                ParamKind::Int => (lax_int(v), "Input should be a valid integer"),
                ParamKind::Float => (lax_float(v), "Input should be a valid number"),
                ParamKind::Bool => (
                    lax_bool(v).map(Value::from),
                    "Input should be a valid boolean",
                ),
                ParamKind::List => (
                    (v.kind() == ValueKind::Seq).then(|| v.clone()),
                    "Input should be a valid list",
                ),
                _ => (
                    (v.kind() == ValueKind::Map).then(|| v.clone()),
                    "Input should be a valid dictionary",
                ),
            };
            if let Some(c) = converted {
                return Ok(c);
            }
            let first = if v.kind() == ValueKind::String {
                pattern_err(v)
            } else {
                str_type_err(v)
            };
            let second = if param.kind == ParamKind::Int && as_float_only(v).is_some() {
                format!("int: Input should be a valid integer, got a number with a fractional part [type=int_from_float, {}]", input(v))
            } else if v.kind() == ValueKind::String {
                let how = match param.kind {
                    ParamKind::Int => "unable to parse string as an integer",
                    ParamKind::Float => "unable to parse string as a number",
                    _ => "unable to interpret input",
                };
                format!("{kind}: {err}, {how} [type={kind}_parsing, {}]", input(v))
            } else {
                format!("{kind}: {err} [type={kind}_type, {}]", input(v))
            };
            Err(vec![first, second])
        }
    }
}

fn check_enum(param: &Param, v: &Value) -> Result<Value, Vec<String>> {
    let keys: Vec<Value> = param
        .values
        .as_ref()
        .map(|m| m.keys().map(from_yaml).collect())
        .unwrap_or_default();
    if keys.iter().any(|k| k == v) {
        return Ok(v.clone());
    }
    let names: Vec<String> = keys.iter().map(py_repr).collect();
    let list = match names.len() {
        0 => String::new(),
        1 => names[0].clone(),
        n => format!("{} or {}", names[..n - 1].join(", "), names[n - 1]),
    };
    Err(vec![format!(
        "Input should be {list} [type=enum, {}]",
        input(v)
    )])
}

/// pydantic lax int: ints, whole floats, numeric strings, bools.
fn lax_int(v: &Value) -> Option<Value> {
    match v.kind() {
        ValueKind::Bool => Some(Value::from(v.is_true() as i64)),
        ValueKind::Number if v.is_integer() => Some(v.clone()),
        ValueKind::Number => as_float_only(v)
            .filter(|f| f.fract() == 0.0 && f.is_finite())
            .map(|f| Value::from(f as i64)),
        ValueKind::String => {
            let s = v.as_str()?.trim();
            s.replace('_', "").parse::<i64>().ok().map(Value::from)
        }
        _ => None,
    }
}

/// pydantic lax float: numbers become floats (`50` → `50.0`), numeric strings.
fn lax_float(v: &Value) -> Option<Value> {
    match v.kind() {
        ValueKind::Bool => Some(Value::from(if v.is_true() { 1.0 } else { 0.0 })),
        ValueKind::Number => f64::try_from(v.clone()).ok().map(Value::from),
        ValueKind::String => parse_py_float(v.as_str()?).map(Value::from),
        _ => None,
    }
}

/// pydantic lax bool: bools, 0/1, and the strings yes/no/true/false/on/off/y/n/t/f/1/0.
pub fn lax_bool(v: &Value) -> Option<bool> {
    match v.kind() {
        ValueKind::Bool => Some(v.is_true()),
        ValueKind::Number => {
            let f = f64::try_from(v.clone()).ok()?;
            if f == 0.0 {
                Some(false)
            } else if f == 1.0 {
                Some(true)
            } else {
                None
            }
        }
        ValueKind::String => match v.as_str()?.to_ascii_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
            "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(kind: &str) -> Param {
        serde_yaml::from_str(&format!("{{type: {kind}, description: d}}")).unwrap()
    }

    #[test]
    fn lax_conversions() {
        assert_eq!(
            check_param(&param("int"), &Value::from("12")).unwrap(),
            Value::from(12)
        );
        assert_eq!(
            check_param(&param("bool"), &Value::from("true")).unwrap(),
            Value::from(true)
        );
        let f = check_param(&param("float"), &Value::from(50)).unwrap();
        assert_eq!(super::super::pyvalue::py_str(&f), "50.0");
        assert_eq!(
            check_param(&param("int"), &Value::from("{{ x }}")).unwrap(),
            Value::from("{{ x }}")
        );
    }

    #[test]
    fn type_errors() {
        let e = check_param(&param("int"), &Value::from(2.5)).unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(e[1].contains("int_from_float"));
        let e = check_param(&param("float"), &Value::from("abc")).unwrap_err();
        assert!(e[0].contains("String should match pattern"));
        assert!(e[1].contains("Input should be a valid number"));
        assert!(check_param(&param("str"), &Value::from(5)).is_err());
    }

    #[test]
    fn enum_keys() {
        let p: Param =
            serde_yaml::from_str("{type: enum, description: d, values: {A: 10, B: , 7: seven}}")
                .unwrap();
        assert!(check_param(&p, &Value::from(7)).is_ok());
        let e = check_param(&p, &Value::from("C")).unwrap_err();
        assert!(
            e[0].starts_with("Input should be 'A', 'B' or 7 [type=enum"),
            "{}",
            e[0]
        );
    }
}
