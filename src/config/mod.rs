//! The YAML inputs of rendering: support YAML (`*.ibek.support.yaml`) and IOC instances
//! (`ioc.yaml`, `runtime.yaml`), as ibek reads them.
//!
//! This module owns parsing and the structural checks ibek makes before any Jinja runs:
//! unknown keys, required keys, duplicate model names, YAML syntax. Turning an instance into
//! rendered entities (Phase 1) belongs to `render`, which sees these models only.

mod builtin;
mod definitions;
mod instance;
mod schema;
mod support;
mod yaml;

use std::path::PathBuf;

pub use builtin::embedded_support;
pub use definitions::{default_definition_files, DefinitionCache, Definitions};
pub use instance::{Instance, RawEntity};
pub use schema::ioc_schema;
pub use support::{
    Database, Define, EntityModel, EntityPvi, EnvVar, Param, ParamKind, ScriptItem, Support,
    Validation,
};
pub use yaml::{
    load as load_yaml, parse as parse_yaml, parse_listed, parse_located, read as read_yaml,
    EntityLocations,
};

/// A support or instance file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read '{path}'")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", location(path, *line, *column))]
    Yaml {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// ibek prints `VALIDATION ERROR READING <path>` for these.
    #[error("validation error reading {}: {message}", location(path, *line, None))]
    Support {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("{}: {message}", location(path, *line, None))]
    Instance {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

/// `path`, `path:line` or `path:line:column`.
pub fn location(path: &std::path::Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", path.display()),
        (Some(l), None) => format!("{}:{l}", path.display()),
        _ => path.display().to_string(),
    }
}
