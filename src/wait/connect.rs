//! One connection attempt to one target: resolve, connect, close, and sort the outcome into
//! "up", "try again" or "give up".

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use dns_lookup::{AddrInfoHints, LookupErrorKind};
use nix::errno::Errno;

use super::list::IpTarget;
use super::WaitError;

/// What one attempt found.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The port accepted a connection (closed again at once, no data sent).
    Up,
    /// Not yet: the reason, for progress lines and debug logs.
    Retry(String),
    /// An error that waiting cannot fix.
    Fatal(WaitError),
}

/// Errnos ibek retries (`_RETRYABLE_ERRNOS`); any other connect error is fatal.
const RETRYABLE: [Errno; 5] = [
    Errno::ECONNREFUSED,
    Errno::ENETUNREACH,
    Errno::EHOSTUNREACH,
    Errno::ECONNRESET,
    Errno::ENETDOWN,
];

/// Resolve the host (IPv4 only, like ibek's `AF_INET` socket) and try each address once.
pub(crate) fn attempt(target: &IpTarget, timeout: Duration) -> Attempt {
    let addrs = match resolve(target) {
        Ok(addrs) => addrs,
        Err(attempt) => return attempt,
    };
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                drop(stream);
                return Attempt::Up;
            }
            Err(e) if is_retryable(&e) => last = reason(&e),
            Err(source) => {
                return Attempt::Fatal(WaitError::Connect {
                    device: target.device.clone(),
                    address: target.address.clone(),
                    source,
                })
            }
        }
    }
    Attempt::Retry(last)
}

fn resolve(target: &IpTarget) -> Result<Vec<SocketAddr>, Attempt> {
    let hints = AddrInfoHints {
        flags: 0,
        address: nix::libc::AF_INET,
        socktype: nix::libc::SOCK_STREAM,
        protocol: 0,
    };
    let port = target.port.to_string();
    match dns_lookup::getaddrinfo(Some(&target.host), Some(&port), Some(hints)) {
        Ok(found) => Ok(found.filter_map(Result::ok).map(|a| a.sockaddr).collect()),
        // a DNS server that is not answering yet is worth waiting for; ibek gives up here
        // (a deliberate difference, listed in docs/compat.md)
        Err(e) if matches!(e.kind(), LookupErrorKind::Again) => Err(Attempt::Retry(format!(
            "name lookup of '{}' failed for now",
            target.host
        ))),
        Err(e) => Err(Attempt::Fatal(WaitError::Resolve {
            device: target.device.clone(),
            address: target.address.clone(),
            host: target.host.clone(),
            source: io::Error::from(e),
        })),
    }
}

fn is_retryable(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::TimedOut {
        return true;
    }
    e.raw_os_error()
        .is_some_and(|n| RETRYABLE.contains(&Errno::from_raw(n)))
}

/// A short reason for progress lines: "connection refused", "timed out".
fn reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn target(host: &str, port: u16) -> IpTarget {
        IpTarget {
            device: "dev".into(),
            address: format!("{host}:{port}"),
            host: host.into(),
            port,
            timeout: None,
            timeout_text: "0".into(),
            defaulted_port: false,
        }
    }

    #[test]
    fn listening_port_is_up() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = attempt(&target("127.0.0.1", port), Duration::from_secs(1));
        assert!(matches!(got, Attempt::Up), "{got:?}");
    }

    #[test]
    fn closed_port_is_retried() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let got = attempt(&target("127.0.0.1", port), Duration::from_secs(1));
        assert!(
            matches!(&got, Attempt::Retry(r) if r.contains("refused")),
            "{got:?}"
        );
    }

    #[test]
    fn unknown_name_is_fatal() {
        let got = attempt(&target("no-such-host.invalid", 80), Duration::from_secs(1));
        // a resolver without network may answer "try again" instead of "no such name"
        assert!(
            matches!(
                got,
                Attempt::Fatal(WaitError::Resolve { .. }) | Attempt::Retry(_)
            ),
            "{got:?}"
        );
    }
}
