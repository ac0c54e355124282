//! `iocrun probe startup|ready|live`: ask the running supervisor for its cached verdict over
//! the control socket; exit 0 when it passes, 1 when it fails or nobody answers.

use std::process::ExitCode;

use crate::cli::ProbeArgs;
use crate::error::Error;
use crate::serve::{self, ProbeKind};

/// Print the verdict's reason; the exit code carries the verdict.
pub fn run(args: ProbeArgs) -> Result<ExitCode, Error> {
    let kind = ProbeKind::from_word(&args.kind).unwrap_or(ProbeKind::Live);
    let v = serve::probe(&args.socket, kind, args.timeout)?;
    if v.ok {
        println!("{}: ok: {}", kind.word(), v.reason);
        Ok(ExitCode::SUCCESS)
    } else {
        // kubelet records a failed exec probe's output in the pod events
        println!("{}: fail: {}", kind.word(), v.reason);
        Ok(ExitCode::from(1))
    }
}
