//! Phoebus `.bob` output: each laid-out widget is its snippet of the
//! embedded DLS template with the text of the first descendant of each patched tag replaced and
//! extras appended, exactly as pvi's `BobTemplate.set` does, printed the way lxml does. The
//! template is parsed once per process into `xml::Snippet`s, and a widget is written straight
//! from its snippet with the replaced texts: no tree is copied per widget.
//!
//! One deliberate fix (docs/compat.md): the write-button's widget-level `<pv_name>` gets the
//! real PV instead of pvi 0.14.4's literal `SignalX`.

use std::borrow::Cow;
use std::sync::OnceLock;

use super::device::{ReadWidget, TextFormat, WriteWidget};
use super::widget::{Bounds, PvWidget, Screen, Widget};
use super::xml::{self, Element, Insert, Snippet, Text};
use super::PviError;

/// pvi 0.14.4's `dls.bob` (used widgets only), whitespace preserved.
const DLS_BOB: &str = include_str!("dls.bob");

/// The DLS template: the display prepared once per process, each widget snippet prepared the
/// first time it is drawn (an IOC with only `index.bob` needs three of them).
struct Templates {
    display: Prepared,
    widgets: Vec<WidgetTemplate>,
}

struct WidgetTemplate {
    name: &'static str,
    text: &'static str,
    snippet: OnceLock<Prepared>,
}

/// A snippet with the elements every widget's bounds go to, looked up once.
struct Prepared {
    snippet: Snippet,
    /// The first `<x>`, `<y>`, `<width>` and `<height>`.
    bounds: [Option<usize>; 4],
}

impl Prepared {
    fn new(text: &str) -> Prepared {
        let snippet = Snippet::new(&parse_embedded(text));
        let bounds = ["x", "y", "width", "height"].map(|tag| snippet.first(tag));
        Prepared { snippet, bounds }
    }
}

impl std::ops::Deref for Prepared {
    type Target = Snippet;

    fn deref(&self) -> &Snippet {
        &self.snippet
    }
}

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| {
        let (display, widgets) = split_widgets(DLS_BOB);
        Templates {
            display: Prepared::new(&display),
            widgets,
        }
    })
}

fn parse_embedded(text: &str) -> Element {
    xml::parse(text).expect("the embedded dls.bob is well-formed")
}

/// Cut the display's `<widget>` children (two spaces in, as dls.bob is written) out of the
/// template text: the display without them, and each widget's text under its `<name>`.
fn split_widgets(text: &'static str) -> (String, Vec<WidgetTemplate>) {
    const OPEN: &str = "\n  <widget ";
    const CLOSE: &str = "\n  </widget>";
    let mut display = String::with_capacity(1024);
    let mut widgets = Vec::new();
    let mut at = 0;
    while let Some(open) = text[at..].find(OPEN).map(|i| at + i + 3) {
        let Some(end) = text[open..].find(CLOSE).map(|i| open + i + CLOSE.len()) else {
            break;
        };
        let widget = &text[open..end];
        let name = widget
            .split_once("<name>")
            .and_then(|(_, rest)| rest.split_once("</name>"))
            .map_or("", |(name, _)| name);
        display.push_str(&text[at..open]);
        widgets.push(WidgetTemplate {
            name,
            text: widget,
            snippet: OnceLock::new(),
        });
        at = end;
    }
    display.push_str(&text[at..]);
    (display, widgets)
}

fn template(name: &str) -> Result<&'static Prepared, PviError> {
    let w = templates()
        .widgets
        .iter()
        .find(|w| w.name == name)
        .ok_or_else(|| PviError::Layout(format!("no bob template for widget '{name}'")))?;
    Ok(w.snippet.get_or_init(|| Prepared::new(w.text)))
}

/// How many replaced texts a widget keeps without allocating (the most a widget sets is 9).
const INLINE_TEXTS: usize = 10;

/// Replaced texts in the order set: inline, or on the heap past [`INLINE_TEXTS`].
// the inline variant is the point: it lives on the stack of the widget being written
#[allow(clippy::large_enum_variant)]
enum TextList<'v> {
    Inline([(usize, Text<'v>); INLINE_TEXTS], usize),
    Heap(Vec<(usize, Text<'v>)>),
}

impl Default for TextList<'_> {
    fn default() -> Self {
        TextList::Inline([const { (0, Text::Int(0)) }; INLINE_TEXTS], 0)
    }
}

impl<'v> TextList<'v> {
    fn push(&mut self, item: (usize, Text<'v>)) {
        match self {
            TextList::Inline(items, len) if *len < INLINE_TEXTS => {
                items[*len] = item;
                *len += 1;
            }
            TextList::Inline(items, _) => {
                let mut all: Vec<_> = items
                    .iter_mut()
                    .map(|i| std::mem::replace(i, (0, Text::Int(0))))
                    .collect();
                all.push(item);
                *self = TextList::Heap(all);
            }
            TextList::Heap(all) => all.push(item),
        }
    }

    fn as_slice(&self) -> &[(usize, Text<'v>)] {
        match self {
            TextList::Inline(items, len) => &items[..*len],
            TextList::Heap(all) => all,
        }
    }
}

/// The texts to replace in one widget: pvi's `BobTemplate.set` replaces the text of the first
/// element of a tag in document order, and an empty value leaves the template's.
struct Texts<'s, 'v> {
    snippet: &'s Prepared,
    set: TextList<'v>,
}

impl<'s, 'v> Texts<'s, 'v> {
    fn new(snippet: &'s Prepared) -> Texts<'s, 'v> {
        Texts {
            snippet,
            set: TextList::default(),
        }
    }

    fn set(&mut self, tag: &str, value: impl Into<Cow<'v, str>>) {
        let value = value.into();
        if value.is_empty() {
            return;
        }
        if let Some(n) = self.snippet.first(tag) {
            self.set.push((n, Text::Str(value)));
        }
    }

    fn bounds(&mut self, b: &Bounds, height: bool) {
        let values = [b.x, b.y, b.w, b.h];
        let n = if height { 4 } else { 3 };
        for (at, value) in self.snippet.bounds.iter().zip(values).take(n) {
            if let Some(at) = at {
                self.set.push((*at, Text::Int(value)));
            }
        }
    }

    /// Write the widget as a child of an element at `depth`, with `insert`'s children.
    fn write(
        &self,
        out: &mut String,
        depth: Option<usize>,
        insert: Option<Insert<'_, PviError>>,
    ) -> Result<(), PviError> {
        self.snippet
            .write_child(out, depth, self.set.as_slice(), insert)
    }

    /// Write as the document's root element.
    fn write_root(
        &self,
        out: &mut String,
        insert: Option<Insert<'_, PviError>>,
    ) -> Result<(), PviError> {
        self.snippet.write_root(out, self.set.as_slice(), insert)
    }

    /// Write the widget with extra elements appended to it.
    fn write_with(
        &self,
        out: &mut String,
        depth: Option<usize>,
        extras: &[Element],
    ) -> Result<(), PviError> {
        if extras.is_empty() {
            return self.write(out, depth, None);
        }
        let mut add = |out: &mut String, d: Option<usize>| {
            for e in extras {
                e.write_child(out, d);
            }
            Ok(())
        };
        let insert = Insert {
            at: 0,
            after: self.snippet.child_count(0),
            write: &mut add,
        };
        self.write(out, depth, Some(insert))
    }
}

/// Serialize one screen as pvi's `write_bob`.
pub fn format_screen(screen: &Screen) -> Result<String, PviError> {
    let t = templates();
    let mut display = Texts::new(&t.display);
    display.bounds(&screen.bounds, true);
    // the display's own <name> is set directly, so an empty title prints <name></name>
    if let Some(n) = t.display.first("name") {
        display
            .set
            .push((n, Text::Str(Cow::Borrowed(&screen.title))));
    }
    let (px, py) = screen.padding();
    let mut items = |out: &mut String, depth: Option<usize>| -> Result<(), PviError> {
        if screen.has_title {
            let mut title = Texts::new(template("Title")?);
            let b = Bounds {
                x: 0,
                y: 0,
                w: screen.bounds.w,
                h: 25,
            };
            title.bounds(&b, true);
            title.set("text", screen.title.as_str());
            title.write(out, depth, None)?;
        }
        for child in &screen.children {
            format_widget(child, (px, py), out, depth)?;
        }
        Ok(())
    };
    // the widgets go after <grid_step_y>, as pvi inserts them
    let after = t
        .display
        .child_position(0, "grid_step_y")
        .map_or(t.display.child_count(0), |i| i + 1);
    let mut out = String::with_capacity(64 * 1024);
    let insert = Insert {
        at: 0,
        after,
        write: &mut items,
    };
    display.write_root(&mut out, Some(insert))?;
    out.push('\n');
    Ok(out)
}

/// Write one laid-out widget, moved by `offset`, as a child of an element at `depth`.
fn format_widget(
    w: &Widget,
    offset: (i64, i64),
    out: &mut String,
    depth: Option<usize>,
) -> Result<(), PviError> {
    let moved = |b: &Bounds| Bounds {
        x: b.x + offset.0,
        y: b.y + offset.1,
        ..*b
    };
    match w {
        Widget::Label { b, text, tooltip } => {
            let mut el = Texts::new(template("Label")?);
            el.bounds(&moved(b), true);
            el.set("text", text.as_str());
            el.set("tooltip", tooltip.as_str());
            el.write(out, depth, None)
        }
        Widget::Heading { b, text } => {
            let mut el = Texts::new(template("Heading")?);
            el.bounds(&moved(b), true);
            el.set("text", text.as_str());
            el.write(out, depth, None)
        }
        Widget::Action {
            b,
            label,
            pv,
            value,
        } => {
            let snippet = template("WritePV")?;
            let mut el = Texts::new(snippet);
            el.bounds(&moved(b), true);
            el.set("text", label.as_str());
            // the first <pv_name> in document order is the action's
            el.set("pv_name", pv.as_str());
            el.set("value", value.as_str());
            el.set("tooltip", format!("{pv} = {value}\n$(pv_value)"));
            // iocrun fix (docs/compat.md): the widget's own <pv_name> gets the PV too
            if let Some(own) = snippet.child(0, "pv_name") {
                if !pv.is_empty() {
                    el.set.push((own, Text::Str(Cow::Borrowed(pv))));
                }
            }
            el.write(out, depth, None)
        }
        Widget::OpenDisplay {
            b,
            label,
            file_name,
            macros,
            ..
        } => {
            let snippet = template("OpenDisplay")?;
            let mut el = Texts::new(snippet);
            el.bounds(&moved(b), true);
            let file = if file_name.ends_with(".bob") {
                Cow::Borrowed(file_name.as_str())
            } else {
                Cow::Owned(format!("{file_name}.bob"))
            };
            el.set("file", file);
            el.set("text", label.as_str());
            let action = snippet.first("action").filter(|_| !macros.is_empty());
            let Some(action) = action else {
                return el.write(out, depth, None);
            };
            let mut m = Element::new("macros");
            for (k, v) in macros {
                m.sub(Element::with_text(k, v));
            }
            let mut add = |out: &mut String, d: Option<usize>| {
                m.write_child(out, d);
                Ok(())
            };
            let insert = Insert {
                at: action,
                after: snippet.child_count(action),
                write: &mut add,
            };
            el.write(out, depth, Some(insert))
        }
        Widget::Group { b, title, children } => {
            let snippet = template("Group")?;
            let mut el = Texts::new(snippet);
            el.bounds(&moved(b), true);
            el.set("name", title.as_str());
            let mut add = |out: &mut String, d: Option<usize>| {
                for c in children {
                    format_widget(c, (0, 0), out, d)?;
                }
                Ok(())
            };
            let insert = Insert {
                at: 0,
                after: snippet.child_count(0),
                write: &mut add,
            };
            el.write(out, depth, Some(insert))
        }
        Widget::Pv { b, pv, widget } => format_pv(&moved(b), pv, widget, out, depth),
    }
}

/// The template a PV widget is drawn with, and whether it is squared (LED, ToggleButton).
fn pv_template(widget: &PvWidget) -> Result<(&'static str, bool), PviError> {
    Ok(match widget {
        PvWidget::Read(r) => match r {
            ReadWidget::TextRead { .. } => ("TextUpdate", false),
            ReadWidget::Led {} => ("LED", true),
            ReadWidget::ProgressBar {} => ("ProgressBar", false),
            ReadWidget::BitField { .. } => ("BitField", false),
            ReadWidget::ArrayTrace { .. } => ("ArrayTrace", false),
            ReadWidget::ImageRead { .. } => ("ImageRead", false),
            ReadWidget::TableRead { .. } => ("Table", false),
        },
        PvWidget::Write(w) => match w {
            WriteWidget::TextWrite { .. } => ("TextEntry", false),
            WriteWidget::CheckBox {} => ("CheckBox", false),
            WriteWidget::ToggleButton {} => ("ToggleButton", true),
            WriteWidget::ComboBox { .. } => ("ComboBox", false),
            WriteWidget::TableWrite { .. } => ("Table", false),
            WriteWidget::ButtonPanel { .. } => {
                return Err(PviError::Layout(
                    "a ButtonPanel inside a Row has no bob widget (pvi 0.14.4 fails too)".into(),
                ))
            }
            WriteWidget::ArrayWrite { .. } => {
                return Err(PviError::Layout(
                    "ArrayWrite has no bob widget (pvi 0.14.4 fails too)".into(),
                ))
            }
        },
    })
}

fn format_pv(
    b: &Bounds,
    pv: &str,
    widget: &PvWidget,
    out: &mut String,
    depth: Option<usize>,
) -> Result<(), PviError> {
    let (name, square) = pv_template(widget)?;
    let mut el = Texts::new(template(name)?);
    let mut b = if square { b.square() } else { *b };
    let bits = match widget {
        PvWidget::Read(ReadWidget::BitField { number_of_bits, .. }) => Some(*number_of_bits),
        _ => None,
    };
    if let Some(bits) = bits {
        b.w = bits * 20;
    }
    el.bounds(&b, bits.is_none());
    match widget {
        PvWidget::Read(ReadWidget::ArrayTrace { .. }) => el.set("y_pv", pv),
        PvWidget::Read(ReadWidget::TableRead { .. })
        | PvWidget::Write(WriteWidget::TableWrite { .. }) => {
            let pv = if pv.starts_with("pva://") {
                Cow::Borrowed(pv)
            } else {
                Cow::Owned(format!("pva://{pv}"))
            };
            el.set("pv_name", pv);
        }
        _ => el.set("pv_name", pv),
    }
    let mut extras = Element::new("widget");
    add_extras(&mut extras, widget);
    el.write_with(out, depth, &extras.children)
}

fn text_format(el: &mut Element, format: &Option<TextFormat>, precision: &Option<i64>) {
    if let Some(f) = format {
        let code = match f {
            TextFormat::Decimal => "1",
            TextFormat::Exponential => "2",
            TextFormat::Engineer => "3",
            TextFormat::Hexadecimal => "4",
            TextFormat::String => "6",
        };
        el.sub(Element::with_text("format", code));
    }
    if let Some(p) = precision {
        el.sub(Element::with_text("precision", &p.to_string()));
    }
}

/// The elements pvi appends after patching, which can duplicate template elements.
fn add_extras(el: &mut Element, widget: &PvWidget) {
    match widget {
        PvWidget::Read(ReadWidget::TextRead {
            format, precision, ..
        })
        | PvWidget::Write(WriteWidget::TextWrite {
            format, precision, ..
        }) => text_format(el, format, precision),
        PvWidget::Write(WriteWidget::ComboBox {
            choices: Some(choices),
        }) if !choices.is_empty() => {
            let items = el.sub(Element::new("items"));
            for c in choices {
                items.sub(Element::with_text("item", c));
            }
            el.sub(Element::with_text("items_from_pv", "false"));
        }
        PvWidget::Read(ReadWidget::BitField { number_of_bits, .. }) => {
            el.sub(Element::with_text("numBits", &number_of_bits.to_string()));
        }
        PvWidget::Read(ReadWidget::ArrayTrace { axis, .. }) => {
            let x = el.sub(Element::new("x_axis"));
            x.sub(Element::with_text("title", ""));
            x.sub(Element::with_text("autoscale", "true"));
            let y = el.sub(Element::new("y_axes")).sub(Element::new("y_axis"));
            y.sub(Element::with_text("title", axis));
            y.sub(Element::with_text("autoscale", "true"));
        }
        PvWidget::Read(ReadWidget::ImageRead {
            color_map,
            color_bar,
            axes,
            ..
        }) => {
            let map = if *color_map == 0 { "GRAY" } else { "VIRIDIS" };
            el.sub(Element::new("color_map"))
                .sub(Element::with_text("name", map));
            el.sub(Element::new("color_bar"))
                .sub(Element::with_text("visible", bool_text(*color_bar)));
            if !axes {
                for tag in ["x_axis", "y_axis"] {
                    let a = el.sub(Element::new(tag));
                    a.sub(Element::with_text("visible", "false"));
                    a.sub(Element::with_text("title", ""));
                }
            }
        }
        PvWidget::Read(ReadWidget::TableRead { widgets }) if !widgets.is_empty() => {
            let columns = el.sub(Element::new("columns"));
            for (i, w) in widgets.iter().enumerate() {
                let options = match w {
                    ReadWidget::Led {} => vec!["false".to_owned(), "true".to_owned()],
                    _ => Vec::new(),
                };
                table_column(columns, i, false, &options);
            }
            el.sub(Element::with_text("editable", "false"));
        }
        PvWidget::Write(WriteWidget::TableWrite { widgets }) if !widgets.is_empty() => {
            let columns = el.sub(Element::new("columns"));
            for (i, w) in widgets.iter().enumerate() {
                let options = match w {
                    WriteWidget::CheckBox {} => vec!["false".to_owned(), "true".to_owned()],
                    WriteWidget::ComboBox { choices } => choices.clone().unwrap_or_default(),
                    _ => Vec::new(),
                };
                table_column(columns, i, true, &options);
            }
            el.sub(Element::with_text("editable", "true"));
        }
        _ => {}
    }
}

fn table_column(columns: &mut Element, i: usize, editable: bool, options: &[String]) {
    let col = columns.sub(Element::new("column"));
    col.sub(Element::with_text("name", &format!("Column {}", i + 1)));
    col.sub(Element::with_text("editable", bool_text(editable)));
    if !options.is_empty() {
        let opts = col.sub(Element::new("options"));
        for o in options {
            opts.sub(Element::with_text("option", o));
        }
    }
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widgets cut out of the template text parse exactly as the same elements of the
    /// whole document, and the display keeps its other children.
    #[test]
    fn split_template_matches_the_whole_document() {
        let whole = parse_embedded(DLS_BOB);
        let (display, widgets) = split_widgets(DLS_BOB);
        let (whole_widgets, others): (Vec<&Element>, Vec<&Element>) =
            whole.children.iter().partition(|c| c.tag == "widget");
        assert_eq!(widgets.len(), whole_widgets.len());
        assert!(widgets.len() > 10);
        for (w, el) in widgets.iter().zip(whole_widgets) {
            assert_eq!(&parse_embedded(w.text), el);
            let name = el.find("name").and_then(|n| n.text.as_deref());
            assert_eq!(Some(w.name), name);
        }
        let display = parse_embedded(&display);
        assert_eq!(display.children.iter().collect::<Vec<_>>(), others);
        assert_eq!((display.tag, display.attrs), (whole.tag, whole.attrs));
    }

    #[test]
    fn text_list_keeps_order_past_its_inline_room() {
        let mut list = TextList::default();
        for n in 0..INLINE_TEXTS + 3 {
            list.push((n, Text::Int(n as i64)));
        }
        let got: Vec<(usize, i64)> = list
            .as_slice()
            .iter()
            .map(|(n, t)| match t {
                Text::Int(v) => (*n, *v),
                Text::Str(_) => (*n, -1),
            })
            .collect();
        let want: Vec<(usize, i64)> = (0..INLINE_TEXTS + 3).map(|n| (n, n as i64)).collect();
        assert_eq!(got, want);
    }
}
