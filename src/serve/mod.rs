//! What the running supervisor tells the outside world: Channel Access reads of the IOC's own
//! PVs (`ca`), with health, readiness and metrics built on them.
//!
//! serve reads state that others publish; it never drives the child itself.

pub mod ca;
