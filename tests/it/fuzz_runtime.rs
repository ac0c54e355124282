//! A seeded stand-in for the runtime cargo-fuzz targets (`fuzz/fuzz_targets/{console_proto,
//! control,ca_decode,http}.rs`) in the normal test suite: valid messages of each protocol,
//! mutated a few thousand times, through the same checks the targets run
//! (`fuzz/checks/runtime.rs`). A failure names the target, seed and iteration.
//! `IOCRUN_FUZZ_ITERS` changes the number of mutated inputs per target (default 2000).

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::msi_gen::Rng;

#[path = "../../fuzz/checks/runtime.rs"]
mod checks;

/// A CA message header (and payload) as a server sends it.
fn ca_msg(cmd: u16, dtype: u16, count: u16, p1: u32, p2: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for x in [cmd, payload.len() as u16, dtype, count] {
        m.extend_from_slice(&x.to_be_bytes());
    }
    m.extend_from_slice(&p1.to_be_bytes());
    m.extend_from_slice(&p2.to_be_bytes());
    m.extend_from_slice(payload);
    m
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let text = |items: &[&str]| items.iter().map(|s| s.as_bytes().to_vec()).collect();
    match target {
        "console_proto" => {
            let mut framed = vec![1u8];
            framed.extend_from_slice(
                b"\0iocrun-console/1\n\x01\x00\x04dbl\r\x02\x00\x04\x00\x18\x00\x50",
            );
            vec![
                framed,
                b"\x07\0iocrun-console/1 ro\n\x01\x00\x01x".to_vec(),
                b"\x03dbl\r\nexit\r\n".to_vec(),
                b"\x02\0iocrun-console/1 rw\n".to_vec(),
            ]
        }
        "control" => text(&["ready\n", "live\n", "startup\n", "bogus \x1b[2J\n"]),
        "ca_decode" => {
            let mut time_double = vec![0, 0, 0, 0, 0x3b, 0x9a, 0xca, 0, 0, 0, 0, 5, 0, 0, 0, 0];
            time_double.extend_from_slice(&2.5f64.to_be_bytes());
            let mut stream = ca_msg(0, 0, 13, 0, 0, &[]);
            stream.extend(ca_msg(18, 6, 1, 1, 7, &[]));
            stream.extend(ca_msg(15, 20, 1, 1, 1, &time_double));
            let mut error = ca_msg(11, 0, 0, 7, 1, &[0; 16]);
            error.extend_from_slice(b"bad things\0\0\0\0\0\0");
            let mut extended = vec![0, 15, 0xFF, 0xFF, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
            extended.extend_from_slice(&16u32.to_be_bytes());
            extended.extend_from_slice(&3u32.to_be_bytes());
            extended.extend_from_slice(&[0; 16]);
            vec![stream, error, extended]
        }
        _ => text(&[
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain;version=0.0.4\r\n\r\n",
            "GET /readyz HTTP/1.0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: y\r\n\r\n",
            "POST /startupz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            "GET /nope HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ]),
    }
}

/// One random change: flip, insert, drop, duplicate or cut.
fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = input.to_vec();
    let at = rng.below(b.len() + 1);
    match rng.below(5) {
        0 if !b.is_empty() => {
            let i = at.min(b.len() - 1);
            b[i] ^= 1 << rng.below(8);
        }
        1 => {
            let bytes: Vec<u8> = (0..1 + rng.below(8))
                .map(|_| rng.below(256) as u8)
                .collect();
            b.splice(at..at, bytes);
        }
        2 => {
            let end = (at + rng.below(16)).min(b.len());
            b.drain(at..end);
        }
        3 => {
            let end = (at + rng.below(32)).min(b.len());
            let copy = b[at..end].to_vec();
            b.splice(at..at, copy);
        }
        _ => b.truncate(at),
    }
    b
}

fn run(target: &str, check: fn(&[u8]), iterations: usize) {
    let seed = 0x11_2026_u64;
    let seeds = seeds(target);
    for s in &seeds {
        check(s);
    }
    let mut rng = Rng::new(seed);
    for i in 0..iterations {
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            input = mutate(&input, &mut rng);
        }
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            panic!("{target}: seed {seed:#x}, iteration {i} failed on {input:?}");
        }
    }
}

fn iterations() -> usize {
    std::env::var("IOCRUN_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn console_protocol_mutations() {
    run("console_proto", checks::console_proto, iterations());
}

#[test]
fn control_request_mutations() {
    run("control", checks::control, iterations());
}

#[test]
fn ca_message_mutations() {
    run("ca_decode", checks::ca_decode, iterations());
}

#[test]
fn http_request_mutations() {
    // the harness reaches the handlers: a plain request is answered
    let answer = checks::http(&seeds("http")[0]);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("# TYPE epics_ioc_up gauge"), "{text}");
    // a runtime per input: fewer of them
    run(
        "http",
        |data| {
            checks::http(data);
        },
        iterations() / 4,
    );
}
