//! Reading a device file's YAML tree (loaded by the project's one YAML loader, `config::yaml`)
//! into the [`Device`] model by hand: pvi's defaults, unknown keys refused, string fields that
//! refuse numbers and pvi's pydantic validators (PascalCase names, the SignalRW read defaults,
//! SignalX's ButtonPanel). Every error names the key path of the problem and the line of the
//! top-level child it is in.
//!
//! A hand-written reader, not serde: `from_value` into internally tagged enums buffers every
//! object a second time and loses the key path, and this is on the hot path of every screen.

use std::path::Path;

use indexmap::IndexMap;
use serde_yaml::Value;

use super::device::{
    go, is_pascal, Component, Device, Include, Kind, Layout, Node, ReadWidget, TextFormat,
    WriteWidget,
};
use super::PviError;

/// `lines`, `format` and `precision` of a TextRead/TextWrite.
type TextFields = (Option<i64>, Option<TextFormat>, Option<i64>);

/// A tagged union in YAML: each `type` with the other keys it allows.
type Variants = &'static [(&'static str, &'static [&'static str])];

/// The children of a device or group: the components and `Include`.
const NODES: Variants = &[
    (
        "Group",
        &["name", "label", "description", "layout", "children"],
    ),
    (
        "SignalR",
        &["name", "label", "description", "read_pv", "read_widget"],
    ),
    (
        "SignalW",
        &["name", "label", "description", "write_pv", "write_widget"],
    ),
    (
        "SignalRW",
        &[
            "name",
            "label",
            "description",
            "write_pv",
            "write_widget",
            "read_pv",
            "read_widget",
        ],
    ),
    (
        "SignalX",
        &[
            "name",
            "label",
            "description",
            "write_pv",
            "value",
            "write_widget",
        ],
    ),
    ("IgnoredComponent", &["name", "label", "description"]),
    ("SignalRef", &["name", "label", "description"]),
    (
        "DeviceRef",
        &["name", "label", "description", "pv", "ui", "macros"],
    ),
    ("Include", &["file_name", "in_subscreen", "macros"]),
];

const LAYOUTS: Variants = &[
    ("Plot", &[]),
    ("Row", &["header"]),
    ("Grid", &["labelled", "stacked"]),
    ("SubScreen", &["labelled", "stacked"]),
];

const READ_WIDGETS: Variants = &[
    ("TextRead", &["lines", "format", "precision"]),
    ("LED", &[]),
    ("ProgressBar", &[]),
    ("BitField", &["labels", "number_of_bits"]),
    ("ArrayTrace", &["axis", "width", "height"]),
    (
        "ImageRead",
        &["width", "height", "color_map", "color_bar", "axes"],
    ),
    ("TableRead", &["widgets"]),
];

const WRITE_WIDGETS: Variants = &[
    ("TextWrite", &["lines", "format", "precision"]),
    ("CheckBox", &[]),
    ("ToggleButton", &[]),
    ("ComboBox", &["choices"]),
    ("ButtonPanel", &["actions"]),
    ("TableWrite", &["widgets"]),
    ("ArrayWrite", &["widget"]),
];

/// Convert the YAML tree of the file `file` into a [`Device`] (no parents resolved). `lines`
/// are the (line, column) of each item of the top-level `children` list.
pub(super) fn device(
    file: &Path,
    value: Value,
    lines: &[(usize, usize)],
) -> Result<Device, PviError> {
    let mut r = Reader { file, line: None };
    let mut top = r.object(value, At::Root, &["type", "label", "parent", "children"])?;
    if let Some(ty) = top.opt(&r, "type", Reader::string)? {
        if ty != "Device" {
            return Err(r.err(
                At::Key(&At::Root, "type"),
                format!("expected 'Device', got '{ty}'"),
            ));
        }
    }
    let label = top.required(&r, "label", Reader::string)?;
    let parent = top.opt(&r, "parent", Reader::string)?;
    let mut children = Vec::new();
    for (i, item) in top.list(&r, "children")?.into_iter().enumerate() {
        r.line = lines.get(i).map(|p| p.0);
        let (ty, mut obj) = r.tagged(item, At::Index(&At::Key(&At::Root, "children"), i), NODES)?;
        children.push(match ty {
            "Include" => Node::Include(r.include(&mut obj)?),
            _ => Node::Component(r.component(ty, obj)?),
        });
    }
    Ok(Device {
        label,
        parent,
        children,
    })
}

/// Where a value sits in the file: a key path, made into text only for an error message.
#[derive(Clone, Copy)]
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Root => Ok(()),
            At::Key(At::Root, key) => f.write_str(key),
            At::Key(parent, key) => write!(f, "{parent}.{key}"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Conversion of one file, with the line of the top-level child being read.
struct Reader<'a> {
    file: &'a Path,
    line: Option<usize>,
}

/// A mapping being read as an object: its remaining fields and where it is.
struct Obj<'a> {
    at: At<'a>,
    fields: Vec<(String, Value)>,
}

impl Obj<'_> {
    fn take(&mut self, name: &str) -> Option<Value> {
        let at = self.fields.iter().position(|(k, _)| k == name)?;
        Some(self.fields.swap_remove(at).1)
    }

    /// A field that may be missing (then `None`); `convert` sees an explicit null.
    fn get<'a, T>(
        &mut self,
        r: &Reader<'a>,
        name: &str,
        convert: impl FnOnce(&Reader<'a>, Value, At<'_>) -> Result<T, PviError>,
    ) -> Result<Option<T>, PviError> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => convert(r, v, At::Key(&self.at, name)).map(Some),
        }
    }

    /// An optional field: missing or null is `None`.
    fn opt<'a, T>(
        &mut self,
        r: &Reader<'a>,
        name: &str,
        convert: impl FnOnce(&Reader<'a>, Value, At<'_>) -> Result<T, PviError>,
    ) -> Result<Option<T>, PviError> {
        match self.take(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => convert(r, v, At::Key(&self.at, name)).map(Some),
        }
    }

    /// A field that must be given.
    fn required<'a, T>(
        &mut self,
        r: &Reader<'a>,
        name: &str,
        convert: impl FnOnce(&Reader<'a>, Value, At<'_>) -> Result<T, PviError>,
    ) -> Result<T, PviError> {
        match self.get(r, name, convert)? {
            Some(v) => Ok(v),
            None => Err(r.err(self.at, format!("missing field `{name}`"))),
        }
    }

    /// A list field, empty when missing.
    fn list(&mut self, r: &Reader, name: &str) -> Result<Vec<Value>, PviError> {
        let items = self.get(r, name, |r, v, at| match v {
            Value::Sequence(items) => Ok(items),
            other => Err(r.invalid(at, &other, "a list")),
        })?;
        Ok(items.unwrap_or_default())
    }
}

impl Reader<'_> {
    /// An error at `at`.
    fn err(&self, at: At, message: impl Into<String>) -> PviError {
        let message = message.into();
        if matches!(at, At::Root) {
            return PviError::Yaml {
                path: self.file.to_owned(),
                message,
            };
        }
        let key = match self.line {
            Some(line) => format!("{at} (line {line})"),
            None => at.to_string(),
        };
        PviError::Invalid {
            path: self.file.to_owned(),
            key,
            message,
        }
    }

    fn invalid(&self, at: At, found: &Value, expected: &str) -> PviError {
        self.err(
            at,
            format!("invalid type: {}, expected {expected}", describe(found)),
        )
    }

    /// A mapping whose keys are all in `allowed`.
    fn object<'a>(&self, v: Value, at: At<'a>, allowed: &[&str]) -> Result<Obj<'a>, PviError> {
        let obj = self.fields(v, at, "a mapping")?;
        self.only(&obj, allowed)?;
        Ok(obj)
    }

    /// A member of the tagged union `variants`: its `type` and its other fields.
    fn tagged<'a>(
        &self,
        v: Value,
        at: At<'a>,
        variants: Variants,
    ) -> Result<(&'static str, Obj<'a>), PviError> {
        let mut obj = self.fields(v, at, "a mapping with a `type`")?;
        let ty = obj.required(self, "type", Reader::string)?;
        let Some((name, allowed)) = variants.iter().find(|(name, _)| *name == ty) else {
            let names: Vec<&str> = variants.iter().map(|(name, _)| *name).collect();
            return Err(self.err(at, format!("unknown variant `{ty}`, {}", one_of(&names))));
        };
        self.only(&obj, allowed)?;
        Ok((name, obj))
    }

    /// The fields of a mapping, in file order.
    fn fields<'a>(&self, v: Value, at: At<'a>, expected: &str) -> Result<Obj<'a>, PviError> {
        let Value::Mapping(map) = v else {
            return Err(self.invalid(at, &v, expected));
        };
        let mut obj = Obj {
            at,
            fields: Vec::with_capacity(map.len()),
        };
        for (k, v) in map {
            match k {
                Value::String(name) => obj.fields.push((name, v)),
                other => return Err(self.invalid(at, &other, "a field name")),
            }
        }
        Ok(obj)
    }

    /// Refuse the fields of `obj` not in `allowed`.
    fn only(&self, obj: &Obj, allowed: &[&str]) -> Result<(), PviError> {
        match obj
            .fields
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            Some((name, _)) => Err(self.err(
                At::Key(&obj.at, name),
                format!("unknown field `{name}`, {}", one_of(allowed)),
            )),
            None => Ok(()),
        }
    }

    fn string(&self, v: Value, at: At) -> Result<String, PviError> {
        match v {
            Value::String(s) => Ok(s),
            other => Err(self.invalid(at, &other, "a string")),
        }
    }

    fn int(&self, v: Value, at: At) -> Result<i64, PviError> {
        match &v {
            Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
            _ => Err(self.invalid(at, &v, "an integer")),
        }
    }

    fn boolean(&self, v: Value, at: At) -> Result<bool, PviError> {
        match v {
            Value::Bool(b) => Ok(b),
            other => Err(self.invalid(at, &other, "a boolean")),
        }
    }

    fn strings(&self, v: Value, at: At) -> Result<Vec<String>, PviError> {
        match v {
            Value::Sequence(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, s)| self.string(s, At::Index(&at, i)))
                .collect(),
            other => Err(self.invalid(at, &other, "a list of strings")),
        }
    }

    fn string_map(&self, v: Value, at: At) -> Result<IndexMap<String, String>, PviError> {
        let Value::Mapping(map) = v else {
            return Err(self.invalid(at, &v, "a mapping of strings"));
        };
        let mut out = IndexMap::with_capacity(map.len());
        for (k, v) in map {
            let k = self.string(k, at)?;
            let v = self.string(v, At::Key(&at, &k))?;
            out.insert(k, v);
        }
        Ok(out)
    }

    fn include(&self, obj: &mut Obj) -> Result<Include, PviError> {
        Ok(Include {
            file_name: obj.required(self, "file_name", Reader::string)?,
            in_subscreen: obj
                .get(self, "in_subscreen", Reader::boolean)?
                .unwrap_or(false),
            macros: obj.opt(self, "macros", Reader::string_map)?,
        })
    }

    /// A component of type `ty` (not an Include).
    fn component(&self, ty: &str, mut obj: Obj) -> Result<Component, PviError> {
        if ty == "Include" {
            return Err(self.err(
                obj.at,
                "an Include is only allowed among the device's children",
            ));
        }
        let name = obj.required(self, "name", Reader::string)?;
        let label = obj.opt(self, "label", Reader::string)?;
        let description = obj.opt(self, "description", Reader::string)?;
        let write_widget = |obj: &mut Obj, default: fn() -> WriteWidget| {
            let w = obj.get(self, "write_widget", Reader::write_widget)?;
            Ok::<_, PviError>(w.unwrap_or_else(default))
        };
        let kind = match ty {
            "Group" => {
                let layout = obj.required(self, "layout", Reader::layout)?;
                let mut children = Vec::new();
                let items = obj.list(self, "children")?;
                let list = At::Key(&obj.at, "children");
                for (i, item) in items.into_iter().enumerate() {
                    let (ty, child) = self.tagged(item, At::Index(&list, i), NODES)?;
                    children.push(self.component(ty, child)?);
                }
                Kind::Group { layout, children }
            }
            "SignalR" => Kind::SignalR {
                read_pv: obj.required(self, "read_pv", Reader::string)?,
                // TextRead unless given; an explicit null means none
                read_widget: match obj.get(self, "read_widget", Reader::opt_read_widget)? {
                    Some(w) => w,
                    None => Some(text_read()),
                },
            },
            "SignalW" => Kind::SignalW {
                write_pv: obj.required(self, "write_pv", Reader::string)?,
                write_widget: write_widget(&mut obj, text_write)?,
            },
            "SignalRW" => {
                let write_pv = obj.required(self, "write_pv", Reader::string)?;
                let write_widget = write_widget(&mut obj, text_write)?;
                let read_pv = obj
                    .get(self, "read_pv", Reader::string)?
                    .unwrap_or_default();
                let read_widget = obj
                    .get(self, "read_widget", Reader::opt_read_widget)?
                    .flatten();
                // pvi's SignalRW validator: a given read_pv implies a TextRead readback; an
                // empty one means "single PV" and becomes the write PV
                let (read_pv, read_widget) = if !read_pv.is_empty() {
                    (read_pv, read_widget.or_else(|| Some(text_read())))
                } else {
                    (write_pv.clone(), read_widget)
                };
                Kind::SignalRW {
                    read_pv,
                    write_pv,
                    read_widget,
                    write_widget,
                }
            }
            "SignalX" => {
                let write_pv = obj.required(self, "write_pv", Reader::string)?;
                let value = obj
                    .get(self, "value", Reader::string)?
                    .unwrap_or_else(|| "1".to_owned());
                let write_widget =
                    write_widget(&mut obj, || WriteWidget::ButtonPanel { actions: go() })?;
                if !matches!(write_widget, WriteWidget::ButtonPanel { .. }) {
                    return Err(self.err(
                        At::Key(&obj.at, "write_widget"),
                        "SignalX write_widget must be ButtonPanel",
                    ));
                }
                Kind::SignalX {
                    write_pv,
                    value,
                    write_widget,
                }
            }
            "DeviceRef" => Kind::DeviceRef {
                pv: obj.required(self, "pv", Reader::string)?,
                ui: obj.required(self, "ui", Reader::string)?,
                macros: obj
                    .get(self, "macros", Reader::string_map)?
                    .unwrap_or_default(),
            },
            "SignalRef" => Kind::SignalRef,
            _ => Kind::Ignored,
        };
        if !is_pascal(&name) {
            return Err(self.err(
                At::Key(&obj.at, "name"),
                format!("'{name}' is not PascalCase (^([A-Z][a-z0-9]*)*$)"),
            ));
        }
        Ok(Component {
            name,
            label,
            description,
            kind,
        })
    }

    fn layout(&self, v: Value, at: At) -> Result<Layout, PviError> {
        let (ty, mut obj) = self.tagged(v, at, LAYOUTS)?;
        let layout = match ty {
            "Plot" => Layout::Plot {},
            "Row" => Layout::Row {
                header: obj.opt(self, "header", Reader::strings)?,
            },
            _ => {
                let labelled = obj.get(self, "labelled", Reader::boolean)?.unwrap_or(true);
                let stacked = obj.get(self, "stacked", Reader::boolean)?.unwrap_or(false);
                if ty == "Grid" {
                    Layout::Grid { labelled, stacked }
                } else {
                    Layout::SubScreen { labelled, stacked }
                }
            }
        };
        Ok(layout)
    }

    /// A `read_widget` that may be null (no read widget).
    fn opt_read_widget(&self, v: Value, at: At) -> Result<Option<ReadWidget>, PviError> {
        match v {
            Value::Null => Ok(None),
            v => self.read_widget(v, at).map(Some),
        }
    }

    fn read_widget(&self, v: Value, at: At) -> Result<ReadWidget, PviError> {
        let (ty, mut obj) = self.tagged(v, at, READ_WIDGETS)?;
        let widget = match ty {
            "TextRead" => {
                let (lines, format, precision) = self.text_fields(&mut obj)?;
                ReadWidget::TextRead {
                    lines,
                    format,
                    precision,
                }
            }
            "LED" => ReadWidget::Led {},
            "ProgressBar" => ReadWidget::ProgressBar {},
            "BitField" => {
                let labels = obj.opt(self, "labels", Reader::strings)?;
                let number_of_bits = obj.get(self, "number_of_bits", Reader::int)?.unwrap_or(8);
                if number_of_bits <= 0 {
                    return Err(
                        self.err(At::Key(&obj.at, "number_of_bits"), "must be greater than 0")
                    );
                }
                ReadWidget::BitField {
                    labels,
                    number_of_bits,
                }
            }
            "ArrayTrace" => ReadWidget::ArrayTrace {
                axis: obj.required(self, "axis", Reader::string)?,
                width: obj.get(self, "width", Reader::int)?.unwrap_or(900),
                height: obj.get(self, "height", Reader::int)?.unwrap_or(500),
            },
            "ImageRead" => {
                let color_map = obj.get(self, "color_map", Reader::int)?.unwrap_or(0);
                let color_map = u8::try_from(color_map)
                    .ok()
                    .filter(|c| *c <= 1)
                    .ok_or_else(|| {
                        self.err(
                            At::Key(&obj.at, "color_map"),
                            "must be 0 (GRAY) or 1 (COLOR)",
                        )
                    })?;
                ReadWidget::ImageRead {
                    width: obj.get(self, "width", Reader::int)?.unwrap_or(900),
                    height: obj.get(self, "height", Reader::int)?.unwrap_or(500),
                    color_map,
                    color_bar: obj
                        .get(self, "color_bar", Reader::boolean)?
                        .unwrap_or(false),
                    axes: obj.get(self, "axes", Reader::boolean)?.unwrap_or(false),
                }
            }
            _ => ReadWidget::TableRead {
                widgets: self.widgets(&mut obj, Reader::read_widget)?,
            },
        };
        Ok(widget)
    }

    fn write_widget(&self, v: Value, at: At) -> Result<WriteWidget, PviError> {
        let (ty, mut obj) = self.tagged(v, at, WRITE_WIDGETS)?;
        let widget = match ty {
            "TextWrite" => {
                let (lines, format, precision) = self.text_fields(&mut obj)?;
                WriteWidget::TextWrite {
                    lines,
                    format,
                    precision,
                }
            }
            "CheckBox" => WriteWidget::CheckBox {},
            "ToggleButton" => WriteWidget::ToggleButton {},
            "ComboBox" => WriteWidget::ComboBox {
                choices: obj.opt(self, "choices", Reader::strings)?,
            },
            "ButtonPanel" => {
                let actions = obj
                    .get(self, "actions", Reader::string_map)?
                    .unwrap_or_else(go);
                if let Some(bad) = actions.keys().find(|k| !is_pascal(k)) {
                    return Err(self.err(
                        At::Key(&obj.at, "actions"),
                        format!("action '{bad}' is not PascalCase"),
                    ));
                }
                WriteWidget::ButtonPanel { actions }
            }
            "TableWrite" => WriteWidget::TableWrite {
                widgets: self.widgets(&mut obj, Reader::write_widget)?,
            },
            _ => WriteWidget::ArrayWrite {
                widget: Box::new(obj.required(self, "widget", Reader::write_widget)?),
            },
        };
        Ok(widget)
    }

    /// The `widgets` list of a TableRead/TableWrite.
    fn widgets<T>(
        &self,
        obj: &mut Obj,
        convert: fn(&Self, Value, At) -> Result<T, PviError>,
    ) -> Result<Vec<T>, PviError> {
        let items = obj.list(self, "widgets")?;
        let list = At::Key(&obj.at, "widgets");
        items
            .into_iter()
            .enumerate()
            .map(|(i, w)| convert(self, w, At::Index(&list, i)))
            .collect()
    }

    /// `lines`, `format` and `precision` of a TextRead/TextWrite.
    fn text_fields(&self, obj: &mut Obj) -> Result<TextFields, PviError> {
        let lines = obj.opt(self, "lines", Reader::int)?;
        let format = obj.opt(self, "format", |r, v, at| {
            const NAMES: [&str; 5] = [
                "decimal",
                "hexadecimal",
                "engineer",
                "exponential",
                "string",
            ];
            let name = r.string(v, at)?;
            Ok(match name.as_str() {
                "decimal" => TextFormat::Decimal,
                "hexadecimal" => TextFormat::Hexadecimal,
                "engineer" => TextFormat::Engineer,
                "exponential" => TextFormat::Exponential,
                "string" => TextFormat::String,
                _ => return Err(r.err(at, format!("unknown variant `{name}`, {}", one_of(&NAMES)))),
            })
        })?;
        let precision = obj.opt(self, "precision", Reader::int)?;
        Ok((lines, format, precision))
    }
}

fn text_read() -> ReadWidget {
    ReadWidget::TextRead {
        lines: None,
        format: None,
        precision: None,
    }
}

fn text_write() -> WriteWidget {
    WriteWidget::TextWrite {
        lines: None,
        format: None,
        precision: None,
    }
}

/// "expected one of `a`, `b`" (or "there are no fields").
fn one_of(names: &[&str]) -> String {
    if names.is_empty() {
        return "there are no fields".to_owned();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!("expected one of {}", quoted.join(", "))
}

/// What a value is, for "invalid type" messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => match &t.value {
            Value::String(s) => format!("{} `{s}`", t.tag.to_string().trim_start_matches('!')),
            _ => "a tagged value".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Device, String> {
        let path = Path::new("D.pvi.device.yaml");
        let (value, at) = crate::config::parse_listed(path, text, "children").expect("yaml");
        device(path, value, &at.items).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_pvis() {
        let d = read(
            "label: D\nchildren:\n  - {type: SignalR, name: A, read_pv: X}\n  - {type: SignalRW, name: B, write_pv: W}\n  - {type: SignalRW, name: C, write_pv: W, read_pv: R}\n  - {type: SignalX, name: E, write_pv: X}\n  - {type: SignalR, name: F, read_pv: X, read_widget: null}\n",
        )
        .unwrap();
        let kinds: Vec<_> = d
            .children
            .iter()
            .map(|n| match n {
                Node::Component(c) => &c.kind,
                Node::Include(_) => panic!("include"),
            })
            .collect();
        assert!(matches!(
            kinds[0],
            Kind::SignalR {
                read_widget: Some(ReadWidget::TextRead { .. }),
                ..
            }
        ));
        assert!(matches!(
            kinds[1],
            Kind::SignalRW { read_pv, read_widget: None, .. } if read_pv == "W"
        ));
        assert!(matches!(
            kinds[2],
            Kind::SignalRW {
                read_widget: Some(ReadWidget::TextRead { .. }),
                ..
            }
        ));
        assert!(matches!(
            kinds[3],
            Kind::SignalX { value, write_widget: WriteWidget::ButtonPanel { actions }, .. }
                if value == "1" && actions == &go()
        ));
        assert!(matches!(
            kinds[4],
            Kind::SignalR {
                read_widget: None,
                ..
            }
        ));
    }

    #[test]
    fn anchors_and_merge_keys_read_as_in_pvi() {
        // ruamel, which pvi loads with, resolves `<<`; the merged keys are checked like others
        let d = read(
            "label: D\nchildren:\n  - &a {type: SignalR, name: A, read_pv: X}\n  - {<<: *a, name: B}\n",
        )
        .unwrap();
        let names: Vec<_> = d
            .children
            .iter()
            .map(|n| match n {
                Node::Component(c) => (c.name.as_str(), c.read().map(|(pv, _)| pv)),
                Node::Include(_) => panic!("include"),
            })
            .collect();
        assert_eq!(names, [("A", Some("X")), ("B", Some("X"))]);
        let e = read("label: D\nchildren:\n  - &a {type: SignalR, name: A, read_pv: X}\n  - {<<: *a, colour: red}\n")
            .unwrap_err();
        assert!(
            e.contains("at children[1].colour (line 4): unknown field"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_key_path_and_the_line() {
        for (text, expected) in [
            (
                "label: B\nchildren:\n  - {type: SignalR, name: A, read_pv: X}\n  - type: Group\n    name: G\n    layout: {type: Grid}\n    children:\n      - {type: SignalR, name: A, read_pv: X, read_widget: {type: BitField, number_of_bits: x}}\n",
                "at children[1].children[0].read_widget.number_of_bits (line 4): invalid type: string \"x\", expected an integer",
            ),
            (
                "label: B\nchildren:\n  - {type: SignalW, name: A, write_pv: X, colour: red}\n",
                "at children[0].colour (line 3): unknown field `colour`, expected one of `name`, `label`, `description`, `write_pv`, `write_widget`",
            ),
            (
                "label: B\nchildren:\n  - {name: A}\n",
                "at children[0] (line 3): missing field `type`",
            ),
            (
                "label: B\nchildren:\n  - {type: SignalR, name: A, read_pv: X, read_widget: {type: ImageRead, color_map: 300}}\n",
                "at children[0].read_widget.color_map (line 3): must be 0 (GRAY) or 1 (COLOR)",
            ),
            (
                "label: B\nchildren:\n  - {type: SignalR, name: A, read_pv: X, read_widget: {type: TextRead, format: weird}}\n",
                "at children[0].read_widget.format (line 3): unknown variant `weird`",
            ),
            ("label: 12\n", "at label: invalid type: integer `12`, expected a string"),
            ("children: []\n", "D.pvi.device.yaml': missing field `label`"),
            ("- 1\n", "D.pvi.device.yaml': invalid type: a list, expected a mapping"),
            (
                "label: B\nchildren:\n  - type: Group\n    name: G\n    layout: {type: Row}\n    children:\n      - {type: Include, file_name: X}\n",
                "at children[0].children[0] (line 3): an Include is only allowed",
            ),
            (
                "label: B\nchildren:\n  - {type: SignalX, name: A, write_pv: X, write_widget: {type: CheckBox}}\n",
                "at children[0].write_widget (line 3): SignalX write_widget must be ButtonPanel",
            ),
        ] {
            let e = read(text).unwrap_err();
            assert!(e.contains(expected), "{text}\n{e}");
        }
    }
}
