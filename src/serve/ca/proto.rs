//! The Channel Access wire format, pure: messages in and out as bytes, and the `DBR_TIME_*`
//! payloads a read returns (the CA protocol specification).
//!
//! Every integer is big-endian. A message is a 16-byte header and a payload padded to a
//! multiple of 8; a header with `payload_size` 0xFFFF and `count` 0 is followed by 32-bit size
//! and count (the extended form large arrays use).

use super::CaError;

/// The protocol minor version we speak; EPICS 7 sends 13 and rsrv accepts it.
pub const MINOR_VERSION: u16 = 13;

/// Command codes.
pub mod cmd {
    pub const VERSION: u16 = 0;
    /// A subscription (client → server) and each of its updates (server → client).
    pub const EVENT_ADD: u16 = 1;
    pub const EVENT_CANCEL: u16 = 2;
    pub const SEARCH: u16 = 6;
    pub const ERROR: u16 = 11;
    pub const CLEAR_CHANNEL: u16 = 12;
    pub const READ_NOTIFY: u16 = 15;
    pub const CREATE_CHAN: u16 = 18;
    pub const CLIENT_NAME: u16 = 20;
    pub const HOST_NAME: u16 = 21;
    pub const ECHO: u16 = 23;
    pub const CREATE_CH_FAIL: u16 = 26;
    pub const SERVER_DISCONN: u16 = 27;
}

/// A search the server answers only if it has the name (broadcast style).
const DONT_REPLY: u16 = 5;
/// `ECA_NORMAL`: the status of a successful read.
pub const ECA_NORMAL: u32 = 1;

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub command: u16,
    pub data_type: u16,
    pub count: u32,
    pub p1: u32,
    pub p2: u32,
    /// The payload, padding included.
    pub payload: Vec<u8>,
}

/// Encode one message, padding the payload to a multiple of 8 bytes.
pub fn encode(
    command: u16,
    data_type: u16,
    count: u16,
    p1: u32,
    p2: u32,
    payload: &[u8],
) -> Vec<u8> {
    let padded = payload.len().div_ceil(8) * 8;
    let mut out = Vec::with_capacity(16 + padded);
    out.extend_from_slice(&command.to_be_bytes());
    // our own payloads are names (≤ a few hundred bytes), never the extended form
    out.extend_from_slice(&(padded as u16).to_be_bytes());
    out.extend_from_slice(&data_type.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&p1.to_be_bytes());
    out.extend_from_slice(&p2.to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(16 + padded, 0);
    out
}

/// A name as CA sends it: the bytes and a terminating NUL (padding is added by [`encode`]).
fn name_payload(name: &str) -> Vec<u8> {
    let mut p = name.as_bytes().to_vec();
    p.push(0);
    p
}

/// `CA_PROTO_VERSION`, priority 0.
pub fn version() -> Vec<u8> {
    encode(cmd::VERSION, 0, MINOR_VERSION, 0, 0, &[])
}

/// A UDP search for `name`; the server answers only if it hosts it.
pub fn search(name: &str, cid: u32) -> Vec<u8> {
    encode(
        cmd::SEARCH,
        DONT_REPLY,
        MINOR_VERSION,
        cid,
        cid,
        &name_payload(name),
    )
}

/// `CA_PROTO_CLIENT_NAME`.
pub fn client_name(user: &str) -> Vec<u8> {
    encode(cmd::CLIENT_NAME, 0, 0, 0, 0, &name_payload(user))
}

/// `CA_PROTO_HOST_NAME`.
pub fn host_name(host: &str) -> Vec<u8> {
    encode(cmd::HOST_NAME, 0, 0, 0, 0, &name_payload(host))
}

/// `CA_PROTO_CREATE_CHAN` for `name` with our channel id.
pub fn create_chan(name: &str, cid: u32) -> Vec<u8> {
    encode(
        cmd::CREATE_CHAN,
        0,
        0,
        cid,
        u32::from(MINOR_VERSION),
        &name_payload(name),
    )
}

/// `CA_PROTO_READ_NOTIFY` of `count` elements as `dbr_type` from server channel `sid`.
pub fn read_notify(dbr_type: u16, count: u16, sid: u32, ioid: u32) -> Vec<u8> {
    encode(cmd::READ_NOTIFY, dbr_type, count, sid, ioid, &[])
}

/// The `DBE_*` event mask bits of a subscription: value changes and alarm changes.
pub const DBE_VALUE: u16 = 1;
pub const DBE_ALARM: u16 = 4;

/// `CA_PROTO_EVENT_ADD`: subscribe to `count` elements of server channel `sid` as `dbr_type`,
/// updates tagged `subid`; the payload carries the (unused) deadband floats and the mask.
pub fn event_add(dbr_type: u16, count: u16, sid: u32, subid: u32, mask: u16) -> Vec<u8> {
    let mut payload = [0u8; 16];
    payload[12..14].copy_from_slice(&mask.to_be_bytes());
    encode(cmd::EVENT_ADD, dbr_type, count, sid, subid, &payload)
}

/// `CA_PROTO_EVENT_CANCEL` of subscription `subid` on server channel `sid`.
pub fn event_cancel(dbr_type: u16, count: u16, sid: u32, subid: u32) -> Vec<u8> {
    encode(cmd::EVENT_CANCEL, dbr_type, count, sid, subid, &[])
}

/// `CA_PROTO_ECHO`: the server answers with the same message (a keepalive).
pub fn echo() -> Vec<u8> {
    encode(cmd::ECHO, 0, 0, 0, 0, &[])
}

/// `CA_PROTO_CLEAR_CHANNEL`.
pub fn clear_channel(sid: u32, cid: u32) -> Vec<u8> {
    encode(cmd::CLEAR_CHANNEL, 0, 0, sid, cid, &[])
}

/// `EPICS_CA_MAX_ARRAY_BYTES` when unset, and its floor: libca never uses a smaller buffer.
pub const DEFAULT_MAX_ARRAY_BYTES: usize = 16384;

/// The largest payload accepted when arrays may hold `max_array_bytes`: the array plus the
/// `dbr_time_*` header in front of it (libca's large buffer adds the same margin).
pub fn max_payload(max_array_bytes: usize) -> usize {
    max_array_bytes.max(DEFAULT_MAX_ARRAY_BYTES) + 24
}

/// Decode the first message in `buf`: `Ok(None)` when more bytes are needed, otherwise the
/// message and how many bytes it used. Streams coalesce messages, so call this in a loop.
///
/// A header announcing a payload above `max_payload` bytes is an error as soon as the header
/// is in: nothing is buffered or allocated on a peer's word.
pub fn decode(buf: &[u8], max_payload: usize) -> Result<Option<(Message, usize)>, CaError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let u16_at = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
    let u32_at = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let (mut size, mut count, mut header) = (u32::from(u16_at(2)), u32::from(u16_at(6)), 16);
    if size == 0xFFFF && count == 0 {
        if buf.len() < 24 {
            return Ok(None);
        }
        (size, count, header) = (u32_at(16), u32_at(20), 24);
    }
    if size as usize > max_payload {
        return Err(CaError::TooLarge {
            size,
            limit: max_payload,
        });
    }
    let total = header + size as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let msg = Message {
        command: u16_at(0),
        data_type: u16_at(4),
        count,
        p1: u32_at(8),
        p2: u32_at(12),
        payload: buf[header..total].to_vec(),
    };
    Ok(Some((msg, total)))
}

/// Decode every message of a datagram; a truncated tail is an error (UDP never splits).
pub fn decode_all(mut buf: &[u8]) -> Result<Vec<Message>, CaError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let Some((msg, used)) = decode(buf, buf.len())? else {
            return Err(CaError::Protocol("truncated datagram".into()));
        };
        out.push(msg);
        buf = &buf[used..];
    }
    Ok(out)
}

/// The most characters of a server's text (an error message) shown.
pub const MAX_TEXT_SHOWN: usize = 512;

/// The text of a NUL-terminated, padded string payload, printable and at most
/// [`MAX_TEXT_SHOWN`] characters.
pub fn payload_text(payload: &[u8]) -> String {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    crate::printable::printable(&payload[..end], MAX_TEXT_SHOWN)
}

/// The plain DBR types (`DBF_*` use the same numbers); `DBR_TIME_x` is `x + 14`.
pub mod dbr {
    pub const STRING: u16 = 0;
    pub const SHORT: u16 = 1;
    pub const FLOAT: u16 = 2;
    pub const ENUM: u16 = 3;
    pub const CHAR: u16 = 4;
    pub const LONG: u16 = 5;
    pub const DOUBLE: u16 = 6;
    pub const TIME_OFFSET: u16 = 14;
    /// `DBR_GR_ENUM`: alarm, then the state strings, then the value.
    pub const GR_ENUM: u16 = 24;
}

/// `MAX_ENUM_STATES` and `MAX_ENUM_STRING_SIZE` of a `dbr_gr_enum`.
const ENUM_STATES: usize = 16;
const ENUM_STRING_SIZE: usize = 26;

/// The state strings of a `DBR_GR_ENUM` payload (`no_str` of them, at most 16), each up to
/// its NUL.
pub fn decode_enum_strings(payload: &[u8]) -> Result<Vec<String>, CaError> {
    let short = || CaError::Protocol(format!("short enum reply: {} bytes", payload.len()));
    let n = payload.get(4..6).ok_or_else(short)?;
    let n = usize::from(u16::from_be_bytes([n[0], n[1]])).min(ENUM_STATES);
    let table = payload
        .get(6..6 + ENUM_STATES * ENUM_STRING_SIZE)
        .ok_or_else(short)?;
    Ok(table
        .chunks_exact(ENUM_STRING_SIZE)
        .take(n)
        .map(payload_text)
        .collect())
}

/// `MAX_STRING_SIZE`: a `DBR_STRING` element is always 40 bytes.
const STRING_SIZE: usize = 40;

/// Decoded values of one read, by their wire type.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Raw bytes of each 40-byte string, up to its NUL.
    Strings(Vec<Vec<u8>>),
    Shorts(Vec<i16>),
    Floats(Vec<f32>),
    Enums(Vec<u16>),
    Chars(Vec<i8>),
    Longs(Vec<i32>),
    Doubles(Vec<f64>),
}

/// A `DBR_TIME_*` read: alarm status and severity, the time stamp, the values.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeValue {
    pub status: i16,
    pub severity: i16,
    /// Seconds since the EPICS epoch, 1990-01-01 UTC.
    pub secs: u32,
    pub nsec: u32,
    pub values: Values,
}

/// Where the value starts in each `dbr_time_*` struct (the RISC padding), and the size
/// of one element.
fn time_layout(plain: u16) -> Option<(usize, usize)> {
    Some(match plain {
        dbr::STRING => (12, STRING_SIZE),
        dbr::SHORT | dbr::ENUM => (14, 2),
        dbr::FLOAT | dbr::LONG => (12, 4),
        dbr::CHAR => (15, 1),
        dbr::DOUBLE => (16, 8),
        _ => return None,
    })
}

/// Decode the payload of a `DBR_TIME_*` read reply holding `count` elements.
pub fn decode_time(dbr_type: u16, count: u32, payload: &[u8]) -> Result<TimeValue, CaError> {
    let plain = dbr_type.wrapping_sub(dbr::TIME_OFFSET);
    let (offset, size) = time_layout(plain)
        .filter(|_| dbr_type >= dbr::TIME_OFFSET)
        .ok_or_else(|| CaError::Protocol(format!("unsupported reply type {dbr_type}")))?;
    let n = count as usize;
    let data = payload
        .get(offset..offset + n * size)
        .ok_or_else(|| CaError::Protocol(format!("short reply: {} bytes", payload.len())))?;
    let be =
        |i: usize| u32::from_be_bytes([payload[i], payload[i + 1], payload[i + 2], payload[i + 3]]);
    let chunks = data.chunks_exact(size);
    let values = match plain {
        dbr::STRING => Values::Strings(
            chunks
                .map(|c| c.split(|&b| b == 0).next().unwrap_or(c).to_vec())
                .collect(),
        ),
        dbr::SHORT => Values::Shorts(chunks.map(|c| i16::from_be_bytes([c[0], c[1]])).collect()),
        dbr::ENUM => Values::Enums(chunks.map(|c| u16::from_be_bytes([c[0], c[1]])).collect()),
        dbr::FLOAT => Values::Floats(
            chunks
                .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        dbr::LONG => Values::Longs(
            chunks
                .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        dbr::CHAR => Values::Chars(chunks.map(|c| c[0] as i8).collect()),
        _ => Values::Doubles(
            chunks
                .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
    };
    Ok(TimeValue {
        status: i16::from_be_bytes([payload[0], payload[1]]),
        severity: i16::from_be_bytes([payload[2], payload[3]]),
        secs: be(4),
        nsec: be(8),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The worked example of the Channel Access protocol specification.
    #[test]
    fn spec_example_client_name() {
        assert_eq!(
            hex(&client_name("apucelj")),
            "00 14 00 08 00 00 00 00 00 00 00 00 00 00 00 00 61 70 75 63 65 6c 6a 00"
        );
    }

    #[test]
    fn spec_example_create_chan_header() {
        let msg = encode(
            cmd::CREATE_CHAN,
            0,
            0,
            1,
            11,
            &name_payload("record.name.field.19"),
        );
        assert_eq!(
            hex(&msg[..16]),
            "00 12 00 18 00 00 00 00 00 00 00 01 00 00 00 0b"
        );
        assert_eq!(msg.len(), 16 + 24);
    }

    #[test]
    fn spec_example_read_notify() {
        assert_eq!(
            hex(&read_notify(0, 1, 4, 1)),
            "00 0f 00 00 00 00 00 01 00 00 00 04 00 00 00 01"
        );
    }

    #[test]
    fn search_pads_the_name() {
        let msg = search("AB", 7);
        assert_eq!(
            hex(&msg[..16]),
            "00 06 00 08 00 05 00 0d 00 00 00 07 00 00 00 07"
        );
        assert_eq!(&msg[16..], b"AB\0\0\0\0\0\0");
    }

    #[test]
    fn decode_waits_for_whole_messages_and_splits_coalesced_ones() {
        let mut stream = version();
        stream.extend(client_name("me"));
        assert_eq!(decode(&stream[..10], 64).unwrap(), None);
        assert_eq!(decode(&stream[..20], 64).unwrap().unwrap().1, 16);
        let all = decode_all(&stream).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].command, cmd::CLIENT_NAME);
        assert_eq!(payload_text(&all[1].payload), "me");
    }

    #[test]
    fn decode_accepts_the_extended_header() {
        let mut msg = vec![0, 15, 0xFF, 0xFF, 0, 20, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9];
        msg.extend_from_slice(&8u32.to_be_bytes());
        msg.extend_from_slice(&70000u32.to_be_bytes());
        msg.extend_from_slice(&[1; 8]);
        let (m, used) = decode(&msg, 8).unwrap().unwrap();
        assert_eq!((m.count, m.payload.len(), used), (70000, 8, 32));
    }

    #[test]
    fn an_announced_size_above_the_limit_fails_before_the_payload() {
        // 4 GiB announced in the extended header, nothing after it
        let mut msg = vec![0, 15, 0xFF, 0xFF, 0, 20, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9];
        msg.extend_from_slice(&u32::MAX.to_be_bytes());
        msg.extend_from_slice(&1u32.to_be_bytes());
        let err = decode(&msg, max_payload(DEFAULT_MAX_ARRAY_BYTES)).unwrap_err();
        assert!(
            matches!(err, CaError::TooLarge { size: u32::MAX, .. }),
            "{err:?}"
        );
        let small = encode(cmd::ERROR, 0, 0, 0, 0, &[b'x'; 64]);
        assert!(matches!(
            decode(&small, 56),
            Err(CaError::TooLarge {
                size: 64,
                limit: 56
            })
        ));
    }

    #[test]
    fn payload_text_is_bounded_and_printable() {
        let mut p = vec![b'\x1b'; 2];
        p.extend(vec![b'a'; 5000]);
        let t = payload_text(&p);
        assert!(t.starts_with("\\u{1b}\\u{1b}aa"), "{t}");
        assert_eq!(t.chars().count(), MAX_TEXT_SHOWN + 1);
    }

    fn time_header(pad: usize) -> Vec<u8> {
        let mut p = vec![0, 3, 0, 2, 0x3b, 0x9a, 0xca, 0x00, 0, 0, 0, 5];
        p.resize(12 + pad, 0);
        p
    }

    #[test]
    fn decodes_time_double_after_its_padding() {
        let mut p = time_header(4);
        p.extend_from_slice(&2.5f64.to_be_bytes());
        let v = decode_time(20, 1, &p).unwrap();
        assert_eq!(
            (v.status, v.severity, v.secs, v.nsec),
            (3, 2, 1_000_000_000, 5)
        );
        assert_eq!(v.values, Values::Doubles(vec![2.5]));
    }

    #[test]
    fn decodes_time_char_array_and_string() {
        let mut p = time_header(3);
        p.extend_from_slice(&[72, 105, 0xff]);
        assert_eq!(
            decode_time(18, 3, &p).unwrap().values,
            Values::Chars(vec![72, 105, -1])
        );
        let mut s = time_header(0);
        s.extend_from_slice(b"00:01:02");
        s.resize(12 + 40, 0);
        assert_eq!(
            decode_time(14, 1, &s).unwrap().values,
            Values::Strings(vec![b"00:01:02".to_vec()])
        );
    }

    #[test]
    fn event_add_carries_the_mask_after_three_floats() {
        assert_eq!(
            hex(&event_add(20, 1, 4, 9, DBE_VALUE | DBE_ALARM)),
            "00 01 00 10 00 14 00 01 00 00 00 04 00 00 00 09 \
             00 00 00 00 00 00 00 00 00 00 00 00 00 05 00 00"
        );
        assert_eq!(
            hex(&event_cancel(20, 1, 4, 9)),
            "00 02 00 00 00 14 00 01 00 00 00 04 00 00 00 09"
        );
    }

    #[test]
    fn decodes_enum_state_strings() {
        let mut p = vec![0, 0, 0, 0, 0, 2];
        for s in ["Off", "On", "junk"] {
            let mut field = s.as_bytes().to_vec();
            field.resize(ENUM_STRING_SIZE, 0);
            p.extend(field);
        }
        p.resize(6 + 16 * 26 + 2, 0);
        assert_eq!(decode_enum_strings(&p).unwrap(), vec!["Off", "On"]);
        assert!(decode_enum_strings(&p[..100]).is_err());
    }

    #[test]
    fn short_payload_is_an_error() {
        assert!(decode_time(19, 2, &time_header(0)).is_err());
        assert!(
            decode_time(3, 1, &[0; 16]).is_err(),
            "plain types are not time types"
        );
    }
}
