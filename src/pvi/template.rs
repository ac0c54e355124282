//! The `.pvi.template`: one `record("*", PV)` per signal PV with the QSRV
//! `Q:group` info tag that builds the `<prefix>PVI` structure, as pvi 0.14.4's
//! `format_template` (with its `+trigger` line) writes it.

use super::device::{Component, Device, Kind, Node};
use super::PviError;

/// The template text for a resolved device.
pub fn format_template(device: &Device, pv_prefix: &str) -> Result<String, PviError> {
    check_resolved(device)?;
    let mut records = Vec::new();
    for node in &device.children {
        if let Node::Component(c) = node {
            walk(c, &mut records);
        }
    }
    use std::fmt::Write;
    let label = &device.label;
    // a record is about 300 bytes
    let mut out = String::with_capacity(128 + 320 * records.len());
    let _ = write!(out, "\n### PV Interface for {label} ###\n");
    for (name, pv, access) in records {
        // writing into a String cannot fail
        let _ = write!(
            out,
            "\nrecord(\"*\", \"{pv}\") {{\n    info(Q:group, {{\n        \"{pv_prefix}PVI\": {{\n            \"pvi.{name}.{access}\": {{\n                \"+channel\": \"NAME\",\n                \"+type\": \"plain\",\n                \"+trigger\": \"pvi.{name}.{access}\",\n            }}\n        }}\n    }})\n}}\n"
        );
    }
    let _ = write!(out, "\n### End of PV Interface for {label} ###\n");
    Ok(out)
}

/// Whether [`format_template`] can format the device (with any prefix): every Include resolved.
pub fn check_resolved(device: &Device) -> Result<(), PviError> {
    match device.children.iter().find_map(|n| match n {
        Node::Include(inc) => Some(inc),
        Node::Component(_) => None,
    }) {
        Some(inc) => Err(PviError::Layout(format!(
            "Include '{}' should have been resolved (parent asynPortDriver stops resolution)",
            inc.file_name
        ))),
        None => Ok(()),
    }
}

/// Depth-first records: (signal name, PV, access). SignalX is checked before SignalW.
fn walk<'a>(c: &'a Component, out: &mut Vec<(&'a str, &'a str, &'static str)>) {
    let name = c.name.as_str();
    match &c.kind {
        Kind::Group { children, .. } => children.iter().for_each(|c| walk(c, out)),
        Kind::SignalRW {
            read_pv, write_pv, ..
        } if read_pv == write_pv => out.push((name, write_pv, "rw")),
        Kind::SignalRW {
            read_pv, write_pv, ..
        } => {
            out.push((name, write_pv, "w"));
            out.push((name, read_pv, "r"));
        }
        Kind::SignalX { write_pv, .. } => out.push((name, write_pv, "x")),
        Kind::SignalW { write_pv, .. } => out.push((name, write_pv, "w")),
        Kind::SignalR { read_pv, .. } => out.push((name, read_pv, "r")),
        Kind::Ignored | Kind::SignalRef | Kind::DeviceRef { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_device_has_only_the_comments() {
        let d = Device {
            label: "L".into(),
            parent: None,
            children: Vec::new(),
        };
        assert_eq!(
            format_template(&d, "$(P)").unwrap(),
            "\n### PV Interface for L ###\n\n### End of PV Interface for L ###\n"
        );
    }
}
