//! Text from a peer, made safe to print: control bytes escaped, length bounded.
//!
//! A server's error message or a client's bad option ends up on a terminal, in `kubectl logs`
//! and in HTTP bodies; it must not carry escape sequences there, nor grow them without bound.

/// `bytes` as UTF-8 (lossily), control characters written as `\u{..}` escapes; when that is
/// longer than `max` characters, the first `max` and `…` to show the cut.
pub fn printable(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let escaped = text.chars().flat_map(|c| {
        let (plain, escape) = if c.is_control() {
            (None, Some(c.escape_default()))
        } else {
            (Some(c), None)
        };
        plain.into_iter().chain(escape.into_iter().flatten())
    });
    for (i, c) in escaped.enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_control_bytes() {
        assert_eq!(printable(b"a\x1b[2Jb\n", 20), "a\\u{1b}[2Jb\\n");
    }

    #[test]
    fn cuts_long_text() {
        assert_eq!(printable(b"abcdef", 3), "abc…");
        assert_eq!(printable(b"abc", 3), "abc");
        assert_eq!(
            printable(b"\x1b\x1b", 9),
            "\\u{1b}\\u{…",
            "escapes count too"
        );
    }
}
