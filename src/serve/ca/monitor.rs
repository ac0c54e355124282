//! Channel Access monitors: one TCP circuit to one server, a channel and a subscription
//! (`EVENT_ADD`, value and alarm changes) per PV, updates handed to the caller as they arrive.
//!
//! The circuit ends when the server closes it, stops answering the keepalive, or breaks the
//! protocol; [`run`] then returns why, and the caller decides when to open the next one (every
//! channel is gone with the circuit). Scalars only: every subscription asks for one element as
//! `DBR_TIME_<native type>`, so each update carries value, alarm status and severity, and the
//! time stamp. Enum channels also get one read of their state strings (`DBR_GR_ENUM`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::proto::{self, cmd, dbr, TimeValue};
use super::CaError;

/// The largest payload a monitor circuit accepts (whatever `EPICS_CA_MAX_ARRAY_BYTES` says):
/// scalar updates and enum strings are a few hundred bytes, so anything near this is a broken
/// or hostile peer, and the receive buffer never holds more than one such message.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Silence on the circuit before we send an echo, and how long the echo may take.
pub const ECHO_AFTER: Duration = Duration::from_secs(15);
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to connect and to hear the first message.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Something that happened to channel `index` (its position in the name list).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The server created the channel; its native DBR type.
    Connected { native_type: u16 },
    /// The server does not host the name.
    NotFound,
    /// The state strings of an enum channel.
    EnumStrings(Vec<String>),
    /// A subscription update.
    Value(TimeValue),
    /// The server dropped the channel (the circuit stays).
    Disconnected,
    /// The subscription failed and was cancelled; the channel stays connected, without value.
    Failed,
}

/// How a circuit ended.
#[derive(Debug)]
pub struct Ended {
    /// True once the server created at least one channel (it is a CA server that knows us).
    pub created_any: bool,
    pub error: CaError,
}

/// Counts every message sent on monitor circuits (the `epics_ioc_ca_messages_sent_total`
/// metric): scrapes must not move it.
pub type SentCounter = AtomicU64;

/// Open a circuit to `server`, subscribe to every name, and report events through `on` until
/// the circuit ends.
pub async fn run(
    server: SocketAddr,
    names: &[String],
    user: &str,
    sent: &SentCounter,
    on: &mut (dyn FnMut(usize, Event) + Send),
) -> Ended {
    let mut created_any = false;
    let error = match circuit(server, names, user, sent, on, &mut created_any).await {
        Ok(never) => match never {},
        Err(e) => e,
    };
    Ended { created_any, error }
}

enum Never {}

async fn circuit(
    server: SocketAddr,
    names: &[String],
    user: &str,
    sent: &SentCounter,
    on: &mut (dyn FnMut(usize, Event) + Send),
    created_any: &mut bool,
) -> Result<Never, CaError> {
    let io = |what: &'static str| move |source| CaError::Io { what, source };
    let mut stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(server))
        .await
        .map_err(|_| timed_out("connect"))?
        .map_err(io("connect to the server"))?;
    let _ = stream.set_nodelay(true);
    let host = dns_lookup::get_hostname().unwrap_or_else(|_| "localhost".to_owned());
    let mut out = Outbox::default();
    out.push(proto::version());
    out.push(proto::client_name(user));
    out.push(proto::host_name(&host));
    for (cid, name) in names.iter().enumerate() {
        out.push(proto::create_chan(name, cid as u32));
    }
    out.flush(&mut stream, sent).await?;
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    // each channel's server id, once created
    let mut sids = vec![0u32; names.len()];
    let mut echo_sent = false;
    let mut heard = false;
    loop {
        // a read holds hundreds of coalesced updates: consume them, then shift the rest once
        let mut at = 0;
        while let Some((msg, used)) = proto::decode(&buf[at..], MAX_MESSAGE)? {
            at += used;
            heard = true;
            handle(&msg, names, &mut sids, on, &mut out, created_any)?;
        }
        buf.drain(..at);
        // a pvAccess server (QSRV listens beside rsrv) greets with 0xCA..
        if buf.len() >= 2 && u16::from_be_bytes([buf[0], buf[1]]) > 0xFF {
            return Err(CaError::Protocol("not a channel access server".into()));
        }
        out.flush(&mut stream, sent).await?;
        let wait = match (heard, echo_sent) {
            (false, _) => CONNECT_TIMEOUT,
            (true, false) => ECHO_AFTER,
            (true, true) => ECHO_TIMEOUT,
        };
        match timeout(wait, stream.read(&mut chunk)).await {
            Ok(read) => {
                let n = read.map_err(io("read from the server"))?;
                if n == 0 {
                    return Err(CaError::Disconnected {
                        pv: "(monitor circuit)".into(),
                    });
                }
                echo_sent = false;
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(_) if heard && !echo_sent => {
                out.push(proto::echo());
                echo_sent = true;
            }
            Err(_) => return Err(timed_out(if heard { "echo" } else { "greeting" })),
        }
    }
}

fn timed_out(step: &'static str) -> CaError {
    CaError::Timeout {
        pv: "(monitor circuit)".into(),
        step,
    }
}

/// React to one server message; requests it triggers go to `out`.
fn handle(
    msg: &proto::Message,
    names: &[String],
    sids: &mut [u32],
    on: &mut (dyn FnMut(usize, Event) + Send),
    out: &mut Outbox,
    created_any: &mut bool,
) -> Result<(), CaError> {
    let index = |id: u32| Some(id as usize).filter(|&i| i < names.len());
    match msg.command {
        cmd::CREATE_CHAN => {
            let Some(i) = index(msg.p1) else {
                return Ok(());
            };
            *created_any = true;
            sids[i] = msg.p2;
            let native = msg.data_type;
            on(
                i,
                Event::Connected {
                    native_type: native,
                },
            );
            if native <= dbr::DOUBLE {
                let sid = msg.p2;
                let mask = proto::DBE_VALUE | proto::DBE_ALARM;
                out.push(proto::event_add(
                    native + dbr::TIME_OFFSET,
                    1,
                    sid,
                    msg.p1,
                    mask,
                ));
                if native == dbr::ENUM {
                    out.push(proto::read_notify(dbr::GR_ENUM, 1, sid, msg.p1));
                }
            }
        }
        cmd::CREATE_CH_FAIL => {
            if let Some(i) = index(msg.p1) {
                on(i, Event::NotFound);
            }
        }
        // the empty reply that confirms a cancel
        cmd::EVENT_ADD if msg.count == 0 => {}
        cmd::EVENT_ADD if msg.p1 == proto::ECA_NORMAL => {
            if let Some(i) = index(msg.p2) {
                let value = proto::decode_time(msg.data_type, msg.count.min(1), &msg.payload)?;
                on(i, Event::Value(value));
            }
        }
        // a subscription the server cannot serve (no read access, a type it cannot convert):
        // cancel it rather than hear the same failure at every change
        cmd::EVENT_ADD => {
            if let (Some(i), Some(&sid)) = (index(msg.p2), sids.get(msg.p2 as usize)) {
                tracing::warn!(
                    "monitor of {} failed with CA status {}: cancelled",
                    names[i],
                    msg.p1
                );
                out.push(proto::event_cancel(msg.data_type, 1, sid, msg.p2));
                on(i, Event::Failed);
            }
        }
        cmd::READ_NOTIFY if msg.p1 == proto::ECA_NORMAL && msg.data_type == dbr::GR_ENUM => {
            if let Some(i) = index(msg.p2) {
                on(
                    i,
                    Event::EnumStrings(proto::decode_enum_strings(&msg.payload)?),
                );
            }
        }
        cmd::SERVER_DISCONN => {
            if let Some(i) = index(msg.p1) {
                on(i, Event::Disconnected);
            }
        }
        cmd::ERROR => tracing::debug!(
            "channel access server error: {}",
            proto::payload_text(msg.payload.get(16..).unwrap_or_default())
        ),
        _ => {}
    }
    Ok(())
}

/// Requests waiting to be written, sent in one write and counted.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    messages: u64,
}

impl Outbox {
    fn push(&mut self, message: Vec<u8>) {
        self.bytes.extend(message);
        self.messages += 1;
    }

    async fn flush(&mut self, stream: &mut TcpStream, sent: &SentCounter) -> Result<(), CaError> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        stream
            .write_all(&self.bytes)
            .await
            .map_err(|source| CaError::Io {
                what: "send to the server",
                source,
            })?;
        sent.fetch_add(self.messages, Ordering::Relaxed);
        self.bytes.clear();
        self.messages = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Read from the client until `n` whole messages came.
    async fn expect(s: &mut TcpStream, n: usize) -> Vec<proto::Message> {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Ok(m) = proto::decode_all(&got) {
                if m.len() >= n {
                    return m;
                }
            }
            let k = s.read(&mut chunk).await.unwrap();
            assert!(k > 0, "the client closed early");
            got.extend_from_slice(&chunk[..k]);
        }
    }

    /// A scripted server: answers the handshake (VERSION, CLIENT_NAME, HOST_NAME, CREATE_CHAN)
    /// by creating channel 0 as `native`, hands the socket and the subscription to `rest`.
    async fn scripted<F, Fut>(
        native: u16,
        rest: F,
    ) -> (SocketAddr, tokio::task::JoinHandle<Vec<proto::Message>>)
    where
        F: FnOnce(TcpStream, proto::Message) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Vec<proto::Message>> + Send,
    {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            expect(&mut s, 4).await;
            let mut reply = proto::version();
            reply.extend(proto::encode(cmd::CREATE_CHAN, native, 1, 0, 77, &[]));
            s.write_all(&reply).await.unwrap();
            let sub = expect(&mut s, 1).await.remove(0);
            rest(s, sub).await
        });
        (addr, server)
    }

    /// Channel 0 is a DOUBLE: one update, then the server closes.
    #[tokio::test]
    async fn subscribes_and_reports_updates_then_the_drop() {
        let (addr, server) = scripted(dbr::DOUBLE, |mut s, sub| async move {
            let mut payload = vec![0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0];
            payload.extend_from_slice(&4.5f64.to_be_bytes());
            let update = proto::encode(cmd::EVENT_ADD, 20, 1, proto::ECA_NORMAL, 0, &payload);
            s.write_all(&update).await.unwrap();
            vec![sub]
        })
        .await;
        let sent = SentCounter::new(0);
        let mut events = Vec::new();
        let ended = run(addr, &["A:B".to_owned()], "me", &sent, &mut |i, e| {
            events.push((i, e))
        })
        .await;
        let sub = server.await.unwrap();
        assert_eq!(
            (sub[0].command, sub[0].data_type, sub[0].p1),
            (cmd::EVENT_ADD, 20, 77)
        );
        assert!(ended.created_any);
        assert!(
            matches!(ended.error, CaError::Disconnected { .. }),
            "{:?}",
            ended.error
        );
        assert_eq!(
            events[0],
            (
                0,
                Event::Connected {
                    native_type: dbr::DOUBLE
                }
            )
        );
        let Event::Value(v) = &events[1].1 else {
            panic!("{events:?}")
        };
        assert_eq!((v.severity, v.secs), (1, 9));
        assert_eq!(v.values, proto::Values::Doubles(vec![4.5]));
        assert_eq!(
            sent.load(Ordering::Relaxed),
            5,
            "4 greetings + 1 subscription"
        );
    }

    /// The server refuses the subscription (ECA_NORDACCESS): the client cancels it.
    #[tokio::test]
    async fn a_refused_subscription_is_cancelled() {
        let (addr, server) = scripted(dbr::LONG, |mut s, sub| async move {
            let refuse = proto::encode(cmd::EVENT_ADD, sub.data_type, 1, 48, sub.p2, &[0; 16]);
            s.write_all(&refuse).await.unwrap();
            let cancel = expect(&mut s, 1).await;
            drop(s);
            cancel
        })
        .await;
        let sent = SentCounter::new(0);
        let mut events = Vec::new();
        run(addr, &["A:B".to_owned()], "me", &sent, &mut |i, e| {
            events.push((i, e))
        })
        .await;
        let cancel = &server.await.unwrap()[0];
        assert_eq!(
            (cancel.command, cancel.data_type, cancel.p1, cancel.p2),
            (cmd::EVENT_CANCEL, dbr::LONG + dbr::TIME_OFFSET, 77, 0)
        );
        assert_eq!(events.last(), Some(&(0, Event::Failed)));
    }

    #[tokio::test]
    async fn an_oversized_message_ends_the_circuit() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            // an extended header announcing a 1 GB payload, then a trickle of it
            let mut m = vec![0, 1, 0xFF, 0xFF, 0, 20, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
            m.extend_from_slice(&(1u32 << 30).to_be_bytes());
            m.extend_from_slice(&1u32.to_be_bytes());
            s.write_all(&m).await.unwrap();
            let junk = vec![0u8; 8192];
            for _ in 0..20 {
                if s.write_all(&junk).await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let sent = SentCounter::new(0);
        let ended = run(addr, &["X".to_owned()], "me", &sent, &mut |_, _| {}).await;
        assert!(
            matches!(ended.error, CaError::TooLarge { .. }),
            "{:?}",
            ended.error
        );
    }
}
