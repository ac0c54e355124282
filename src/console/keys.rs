//! Key sequences typed on a console: the attach client's detach keys and the server's ignored
//! characters (procServ `-i`).
//!
//! Accepted spellings, which may be mixed: caret notation (`^]`, `^P^Q`, `^D^C`, as procServ
//! writes them) and docker's comma list (`ctrl-p,ctrl-q`, `ctrl-]`, plain letters like `a`).

use std::fmt;
use std::str::FromStr;

/// A sequence of bytes typed as keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySeq(pub Vec<u8>);

/// A key spelling that names no byte.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid key '{0}': use ^X, ctrl-x or a single character (e.g. '^]' or 'ctrl-p,ctrl-q')")]
pub struct KeyError(String);

impl FromStr for KeySeq {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<KeySeq, KeyError> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(name) = part.strip_prefix("ctrl-") {
                out.push(ctrl(name).ok_or_else(|| KeyError(part.to_owned()))?);
                continue;
            }
            let mut chars = part.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '^' {
                    let Some(next) = chars.next() else {
                        return Err(KeyError(part.to_owned()));
                    };
                    out.push(ctrl(&next.to_string()).ok_or_else(|| KeyError(part.to_owned()))?);
                } else if c.is_ascii() && part.len() == 1 {
                    out.push(c as u8);
                } else {
                    return Err(KeyError(part.to_owned()));
                }
            }
        }
        Ok(KeySeq(out))
    }
}

/// The control byte for `x` in `ctrl-x` / `^X` (`@`, letters, `[ \ ] ^ _`, `?` for DEL).
fn ctrl(name: &str) -> Option<u8> {
    let [c] = name.as_bytes() else { return None };
    match c.to_ascii_uppercase() {
        b'?' => Some(0x7f),
        u @ b'@'..=b'_' => Some(u - b'@'),
        _ => None,
    }
}

impl fmt::Display for KeySeq {
    /// Caret notation, e.g. `^P^Q`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            match b {
                0x7f => f.write_str("^?")?,
                0..=0x1f => write!(f, "^{}", char::from(b + b'@'))?,
                _ => write!(f, "{}", char::from(b))?,
            }
        }
        Ok(())
    }
}

/// Finds the detach sequence in typed input, holding back a partial match until it is
/// confirmed or broken (then the held bytes are sent after all).
#[derive(Debug)]
pub(crate) struct DetachMatcher {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachMatcher {
    pub(crate) fn new(keys: KeySeq) -> DetachMatcher {
        DetachMatcher {
            keys: keys.0,
            matched: 0,
        }
    }

    /// Bytes to send, and whether the sequence completed (bytes after it are discarded).
    pub(crate) fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut send = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            send.extend_from_slice(input);
            return (send, false);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (send, true);
                }
                continue;
            }
            // a broken partial match: the held keys were ordinary input
            send.extend_from_slice(&self.keys[..self.matched]);
            self.matched = usize::from(b == self.keys[0]);
            if self.matched == 0 {
                send.push(b);
            }
        }
        (send, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> Vec<u8> {
        s.parse::<KeySeq>().expect("valid keys").0
    }

    #[test]
    fn parses_caret_and_docker_spellings() {
        assert_eq!(keys("^]"), vec![0x1d]);
        assert_eq!(keys("ctrl-]"), vec![0x1d]);
        assert_eq!(keys("ctrl-p,ctrl-q"), vec![0x10, 0x11]);
        assert_eq!(keys("^P^Q"), vec![0x10, 0x11]);
        assert_eq!(keys("^D^C"), vec![0x04, 0x03]);
        assert_eq!(keys("^d"), vec![0x04]);
        assert_eq!(keys("ctrl-a,d"), vec![0x01, b'd']);
        assert_eq!(keys(""), Vec::<u8>::new());
        assert!("ctrl-".parse::<KeySeq>().is_err());
        assert!("^".parse::<KeySeq>().is_err());
        assert!("ctrl-1".parse::<KeySeq>().is_err());
        assert!("ab".parse::<KeySeq>().is_err());
    }

    #[test]
    fn displays_in_caret_notation() {
        assert_eq!(KeySeq(keys("ctrl-p,ctrl-q")).to_string(), "^P^Q");
        assert_eq!(KeySeq(keys("^]")).to_string(), "^]");
    }

    #[test]
    fn single_key_detaches_and_keeps_prior_input() {
        let mut m = DetachMatcher::new(KeySeq(keys("^]")));
        assert_eq!(m.feed(b"dbl\r"), (b"dbl\r".to_vec(), false));
        assert_eq!(m.feed(b"ab\x1dcd"), (b"ab".to_vec(), true));
    }

    #[test]
    fn two_key_sequence_across_reads() {
        let mut m = DetachMatcher::new(KeySeq(keys("ctrl-p,ctrl-q")));
        assert_eq!(m.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(m.feed(b"\x11"), (vec![], true));
    }

    #[test]
    fn broken_partial_match_is_sent_after_all() {
        let mut m = DetachMatcher::new(KeySeq(keys("ctrl-p,ctrl-q")));
        assert_eq!(m.feed(b"\x10a"), (b"\x10a".to_vec(), false));
        // ^P ^P ^Q: the first ^P is input, the second starts the sequence
        assert_eq!(m.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
    }

    #[test]
    fn no_detach_keys_passes_everything() {
        let mut m = DetachMatcher::new(KeySeq::default());
        assert_eq!(m.feed(b"\x1d\x10"), (b"\x1d\x10".to_vec(), false));
    }
}
