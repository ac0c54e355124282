//! The raw YAML mirror of a device file: serde structs with pvi's defaults, refusing unknown
//! keys, and their validation into the [`Device`] model with the key path of any problem
//! (pvi's pydantic validators: PascalCase names, the SignalRW read defaults, SignalX's
//! ButtonPanel).

use indexmap::IndexMap;
use serde::Deserialize;

use super::device::{
    go, is_pascal, Component, Device, Include, Kind, Layout, Node, ReadWidget, WriteWidget,
};
use super::PviError;

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
