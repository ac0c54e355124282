//! iocrun as a library: the stages of the data path, each in its own module.
//!
//! ```text
//! config ─ render ─ expand ─ pvi ─ (place, wait) ─ supervise ─ console ─ serve
//! ```
//! `place` and `wait` are the two start steps between the rendered files and the running IOC
//! (place-files, the hardware wait).
//! `cmd` is the only module that sequences the others; `cli` holds the raw arguments,
//! `paths` resolves the environment once, `files` does atomic writes, `timefmt` formats the
//! UTC stamps of the console stream, `pyfmt` Python's text forms that ibek's outputs use,
//! `printable` text from a peer made safe to print, `footprint` iocrun's own memory at rest.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod console;
pub mod error;
pub mod expand;
pub mod files;
pub mod footprint;
pub mod limits;
pub mod logging;
pub mod paths;
pub mod place;
pub mod printable;
pub mod pvi;
pub mod pyfmt;
pub mod render;
pub mod serve;
pub mod supervise;
pub mod timefmt;
pub mod version;
pub mod wait;
