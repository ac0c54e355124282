//! ibek-compatible rendering: instance + support YAML → st.cmd, ioc.subst, wait_list.yaml,
//! byte for byte as ibek 4.8.2 writes them.
//!
//! [`generate`] is the whole of `ibek runtime generate2` except writing: Phase 1 validates and
//! renders every entity ([`resolve`]), sub-entities and repeats are expanded, then Phase 2
//! renders the outputs in ibek's side-effect order: pvi macros → env → pre_init → post_init →
//! ioc.subst. The Jinja engine with its Python quirks lives in `jinja`. Uses `config`.

mod jinja;
mod literal;
mod objects;
mod pvi;
mod pyvalue;
mod resolve;
mod stcmd;
mod subst;
pub mod suggest;
mod validate;
mod waitlist;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{ConfigError, DefinitionCache, Definitions, Instance};

pub use jinja::{filter_regex, Engine};
pub use objects::Entity;
pub use pvi::PviEntity;
pub use pyvalue::{float_repr, py_str};

/// What a render needs.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Instance files in order (`-i` files, then `ioc.yaml`, then `runtime.yaml`).
    pub instance_files: Vec<PathBuf>,
    /// Support YAML files in order.
    pub definitions: Vec<PathBuf>,
    /// Whether to resolve `pvi:` sections (ibek `--pvi`, default on): adds the
    /// `.pvi.template` rows to ioc.subst and fills [`Outputs::pvi`].
    pub pvi: bool,
    /// `$EPICS_ROOT/pvi-defs`, where `pvi.yaml_path` is relative to.
    pub pvi_defs: PathBuf,
    /// `$EPICS_ROOT/ioc/config`, whose device files override `pvi-defs` by file name.
    pub pvi_override_dir: PathBuf,
    /// `$IOC` as st.cmd's `cd` line shows it (ibek reads the environment; empty if unset).
    pub ioc_env: String,
    /// `$RUNTIME_DIR` as st.cmd's `dbLoadRecords` line shows it (empty if unset).
    pub runtime_env: String,
}

/// Everything a render produces; nothing is written yet.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub st_cmd: String,
    pub ioc_subst: String,
    /// `None` when there are no `ibek.wait_ip` entities (ibek writes no file then).
    pub wait_list: Option<String>,
    /// One entry per entity whose model has `pvi:` (enabled or not, as ibek), in order.
    pub pvi: Vec<PviEntity>,
    /// The first instance file's rendered `ioc_name`: the title of `index.bob`.
    pub index_title: String,
    /// The `ioc_name` global at the end (the last instance file's).
    pub ioc_name: String,
    /// The `IOC` argument of each devIocStats admin entity, in order (for the PV metrics).
    pub iocstats_prefixes: Vec<String>,
}

/// One entity that failed validation or Phase-1 rendering.
#[derive(Debug, Clone)]
pub struct EntityError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Index in the file's `entities` list (of the top-level entity an expansion came from).
    pub index: Option<usize>,
    pub type_name: String,
    pub arg: Option<String>,
    /// e.g. "sub_entities of x.Y" when the failing entity was made by an expansion.
    pub context: Option<String>,
    pub message: String,
}

impl std::fmt::Display for EntityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: ",
            crate::config::location(&self.file, self.line, self.column)
        )?;
        if let Some(i) = self.index {
            write!(f, "entities.{i}.")?;
        }
        write!(f, "`{}`", self.type_name)?;
        if let Some(a) = &self.arg {
            write!(f, ".{a}")?;
        }
        if let Some(c) = &self.context {
            write!(f, " (in {c})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}", join_errors(.0))]
    Entities(Vec<EntityError>),
    #[error("{file}: ioc_name: {message}")]
    IocName { file: PathBuf, message: String },
    #[error("rendering {what}: {message}")]
    Output { what: &'static str, message: String },
    #[error("entity {index} ({type_name}): pvi device file '{}' not found", path.display())]
    PviMissing {
        index: usize,
        type_name: String,
        path: PathBuf,
    },
    #[error("no instance files given")]
    NoInstances,
}

fn join_errors(errs: &[EntityError]) -> String {
    let n = errs.len();
    let head = if n == 1 {
        String::new()
    } else {
        format!("{n} entity errors:\n")
    };
    head + &errs
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `ibek runtime generate2` without the writing: validate, render, and return the outputs.
pub fn generate(inputs: &Inputs) -> Result<Outputs, RenderError> {
    generate_cached(inputs, &mut DefinitionCache::default())
}

/// [`generate`] with the support files read once per `cache`, for a run over many instances.
pub fn generate_cached(
    inputs: &Inputs,
    cache: &mut DefinitionCache,
) -> Result<Outputs, RenderError> {
    let first = inputs
        .instance_files
        .first()
        .ok_or(RenderError::NoInstances)?;
    let mut defs = Definitions::load_cached(&inputs.definitions, cache)?;
    defs.add_embedded_fallbacks()?;
    let instances = inputs.instance_files.iter().map(|f| Instance::load(f));
    render_instances(&defs, &file_stem(first), inputs, instances)
}

/// Render an instance and its support YAML given as text, touching no file (pvi off): the
/// entry point of the fuzz target (`fuzz/fuzz_targets/render.rs`) and its test-suite twin.
pub fn render_text(instance: &str, supports: &[&str]) -> Result<Outputs, RenderError> {
    let mut defs = Definitions::default();
    for (i, text) in supports.iter().enumerate() {
        let path = PathBuf::from(format!("<support {i}>"));
        let value = crate::config::parse_yaml(&path, text)?;
        defs.add_value(&path, text, value)?;
    }
    defs.add_embedded_fallbacks()?;
    let path = PathBuf::from("ioc.yaml");
    let inputs = Inputs {
        instance_files: vec![path.clone()],
        definitions: Vec::new(),
        pvi: false,
        pvi_defs: PathBuf::new(),
        pvi_override_dir: PathBuf::new(),
        ioc_env: "/epics/ioc".into(),
        runtime_env: "/epics/runtime".into(),
    };
    render_instances(&defs, "ioc", &inputs, [Instance::parse(&path, instance)])
}

/// Phase 1 and Phase 2 over loaded definitions; instance files are read one at a time, in
/// order, as ibek reads them.
fn render_instances(
    defs: &Definitions,
    file_stem: &str,
    inputs: &Inputs,
    instances: impl IntoIterator<Item = Result<Instance, ConfigError>>,
) -> Result<Outputs, RenderError> {
    let engine = Engine::new(file_stem);
    let mut resolver = resolve::Resolver::new(&engine, defs);
    let mut top = Vec::new();
    let mut index_title = None;
    for inst in instances {
        let inst = inst?;
        let name = render_ioc_name(&engine, &inst)?;
        engine.set_ioc_name(&name);
        index_title.get_or_insert(name);
        top.extend(resolver.load_file(&inst)?);
    }
    let all = resolver.expand(top)?;
    let entities: Vec<Arc<Entity>> = all.iter().filter(|e| e.model.is_some()).cloned().collect();
    let wait_list = waitlist::render(&all);
    let (pvi, pvi_rows) = if inputs.pvi {
        pvi::resolve(&engine, &entities, inputs)?
    } else {
        (Vec::new(), Vec::new())
    };
    let st_cmd = stcmd::render(&engine, &entities, &inputs.ioc_env, &inputs.runtime_env).map_err(
        |message| RenderError::Output {
            what: "st.cmd",
            message,
        },
    )?;
    let ioc_subst =
        subst::render(&engine, &entities, &pvi_rows).map_err(|message| RenderError::Output {
            what: "ioc.subst",
            message,
        })?;
    no_nul("st.cmd", &st_cmd)?;
    no_nul("ioc.subst", &ioc_subst)?;
    Ok(Outputs {
        st_cmd,
        ioc_subst,
        wait_list,
        pvi,
        index_title: index_title.unwrap_or_default(),
        ioc_name: engine.ioc_name(),
        iocstats_prefixes: iocstats_prefixes(&entities),
    })
}

/// The entity types of ibek-support's iocStats module that load the devIocStats admin records.
const IOCSTATS_TYPES: [&str; 2] = ["devIocStats.iocAdminSoft", "devIocStats.iocAdminVxWorks"];

/// The `IOC` prefix of every enabled devIocStats admin entity.
fn iocstats_prefixes(entities: &[Arc<Entity>]) -> Vec<String> {
    entities
        .iter()
        .filter(|e| IOCSTATS_TYPES.contains(&e.type_name.as_str()) && e.enabled())
        .filter_map(|e| e.get("IOC").map(|v| pyvalue::py_str(&v)))
        .filter(|p| !p.is_empty())
        .collect()
}

/// A NUL character that reached an output another way than an entity argument (a support
/// YAML script or database line): refused, naming the output line.
fn no_nul(what: &'static str, text: &str) -> Result<(), RenderError> {
    match text.lines().position(|l| l.contains('\0')) {
        None => Ok(()),
        Some(i) => Err(RenderError::Output {
            what,
            message: format!("line {} contains a NUL character (\\0)", i + 1),
        }),
    }
}

/// `ioc_name` rendered with an empty context and the globals.
fn render_ioc_name(engine: &Engine, inst: &Instance) -> Result<String, RenderError> {
    let raw = pyvalue::from_yaml(&inst.ioc_name);
    match raw.as_str() {
        Some(text) => engine
            .render_str(&indexmap::IndexMap::new(), text)
            .map_err(|message| RenderError::IocName {
                file: inst.path.clone(),
                message,
            }),
        None => Ok(py_str(&raw)),
    }
}

/// `Path.stem`: the file name without its last suffix (`motorSim.ibek.ioc.yaml` →
/// `motorSim.ibek.ioc`).
fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iocstats_entities_give_their_prefix() {
        let support = "module: devIocStats\nentity_models:\n  - name: iocAdminSoft\n    \
                       description: d\n    parameters:\n      IOC:\n        type: str\n        \
                       description: p\n";
        let instance = "ioc_name: bl01t-ea-ioc-01\ndescription: d\nentities:\n  \
                        - type: devIocStats.iocAdminSoft\n    IOC: \"{{ ioc_name | upper }}\"\n  \
                        - type: devIocStats.iocAdminSoft\n    IOC: OFF\n    entity_enabled: false\n";
        let out = render_text(instance, &[support]).unwrap();
        assert_eq!(out.iocstats_prefixes, vec!["BL01T-EA-IOC-01"]);
    }
}
