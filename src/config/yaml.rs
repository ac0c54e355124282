//! Loading YAML the way ibek's ruamel `YAML(typ="safe")` loader does: YAML 1.2
//! scalars, duplicate keys are errors, merge keys (`<<`) resolved with ruamel's ordering.

use std::path::Path;

use serde_yaml::{Mapping, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

use super::ConfigError;
use crate::limits::{InputLimits, YAML_MAX_DEPTH};

/// Read and parse one YAML file into a generic value with merge keys applied.
pub fn load(path: &Path) -> Result<Value, ConfigError> {
    parse(path, &read(path)?)
}

/// Read a YAML file as text, refusing one larger than [`InputLimits::yaml_max_bytes`] before
/// reading it whole.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let max = InputLimits::get().yaml_max_bytes;
    let io = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut text = String::new();
    // one byte over the bound tells a file that is too big from one that fits exactly
    file.take(max.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(io)?;
    check_size(path, &text, max)?;
    Ok(text)
}

fn check_size(path: &Path, text: &str, max: u64) -> Result<(), ConfigError> {
    if text.len() as u64 > max {
        return Err(ConfigError::Yaml {
            path: path.to_owned(),
            line: None,
            column: None,
            message: format!("file larger than {max} bytes (IOCRUN_YAML_MAX_BYTES)"),
        });
    }
    Ok(())
}

/// Parse YAML text (named by `path` in errors).
pub fn parse(path: &Path, text: &str) -> Result<Value, ConfigError> {
    parse_located(path, text).map(|(v, _)| v)
}

/// Where the items of a top-level list (a `--pv-metrics` file) or of the list under one top-level
/// key (`entities:` of an instance, `children:` of a pvi device) and their keys are (1-based line,
/// 1-based column), for error messages.
#[derive(Debug, Clone, Default)]
pub struct EntityLocations {
    pub items: Vec<(usize, usize)>,
    pub keys: Vec<Vec<(String, usize, usize)>>,
}

/// Parse YAML text and note where the `entities:` items and their keys are.
pub fn parse_located(path: &Path, text: &str) -> Result<(Value, EntityLocations), ConfigError> {
    parse_listed(path, text, "entities")
}

/// Parse YAML text and note where the items of the top-level `list_key:` list and their keys
/// are.
pub fn parse_listed(
    path: &Path,
    text: &str,
    list_key: &'static str,
) -> Result<(Value, EntityLocations), ConfigError> {
    let limits = InputLimits::get();
    check_size(path, text, limits.yaml_max_bytes)?;
    build(path, text, limits.yaml_max_nodes, list_key)
}

/// Build the value of `text`, stopping once it holds more than `max_nodes` nodes.
fn build(
    path: &Path,
    text: &str,
    max_nodes: u64,
    list_key: &'static str,
) -> Result<(Value, EntityLocations), ConfigError> {
    let err = |line: usize, column: usize, message: String| ConfigError::Yaml {
        path: path.to_owned(),
        line: Some(line),
        column: Some(column),
        message,
    };
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder {
        max_nodes,
        list_key,
        ..Builder::default()
    };
    loop {
        let (ev, mark) = parser
            .next_token()
            .map_err(|e| err(e.marker().line(), e.marker().col() + 1, e.info().to_owned()))?;
        let (line, col) = (mark.line(), mark.col() + 1);
        match ev {
            Event::StreamEnd => break,
            Event::DocumentEnd if b.root.is_some() => break,
            Event::Scalar(text, style, anchor, tag) => {
                b.note_start(line, col, Some(&text));
                let cost = 1 + text.len() as u64 / 64;
                b.spend(cost).map_err(|m| err(line, col, m))?;
                let v = resolve_scalar(text, style, tag.as_ref());
                b.finish(v, anchor, cost, (line, col))
                    .map_err(|(l, c, m)| err(l, c, m))?;
            }
            Event::Alias(id) => {
                b.note_start(line, col, None);
                // count the copy before making it
                let cost = b.anchors.get(&id).map_or(1, |(_, c)| *c);
                b.spend(cost).map_err(|m| err(line, col, m))?;
                let v = b.anchors.get(&id).map_or(Value::Null, |(v, _)| v.clone());
                b.finish(v, 0, cost, (line, col))
                    .map_err(|(l, c, m)| err(l, c, m))?;
            }
            Event::SequenceStart(anchor, _) => {
                b.note_start(line, col, None);
                b.open().map_err(|m| err(line, col, m))?;
                b.stack.push(Frame::Seq(Vec::new(), anchor));
            }
            Event::MappingStart(anchor, _) => {
                b.note_start(line, col, None);
                b.open().map_err(|m| err(line, col, m))?;
                b.stack.push(Frame::Map(Mapping::new(), None, anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let cost = b.nodes - b.starts.pop().unwrap_or(b.nodes);
                let (v, anchor) = match b.stack.pop() {
                    Some(Frame::Seq(items, a)) => (Value::Sequence(items), a),
                    Some(Frame::Map(m, _, a)) => (Value::Mapping(m), a),
                    None => (Value::Null, 0),
                };
                b.finish(v, anchor, cost, (line, col))
                    .map_err(|(l, c, m)| err(l, c, m))?;
            }
            _ => {}
        }
    }
    let mut value = b.root.unwrap_or(Value::Null);
    if b.merges {
        merge(&mut value).map_err(|message| ConfigError::Yaml {
            path: path.to_owned(),
            line: None,
            column: None,
            message,
        })?;
    }
    Ok((value, b.locations))
}

enum Frame {
    Seq(Vec<Value>, usize),
    /// The mapping, the key waiting for its value with its (line, column), the anchor id.
    Map(Mapping, Option<(Value, (usize, usize))>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// An anchored node and its cost in nodes (what each alias of it adds).
    anchors: std::collections::HashMap<usize, (Value, u64)>,
    root: Option<Value>,
    locations: EntityLocations,
    /// Nodes built so far, aliases expanded: a bound on memory against alias bombs.
    nodes: u64,
    max_nodes: u64,
    /// `nodes` when each open collection started, parallel to `stack`.
    starts: Vec<u64>,
    /// The top-level key whose list items [`EntityLocations`] records.
    list_key: &'static str,
    /// Whether a `<<` merge key was seen (else there is nothing to merge).
    merges: bool,
}

impl Builder {
    /// A collection starts: one level deeper, one node more.
    fn open(&mut self) -> Result<(), String> {
        if self.stack.len() >= YAML_MAX_DEPTH {
            return Err(format!(
                "collections nested deeper than {YAML_MAX_DEPTH} levels"
            ));
        }
        self.starts.push(self.nodes);
        self.spend(1)
    }

    /// Count `cost` more nodes against the bound.
    fn spend(&mut self, cost: u64) -> Result<(), String> {
        self.nodes = self.nodes.saturating_add(cost);
        if self.nodes > self.max_nodes {
            return Err(format!(
                "the document expands to more than {} nodes (aliases included; \
                 IOCRUN_YAML_MAX_NODES)",
                self.max_nodes
            ));
        }
        Ok(())
    }

    /// Record positions: an item of the top-level list or `entities` list starts, or a key of one.
    fn note_start(&mut self, line: usize, col: usize, scalar: Option<&str>) {
        match self.stack.as_slice() {
            [Frame::Seq(_, _)] => {
                self.locations.items.push((line, col));
                self.locations.keys.push(Vec::new());
            }
            [Frame::Map(_, Some((k, _)), _), Frame::Seq(_, _)]
                if k.as_str() == Some(self.list_key) =>
            {
                self.locations.items.push((line, col));
                self.locations.keys.push(Vec::new());
            }
            [Frame::Seq(_, _), Frame::Map(_, None, _)] => self.note_key(line, col, scalar),
            [Frame::Map(_, Some((k, _)), _), Frame::Seq(_, _), Frame::Map(_, None, _)]
                if k.as_str() == Some(self.list_key) =>
            {
                self.note_key(line, col, scalar);
            }
            _ => {}
        }
    }

    /// A key of the current list item starts.
    fn note_key(&mut self, line: usize, col: usize, scalar: Option<&str>) {
        if let (Some(name), Some(keys)) = (scalar, self.locations.keys.last_mut()) {
            keys.push((name.to_owned(), line, col));
            // a block mapping's start mark can sit after its first key
            if let Some(item) = self.locations.items.last_mut() {
                *item = (*item).min((line, col));
            }
        }
    }

    /// A node is complete at `at`: attach it to its parent. `cost` is what it counted against
    /// the node bound, which each later alias of its `anchor` counts again. An error comes with
    /// the position it is about.
    fn finish(
        &mut self,
        v: Value,
        anchor: usize,
        cost: u64,
        at: (usize, usize),
    ) -> Result<(), (usize, usize, String)> {
        if anchor != 0 {
            self.anchors.insert(anchor, (v.clone(), cost));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(v);
                }
            }
            Some(Frame::Seq(items, _)) => items.push(v),
            Some(Frame::Map(map, pending, _)) => match pending.take() {
                None => *pending = Some((v, at)),
                Some((k, _)) if k.as_str() == Some("<<") => {
                    self.merges = true;
                    // keep every merge source; `merge` resolves them
                    let merged = match map.shift_remove("<<") {
                        Some(Value::Sequence(mut s)) => {
                            s.push(v);
                            Value::Sequence(s)
                        }
                        Some(old) => Value::Sequence(vec![old, v]),
                        None => v,
                    };
                    map.insert(k, merged);
                }
                // one hash per key: the duplicate is found on insertion, named where the key is
                Some((k, (line, col))) => match map.entry(k) {
                    // ruamel: DuplicateKeyError (merge keys may repeat)
                    serde_yaml::mapping::Entry::Occupied(e) => {
                        let key = serde_yaml::to_string(e.key()).unwrap_or_default();
                        return Err((
                            line,
                            col,
                            format!(
                                "found duplicate key {} (duplicate keys are not allowed)",
                                key.trim()
                            ),
                        ));
                    }
                    serde_yaml::mapping::Entry::Vacant(e) => {
                        e.insert(v);
                    }
                },
            },
        }
        Ok(())
    }
}

/// ruamel's safe resolver (YAML 1.2 core plus its extras): plain scalars become null, bools,
/// ints (`0x1F`, `0o17`, `017` = 17, `1_000`), floats (`1e3`, `.5`, `.inf`), dates; quoted and
/// block scalars stay strings.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(t) = tag {
        return match t.suffix.as_str() {
            "int" | "float" | "bool" | "null" => resolve_plain(text),
            _ => Value::String(text),
        };
    }
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    resolve_plain(text)
}

fn resolve_plain(s: String) -> Value {
    match s.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    // numbers and dates start with a digit, a sign or a dot: most scalars are words
    if !s
        .as_bytes()
        .first()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.'))
    {
        return Value::String(s);
    }
    if let Some(i) = plain_int(&s) {
        return Value::Number(i.into());
    }
    if let Some(f) = plain_float(&s) {
        return Value::Number(f.into());
    }
    if is_date(&s) {
        return Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: serde_yaml::value::Tag::new("date"),
            value: Value::String(s),
        }));
    }
    Value::String(s)
}

fn plain_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') {
        return None;
    }
    let clean = body.replace('_', "");
    let v = if let Some(h) = clean.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = clean.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = clean.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if clean.bytes().all(|c| c.is_ascii_digit()) {
        clean.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn plain_float(s: &str) -> Option<f64> {
    let body = s.trim_start_matches(['-', '+']);
    let neg = s.starts_with('-');
    match body {
        ".inf" | ".Inf" | ".INF" => {
            return Some(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        ".nan" | ".NaN" | ".NAN" if body.len() == s.len() => return Some(f64::NAN),
        _ => {}
    }
    let clean = body.replace('_', "");
    let mut chars = clean.chars().peekable();
    let mut digits = 0;
    let mut dot = false;
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if c == '.' && !dot {
            dot = true;
        } else {
            break;
        }
        chars.next();
    }
    let rest: String = chars.collect();
    let exp_ok = rest.is_empty()
        || (rest.len() > 1
            && rest.starts_with(['e', 'E'])
            && rest[1..]
                .trim_start_matches(['-', '+'])
                .bytes()
                .all(|c| c.is_ascii_digit())
            && !rest[1..].trim_start_matches(['-', '+']).is_empty());
    if digits == 0 || !exp_ok || (!dot && rest.is_empty()) {
        return None;
    }
    let v: f64 = clean.parse().ok()?;
    Some(if neg { -v } else { v })
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 4
        && (1..=2).contains(&parts[1].len())
        && (1..=2).contains(&parts[2].len())
        && parts.iter().all(|p| p.bytes().all(|c| c.is_ascii_digit()))
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
    fn aliases_count_as_copies_against_the_node_bound() {
        // root map 1, key a 1, [1, 2, 3] 4, key b 1, [*a, *a] 1 + 2 * 4: 16 nodes
        let text = "a: &a [1, 2, 3]\nb: [*a, *a]\n";
        assert!(build(Path::new("t"), text, 16, "entities").is_ok());
        let e = build(Path::new("t"), text, 15, "entities")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t:2:9: ") && e.contains("more than 15 nodes"),
            "{e}"
        );
    }

    #[test]
    fn nesting_is_bounded_with_location() {
        let ok = format!("{}x", "- ".repeat(YAML_MAX_DEPTH));
        assert!(p(&ok).is_ok());
        let e = p(&format!("a:\n  {}x", "- ".repeat(YAML_MAX_DEPTH)))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.yaml:2:") && e.contains("deeper than 128"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_key_is_an_error_with_location() {
        // named where the second key is, as ruamel does
        let e = p("a: 1\na: [2, 3]\n").unwrap_err().to_string();
        assert!(e.starts_with("t.yaml:2:1: found duplicate key a"), "{e}");
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
        let text =
            "ioc_name: x\nentities:\n  - type: a\n    x: 1\n\n  - {type: b, l: [1]}\nother: 2\n";
        let (_, locs) = parse_located(Path::new("t"), text).unwrap();
        assert_eq!(locs.items, vec![(3, 5), (6, 5)]);
        assert_eq!(locs.keys[0][1], ("x".to_owned(), 4, 5));
        assert_eq!(locs.keys[1][1], ("l".to_owned(), 6, 15));
    }

    #[test]
    fn ruamel_scalars() {
        let v = p(
            "a: 017\nb: 1_000\nc: 1e3\nd: .5\ne: '017'\nf: 2001-01-01\ng: -0\nh: +12\ni: 1.0.0\n",
        )
        .unwrap();
        assert_eq!(v["a"], Value::from(17));
        assert_eq!(v["b"], Value::from(1000));
        assert_eq!(v["c"], Value::from(1000.0));
        assert_eq!(v["d"], Value::from(0.5));
        assert_eq!(v["e"], Value::from("017"));
        assert!(matches!(v["f"], Value::Tagged(_)));
        assert_eq!(v["g"], Value::from(0));
        assert_eq!(v["h"], Value::from(12));
        assert_eq!(v["i"], Value::from("1.0.0"));
    }
}
