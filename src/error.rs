//! The top-level error: one variant per stage module, and the only place exit codes are decided.

use std::process::ExitCode;

/// Anything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation outside any stage (atomic writes, copies).
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    /// Rendering an instance (generate, check, start).
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// Reading definitions outside a render (`schema`).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Bad command-line use that clap cannot catch.
    #[error("{0}")]
    Usage(String),
    /// The hardware wait.
    #[error(transparent)]
    Wait(#[from] crate::wait::WaitError),
    /// place-files and the support protocol copy.
    #[error(transparent)]
    Place(#[from] crate::place::PlaceError),
    /// A PVI device that cannot be read or formatted.
    #[error(transparent)]
    Pvi(#[from] crate::pvi::PviError),

    /// The console server or `iocrun attach`.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// msi expansion (`expand`); msi exits 1 for every failure.
    #[error(transparent)]
    Expand(#[from] crate::expand::ExpandError),
    /// Autosave request generation.
    #[error(transparent)]
    Autosave(#[from] crate::expand::AutosaveError),
    /// A Channel Access read (`iocrun caget`).
    #[error(transparent)]
    Ca(#[from] crate::serve::ca::CaError),
    /// `iocrun probe` could not get a verdict.
    #[error(transparent)]
    Probe(#[from] crate::serve::ProbeError),
    /// Supervising the IOC failed before it could run (PTY, signals, exec).
    #[error(transparent)]
    Supervise(#[from] crate::supervise::SuperviseError),
    /// A step of the start sequence outside any stage module.
    #[error(transparent)]
    Start(#[from] crate::cmd::start::StartError),
}

impl Error {
    /// The process exit code for this failure.
    ///
    /// Render/validation errors exit 1 like ibek; msi's codes are kept by the expand stage.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Files(_) | Error::Render(_) | Error::Config(_) | Error::Usage(_) => {
                ExitCode::from(1)
            }
            // ibek's do-wait and place-files exit 1 on every failure
            // ibek's typer rejects a missing CONFIG_DIR as a usage error
            Error::Place(crate::place::PlaceError::NotAFolder { .. }) => ExitCode::from(2),
            Error::Wait(_) | Error::Place(_) => ExitCode::from(1),
            Error::Pvi(_) => ExitCode::from(1),
            Error::Console(_) => ExitCode::from(1),
            Error::Expand(_) | Error::Autosave(_) => ExitCode::from(1),
            // caget exits 1 when the PV could not be read
            Error::Ca(_) => ExitCode::from(1),
            // a probe without an answer is a failed probe
            Error::Probe(_) => ExitCode::from(1),
            // the shell's 127/126 for a missing or non-executable program, as tini does
            Error::Supervise(e) => ExitCode::from(e.exit_code()),
            Error::Start(_) => ExitCode::from(1),
        }
    }
}

/// The error and all its sources joined with ": ", the form `main` prints.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // transparent wrappers repeat their inner message; print each piece once
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read 'a.yaml'")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_joins_sources() {
        let err = Outer(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
        assert_eq!(chain(&err), "cannot read 'a.yaml': gone");
    }
}
