//! A one-shot Channel Access client: find the server of a PV by UDP search, then read the PV
//! once over TCP.
//!
//! The server's TCP port is always taken from the search reply, never assumed: with
//! `hostNetwork` several IOCs share a node and only the first gets TCP 5064.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use super::proto::{self, cmd, dbr, Message, TimeValue, DEFAULT_MAX_ARRAY_BYTES};
use super::CaError;

/// The EPICS default `EPICS_CA_SERVER_PORT`.
pub const DEFAULT_SERVER_PORT: u16 = 5064;

/// Where and how to search, from the `EPICS_CA_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Search destinations: `EPICS_CA_ADDR_LIST` plus, unless disabled, each interface's
    /// broadcast address.
    pub search_to: Vec<SocketAddrV4>,
    /// Sent in `CA_PROTO_CLIENT_NAME`.
    pub user: String,
    /// `EPICS_CA_SERVER_PORT`: where servers are searched for by default.
    pub server_port: u16,
    /// `EPICS_CA_MAX_ARRAY_BYTES`: the largest array a reply may carry (never below
    /// [`DEFAULT_MAX_ARRAY_BYTES`], as in libca); a larger announced message fails the read.
    pub max_array_bytes: usize,
}

impl Config {
    /// Build from a variable lookup (the caller passes `std::env::var`), as libca reads them:
    /// `EPICS_CA_ADDR_LIST` holds `host[:port]` items separated by blanks, the port defaulting
    /// to `EPICS_CA_SERVER_PORT`; `EPICS_CA_AUTO_ADDR_LIST=NO` turns broadcast off.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        let port = get("EPICS_CA_SERVER_PORT")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(DEFAULT_SERVER_PORT);
        let mut search_to: Vec<SocketAddrV4> = get("EPICS_CA_ADDR_LIST")
            .unwrap_or_default()
            .split_whitespace()
            .flat_map(|item| resolve_item(item, port))
            .collect();
        let auto = get("EPICS_CA_AUTO_ADDR_LIST").unwrap_or_default();
        if !auto.trim().eq_ignore_ascii_case("no") {
            search_to.extend(
                broadcast_addresses()
                    .into_iter()
                    .map(|ip| SocketAddrV4::new(ip, port)),
            );
        }
        let mut seen = std::collections::HashSet::new();
        search_to.retain(|a| seen.insert(*a));
        Config {
            search_to,
            server_port: port,
            max_array_bytes: get("EPICS_CA_MAX_ARRAY_BYTES")
                .and_then(|b| b.trim().parse().ok())
                .unwrap_or(DEFAULT_MAX_ARRAY_BYTES)
                .max(DEFAULT_MAX_ARRAY_BYTES),
            user: get("USER")
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "iocrun".to_owned()),
        }
    }
}

fn resolve_item(item: &str, default_port: u16) -> Vec<SocketAddrV4> {
    let (host, port) = match item.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().unwrap_or(default_port)),
        None => (item, default_port),
    };
    match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs
            .filter_map(|a| match a {
                SocketAddr::V4(v4) => Some(v4),
                SocketAddr::V6(_) => None,
            })
            .take(1)
            .collect(),
        Err(e) => {
            tracing::warn!("EPICS_CA_ADDR_LIST: cannot resolve '{item}': {e}");
            Vec::new()
        }
    }
}

/// The broadcast address of every interface that is up and not loopback (libca's auto list).
fn broadcast_addresses() -> Vec<Ipv4Addr> {
    use nix::net::if_::InterfaceFlags;
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter(|a| {
            a.flags
                .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_BROADCAST)
        })
        .filter(|a| !a.flags.contains(InterfaceFlags::IFF_LOOPBACK))
        .filter_map(|a| a.broadcast?.as_sockaddr_in().map(|s| s.ip()))
        .collect()
}

/// What a read found: the channel's native type and count, and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub native_type: u16,
    pub native_count: u32,
    pub value: TimeValue,
}

/// Search for `pv` and read it, all within `timeout`.
pub async fn get(config: &Config, pv: &str, timeout: Duration) -> Result<Reading, CaError> {
    let deadline = Instant::now() + timeout;
    let server = search(config, pv, deadline).await?;
    read(server, pv, config, deadline).await
}

/// Broadcast/unicast the search, resending with growing gaps, until a server answers.
pub async fn search(config: &Config, pv: &str, deadline: Instant) -> Result<SocketAddr, CaError> {
    let io = |what: &'static str| move |source| CaError::Io { what, source };
    let sock = UdpSocket::bind(("0.0.0.0", 0))
        .await
        .map_err(io("bind the search socket"))?;
    sock.set_broadcast(true).map_err(io("enable broadcast"))?;
    let cid = 1;
    let mut datagram = proto::version();
    datagram.extend(proto::search(pv, cid));
    let mut gap = Duration::from_millis(50);
    let mut buf = vec![0u8; 1500];
    loop {
        for to in &config.search_to {
            if let Err(e) = sock.send_to(&datagram, to).await {
                tracing::debug!("search to {to}: {e}");
            }
        }
        let resend = (Instant::now() + gap).min(deadline);
        while let Ok(got) = timeout_at(resend, sock.recv_from(&mut buf)).await {
            let (n, from) = got.map_err(io("receive a search reply"))?;
            if let Some(server) = reply_server(&buf[..n], from, cid) {
                return Ok(server);
            }
        }
        if Instant::now() >= deadline {
            return Err(CaError::NotFound { pv: pv.to_owned() });
        }
        gap = (gap * 2).min(Duration::from_secs(1));
    }
}

/// The server address in a search reply for `cid`: its IP (or the sender's) and the TCP port
/// carried in `data_type`.
fn reply_server(datagram: &[u8], from: SocketAddr, cid: u32) -> Option<SocketAddr> {
    let msgs = proto::decode_all(datagram).ok()?;
    let reply = msgs
        .iter()
        .find(|m| m.command == cmd::SEARCH && m.p2 == cid)?;
    let ip = match reply.p1 {
        0 | u32::MAX => from.ip(),
        raw => Ipv4Addr::from(raw).into(),
    };
    Some(SocketAddr::new(ip, reply.data_type))
}

/// Read `pv` once from the server at `server`: handshake, create the channel, read it as
/// `DBR_TIME_<native>` (enums as strings, as caget does), clear the channel.
pub async fn read(
    server: SocketAddr,
    pv: &str,
    config: &Config,
    deadline: Instant,
) -> Result<Reading, CaError> {
    let io = |what: &'static str| move |source| CaError::Io { what, source };
    let timed_out = |step: &'static str| CaError::Timeout {
        pv: pv.to_owned(),
        step,
    };
    let mut stream = timeout_at(deadline, TcpStream::connect(server))
        .await
        .map_err(|_| timed_out("connect"))?
        .map_err(io("connect to the server"))?;
    let host = dns_lookup::get_hostname().unwrap_or_else(|_| "localhost".to_owned());
    let (cid, ioid) = (1, 1);
    let mut hello = proto::version();
    hello.extend(proto::client_name(&config.user));
    hello.extend(proto::host_name(&host));
    hello.extend(proto::create_chan(pv, cid));
    stream
        .write_all(&hello)
        .await
        .map_err(io("send to the server"))?;
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        deadline,
        max_payload: proto::max_payload(config.max_array_bytes),
    };
    let (native_type, native_count, sid) = loop {
        let msg = conn.next(pv, "create channel").await?;
        match msg.command {
            cmd::CREATE_CHAN if msg.p1 == cid => break (msg.data_type, msg.count, msg.p2),
            cmd::CREATE_CH_FAIL => return Err(CaError::CreateFailed { pv: pv.to_owned() }),
            _ => check_fatal(&msg, pv)?,
        }
    };
    let want = if native_type == dbr::ENUM {
        dbr::STRING
    } else {
        native_type
    } + dbr::TIME_OFFSET;
    let request = proto::read_notify(
        want,
        native_count.min(u32::from(u16::MAX)) as u16,
        sid,
        ioid,
    );
    conn.stream
        .write_all(&request)
        .await
        .map_err(io("send to the server"))?;
    let value = loop {
        let msg = conn.next(pv, "read").await?;
        match msg.command {
            cmd::READ_NOTIFY if msg.p2 == ioid => {
                if msg.p1 != proto::ECA_NORMAL {
                    return Err(CaError::Read {
                        pv: pv.to_owned(),
                        status: msg.p1,
                    });
                }
                break proto::decode_time(msg.data_type, msg.count, &msg.payload)?;
            }
            _ => check_fatal(&msg, pv)?,
        }
    };
    // a polite goodbye; the server copes if it never arrives
    let _ = conn.stream.write_all(&proto::clear_channel(sid, cid)).await;
    Ok(Reading {
        native_type,
        native_count,
        value,
    })
}

/// Server messages that end the read: errors and disconnects. Anything else is skipped.
fn check_fatal(msg: &Message, pv: &str) -> Result<(), CaError> {
    match msg.command {
        cmd::ERROR => Err(CaError::Server {
            pv: pv.to_owned(),
            message: proto::payload_text(msg.payload.get(16..).unwrap_or_default()),
        }),
        cmd::SERVER_DISCONN => Err(CaError::Disconnected { pv: pv.to_owned() }),
        _ => Ok(()),
    }
}

/// The TCP circuit with its receive buffer: yields whole messages, each at most
/// `max_payload` bytes (the buffer never holds more than one such message and a read chunk).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
    max_payload: usize,
}

impl Conn {
    async fn next(&mut self, pv: &str, step: &'static str) -> Result<Message, CaError> {
        loop {
            // a pvAccess server (QSRV listens beside rsrv) greets with 0xCA..: give up at once
            if self.buf.len() >= 2 && u16::from_be_bytes([self.buf[0], self.buf[1]]) > 0xFF {
                return Err(CaError::Protocol("not a channel access server".into()));
            }
            if let Some((msg, used)) = proto::decode(&self.buf, self.max_payload)? {
                self.buf.drain(..used);
                return Ok(msg);
            }
            let mut chunk = [0u8; 4096];
            let n = timeout_at(self.deadline, self.stream.read(&mut chunk))
                .await
                .map_err(|_| CaError::Timeout {
                    pv: pv.to_owned(),
                    step,
                })?
                .map_err(|source| CaError::Io {
                    what: "read from the server",
                    source,
                })?;
            if n == 0 {
                return Err(CaError::Disconnected { pv: pv.to_owned() });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<_, _> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn addr_list_takes_the_server_port_and_explicit_ports() {
        let c = config(&[
            ("EPICS_CA_ADDR_LIST", "127.0.0.1 10.0.0.1:6000 127.0.0.1"),
            ("EPICS_CA_AUTO_ADDR_LIST", "NO"),
            ("EPICS_CA_SERVER_PORT", "5094"),
        ]);
        let want: Vec<SocketAddrV4> = vec![
            "127.0.0.1:5094".parse().unwrap(),
            "10.0.0.1:6000".parse().unwrap(),
        ];
        assert_eq!(c.search_to, want);
    }

    #[test]
    fn max_array_bytes_has_libcas_floor() {
        let big = config(&[("EPICS_CA_MAX_ARRAY_BYTES", "1000000")]);
        assert_eq!(big.max_array_bytes, 1_000_000);
        let small = config(&[("EPICS_CA_MAX_ARRAY_BYTES", "100")]);
        assert_eq!(small.max_array_bytes, DEFAULT_MAX_ARRAY_BYTES);
        assert_eq!(config(&[]).max_array_bytes, DEFAULT_MAX_ARRAY_BYTES);
    }

    #[test]
    fn auto_list_is_on_unless_no() {
        let off = config(&[("EPICS_CA_AUTO_ADDR_LIST", "no")]);
        assert!(off.search_to.is_empty());
        let on = config(&[]);
        assert!(on.search_to.iter().all(|a| a.port() == DEFAULT_SERVER_PORT));
    }

    #[tokio::test]
    async fn a_pvaccess_server_is_refused_at_once() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            // pvAccess "set byte order" control message, as QSRV sends on accept
            s.write_all(&[0xCA, 0x02, 0x41, 0x02, 0, 0, 0, 0])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let err = read(addr, "X", &config(&[]), deadline).await.unwrap_err();
        assert!(matches!(err, CaError::Protocol(_)), "{err:?}");
    }

    #[test]
    fn reply_names_ip_and_port() {
        let mut d = proto::version();
        d.extend(proto::encode(cmd::SEARCH, 5099, 0, u32::MAX, 1, &[0, 13]));
        let from: SocketAddr = "10.1.2.3:5064".parse().unwrap();
        assert_eq!(
            reply_server(&d, from, 1),
            Some("10.1.2.3:5099".parse().unwrap())
        );
        assert_eq!(reply_server(&d, from, 2), None, "another search's reply");
        let mut e = proto::version();
        e.extend(proto::encode(
            cmd::SEARCH,
            6000,
            0,
            u32::from(Ipv4Addr::new(10, 9, 9, 9)),
            1,
            &[0, 13],
        ));
        assert_eq!(
            reply_server(&e, from, 1),
            Some("10.9.9.9:6000".parse().unwrap())
        );
    }
}
