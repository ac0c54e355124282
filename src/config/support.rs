//! The support YAML schema (`*.ibek.support.yaml`), mirrored as serde structs.
//!
//! Every struct forbids unknown keys like ibek's pydantic models (`extra="forbid"`), except
//! sub-entities, which are loose mappings whose extra keys are the arguments.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

/// One support file: a module name and the entity models it publishes as `module.name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Support {
    pub module: String,
    pub entity_models: Vec<EntityModel>,
    #[serde(default)]
    pub shared: Option<Value>,
}

/// One entity model. Map order is kept: it is the rendering order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityModel {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub pre_defines: IndexMap<String, Define>,
    #[serde(default)]
    pub parameters: IndexMap<String, Param>,
    #[serde(default)]
    pub post_defines: IndexMap<String, Define>,
    #[serde(default, rename = "validate")]
    pub validations: Vec<Validation>,
    #[serde(default)]
    pub pre_init: Vec<ScriptItem>,
    #[serde(default)]
    pub post_init: Vec<ScriptItem>,
    #[serde(default)]
    pub databases: Vec<Database>,
    #[serde(default)]
    pub env_vars: Vec<EnvVar>,
    #[serde(default)]
    pub pvi: Option<EntityPvi>,
    #[serde(default)]
    pub sub_entities: Vec<Mapping>,
    #[serde(default)]
    pub shared: Option<Value>,
    /// The support module this model came from (set when loading, not in the YAML).
    #[serde(skip)]
    pub module: String,
}

impl EntityModel {
    /// The published type name, `module.name`.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }

    /// The first `id` parameter: the field an entity prints as (`Entity.__str__`).
    pub fn id_param(&self) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(_, p)| p.kind == ParamKind::Id)
            .map(|(n, _)| n.as_str())
    }
}

/// The parameter types a model's `parameters` may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    Str,
    Int,
    Float,
    Bool,
    List,
    Dict,
    Enum,
    Object,
    Id,
}

impl ParamKind {
    /// The name ibek uses as the render `typ` for this parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamKind::Str => "str",
            ParamKind::Int => "int",
            ParamKind::Float => "float",
            ParamKind::Bool => "bool",
            ParamKind::List => "list",
            ParamKind::Dict => "dict",
            ParamKind::Enum => "enum",
            ParamKind::Object => "object",
            ParamKind::Id => "id",
        }
    }
}

/// One parameter. `default: null` or no default means the argument is required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    #[serde(rename = "type")]
    pub kind: ParamKind,
    pub description: String,
    #[serde(default)]
    pub default: Option<Value>,
    /// Enum only: key → value (a null value keeps the key).
    #[serde(default)]
    pub values: Option<Mapping>,
}

/// A computed value (`pre_defines` / `post_defines`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Define {
    pub description: String,
    pub value: Value,
    /// `None` when the YAML says `type: null` (then the filter regex decides).
    #[serde(default = "default_define_type", rename = "type")]
    pub kind: Option<String>,
}

fn default_define_type() -> Option<String> {
    Some("str".to_owned())
}

/// A `validate:` assertion (new in ibek 4.x).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    #[serde(rename = "assert")]
    pub assertion: String,
    pub message: String,
}

/// A pre_init / post_init item: Text or Comment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptItem {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub value: String,
}

impl ScriptItem {
    /// True for `type: comment`.
    pub fn is_comment(&self) -> bool {
        self.kind.as_deref() == Some("comment")
    }

    /// The `when` string, default `every`.
    pub fn when(&self) -> &str {
        self.when.as_deref().unwrap_or("every")
    }
}

/// A row for ioc.subst. `enabled` is a string that is rendered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub file: String,
    #[serde(default = "default_enabled")]
    pub enabled: String,
    pub args: Option<IndexMap<String, Option<String>>>,
}

fn default_enabled() -> String {
    "True".to_owned()
}

/// An `epicsEnvSet` line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// The `pvi:` section of a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityPvi {
    pub yaml_path: String,
    #[serde(default = "yes")]
    pub ui_index: bool,
    #[serde(default)]
    pub ui_macros: Option<IndexMap<String, Option<String>>>,
    #[serde(default)]
    pub pv: bool,
    #[serde(default)]
    pub pv_prefix: String,
}

fn yes() -> bool {
    true
}
