//! The control socket `iocrun probe`, `iocrun status`, `iocrun restart` and `iocrun stop` talk
//! to, and the client side of it.
//!
//! Protocol: the client connects to the unix socket (default `/tmp/iocrun-control.sock`),
//! writes one request line (at most 64 bytes) and reads the answer until the server closes:
//!
//! * `startup`, `ready`, `live`: one line, `ok REASON` or `fail REASON`;
//! * `status`: `key: value` lines; `status json`: one line of JSON;
//! * `restart`: `ok restarting` (the IOC is stopped gracefully and started afresh), or
//!   `error REASON` when there is no IOC to restart yet;
//! * `stop`: `ok stopping` (as SIGTERM to iocrun);
//! * anything else: `error unknown request '…'`.
//!
//! Probe answers come from the cached verdicts, so a probe costs a connect and two small
//! writes: no EPICS tools, no Channel Access, no port to allocate under `hostNetwork`.
//! The socket is mode 0600: whoever may probe may also restart and stop, as whoever may
//! `kill` PID 1 may.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::health::{Phase, ProbeKind, Verdict};
use super::http::AppState;
use super::status::Status;
use super::ServeError;

/// What a control client asks the supervisor to do (the start sequence acts on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Stop the IOC gracefully and start it again with a fresh start.
    Restart,
    /// Stop as on SIGTERM.
    Stop,
}

/// The largest answer a client reads (a status with a long config error).
const MAX_ANSWER: u64 = 64 * 1024;

/// Where the control socket is when nobody says otherwise.
pub const DEFAULT_SOCKET: &str = "/tmp/iocrun-control.sock";

/// A client gets this long to send its word.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The variable that moves the control socket.
pub const SOCKET_ENV: &str = "IOCRUN_CONTROL_SOCKET";

/// Probes answered at once; a connection beyond it is closed as soon as it is accepted.
pub const MAX_CONNECTIONS: usize = 16;

/// Bind the socket: a stale socket from an earlier run is replaced; a live one, or anything
/// that is not a socket (a regular file, a symbolic link), is an error and left alone.
pub fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    let wrap = |source| ServeError::Bind {
        what: "control socket",
        at: path.display().to_string(),
        source,
    };
    crate::files::clear_socket_path(path, SOCKET_ENV)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(wrap)?;
    }
    let listener = UnixListener::bind(path).map_err(wrap)?;
    // probes run as the container's user; nobody else needs to ask
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(wrap)?;
    Ok(listener)
}

/// Answer probes until the future is dropped.
pub async fn serve(listener: UnixListener, state: AppState) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::debug!("control socket: {MAX_CONNECTIONS} probes open, refusing one");
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &state).await {
                        tracing::debug!("control client: {e}");
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off a little rather than spin
                tracing::warn!("control socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(stream: UnixStream, state: &AppState) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(64));
    let got = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await;
    if got.is_err() {
        return Ok(());
    }
    write.write_all(reply(&line, state).as_bytes()).await?;
    write.shutdown().await
}

/// The answer to one request line (at most 64 bytes were read): a verdict, a status, an
/// acknowledged request, or an error quoting the unknown word printably.
pub fn reply(line: &str, state: &AppState) -> String {
    let request = line.trim();
    if let Some(kind) = ProbeKind::from_word(request) {
        let v = state.verdict(kind);
        return format!("{} {}\n", if v.ok { "ok" } else { "fail" }, v.reason);
    }
    match request {
        "status" => Status::now(state).text(),
        "status json" => Status::now(state).json(),
        "restart" => {
            let phase = state.health.borrow().phase.clone();
            if !matches!(phase, Phase::Running | Phase::Backoff) {
                return format!("error no IOC to restart ({})\n", phase.label());
            }
            send(state, Request::Restart, "ok restarting\n")
        }
        "stop" => send(state, Request::Stop, "ok stopping\n"),
        other => format!(
            "error unknown request '{}' (startup, ready, live, status, status json, restart, stop)\n",
            crate::printable::printable(other.as_bytes(), 64)
        ),
    }
}

fn send(state: &AppState, request: Request, ok: &str) -> String {
    let sent = state
        .settings
        .requests
        .as_ref()
        .is_some_and(|tx| tx.send(request).is_ok());
    match sent {
        true => ok.to_owned(),
        false => "error this supervisor takes no requests\n".to_owned(),
    }
}

/// A probe that could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot reach the supervisor at '{path}' (is iocrun running?)")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer from the supervisor at '{path}'")]
    Exchange {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the supervisor at '{path}' answered '{answer}'")]
    Answer { path: PathBuf, answer: String },
}

/// Ask the supervisor at `path` for one verdict (blocking; used by `iocrun probe`).
pub fn probe(path: &Path, kind: ProbeKind, timeout: Duration) -> Result<Verdict, ProbeError> {
    let answer = ask(path, kind.word(), timeout)?;
    let answer = answer.trim_end();
    match answer.split_once(' ').unwrap_or((answer, "")) {
        ("ok", reason) => Ok(Verdict {
            ok: true,
            reason: reason.to_owned(),
        }),
        ("fail", reason) => Ok(Verdict {
            ok: false,
            reason: reason.to_owned(),
        }),
        _ => Err(ProbeError::Answer {
            path: path.to_owned(),
            answer: answer.to_owned(),
        }),
    }
}

/// Send one request line to the supervisor at `path` and return its whole answer (blocking).
pub fn ask(path: &Path, request: &str, timeout: Duration) -> Result<String, ProbeError> {
    let mut stream =
        std::os::unix::net::UnixStream::connect(path).map_err(|source| ProbeError::Connect {
            path: path.to_owned(),
            source,
        })?;
    let exchange = |source| ProbeError::Exchange {
        path: path.to_owned(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(exchange)?;
    stream.set_write_timeout(Some(timeout)).map_err(exchange)?;
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(exchange)?;
    let mut answer = String::new();
    stream
        .take(MAX_ANSWER)
        .read_to_string(&mut answer)
        .map_err(exchange)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::health::{CaReport, Health, Phase};
    use crate::serve::http::Settings;
    use std::sync::Arc;
    use tokio::sync::watch;

    #[tokio::test]
    async fn answers_each_probe_and_rejects_unknown_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let health = Health {
            phase: Phase::Running,
            start_done: true,
            ..Health::default()
        };
        let (_htx, hrx) = watch::channel(health);
        let (_ctx, crx) = watch::channel(CaReport::default());
        let settings = Arc::new(Settings {
            checks_on: true,
            live_failures: 3,
            ..Settings::default()
        });
        let state = AppState {
            health: hrx,
            ca: crx,
            settings,
        };
        let server = tokio::spawn(serve(bind(&path).unwrap(), state));
        let p = path.clone();
        let verdicts = tokio::task::spawn_blocking(move || {
            [ProbeKind::Startup, ProbeKind::Ready, ProbeKind::Live]
                .map(|k| probe(&p, k, Duration::from_secs(2)).unwrap().ok)
        })
        .await
        .unwrap();
        assert_eq!(
            verdicts,
            [true, false, true],
            "ready waits for a channel access answer"
        );
        let mut raw = UnixStream::connect(&path).await.unwrap();
        raw.write_all(b"bogus\n").await.unwrap();
        let mut reply = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut raw, &mut reply)
            .await
            .unwrap();
        assert!(
            reply.starts_with("error unknown request 'bogus'"),
            "{reply}"
        );
        assert!(bind(&path).is_err(), "a live socket is not taken over");
        server.abort();
    }

    #[test]
    fn only_a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let file = dir.path().join("file.sock");
        std::fs::write(&file, "keep me").unwrap();
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        for (path, what) in [(&file, "a regular file"), (&link, "a symbolic link")] {
            let err = crate::error::chain(&bind(path).unwrap_err());
            assert!(err.contains(what) && err.contains(SOCKET_ENV), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "keep me");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        assert!(
            bind(&stale).is_ok(),
            "a socket nobody answers on is replaced"
        );
    }

    #[test]
    fn restart_needs_an_ioc_and_stop_is_passed_on() {
        let (htx, hrx) = watch::channel(Health {
            phase: Phase::Generating,
            ..Health::default()
        });
        let (_ctx, crx) = watch::channel(CaReport::default());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let state = AppState {
            health: hrx,
            ca: crx,
            settings: Arc::new(Settings {
                requests: Some(tx),
                ..Settings::default()
            }),
        };
        assert_eq!(
            reply("restart", &state),
            "error no IOC to restart (generating)\n"
        );
        htx.send_modify(|h| h.phase = Phase::Running);
        assert_eq!(reply("restart", &state), "ok restarting\n");
        assert_eq!(reply("stop", &state), "ok stopping\n");
        assert_eq!(rx.try_recv().ok(), Some(Request::Restart));
        assert_eq!(rx.try_recv().ok(), Some(Request::Stop));
        assert!(reply("status", &state).starts_with("state: running\npid: -\n"));
    }

    #[test]
    fn missing_socket_says_so() {
        let err = probe(
            Path::new("/nonexistent/x.sock"),
            ProbeKind::Live,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("cannot reach the supervisor"),
            "{err}"
        );
    }
}
