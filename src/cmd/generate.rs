//! `iocrun generate` = `ibek runtime generate2`: find the
//! instance and definition files, render, make the PVI screens and templates, then publish the
//! outputs all at once.
//!
//! Screens are not worth an outage (issue 5): when only the screens fail, st.cmd and ioc.subst
//! are still written, the failure is logged as a warning and reported in [`Generated`] and in
//! a `pvi_failed` file in the output folder. A `.pvi.template` that cannot be made is fatal,
//! because ioc.subst names it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::GenerateArgs;
use crate::config::default_definition_files;
use crate::error::Error;
use crate::files::{self, Staged};
use crate::paths::Paths;
use crate::pvi;
use crate::render::{self, Inputs, Outputs};

/// The name of the file in the output folder that says the screens failed (and why).
pub const PVI_FAILED_FILE: &str = "pvi_failed";

/// What a successful generate did.
#[derive(Debug, Default)]
pub struct Generated {
    /// Why (some of) the PVI screens are missing; `None` when they were all published or
    /// `--no-pvi` was given. The start sequence and metrics read this.
    pub pvi_failed: Option<String>,
    /// The `IOC` prefix of each iocStats entity (exported as PV metrics by `start`).
    pub iocstats_prefixes: Vec<String>,
}

/// Run the subcommand.
pub fn run(args: &GenerateArgs) -> Result<ExitCode, Error> {
    generate(args, &Paths::from_env())?;
    Ok(ExitCode::SUCCESS)
}

/// Start-sequence step 5: render `$CONFIG_DIR` into `$RUNTIME_DIR` and
/// the screens into `$EPICS_ROOT/opi`, with the default definitions. The caller reports
/// [`Generated::pvi_failed`] (also left in `$RUNTIME_DIR/pvi_failed`) to the probes and metrics.
pub fn generate_step(paths: &Paths) -> Result<Generated, Error> {
    let args = GenerateArgs {
        config_dir: Some(paths.config_dir.clone()),
        instances: Vec::new(),
        definitions: Vec::new(),
        output: Some(paths.runtime_dir.clone()),
        opi: None,
        no_pvi: false,
    };
    generate(&args, paths)
}

/// Render, make the PVI files, and publish: the OPI folder first (best effort), then the
/// output folder with st.cmd, ioc.subst, wait_list.yaml and the `.pvi.template`s.
pub fn generate(args: &GenerateArgs, paths: &Paths) -> Result<Generated, Error> {
    let inputs = inputs(
        paths,
        args.config_dir.as_deref(),
        &args.instances,
        &args.definitions,
        !args.no_pvi,
    )?;
    let out = render::generate(&inputs)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| paths.runtime_dir.clone());
    let mut generated = Generated {
        iocstats_prefixes: out.iocstats_prefixes.clone(),
        ..Generated::default()
    };
    let mut templates = Vec::new();
    if inputs.pvi {
        let opi = args.opi.clone().unwrap_or_else(|| paths.opi_dir());
        let mut sink = OpiSink::new(opi);
        let screen_errors = make_pvi_into(&inputs, &out, &mut sink)?;
        generated.pvi_failed = sink.commit(&screen_errors);
        templates = sink.templates;
    }
    write(&output, &out, &templates, generated.pvi_failed.as_deref())?;
    tracing::info!("wrote {}", output.display());
    Ok(generated)
}

/// pvi for every entity with a `pvi:` section, each file made and dropped (`iocrun check`,
/// and `--watch-config` inside the running supervisor): a template that cannot be made is an
/// error; returns why screens could not be made.
pub fn check_pvi(inputs: &Inputs, out: &Outputs) -> Result<Vec<pvi::PviError>, Error> {
    make_pvi_into(inputs, out, &mut pvi::Discard)
}

/// pvi for every entity with a `pvi:` section, each file handed to `sink` as it is made;
/// parents are searched in the instance config folder, then `pvi-defs` (ibek's search path).
/// Returns why some screens are missing.
fn make_pvi_into(
    inputs: &Inputs,
    out: &Outputs,
    sink: &mut dyn pvi::Sink,
) -> Result<Vec<pvi::PviError>, Error> {
    let entities: Vec<pvi::EntityPvi> = out
        .pvi
        .iter()
        .map(|e| pvi::EntityPvi {
            entity: e.index,
            device_file: e.device_file.clone(),
            ui_index: e.ui_index,
            ui_macros: e.macros.clone().unwrap_or_default(),
            pv: e.pv,
            pv_prefix: e.pv_prefix.clone(),
        })
        .collect();
    let search = [inputs.pvi_override_dir.clone(), inputs.pvi_defs.clone()];
    Ok(pvi::generate_into(
        &out.index_title,
        &entities,
        &search,
        sink,
    )?)
}

/// The screens, written into the OPI folder as they are made ([`files::Publish`]: a Phoebus
/// client never reads half a file; screens an earlier generate wrote and this one did not are
/// removed at the commit), and the templates, kept for the output folder. Screens are best
/// effort: the first write that fails stops the screens, not the generate. The folder is
/// opened at the first screen, so a generate that fails before it leaves no trace.
struct OpiSink {
    opi: PathBuf,
    publish: OpiPublish,
    problems: Vec<String>,
    templates: Vec<(String, String)>,
}

/// Where the OPI folder's publish stands.
enum OpiPublish {
    /// No screen yet: the folder is not touched.
    NotOpened,
    Open(files::Publish),
    /// Opening or a write failed (reported in `problems`): further screens are dropped.
    Failed,
    /// Committed: the sink is finished.
    Done,
}

impl OpiSink {
    fn new(opi: PathBuf) -> OpiSink {
        OpiSink {
            opi,
            publish: OpiPublish::NotOpened,
            problems: Vec::new(),
            templates: Vec::new(),
        }
    }

    /// The open publish, opened now if it is the first use; `None` after a failure.
    fn open(&mut self) -> Option<&mut files::Publish> {
        if let OpiPublish::NotOpened = self.publish {
            // screens are remade at every start: atomic renames, but no per-file sync
            self.publish = match files::Publish::begin(&self.opi, false) {
                Ok(p) => OpiPublish::Open(p),
                Err(e) => {
                    self.problems.push(crate::error::chain(&e));
                    OpiPublish::Failed
                }
            };
        }
        match &mut self.publish {
            OpiPublish::Open(p) => Some(p),
            _ => None,
        }
    }

    /// Publish the screens. Returns why screens are missing, after logging it as a warning.
    fn commit(&mut self, screen_errors: &[pvi::PviError]) -> Option<String> {
        self.open();
        let mut problems: Vec<String> = screen_errors
            .iter()
            .map(|e| crate::error::chain(e))
            .collect();
        problems.append(&mut self.problems);
        if let OpiPublish::Open(publish) = std::mem::replace(&mut self.publish, OpiPublish::Done) {
            let count = publish.len();
            match publish.commit() {
                Ok(()) if problems.is_empty() => {
                    tracing::info!("pvi: published {count} screens to {}", self.opi.display());
                    return None;
                }
                Ok(()) => {}
                Err(e) => problems.push(crate::error::chain(&e)),
            }
        }
        for p in &problems {
            tracing::warn!("pvi screens incomplete (the IOC still starts): {p}");
        }
        Some(problems.join("\n"))
    }
}

impl pvi::Sink for OpiSink {
    fn screen(&mut self, name: &str, text: &str) {
        let Some(publish) = self.open() else {
            return;
        };
        if let Err(e) = publish.add(Path::new(name), text.as_bytes()) {
            // its temporary files go with it: the OPI folder stays as it was
            self.publish = OpiPublish::Failed;
            self.problems.push(crate::error::chain(&e));
        }
    }
    fn template(&mut self, name: &str, text: String) {
        self.templates.push((name.to_owned(), text));
    }
}

/// The render inputs `generate2` would use: instance files are the `-i` files, then
/// `CONFIG_DIR/ioc.yaml` and `CONFIG_DIR/runtime.yaml` when they exist; without
/// `--definitions`, `$EPICS_ROOT/ibek-defs/**` then `CONFIG_DIR/**` support YAML.
pub fn inputs(
    paths: &Paths,
    config_dir: Option<&Path>,
    instances: &[PathBuf],
    definitions: &[PathBuf],
    pvi: bool,
) -> Result<Inputs, Error> {
    if config_dir.is_none() && instances.is_empty() {
        return Err(Error::Usage(
            "either a config folder or instance files (-i) must be given".into(),
        ));
    }
    let mut instance_files = instances.to_vec();
    if let Some(dir) = config_dir {
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "config folder '{}' does not exist",
                dir.display()
            )));
        }
        for name in ["ioc.yaml", "runtime.yaml"] {
            let p = dir.join(name);
            if p.exists() {
                instance_files.push(p);
            }
        }
    }
    if instance_files.is_empty() {
        return Err(Error::Usage("no instance yaml files found".into()));
    }
    let definitions = if definitions.is_empty() {
        default_definition_files(&paths.ibek_defs(), config_dir)?
    } else {
        definitions.to_vec()
    };
    Ok(Inputs {
        instance_files,
        definitions,
        pvi,
        pvi_defs: paths.pvi_defs(),
        pvi_override_dir: paths.epics_root.join("ioc").join("config"),
        ioc_env: std::env::var("IOC").unwrap_or_default(),
        runtime_env: std::env::var("RUNTIME_DIR").unwrap_or_default(),
    })
}

/// Publish the rendered files into the output folder all-or-nothing ([`files::publish_dir`]):
/// the previous outputs stay intact if anything fails, and only files an earlier generate
/// wrote are removed (ibek removes the whole folder). The `.pvi.template`s
/// go here too, next to the ioc.subst that names them (ibek: always `$EPICS_ROOT/runtime`).
pub fn write(
    output: &Path,
    out: &Outputs,
    templates: &[(String, String)],
    pvi_failed: Option<&str>,
) -> Result<(), Error> {
    // rebuilt at every start, like the screens: atomic renames, no per-file sync (the syncs
    // were most of `generate`'s wall time on a busy node; scripts/bench-render.sh)
    let mut staged = Staged::unsynced();
    staged.add("st.cmd", out.st_cmd.as_bytes());
    staged.add("ioc.subst", out.ioc_subst.as_bytes());
    if let Some(w) = &out.wait_list {
        staged.add("wait_list.yaml", w.as_bytes());
    }
    for (name, text) in templates {
        staged.add(name, text.as_bytes());
    }
    if let Some(why) = pvi_failed {
        staged.add(PVI_FAILED_FILE, format!("{why}\n"));
    }
    files::publish_dir(output, &staged)?;
    Ok(())
}
