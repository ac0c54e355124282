//! The `*.pvi.device.yaml` model (spec pvi.md §1): serde structs that mirror the YAML exactly,
//! validated into [`Device`], [`Component`] and the widget enums the layout engine reads.
//!
//! Every object is a tagged union on `type` with unknown keys refused, as pvi's pydantic models
//! (`extra="forbid"`) do; string fields refuse numbers (serde_yaml is strict like pydantic here).

use indexmap::IndexMap;
use serde::Deserialize;

use super::PviError;

/// A whole device file, before parents/includes are resolved.
#[derive(Debug, Clone)]
pub struct Device {
    pub label: String,
    pub parent: Option<String>,
    pub children: Vec<Node>,
}

/// A top-level child: a component, or an `Include` still to be expanded.
#[derive(Debug, Clone)]
pub enum Node {
    Component(Component),
    Include(Include),
}

/// `Include`: the components of another device file, spliced in place (§1.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Include {
    pub file_name: String,
    #[serde(default)]
    pub in_subscreen: bool,
    #[serde(default)]
    pub macros: Option<IndexMap<String, String>>,
}

/// One component; components compare equal by `name` only when merging (§1.3).
#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    pub kind: Kind,
}

/// What a component is.
#[derive(Debug, Clone)]
pub enum Kind {
    Group {
        layout: Layout,
        children: Vec<Component>,
    },
    SignalR {
        read_pv: String,
        read_widget: Option<ReadWidget>,
    },
    SignalW {
        write_pv: String,
        write_widget: WriteWidget,
    },
    SignalRW {
        read_pv: String,
        write_pv: String,
        read_widget: Option<ReadWidget>,
        write_widget: WriteWidget,
    },
    SignalX {
        write_pv: String,
        value: String,
        write_widget: WriteWidget,
    },
    Ignored,
    SignalRef,
    DeviceRef {
        pv: String,
        ui: String,
        macros: IndexMap<String, String>,
    },
}

/// `Group.layout`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Layout {
    Plot {},
    Row {
        #[serde(default)]
        header: Option<Vec<String>>,
    },
    Grid {
        #[serde(default = "yes")]
        labelled: bool,
        #[serde(default)]
        stacked: bool,
    },
    SubScreen {
        #[serde(default = "yes")]
        labelled: bool,
        #[serde(default)]
        stacked: bool,
    },
}

/// `TextRead`/`TextWrite` display format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TextFormat {
    Decimal,
    Hexadecimal,
    Engineer,
    Exponential,
    String,
}

/// Read widgets (§1.5).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ReadWidget {
    TextRead {
        #[serde(default)]
        lines: Option<i64>,
        #[serde(default)]
        format: Option<TextFormat>,
        #[serde(default)]
        precision: Option<i64>,
    },
    #[serde(rename = "LED")]
    Led {},
    ProgressBar {},
    BitField {
        #[serde(default)]
        labels: Option<Vec<String>>,
        #[serde(default = "eight")]
        number_of_bits: i64,
    },
    ArrayTrace {
        axis: String,
        #[serde(default = "nine_hundred")]
        width: i64,
        #[serde(default = "five_hundred")]
        height: i64,
    },
    ImageRead {
        #[serde(default = "nine_hundred")]
        width: i64,
        #[serde(default = "five_hundred")]
        height: i64,
        #[serde(default)]
        color_map: u8,
        #[serde(default)]
        color_bar: bool,
        #[serde(default)]
        axes: bool,
    },
    TableRead {
        #[serde(default)]
        widgets: Vec<ReadWidget>,
    },
}

/// Write widgets (§1.5).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum WriteWidget {
    TextWrite {
        #[serde(default)]
        lines: Option<i64>,
        #[serde(default)]
        format: Option<TextFormat>,
        #[serde(default)]
        precision: Option<i64>,
    },
    CheckBox {},
    ToggleButton {},
    ComboBox {
        #[serde(default)]
        choices: Option<Vec<String>>,
    },
    ButtonPanel {
        #[serde(default = "go")]
        actions: IndexMap<String, String>,
    },
    TableWrite {
        #[serde(default)]
        widgets: Vec<WriteWidget>,
    },
    ArrayWrite {
        widget: Box<WriteWidget>,
    },
}

impl ReadWidget {
    /// An ImageRead or ArrayTrace: drawn at its own size and moved to a sub-screen (§2.3).
    pub fn plot_size(&self) -> Option<(i64, i64)> {
        match self {
            ReadWidget::ArrayTrace { width, height, .. }
            | ReadWidget::ImageRead { width, height, .. } => Some((*width, *height)),
            _ => None,
        }
    }
}

impl Component {
    /// `label` when set and not empty, else the name in title case (§2.9).
    pub fn get_label(&self) -> String {
        match &self.label {
            Some(l) if !l.is_empty() => l.clone(),
            _ => to_title_case(&self.name),
        }
    }

    /// The read side of a SignalR/SignalRW (pvi's `isinstance(c, SignalR)`).
    pub fn read(&self) -> Option<(&str, Option<&ReadWidget>)> {
        match &self.kind {
            Kind::SignalR {
                read_pv,
                read_widget,
            }
            | Kind::SignalRW {
                read_pv,
                read_widget,
                ..
            } => Some((read_pv, read_widget.as_ref())),
            _ => None,
        }
    }

    /// The write side of a SignalW/SignalRW/SignalX (pvi's `isinstance(c, SignalW)`).
    pub fn write(&self) -> Option<(&str, &WriteWidget)> {
        match &self.kind {
            Kind::SignalW {
                write_pv,
                write_widget,
            }
            | Kind::SignalRW {
                write_pv,
                write_widget,
                ..
            }
            | Kind::SignalX {
                write_pv,
                write_widget,
                ..
            } => Some((write_pv, write_widget)),
            _ => None,
        }
    }

    /// The plot widget of a SignalR/RW whose read widget is an ImageRead or ArrayTrace.
    pub fn plot_widget(&self) -> Option<&ReadWidget> {
        self.read()
            .and_then(|(_, w)| w)
            .filter(|w| w.plot_size().is_some())
    }
}

/// pvi's `to_title_case` (§2.9): a space before each match of
/// `(?<![A-Z])[A-Z]|[A-Z][a-z/d]|(?<=[a-z])\d`, then the first character dropped.
pub fn to_title_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let prev = if i > 0 { Some(chars[i - 1]) } else { None };
        let next = chars.get(i + 1).copied();
        let len = if c.is_ascii_uppercase() && !prev.is_some_and(|p| p.is_ascii_uppercase()) {
            1
        } else if c.is_ascii_uppercase()
            && next.is_some_and(|n| n.is_ascii_lowercase() || n == '/' || n == 'd')
        {
            2
        } else if c.is_ascii_digit() && prev.is_some_and(|p| p.is_ascii_lowercase()) {
            1
        } else {
            0
        };
        if len == 0 {
            out.push(c);
            i += 1;
        } else {
            out.push(' ');
            out.extend(&chars[i..i + len]);
            i += len;
        }
    }
    out.chars().skip(1).collect()
}

/// pvi's `PascalStr`: `^([A-Z][a-z0-9]*)*$` (the empty string matches).
pub fn is_pascal(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        None => true,
        Some(c) if c.is_ascii_uppercase() => chars.all(|c| c.is_ascii_alphanumeric()),
        Some(_) => false,
    }
}

/// pvi's `enforce_pascal_case` for index buttons (§2.9).
pub fn enforce_pascal_case(s: &str) -> Option<String> {
    let single = match s.chars().collect::<Vec<_>>().as_slice() {
        [a] => a.is_ascii_uppercase(),
        [a, b] => a.is_ascii_uppercase() && (b.is_ascii_lowercase() || *b == '/' || *b == 'd'),
        _ => false,
    };
    if single {
        return Some(s.to_owned());
    }
    let kept: String = s.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let mut chars = kept.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars).collect())
}

fn yes() -> bool {
    true
}
fn eight() -> i64 {
    8
}
fn nine_hundred() -> i64 {
    900
}
fn five_hundred() -> i64 {
    500
}
fn go() -> IndexMap<String, String> {
    IndexMap::from([("Go".to_owned(), "1".to_owned())])
}
fn text_read() -> Option<ReadWidget> {
    Some(ReadWidget::TextRead {
        lines: None,
        format: None,
        precision: None,
    })
}
fn text_write() -> WriteWidget {
    WriteWidget::TextWrite {
        lines: None,
        format: None,
        precision: None,
    }
}
fn button_panel() -> WriteWidget {
    WriteWidget::ButtonPanel { actions: go() }
}
fn one() -> String {
    "1".to_owned()
}

// ---- raw YAML mirror -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDevice {
    #[serde(rename = "type", default)]
    ty: Option<String>,
    label: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    children: Vec<RawNode>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub(super) enum RawNode {
    Group(RawGroup),
    SignalR(RawSignalR),
    SignalW(RawSignalW),
    SignalRW(RawSignalRW),
    SignalX(RawSignalX),
    IgnoredComponent(RawPlain),
    SignalRef(RawPlain),
    DeviceRef(RawDeviceRef),
    Include(Include),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    layout: Layout,
    #[serde(default)]
    children: Vec<RawNode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignalR {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    read_pv: String,
    #[serde(default = "text_read")]
    read_widget: Option<ReadWidget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignalW {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    write_pv: String,
    #[serde(default = "text_write")]
    write_widget: WriteWidget,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignalRW {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    write_pv: String,
    #[serde(default = "text_write")]
    write_widget: WriteWidget,
    #[serde(default)]
    read_pv: String,
    #[serde(default)]
    read_widget: Option<ReadWidget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignalX {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    write_pv: String,
    #[serde(default = "one")]
    value: String,
    #[serde(default = "button_panel")]
    write_widget: WriteWidget,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlain {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeviceRef {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    pv: String,
    ui: String,
    #[serde(default)]
    macros: IndexMap<String, String>,
}

/// Validation of one file: raw YAML mirror to [`Device`], tracking the key path for errors.
pub(super) struct Validate<'a> {
    pub file: &'a std::path::Path,
}

impl Validate<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> PviError {
        PviError::Invalid {
            path: self.file.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    pub(super) fn device(&self, raw: RawDevice) -> Result<Device, PviError> {
        if let Some(ty) = raw.ty.as_deref().filter(|t| *t != "Device") {
            return Err(self.err("type", format!("expected 'Device', got '{ty}'")));
        }
        let mut children = Vec::new();
        for (i, node) in raw.children.into_iter().enumerate() {
            let key = format!("children[{i}]");
            children.push(match node {
                RawNode::Include(inc) => Node::Include(inc),
                other => Node::Component(self.component(other, &key)?),
            });
        }
        Ok(Device {
            label: raw.label,
            parent: raw.parent,
            children,
        })
    }

    fn component(&self, node: RawNode, key: &str) -> Result<Component, PviError> {
        let (name, label, description, kind) = match node {
            RawNode::Include(_) => {
                return Err(self.err(
                    key,
                    "an Include is only allowed among the device's children",
                ))
            }
            RawNode::Group(g) => {
                let mut children = Vec::new();
                for (i, c) in g.children.into_iter().enumerate() {
                    children.push(self.component(c, &format!("{key}.children[{i}]"))?);
                }
                let kind = Kind::Group {
                    layout: g.layout,
                    children,
                };
                (g.name, g.label, g.description, kind)
            }
            RawNode::SignalR(s) => {
                self.check_widget_r(s.read_widget.as_ref(), key)?;
                let kind = Kind::SignalR {
                    read_pv: s.read_pv,
                    read_widget: s.read_widget,
                };
                (s.name, s.label, s.description, kind)
            }
            RawNode::SignalW(s) => {
                self.check_widget_w(&s.write_widget, key)?;
                let kind = Kind::SignalW {
                    write_pv: s.write_pv,
                    write_widget: s.write_widget,
                };
                (s.name, s.label, s.description, kind)
            }
            RawNode::SignalRW(s) => {
                self.check_widget_w(&s.write_widget, key)?;
                self.check_widget_r(s.read_widget.as_ref(), key)?;
                // pvi's SignalRW validator: a given read_pv implies a TextRead readback; an
                // empty one means "single PV" and becomes the write PV (§1.3)
                let (read_pv, read_widget) = if !s.read_pv.is_empty() {
                    (s.read_pv, s.read_widget.or_else(text_read))
                } else {
                    (s.write_pv.clone(), s.read_widget)
                };
                let kind = Kind::SignalRW {
                    read_pv,
                    write_pv: s.write_pv,
                    read_widget,
                    write_widget: s.write_widget,
                };
                (s.name, s.label, s.description, kind)
            }
            RawNode::SignalX(s) => {
                self.check_widget_w(&s.write_widget, key)?;
                if !matches!(s.write_widget, WriteWidget::ButtonPanel { .. }) {
                    return Err(self.err(
                        &format!("{key}.write_widget"),
                        "SignalX write_widget must be ButtonPanel",
                    ));
                }
                let kind = Kind::SignalX {
                    write_pv: s.write_pv,
                    value: s.value,
                    write_widget: s.write_widget,
                };
                (s.name, s.label, s.description, kind)
            }
            RawNode::IgnoredComponent(p) => (p.name, p.label, p.description, Kind::Ignored),
            RawNode::SignalRef(p) => (p.name, p.label, p.description, Kind::SignalRef),
            RawNode::DeviceRef(d) => {
                let kind = Kind::DeviceRef {
                    pv: d.pv,
                    ui: d.ui,
                    macros: d.macros,
                };
                (d.name, d.label, d.description, kind)
            }
        };
        if !is_pascal(&name) {
            return Err(self.err(
                &format!("{key}.name"),
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

    fn check_widget_r(&self, w: Option<&ReadWidget>, key: &str) -> Result<(), PviError> {
        match w {
            Some(ReadWidget::BitField { number_of_bits, .. }) if *number_of_bits <= 0 => Err(self
                .err(
                    &format!("{key}.read_widget.number_of_bits"),
                    "must be greater than 0",
                )),
            Some(ReadWidget::ImageRead { color_map, .. }) if *color_map > 1 => Err(self.err(
                &format!("{key}.read_widget.color_map"),
                "must be 0 (GRAY) or 1 (COLOR)",
            )),
            _ => Ok(()),
        }
    }

    fn check_widget_w(&self, w: &WriteWidget, key: &str) -> Result<(), PviError> {
        if let WriteWidget::ButtonPanel { actions } = w {
            if let Some(bad) = actions.keys().find(|k| !is_pascal(k)) {
                return Err(self.err(
                    &format!("{key}.write_widget.actions"),
                    format!("action '{bad}' is not PascalCase"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_case_matches_pvi() {
        for (name, label) in [
            ("NDPluginStats", "ND Plugin Stats"),
            ("TSMinValue", "TS Min Value"),
            ("ArraySizeX", "Array Size X"),
            ("Gain1", "Gain 1"),
            ("ROISummary", "ROI Summary"),
            ("ROI1Detail", "ROI1 Detail"),
            ("ROIs", "RO Is"),
            ("EpicsTSSec", "Epics TS Sec"),
            ("ADCoreVersion", "AD Core Version"),
            ("A1B", "A1 B"),
            ("Go", "Go"),
        ] {
            assert_eq!(to_title_case(name), label, "{name}");
        }
    }

    #[test]
    fn pascal_rules() {
        assert!(is_pascal("NDPluginStats") && is_pascal("ROI1Detail") && is_pascal(""));
        assert!(!is_pascal("asynMotorAxis") && !is_pascal("My_PV"));
        assert_eq!(
            enforce_pascal_case("Simple Device").as_deref(),
            Some("SimpleDevice")
        );
        assert_eq!(
            enforce_pascal_case("simDetector").as_deref(),
            Some("SimDetector")
        );
        assert_eq!(enforce_pascal_case(""), None);
    }
}
