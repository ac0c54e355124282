//! What the runtime fuzz targets check, one function per target, shared by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/*.rs`) and the seeded run in the test suite
//! (`tests/it/fuzz_runtime.rs`). Any input may be rejected; none may panic, hang or break the
//! bounds asserted here.

use std::time::Duration;

use iocrun::console::{Decoder, WireEvent};
use iocrun::serve::ca::proto::{decode, decode_all, decode_time, max_payload, payload_text};
use iocrun::serve::ca::DEFAULT_MAX_ARRAY_BYTES;
use iocrun::serve::{app, control_reply, http_connection, AppState, CaReport, Health};
use iocrun::serve::{HttpLimits, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn state() -> AppState {
    let (_h, health) = tokio::sync::watch::channel(Health::default());
    let (_c, ca) = tokio::sync::watch::channel(CaReport::default());
    AppState {
        health,
        ca,
        settings: std::sync::Arc::new(Settings::default()),
    }
}

/// The console socket's decoder, fed in chunks of the size the first byte gives (0 means 1):
/// the input it hands on is never more than it was fed.
pub fn console_proto(data: &[u8]) {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let mut dec = Decoder::default();
    let mut events = Vec::new();
    for chunk in stream.chunks(usize::from(size.max(1))) {
        if dec.feed(chunk, &mut events).is_err() {
            break;
        }
    }
    let input: usize = events
        .iter()
        .map(|e| match e {
            WireEvent::Input(b) => b.len(),
            _ => 0,
        })
        .sum();
    assert!(input <= stream.len());
}

/// The control socket: one request line (the server reads 64 bytes at most) gets one answer
/// line, `ok`, `fail` or `error`, with no control characters.
pub fn control(data: &[u8]) {
    let line = String::from_utf8_lossy(&data[..data.len().min(64)]);
    let reply = control_reply(&line, &state());
    let body = reply.strip_suffix('\n').expect("one line");
    assert!(!body.chars().any(char::is_control), "{reply:?}");
    assert!(["ok ", "fail ", "error "]
        .iter()
        .any(|p| reply.starts_with(p)));
}

/// The CA decoder: a TCP stream cut into messages under the default size bound, each read
/// as a `DBR_TIME_*` reply and as text; the same bytes as one UDP datagram.
pub fn ca_decode(data: &[u8]) {
    let limit = max_payload(DEFAULT_MAX_ARRAY_BYTES);
    let mut rest = data;
    while let Ok(Some((msg, used))) = decode(rest, limit) {
        assert!(msg.payload.len() <= limit && used <= rest.len() && used >= 16);
        let _ = decode_time(msg.data_type, msg.count, &msg.payload);
        assert!(payload_text(&msg.payload).chars().count() <= 513);
        rest = &rest[used..];
    }
    let _ = decode_all(data);
}

/// HTTP: any bytes on a connection to the health/metrics router (hyper's HTTP/1 parser, our
/// routes and content negotiation) under the real header timeout; the connection must end.
/// Returns what the server sent.
pub fn http(data: &[u8]) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let conn = tokio::spawn(http_connection(
            server,
            app(state()),
            &HttpLimits::default(),
        ));
        let _ = client.write_all(data).await;
        let _ = client.shutdown().await;
        let mut answer = Vec::new();
        // paused clock: the header timeout fires as soon as nothing else can run
        let read = tokio::time::timeout(Duration::from_secs(120), client.read_to_end(&mut answer));
        assert!(read.await.is_ok(), "the connection never ended");
        let _ = conn.await;
        answer
    })
}
