//! The console socket protocol: a raw byte stream by default, with an optional framed mode that
//! `iocrun attach` negotiates to carry window sizes. Pure encode/decode, no I/O.
//!
//! Server → client is always the raw console stream, so any client can read it.
//!
//! Client → server starts raw: every byte is keyboard input for the IOC, which is what
//! `socat UNIX-CONNECT:PATH -,raw,echo=0` sends. A client that wants more sends, as its very
//! first bytes, the hello line
//!
//! ```text
//! \0iocrun-console/1[ OPTION]*\n        OPTION: ro (read-only: input is ignored)
//! ```
//!
//! after which its input is a sequence of frames `TAG LEN_HI LEN_LO PAYLOAD`:
//! `TAG=1` data (the payload is input), `TAG=2` resize (payload `rows:u16be cols:u16be`).
//! A raw client cannot send the hello by accident: it begins with a NUL and must match the whole
//! magic; the server stops looking at the first byte that differs and treats everything buffered
//! so far as input, so raw clients see no delay beyond that first byte.

/// The start of the hello line.
pub(crate) const MAGIC: &[u8] = b"\0iocrun-console/1";
/// A hello longer than this without its newline is a protocol error.
const MAX_HELLO: usize = 128;
/// Characters of a bad hello option quoted back to its client.
const MAX_OPTION_SHOWN: usize = 32;
const TAG_DATA: u8 = 1;
const TAG_RESIZE: u8 = 2;

/// What a client's bytes mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Keyboard input for the IOC.
    Input(Vec<u8>),
    /// The client's terminal size.
    Resize { rows: u16, cols: u16 },
    /// The client negotiated framed mode.
    Hello { read_only: bool },
}

/// A client broke the framed protocol; it is disconnected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    #[error("hello line longer than {MAX_HELLO} bytes")]
    HelloTooLong,
    #[error("unknown hello option '{0}'")]
    HelloOption(String),
    #[error("unknown frame type {0}")]
    UnknownFrame(u8),
    #[error("resize frame of {0} bytes, expected 4")]
    ResizeLength(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sniff,
    Raw,
    Framed,
}

/// Decodes one client's input stream.
#[derive(Debug)]
pub struct Decoder {
    mode: Mode,
    buf: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder {
            mode: Mode::Sniff,
            buf: Vec::new(),
        }
    }
}

impl Decoder {
    /// Feed bytes as they arrive; complete events are appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), ProtoError> {
        match self.mode {
            Mode::Raw => {
                out.push(Event::Input(bytes.to_vec()));
                Ok(())
            }
            Mode::Sniff => {
                self.buf.extend_from_slice(bytes);
                self.sniff(out)
            }
            Mode::Framed => {
                self.buf.extend_from_slice(bytes);
                self.frames(out)
            }
        }
    }

    fn sniff(&mut self, out: &mut Vec<Event>) -> Result<(), ProtoError> {
        let n = self.buf.len().min(MAGIC.len());
        if self.buf[..n] != MAGIC[..n] {
            self.mode = Mode::Raw;
            out.push(Event::Input(std::mem::take(&mut self.buf)));
            return Ok(());
        }
        let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
            return match self.buf.len() > MAX_HELLO {
                true => Err(ProtoError::HelloTooLong),
                false => Ok(()),
            };
        };
        let line = String::from_utf8_lossy(&self.buf[MAGIC.len()..nl]).into_owned();
        let mut read_only = false;
        for opt in line.split_whitespace() {
            match opt {
                "ro" => read_only = true,
                other => {
                    let shown = crate::printable::printable(other.as_bytes(), MAX_OPTION_SHOWN);
                    return Err(ProtoError::HelloOption(shown));
                }
            }
        }
        self.buf.drain(..=nl);
        self.mode = Mode::Framed;
        out.push(Event::Hello { read_only });
        self.frames(out)
    }

    fn frames(&mut self, out: &mut Vec<Event>) -> Result<(), ProtoError> {
        let mut at = 0;
        while self.buf.len() - at >= 3 {
            let tag = self.buf[at];
            let len = usize::from(u16::from_be_bytes([self.buf[at + 1], self.buf[at + 2]]));
            if self.buf.len() - at < 3 + len {
                break;
            }
            let payload = &self.buf[at + 3..at + 3 + len];
            match tag {
                TAG_DATA => out.push(Event::Input(payload.to_vec())),
                TAG_RESIZE => out.push(decode_resize(payload)?),
                other => return Err(ProtoError::UnknownFrame(other)),
            }
            at += 3 + len;
        }
        self.buf.drain(..at);
        Ok(())
    }
}

fn decode_resize(p: &[u8]) -> Result<Event, ProtoError> {
    match p {
        [r0, r1, c0, c1] => Ok(Event::Resize {
            rows: u16::from_be_bytes([*r0, *r1]),
            cols: u16::from_be_bytes([*c0, *c1]),
        }),
        _ => Err(ProtoError::ResizeLength(p.len())),
    }
}

/// The hello line that switches a connection to framed mode.
pub(crate) fn encode_hello(read_only: bool) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    if read_only {
        out.extend_from_slice(b" ro");
    }
    out.push(b'\n');
    out
}

/// Input bytes as data frames (split at the 64 KiB frame limit).
pub(crate) fn encode_data(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 3);
    for part in bytes.chunks(usize::from(u16::MAX)) {
        out.push(TAG_DATA);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// A resize frame.
pub(crate) fn encode_resize(rows: u16, cols: u16) -> Vec<u8> {
    let mut out = vec![TAG_RESIZE, 0, 4];
    out.extend_from_slice(&rows.to_be_bytes());
    out.extend_from_slice(&cols.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Result<Vec<Event>, ProtoError> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn raw_client_bytes_are_input_at_once() {
        let ev = decode_all(&[b"dbl\r", b"\x03"]).expect("decode");
        assert_eq!(
            ev,
            vec![
                Event::Input(b"dbl\r".to_vec()),
                Event::Input(b"\x03".to_vec())
            ]
        );
    }

    #[test]
    fn raw_client_starting_with_nul_is_released_at_first_mismatch() {
        let ev = decode_all(&[b"\0", b"io", b"x"]).expect("decode");
        assert_eq!(ev, vec![Event::Input(b"\0iox".to_vec())]);
    }

    #[test]
    fn hello_then_frames_round_trip() {
        let mut stream = encode_hello(false);
        stream.extend(encode_resize(24, 80));
        stream.extend(encode_data(b"dbl\r"));
        // feed one byte at a time: frames split anywhere must still decode
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        let ev = decode_all(&chunks).expect("decode");
        assert_eq!(
            ev,
            vec![
                Event::Hello { read_only: false },
                Event::Resize { rows: 24, cols: 80 },
                Event::Input(b"dbl\r".to_vec()),
            ]
        );
    }

    #[test]
    fn read_only_hello() {
        let ev = decode_all(&[&encode_hello(true)]).expect("decode");
        assert_eq!(ev, vec![Event::Hello { read_only: true }]);
    }

    #[test]
    fn large_input_splits_into_frames() {
        let big = vec![b'x'; 70_000];
        let mut stream = encode_hello(false);
        stream.extend(encode_data(&big));
        let ev = decode_all(&[&stream]).expect("decode");
        let joined: Vec<u8> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Input(b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(joined, big);
    }

    #[test]
    fn protocol_errors() {
        let hello = encode_hello(false);
        assert_eq!(
            decode_all(&[&hello, &[9, 0, 0]]),
            Err(ProtoError::UnknownFrame(9))
        );
        assert_eq!(
            decode_all(&[&hello, &[2, 0, 2, 0, 1]]),
            Err(ProtoError::ResizeLength(2))
        );
        assert_eq!(
            decode_all(&[b"\0iocrun-console/1 rw\n"]),
            Err(ProtoError::HelloOption("rw".into()))
        );
        let long = [MAGIC, &[b' '; 200][..]].concat();
        assert_eq!(decode_all(&[&long]), Err(ProtoError::HelloTooLong));
        let mut evil = MAGIC.to_vec();
        evil.extend_from_slice(b" \x1b]0;owned\x07\x1b[2J\n");
        assert_eq!(
            decode_all(&[&evil]),
            Err(ProtoError::HelloOption(
                "\\u{1b}]0;owned\\u{7}\\u{1b}[2J".into()
            ))
        );
    }
}
