//! The `*.pvi.device.yaml` model: [`Device`], [`Component`] and the widget
//! and layout enums the layout engine reads, plus pvi's name rules (title case, PascalCase).
//!
//! In YAML every object is a tagged union on `type` with unknown keys refused, as pvi's pydantic
//! models (`extra="forbid"`) do, and string fields refuse numbers; `raw` reads a file's YAML into
//! these types with pvi's defaults and checks.

use indexmap::IndexMap;

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

/// `Include`: the components of another device file, spliced in place.
#[derive(Debug, Clone)]
pub struct Include {
    pub file_name: String,
    pub in_subscreen: bool,
    pub macros: Option<IndexMap<String, String>>,
}

/// One component; components compare equal by `name` only when merging.
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
#[derive(Debug, Clone)]
pub enum Layout {
    Plot {},
    Row { header: Option<Vec<String>> },
    Grid { labelled: bool, stacked: bool },
    SubScreen { labelled: bool, stacked: bool },
}

/// `TextRead`/`TextWrite` display format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    Decimal,
    Hexadecimal,
    Engineer,
    Exponential,
    String,
}

/// Read widgets.
#[derive(Debug, Clone)]
pub enum ReadWidget {
    TextRead {
        lines: Option<i64>,
        format: Option<TextFormat>,
        precision: Option<i64>,
    },
    Led {},
    ProgressBar {},
    BitField {
        labels: Option<Vec<String>>,
        number_of_bits: i64,
    },
    ArrayTrace {
        axis: String,
        width: i64,
        height: i64,
    },
    ImageRead {
        width: i64,
        height: i64,
        color_map: u8,
        color_bar: bool,
        axes: bool,
    },
    TableRead {
        widgets: Vec<ReadWidget>,
    },
}

/// Write widgets.
#[derive(Debug, Clone)]
pub enum WriteWidget {
    TextWrite {
        lines: Option<i64>,
        format: Option<TextFormat>,
        precision: Option<i64>,
    },
    CheckBox {},
    ToggleButton {},
    ComboBox {
        choices: Option<Vec<String>>,
    },
    ButtonPanel {
        actions: IndexMap<String, String>,
    },
    TableWrite {
        widgets: Vec<WriteWidget>,
    },
    ArrayWrite {
        widget: Box<WriteWidget>,
    },
}

impl ReadWidget {
    /// An ImageRead or ArrayTrace: drawn at its own size and moved to a sub-screen.
    pub fn plot_size(&self) -> Option<(i64, i64)> {
        match self {
            ReadWidget::ArrayTrace { width, height, .. }
            | ReadWidget::ImageRead { width, height, .. } => Some((*width, *height)),
            _ => None,
        }
    }
}

impl Component {
    /// `label` when set and not empty, else the name in title case.
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

/// pvi's `to_title_case`: a space before each match of
/// `(?<![A-Z])[A-Z]|[A-Z][a-z/d]|(?<=[a-z])\d`, then the first character dropped.
pub fn to_title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut prev: Option<char> = None;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
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
        if len > 0 {
            out.push(' ');
        }
        out.push(c);
        prev = Some(c);
        if len == 2 {
            // the match's second character is not looked at again (matches do not overlap)
            if let Some(n) = chars.next() {
                out.push(n);
                prev = Some(n);
            }
        }
    }
    if let Some(first) = out.chars().next() {
        out.drain(..first.len_utf8());
    }
    out
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

/// pvi's `enforce_pascal_case` for index buttons.
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

pub(super) fn go() -> IndexMap<String, String> {
    IndexMap::from([("Go".to_owned(), "1".to_owned())])
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
            ("", ""),
            ("x", ""),
            ("lower2case", "ower 2case"),
            ("AB/c", "A B/c"),
            ("XYd", "X Yd"),
            ("\u{dc}ber9Ab", "ber 9 Ab"),
            ("aBC", " BC"),
            ("a1B2", " 1 B2"),
            ("\u{c4}B", " B"),
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
