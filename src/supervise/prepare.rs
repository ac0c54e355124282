//! The seam between supervision and the start sequence: before every restart the supervisor
//! asks a [`Prepare`]r what to run. The start sequence implements it (in `cmd/start.rs`) by
//! running the steps that read the config folder again; this module knows nothing of them.

use std::future::Future;
use std::pin::Pin;

use super::state::RestartReason;
use super::sys::CommandSpec;

/// The command to start, once the preparer has worked it out. The supervisor keeps handling
/// signals and control messages meanwhile, and drops the future if a stop arrives.
pub type Prepared = Pin<Box<dyn Future<Output = CommandSpec> + Send>>;

/// Asked before each restart for the command to run. It must always answer with something to
/// run: a preparer that cannot make fresh outputs answers with the last good ones.
pub trait Prepare: Send {
    /// Prepare the next start, which happens because of `reason`.
    fn prepare(&mut self, reason: RestartReason) -> Prepared;
}

impl<F> Prepare for F
where
    F: FnMut(RestartReason) -> Prepared + Send,
{
    fn prepare(&mut self, reason: RestartReason) -> Prepared {
        self(reason)
    }
}
