//! `--watch-config`: poll the config folder's fingerprint, and when it has changed and then
//! held still (a burst of edits, or a ConfigMap update, which swaps the `..data` link and
//! removes the old folder, counts once), check it as `iocrun check` would. A folder that
//! would start restarts the IOC on it (restart reason `reload`); one that would not is
//! reported (console line, `iocrun status`, probes' reason, `epics_ioc_config_error`) and the
//! IOC runs on, untouched.
//!
//! Polling, not inotify: a ConfigMap update is a link swap in the folder's parent mount that
//! inotify on the folder's files does not see, polling costs one small folder walk per second,
//! and it works the same on every file system.

use std::time::Duration;

use tokio::sync::watch;

use crate::console::Hub;
use crate::files::{self, Fingerprint};
use crate::paths::Paths;
use crate::serve::Health;
use crate::supervise::{Control, Handle, RestartReason};

/// How often the folder is looked at; a change is acted on once it has held still this long.
pub const POLL: Duration = Duration::from_secs(1);

/// Watch until the supervisor is gone. `seen` is the folder as the first start read it.
pub async fn watch_config(
    paths: Paths,
    mut seen: Fingerprint,
    handle: Handle,
    health: watch::Sender<Health>,
    hub: Hub,
) {
    loop {
        let now = settled(&paths, &seen).await;
        if now == seen {
            continue;
        }
        seen = now;
        let checked = {
            let paths = paths.clone();
            tokio::task::spawn_blocking(move || crate::cmd::check::config_would_start(&paths))
        };
        match checked.await {
            Ok(Ok(())) => {
                health.send_modify(|h| {
                    h.reloads.0 += 1;
                    h.config_error = None;
                });
                hub.notice("config folder changed and checks out: restarting the IOC on it");
                if !handle.send(Control::Restart(RestartReason::Reload)) {
                    return;
                }
            }
            Ok(Err(err)) => {
                let message = crate::error::chain(&err);
                hub.notice(&format!(
                    "config folder changed but cannot be used, the IOC runs on: {message}"
                ));
                health.send_modify(|h| {
                    h.reloads.1 += 1;
                    h.config_error = Some(message);
                });
            }
            Err(_) => tracing::error!("the config check stopped unexpectedly"),
        }
    }
}

/// The folder's fingerprint once it differs from `seen` and has not changed for one [`POLL`].
async fn settled(paths: &Paths, seen: &Fingerprint) -> Fingerprint {
    let mut last = seen.clone();
    loop {
        tokio::time::sleep(POLL).await;
        let now = look(paths).await;
        if now == last && now != *seen {
            return now;
        }
        last = now;
    }
}

/// The fingerprint, taken on a blocking thread (a slow volume must not stall the runtime).
pub async fn look(paths: &Paths) -> Fingerprint {
    let dir = paths.config_dir.clone();
    tokio::task::spawn_blocking(move || files::fingerprint(&dir))
        .await
        .unwrap_or_default()
}
