//! `wait_list.yaml`: the targets render writes and `iocrun wait` reads.

use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use serde_yaml::Value;

use super::WaitError;
use crate::config::ConfigError;

/// The port ibek uses when an address has none.
const DEFAULT_PORT: u16 = 1025;

/// The parsed list, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitList {
    pub entries: Vec<Entry>,
}

/// One item of the list.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// `ibek.wait_ip`: a TCP port that must accept a connection.
    Ip(IpTarget),
    /// Any other `type`: reported and skipped, as ibek does.
    Unsupported { kind: String },
}

/// A host and port to wait for.
#[derive(Debug, Clone, PartialEq)]
pub struct IpTarget {
    /// The `device` name, for messages.
    pub device: String,
    /// The `address` as written, for messages.
    pub address: String,
    pub host: String,
    pub port: u16,
    /// `None` waits for ever (`timeout` 0 or negative).
    pub timeout: Option<Duration>,
    /// The timeout as written in the file (`10`, `0.5`), for ibek's messages.
    pub timeout_text: String,
    /// True when the address had no port and [`DEFAULT_PORT`] was used.
    pub defaulted_port: bool,
}

/// Read and parse the list; `Ok(None)` when the file does not exist.
pub fn load(path: &Path) -> Result<Option<WaitList>, WaitError> {
    let text = match crate::config::read_yaml(path) {
        Ok(text) => text,
        Err(ConfigError::Read { source, .. }) if source.kind() == ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(ConfigError::Read { path, source }) => {
            return Err(WaitError::ReadList { path, source })
        }
        Err(other) => return Err(parse_error(path, other)),
    };
    parse(&text, path).map(Some)
}

/// Parse the text of a list; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<WaitList, WaitError> {
    let doc = crate::config::parse_yaml(path, text).map_err(|e| parse_error(path, e))?;
    let items = match doc {
        // an empty file is an empty list, as in ibek (`yaml.load(...) or []`)
        Value::Null => Vec::new(),
        Value::Sequence(items) => items,
        _ => return Err(bad(path, 0, "the file must hold a list of wait entries")),
    };
    let entries = items
        .iter()
        .enumerate()
        .map(|(i, item)| entry(item, path, i + 1))
        .collect::<Result<_, _>>()?;
    Ok(WaitList { entries })
}

fn entry(item: &Value, path: &Path, index: usize) -> Result<Entry, WaitError> {
    let field = |name: &str| item.get(name);
    let kind = match field("type") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad(path, index, "it has no string 'type'")),
    };
    if kind != "ibek.wait_ip" {
        return Ok(Entry::Unsupported { kind });
    }
    let address =
        scalar_text(field("address")).ok_or_else(|| bad(path, index, "it has no 'address'"))?;
    // defaults of the ibek.wait_ip entity, for hand-written lists
    let device = scalar_text(field("device")).unwrap_or_else(|| "DEVICE".to_owned());
    let (seconds, timeout_text) = match field("timeout") {
        None | Some(Value::Null) => (0.0, "0".to_owned()),
        Some(Value::Number(n)) => (n.as_f64().unwrap_or(0.0), n.to_string()),
        Some(_) => return Err(bad(path, index, "its 'timeout' is not a number")),
    };
    let (host, port, defaulted_port) = split_address(&address).ok_or_else(|| {
        bad(
            path,
            index,
            &format!("its address '{address}' has a bad port"),
        )
    })?;
    Ok(Entry::Ip(IpTarget {
        device,
        address,
        host,
        port,
        timeout: (seconds > 0.0).then(|| Duration::from_secs_f64(seconds)),
        timeout_text,
        defaulted_port,
    }))
}

/// Split `host:port` on the last `:` as ibek does; no `:` means port 1025.
fn split_address(address: &str) -> Option<(String, u16, bool)> {
    match address.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.trim().parse().ok()?, false)),
        None => Some((address.to_owned(), DEFAULT_PORT, true)),
    }
}

fn scalar_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Text that is not YAML, or beyond the YAML bounds of docs/limits.md.
fn parse_error(path: &Path, e: ConfigError) -> WaitError {
    let (line, column, message) = match e {
        ConfigError::Yaml {
            line,
            column,
            message,
            ..
        } => (line, column, message),
        other => (None, None, other.to_string()),
    };
    WaitError::ParseList {
        path: path.to_owned(),
        line: line.unwrap_or(0),
        column: column.unwrap_or(0),
        message,
    }
}

fn bad(path: &Path, index: usize, what: &str) -> WaitError {
    WaitError::BadEntry {
        path: path.to_owned(),
        index,
        what: what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> WaitList {
        parse(text, Path::new("wait_list.yaml")).expect("parses")
    }

    #[test]
    fn reads_the_ibek_layout() {
        let list = parse_ok(
            "# header\n\n  - type: ibek.wait_ip\n    device: ctrl\n    address: 192.168.0.55:5000\n    timeout: 10\n\n  - type: ibek.wait_usb\n    device: u\n",
        );
        let Entry::Ip(t) = &list.entries[0] else {
            panic!("first is ip")
        };
        assert_eq!((t.host.as_str(), t.port), ("192.168.0.55", 5000));
        assert_eq!(t.timeout, Some(Duration::from_secs(10)));
        assert_eq!(t.timeout_text, "10");
        assert_eq!(
            list.entries[1],
            Entry::Unsupported {
                kind: "ibek.wait_usb".into()
            }
        );
    }

    #[test]
    fn empty_file_is_empty_list() {
        assert!(parse_ok("# only a comment\n").entries.is_empty());
    }

    #[test]
    fn missing_port_uses_1025_and_zero_timeout_waits_forever() {
        let list = parse_ok("- type: ibek.wait_ip\n  address: somehost\n  timeout: 0\n");
        let Entry::Ip(t) = &list.entries[0] else {
            panic!("ip")
        };
        assert_eq!((t.port, t.defaulted_port, t.timeout), (1025, true, None));
        assert_eq!(t.device, "DEVICE");
    }

    #[test]
    fn float_timeout_is_accepted() {
        let list = parse_ok("- type: ibek.wait_ip\n  address: h:1\n  timeout: 0.5\n");
        let Entry::Ip(t) = &list.entries[0] else {
            panic!("ip")
        };
        assert_eq!(t.timeout, Some(Duration::from_millis(500)));
        assert_eq!(t.timeout_text, "0.5");
    }

    #[test]
    fn bad_port_names_the_entry() {
        let err = parse(
            "- type: ibek.wait_ip\n  address: h:x\n",
            Path::new("w.yaml"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad wait entry 1 in 'w.yaml': its address 'h:x' has a bad port"
        );
    }

    #[test]
    fn yaml_errors_carry_the_location() {
        let err = parse("- type: [\n", Path::new("w.yaml")).unwrap_err();
        assert!(
            matches!(err, WaitError::ParseList { line: 2, .. }),
            "{err:?}"
        );
    }
}
