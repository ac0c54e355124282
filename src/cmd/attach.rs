//! `iocrun attach [--socket PATH] [--read-only] [--detach-keys KEYS]`: the interactive console
//! client (replaces stdio-socket's `console`; see `console::attach` for keys and exit codes).

use std::process::ExitCode;

use crate::console::{self, AttachArgs, ConsoleError};
use crate::error::Error;

/// Attach to a running iocrun's console until detached.
pub fn run(args: AttachArgs) -> Result<ExitCode, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ConsoleError::Runtime { source })?;
    let end = rt.block_on(console::attach(args.options()))?;
    Ok(ExitCode::from(end.exit_code()))
}
