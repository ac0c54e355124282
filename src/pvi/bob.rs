//! Phoebus `.bob` output (spec pvi.md §2.6–2.8): each laid-out widget is a copy of its snippet
//! from the embedded DLS template with the text of the first descendant of each patched tag
//! replaced and extras appended, exactly as pvi's `BobTemplate.set` does; `xml` prints it the way
//! lxml does.
//!
//! One deliberate fix (docs/compat.md): the write-button's widget-level `<pv_name>` gets the
//! real PV instead of pvi 0.14.4's literal `SignalX`.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::device::{ReadWidget, TextFormat, WriteWidget};
use super::widget::{Bounds, PvWidget, Screen, Widget};
use super::xml::{self, Element};
use super::PviError;

/// pvi 0.14.4's `dls.bob` (used widgets only), whitespace preserved.
const DLS_BOB: &str = include_str!("dls.bob");

struct Templates {
    display: Element,
    widgets: HashMap<String, Element>,
}

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| {
        let mut display = xml::parse(DLS_BOB).expect("the embedded dls.bob is well-formed");
        let mut widgets = HashMap::new();
        for w in std::mem::take(&mut display.children) {
            if w.tag == "widget" {
                let name = w
                    .find("name")
                    .and_then(|n| n.text.clone())
                    .unwrap_or_default();
                widgets.insert(name, w);
            } else {
                display.children.push(w);
            }
        }
        Templates { display, widgets }
    })
}

fn template(name: &str) -> Result<Element, PviError> {
    templates()
        .widgets
        .get(name)
        .cloned()
        .ok_or_else(|| PviError::Layout(format!("no bob template for widget '{name}'")))
}

/// Replace the text of the first `tag` in document order; an empty value leaves the template's.
fn set(el: &mut Element, tag: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    if let Some(e) = el.find_mut(tag) {
        e.text = Some(value.to_owned());
    }
}

fn set_bounds(el: &mut Element, b: &Bounds, height: bool) {
    set(el, "x", &b.x.to_string());
    set(el, "y", &b.y.to_string());
    set(el, "width", &b.w.to_string());
    if height {
        set(el, "height", &b.h.to_string());
    }
}

/// Serialize one screen as pvi's `write_bob`.
pub fn format_screen(screen: &Screen) -> Result<String, PviError> {
    let mut display = templates().display.clone();
    set_bounds(&mut display, &screen.bounds, true);
    let mut items = Vec::new();
    if screen.has_title {
        let mut title = template("Title")?;
        let b = Bounds {
            x: 0,
            y: 0,
            w: screen.bounds.w,
            h: 25,
        };
        set_bounds(&mut title, &b, true);
        set(&mut title, "text", &screen.title);
        items.push(title);
    }
    let (px, py) = screen.padding();
    for child in &screen.children {
        let mut child = child.clone();
        let b = child.bounds_mut();
        b.x += px;
        b.y += py;
        items.push(format_widget(&child)?);
    }
    let at = display
        .children
        .iter()
        .position(|c| c.tag == "grid_step_y")
        .map_or(display.children.len(), |i| i + 1);
    display.children.splice(at..at, items);
    // the display's own <name> is set directly, so an empty title prints <name></name>
    if let Some(name) = display.find_mut("name") {
        name.text = Some(screen.title.clone());
    }
    Ok(display.to_pretty_string())
}

fn format_widget(w: &Widget) -> Result<Element, PviError> {
    match w {
        Widget::Label { b, text, tooltip } => {
            let mut el = template("Label")?;
            set_bounds(&mut el, b, true);
            set(&mut el, "text", text);
            set(&mut el, "tooltip", tooltip);
            Ok(el)
        }
        Widget::Heading { b, text } => {
            let mut el = template("Heading")?;
            set_bounds(&mut el, b, true);
            set(&mut el, "text", text);
            Ok(el)
        }
        Widget::Action {
            b,
            label,
            pv,
            value,
        } => {
            let mut el = template("WritePV")?;
            set_bounds(&mut el, b, true);
            set(&mut el, "text", label);
            // the first <pv_name> in document order is the action's (§2.6)
            set(&mut el, "pv_name", pv);
            set(&mut el, "value", value);
            set(&mut el, "tooltip", &format!("{pv} = {value}\n$(pv_value)"));
            // iocrun fix (docs/compat.md): the widget's own <pv_name> gets the PV too
            if let Some(own) = el.children.iter_mut().find(|c| c.tag == "pv_name") {
                if !pv.is_empty() {
                    own.text = Some(pv.clone());
                }
            }
            Ok(el)
        }
        Widget::OpenDisplay {
            b,
            label,
            file_name,
            macros,
            ..
        } => {
            let mut el = template("OpenDisplay")?;
            set_bounds(&mut el, b, true);
            let mut file = file_name.clone();
            if !file.ends_with(".bob") {
                file.push_str(".bob");
            }
            set(&mut el, "file", &file);
            set(&mut el, "text", label);
            if !macros.is_empty() {
                if let Some(action) = el.find_mut("action") {
                    let m = action.sub(Element::new("macros"));
                    for (k, v) in macros {
                        m.sub(Element::with_text(k, v));
                    }
                }
            }
            Ok(el)
        }
        Widget::Group { b, title, children } => {
            let mut el = template("Group")?;
            set_bounds(&mut el, b, true);
            set(&mut el, "name", title);
            for c in children {
                el.children.push(format_widget(c)?);
            }
            Ok(el)
        }
        Widget::Pv { b, pv, widget } => format_pv(b, pv, widget),
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

fn format_pv(b: &Bounds, pv: &str, widget: &PvWidget) -> Result<Element, PviError> {
    let (name, square) = pv_template(widget)?;
    let mut el = template(name)?;
    let mut b = if square { b.square() } else { *b };
    let bits = match widget {
        PvWidget::Read(ReadWidget::BitField { number_of_bits, .. }) => Some(*number_of_bits),
        _ => None,
    };
    if let Some(bits) = bits {
        b.w = bits * 20;
    }
    set_bounds(&mut el, &b, bits.is_none());
    match widget {
        PvWidget::Read(ReadWidget::ArrayTrace { .. }) => set(&mut el, "y_pv", pv),
        PvWidget::Read(ReadWidget::TableRead { .. })
        | PvWidget::Write(WriteWidget::TableWrite { .. }) => {
            let pv = if pv.starts_with("pva://") {
                pv.to_owned()
            } else {
                format!("pva://{pv}")
            };
            set(&mut el, "pv_name", &pv);
        }
        _ => set(&mut el, "pv_name", pv),
    }
    add_extras(&mut el, widget);
    Ok(el)
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

/// The elements pvi appends after patching (§2.6), which can duplicate template elements.
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
