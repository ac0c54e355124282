//! Builds IOC instances from every entity model of a folder of `*.ibek.support.yaml` files (the
//! whole of ibek-support), for `ibek_support_diff` to render with ibek and iocrun.
//!
//! For each model: a required-only and an every-parameter-given variant, two instances of each,
//! a disabled copy, and (in a separate instance per module) the same models written with
//! unusual but valid spellings: Jinja in values, YAML 1.2 booleans, ints and floats, unicode,
//! quotes, block scalars. An object parameter gets an entity of a model that has the attributes
//! the model's templates read from it (same module first), which is instantiated first.
//! Error instances (one per module, the kind rotating) must be rejected by both tools.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_yaml::Value as Y;

/// One parameter of a model.
pub struct Param {
    pub name: String,
    pub kind: String,
    pub required: bool,
    /// Enum keys, in order.
    pub keys: Vec<Y>,
    /// For an object parameter: the attributes the model's text reads from it (`P.attr`).
    pub attrs: Vec<String>,
    /// For an object parameter: `P.x.y` reads, as (x, y): what the object's own object
    /// parameter `x` must provide.
    pub nested: Vec<(String, String)>,
}

/// One entity model.
pub struct Model {
    pub module: String,
    pub full: String,
    pub file: PathBuf,
    pub params: Vec<Param>,
    /// Parameter and define names (what another model may read from this one).
    pub fields: Vec<String>,
    /// The modules of the types its `sub_entities` make (their definitions are needed too).
    pub sub_modules: Vec<String>,
}

impl Model {
    fn id_param(&self) -> Option<&Param> {
        self.params.iter().find(|p| p.kind == "id")
    }

    fn short(&self) -> &str {
        self.full.rsplit('.').next().unwrap_or(&self.full)
    }
}

/// Every model of a folder, plus the files that hold no `entity_models` (old schema).
pub struct Catalog {
    pub models: Vec<Model>,
    pub old_schema: Vec<(String, PathBuf)>,
}

fn text(v: &Y) -> String {
    match v {
        Y::String(s) => s.clone(),
        Y::Number(n) => n.to_string(),
        Y::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

impl Catalog {
    /// Read every `*.ibek.support.yaml` of `dir`, sorted by file name.
    pub fn load(dir: &Path) -> Catalog {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read ibek-support")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().ends_with(".ibek.support.yaml"))
            .collect();
        files.sort();
        let mut models = Vec::new();
        let mut old_schema = Vec::new();
        for file in files {
            let src = std::fs::read_to_string(&file).expect("read support yaml");
            let doc: Y = serde_yaml::from_str(&src).expect("support yaml parses");
            let module = text(&doc["module"]);
            let Some(list) = doc.get("entity_models").and_then(Y::as_sequence) else {
                old_schema.push((module, file));
                continue;
            };
            for m in list {
                let name = text(&m["name"]);
                let body = serde_yaml::to_string(m).unwrap_or_default();
                let mut params = Vec::new();
                let mut fields = Vec::new();
                if let Some(map) = m.get("parameters").and_then(Y::as_mapping) {
                    for (k, p) in map {
                        let pname = text(k);
                        let kind = text(&p["type"]);
                        let required = p.get("default").is_none_or(Y::is_null);
                        let keys = p
                            .get("values")
                            .and_then(Y::as_mapping)
                            .map(|v| v.keys().cloned().collect())
                            .unwrap_or_default();
                        let nested = if kind == "object" {
                            let re =
                                Regex::new(&format!(r"\b{}\.(\w+)\.(\w+)", regex::escape(&pname)))
                                    .expect("regex");
                            re.captures_iter(&body)
                                .map(|c| (c[1].to_owned(), c[2].to_owned()))
                                .collect()
                        } else {
                            Vec::new()
                        };
                        let attrs = if kind == "object" {
                            let re = Regex::new(&format!(r"\b{}\.(\w+)", regex::escape(&pname)))
                                .expect("regex");
                            let mut a: Vec<String> = re
                                .captures_iter(&body)
                                .map(|c| c[1].to_owned())
                                .filter(|a| !["append", "get", "items"].contains(&a.as_str()))
                                .collect();
                            a.sort();
                            a.dedup();
                            a
                        } else {
                            Vec::new()
                        };
                        fields.push(pname.clone());
                        params.push(Param {
                            name: pname,
                            kind,
                            required,
                            keys,
                            attrs,
                            nested,
                        });
                    }
                }
                for defines in ["pre_defines", "post_defines"] {
                    if let Some(map) = m.get(defines).and_then(Y::as_mapping) {
                        fields.extend(map.keys().map(text));
                    }
                }
                let sub_modules = m
                    .get("sub_entities")
                    .and_then(Y::as_sequence)
                    .map(|subs| {
                        subs.iter()
                            .filter_map(|e| text(&e["type"]).split('.').next().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                models.push(Model {
                    sub_modules,
                    full: format!("{module}.{name}"),
                    module: module.clone(),
                    file: file.clone(),
                    params,
                    fields,
                });
            }
        }
        Catalog { models, old_schema }
    }

    /// The module names, in file order.
    pub fn modules(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.models {
            if !out.contains(&m.module) {
                out.push(m.module.clone());
            }
        }
        out
    }

    fn index(&self, full: &str) -> Option<usize> {
        self.models.iter().position(|m| m.full == full)
    }

    /// The model whose entity an object parameter gets: the one with most of the attributes
    /// read from it (then models that need no objects themselves, then the same module); with
    /// no attributes read, a model of the same module that needs no objects, else an asyn IP
    /// port (any entity prints as its id).
    fn provider(&self, of: usize, param: &Param, extra: &[String]) -> Option<usize> {
        let me = &self.models[of];
        let wanted: Vec<&String> = param.attrs.iter().chain(extra).collect();
        let mut best: Option<(usize, (usize, bool, bool))> = None;
        for (i, m) in self.models.iter().enumerate() {
            if i == of || m.id_param().is_none() {
                continue;
            }
            let hits = wanted.iter().filter(|a| m.fields.contains(a)).count();
            let root = !m.params.iter().any(|p| p.kind == "object" && p.required);
            if wanted.is_empty() && !(root && m.module == me.module) {
                continue;
            }
            let score = (hits, root, m.module == me.module);
            if best.as_ref().is_none_or(|(_, s)| score > *s) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i).or_else(|| self.asyn_port())
    }

    fn asyn_port(&self) -> Option<usize> {
        self.index("asyn.AsynIP")
    }

    fn module_file(&self, module: &str) -> Option<&Path> {
        self.models
            .iter()
            .find(|m| m.module == module)
            .map(|m| m.file.as_path())
    }
}

/// How a model's instance is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Variant {
    /// Only the required parameters.
    Required,
    /// Every parameter, with plain values.
    All,
    /// Every parameter, with unusual spellings.
    Spelling,
}

/// What a case must do in both tools.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expect {
    /// Render identically, or both fail.
    Agree,
    /// Both must fail.
    Fail,
}

/// One generated IOC instance.
pub struct Case {
    pub name: String,
    pub ioc_yaml: String,
    pub defs: Vec<PathBuf>,
    pub expect: Expect,
    /// The models whose instances this case holds (besides providers).
    pub models: Vec<String>,
}

/// Writes the entities of one instance file.
struct Builder<'a> {
    cat: &'a Catalog,
    body: String,
    defs: Vec<PathBuf>,
    provided: HashMap<(usize, Vec<(String, String)>), String>,
    n: usize,
    spelling: usize,
}

fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn key_text(k: &Y) -> String {
    match k {
        Y::String(s) => sq(s),
        other => text(other),
    }
}

/// Unusual spellings per parameter type: each is valid for that type in ibek 4.8.2 (YAML 1.2
/// core schema, pydantic lax mode). `{i}` is an indent placeholder for block scalars.
const STR_SPELLINGS: &[&str] = &[
    "\"{{ ioc_name }}-s\"",
    "'Ünïcødé µs ✓ 日本'",
    "'it''s \"quoted\"'",
    "\"tab\\tand \\\\ back\"",
    "\"{{ '%03d' % 7 }}\"",
    "'  spaced  '",
    "|-\n{i}two\n{i}lines",
    "\"#not a comment\"",
    "yes",
    "'{{ \"x\" ~ 1 }}'",
    "'0b101'",
    ">-\n{i}folded\n{i}text",
    "\"{{ ioc_name | upper }}\"",
];
// small values: some models take ints as axis or channel counts with an upper bound
const INT_SPELLINGS: &[&str] = &[
    "0x3",
    "+3",
    "'2'",
    "0o4",
    "\"{{ 1 + 2 }}\"",
    "-0",
    "\" 4 \"",
    "2",
    "0b101",
];
const FLOAT_SPELLINGS: &[&str] = &[
    "1e3",
    ".5",
    "-2.",
    "'2.5'",
    "7",
    "\"{{ 1 / 4 }}\"",
    "6.02E+23",
    "+.5",
    "1.0",
];
const BOOL_SPELLINGS: &[&str] = &[
    "True",
    "TRUE",
    "'yes'",
    "'1'",
    "\"{{ 1 == 1 }}\"",
    "false",
    "'off'",
    "0",
    "False",
];

impl<'a> Builder<'a> {
    fn new(cat: &'a Catalog) -> Builder<'a> {
        Builder {
            cat,
            body: String::new(),
            defs: Vec::new(),
            provided: HashMap::new(),
            n: 0,
            spelling: 0,
        }
    }

    fn use_file(&mut self, file: &Path) {
        if !self.defs.iter().any(|f| f == file) {
            self.defs.push(file.to_owned());
        }
    }

    fn next_spelling(&mut self, list: &[&str]) -> String {
        self.spelling += 1;
        list[self.spelling % list.len()].replace("{i}", "      ")
    }

    /// The id of an entity of `model` (written on first use, required-only); `needs` are
    /// attributes its object parameters must provide in turn.
    fn provide(
        &mut self,
        model: usize,
        chain: &mut Vec<usize>,
        needs: &[(String, String)],
    ) -> Option<String> {
        let key = (model, needs.to_vec());
        if let Some(id) = self.provided.get(&key) {
            return Some(id.clone());
        }
        if chain.contains(&model) || chain.len() > 4 {
            return None;
        }
        chain.push(model);
        let id = self.entity_needing(model, Variant::Required, false, chain, needs);
        chain.pop();
        if let Some(id) = &id {
            self.provided.insert(key, id.clone());
        }
        id
    }

    /// Write one entity of `model`; returns its (first) id.
    fn entity(
        &mut self,
        model: usize,
        variant: Variant,
        disabled: bool,
        chain: &mut Vec<usize>,
    ) -> Option<String> {
        self.entity_needing(model, variant, disabled, chain, &[])
    }

    fn entity_needing(
        &mut self,
        model: usize,
        variant: Variant,
        disabled: bool,
        chain: &mut Vec<usize>,
        needs: &[(String, String)],
    ) -> Option<String> {
        let cat = self.cat;
        let m = &cat.models[model];
        self.use_file(&m.file);
        for sub in &m.sub_modules {
            if let Some(f) = cat.module_file(sub) {
                self.use_file(f);
            }
        }
        let mut lines = Vec::new();
        let mut first_id = None;
        for p in &m.params {
            // ids are always given: two instances of a model need different ones
            if p.name == "type" || (variant == Variant::Required && !p.required && p.kind != "id") {
                continue;
            }
            let value = match p.kind.as_str() {
                "id" => {
                    self.n += 1;
                    let id = if variant == Variant::Spelling {
                        format!("{}_é{}", m.short(), self.n)
                    } else {
                        format!("{}_{}", m.short(), self.n)
                    };
                    first_id.get_or_insert(id.clone());
                    sq(&id)
                }
                "object" => {
                    let extra: Vec<String> = needs
                        .iter()
                        .filter(|(x, _)| *x == p.name)
                        .map(|(_, y)| y.clone())
                        .collect();
                    let Some(target) = cat.provider(model, p, &extra) else {
                        continue;
                    };
                    chain.push(model);
                    let mut id = self.provide(target, chain, &p.nested);
                    if id.is_none() {
                        // a cycle: any entity prints as its id
                        id = cat.asyn_port().and_then(|a| self.provide(a, chain, &[]));
                    }
                    chain.pop();
                    let Some(id) = id else { continue };
                    if variant == Variant::Spelling {
                        format!("\"{{{{ {} }}}}\"", sq(&id))
                    } else {
                        sq(&id)
                    }
                }
                kind => self.plain_or_spelled(p, kind, variant),
            };
            lines.push(format!("    {}: {value}", p.name));
        }
        self.body.push_str(&format!("  - type: {}\n", m.full));
        if disabled {
            self.body.push_str("    entity_enabled: false\n");
        }
        for l in lines {
            self.body.push_str(&l);
            self.body.push('\n');
        }
        first_id
    }

    fn plain_or_spelled(&mut self, p: &Param, kind: &str, variant: Variant) -> String {
        self.n += 1;
        let n = self.n;
        let spelled = variant == Variant::Spelling;
        match kind {
            "str" if spelled => self.next_spelling(STR_SPELLINGS),
            "str" => sq(&format!("{}{n}", p.name)),
            "int" if spelled => self.next_spelling(INT_SPELLINGS),
            "int" => (n % 4 + 1).to_string(),
            "float" if spelled => self.next_spelling(FLOAT_SPELLINGS),
            "float" => format!("{}.5", n % 5),
            "bool" if spelled => self.next_spelling(BOOL_SPELLINGS),
            "bool" => (n % 2 == 0).to_string(),
            "enum" => {
                let k = match variant {
                    Variant::Required => p.keys.first(),
                    _ => p.keys.last(),
                };
                match k {
                    Some(Y::String(s)) if spelled => format!("\"{}\"", s.replace('"', "\\\"")),
                    Some(k) => key_text(k),
                    None => "''".into(),
                }
            }
            "list" => "[1, 'two']".into(),
            "dict" => "{a: 1}".into(),
            _ => "''".into(),
        }
    }

    fn finish(self, name: String, ioc_name: &str, models: Vec<String>, expect: Expect) -> Case {
        Case {
            ioc_yaml: format!(
                "# generated by tests/it/ibek_support_gen.rs\nioc_name: {ioc_name}\ndescription: generated instance of {name} — «ünïcødé» 'quotes'\nentities:\n{}",
                self.body
            ),
            name,
            defs: self.defs,
            expect,
            models,
        }
    }
}

/// A case holding `models` with `variants` (each written twice) and one disabled copy.
pub fn models_case(cat: &Catalog, name: &str, models: &[usize], variants: &[Variant]) -> Case {
    let mut b = Builder::new(cat);
    for &m in models {
        let mut chain = Vec::new();
        for &v in variants {
            for _ in 0..2 {
                b.entity(m, v, false, &mut chain);
            }
        }
        if variants.contains(&Variant::Required) {
            b.entity(m, Variant::Required, true, &mut chain);
        }
    }
    let ioc_name = if variants.contains(&Variant::Spelling) {
        "\"{{ _global.get_env('IOC_NAME') }}\""
    } else {
        "gen-ioc"
    };
    let names = models.iter().map(|&m| cat.models[m].full.clone()).collect();
    b.finish(name.to_owned(), ioc_name, names, Expect::Agree)
}

/// The model indices of one module.
pub fn module_models(cat: &Catalog, module: &str) -> Vec<usize> {
    (0..cat.models.len())
        .filter(|&i| cat.models[i].module == module)
        .collect()
}

/// The error kinds, rotated over the modules.
const ERROR_KINDS: &[&str] = &[
    "missing-required",
    "extra-argument",
    "unknown-type",
    "bad-number",
    "duplicate-id",
    "missing-object",
    "bad-enabled",
    "duplicate-key",
    "no-ioc-name",
    "bad-enum",
];

/// One error instance per error kind, each in a different module spread over the catalogue
/// (ibek takes half a second per instance); plus one per old-schema file. Each case must be
/// rejected by both tools.
pub fn error_cases(cat: &Catalog) -> Vec<Case> {
    let mut out = Vec::new();
    let modules = cat.modules();
    for (k, kind) in ERROR_KINDS.iter().copied().enumerate() {
        let module = &modules[k * modules.len() / ERROR_KINDS.len()];
        let models = module_models(cat, module);
        // a model the error kind applies to, else the first
        let pick = |f: &dyn Fn(&Model) -> bool| {
            models
                .iter()
                .copied()
                .find(|&m| f(&cat.models[m]))
                .unwrap_or(models[0])
        };
        let m = match kind {
            "missing-required" => pick(&|m| m.params.iter().any(|p| p.required)),
            "bad-number" => pick(&|m| {
                m.params
                    .iter()
                    .any(|p| ["int", "float", "bool"].contains(&p.kind.as_str()))
            }),
            "duplicate-id" => pick(&|m| m.id_param().is_some()),
            "missing-object" => pick(&|m| m.params.iter().any(|p| p.kind == "object")),
            "bad-enum" => pick(&|m| m.params.iter().any(|p| p.kind == "enum")),
            _ => models[0],
        };
        let model = &cat.models[m];
        let mut b = Builder::new(cat);
        let mut chain = Vec::new();
        b.entity(m, Variant::Required, false, &mut chain);
        let case_name = format!("error-{kind}-{}", model.full);
        let mut ioc_name = "gen-err";
        // the last entity written is the model's; mutate its lines
        let start = b
            .body
            .rfind(&format!("  - type: {}\n", model.full))
            .unwrap_or(0);
        let (head, entity) = b.body.split_at(start);
        let (head, mut entity) = (head.to_owned(), entity.to_owned());
        let req = |kinds: &[&str]| {
            model
                .params
                .iter()
                .find(|p| p.required && p.name != "type" && kinds.contains(&p.kind.as_str()))
                .map(|p| p.name.clone())
        };
        let extra = |e: &mut String| e.push_str("    bogus_argument: 1\n");
        match kind {
            "missing-required" => match model.params.iter().find(|p| p.required) {
                Some(p) => {
                    let prefix = format!("    {}: ", p.name);
                    entity = entity
                        .lines()
                        .filter(|l| !l.starts_with(&prefix))
                        .map(|l| format!("{l}\n"))
                        .collect();
                }
                None => extra(&mut entity),
            },
            "unknown-type" => {
                entity = entity.replacen(&model.full, &format!("{}X", model.full), 1);
            }
            "bad-number" => match model
                .params
                .iter()
                .find(|p| ["int", "float", "bool"].contains(&p.kind.as_str()))
            {
                Some(p) => entity.push_str(&format!("    {}: not-a-number\n", p.name)),
                None => extra(&mut entity),
            },
            "duplicate-id" => {
                if model.id_param().is_some() {
                    let copy = entity.clone();
                    entity.push_str(&copy);
                } else {
                    extra(&mut entity);
                }
            }
            "missing-object" => match req(&["object"]) {
                Some(p) => {
                    let prefix = format!("    {p}: ");
                    entity = entity
                        .lines()
                        .map(|l| {
                            if l.starts_with(&prefix) {
                                format!("{prefix}no_such_entity\n")
                            } else {
                                format!("{l}\n")
                            }
                        })
                        .collect();
                }
                None => extra(&mut entity),
            },
            "bad-enabled" => entity.push_str("    entity_enabled: perhaps\n"),
            "duplicate-key" => {
                entity.push_str("    entity_enabled: true\n    entity_enabled: true\n")
            }
            "no-ioc-name" => ioc_name = "",
            "bad-enum" => match model.params.iter().find(|p| p.kind == "enum") {
                Some(p) => entity.push_str(&format!("    {}: NOT_A_KEY\n", p.name)),
                None => extra(&mut entity),
            },
            _ => extra(&mut entity),
        }
        // a later duplicate key overrides; for bad-number etc. the key may now occur twice,
        // which is an error of its own in both tools, so drop the earlier one
        entity = dedup_keys(&entity);
        if kind == "duplicate-key" {
            entity.push_str("    entity_enabled: true\n");
        }
        b.body = head + &entity;
        let mut case = b.finish(case_name, ioc_name, vec![model.full.clone()], Expect::Fail);
        if kind == "no-ioc-name" {
            case.ioc_yaml = case.ioc_yaml.replace("ioc_name: \n", "");
        }
        out.push(case);
    }
    for (module, file) in &cat.old_schema {
        out.push(Case {
            name: format!("error-old-schema-{module}"),
            ioc_yaml: format!(
                "ioc_name: gen-old\ndescription: d\nentities:\n  - type: {module}.anything\n"
            ),
            defs: vec![file.clone()],
            expect: Expect::Fail,
            models: vec![],
        });
    }
    out
}

/// Keep the last line of each key of an entity (the error mutations append a key again).
fn dedup_keys(entity: &str) -> String {
    let lines: Vec<&str> = entity.lines().collect();
    let key = |l: &str| l.split(':').next().unwrap_or("").to_owned();
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let later = lines[i + 1..].iter().any(|m| key(m) == key(l));
        if !later || !l.starts_with("    ") {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}
