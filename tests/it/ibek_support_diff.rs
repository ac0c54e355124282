//! Every entity model of ibek-support, rendered by ibek 4.8.2 and by iocrun (`--no-pvi`), byte
//! for byte on st.cmd, ioc.subst and wait_list.yaml; error instances must fail in both.
//!
//! The instances come from `ibek_support_gen` and are written to a temp dir at test time. ibek
//! takes about half a second per process, so models are grouped: one instance per module
//! (required-only and every-parameter variants, two of each, a disabled copy), one per module
//! with unusual spellings, one error instance per module. When ibek rejects a group, it is split
//! in halves until the rejected instances hold one model each, and a model ibek rejects even
//! with only its required parameters is listed as one ibek cannot render (with ibek's reason).
//! Every instance, rejected or not, is compared: when ibek fails, iocrun must fail too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::ibek_support_gen::{self as gen, Case, Catalog, Expect, Variant};
use crate::util;

/// What one tool made of a case: the output files, or its error text.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Rendered(Vec<(String, Option<String>)>),
    Failed(String),
}

impl Outcome {
    fn ok(&self) -> bool {
        matches!(self, Outcome::Rendered(_))
    }

    fn reason(&self) -> String {
        match self {
            Outcome::Rendered(_) => "rendered".into(),
            Outcome::Failed(e) => last_error_line(e),
        }
    }
}

/// The most telling line of a Python traceback or an iocrun error.
fn last_error_line(e: &str) -> String {
    let lines: Vec<&str> = e.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.contains("Error") || l.contains("error"))
        .or(lines.last())
        .map(|l| l.chars().take(200).collect())
        .unwrap_or_default()
}

const OUTPUTS: [&str; 3] = ["st.cmd", "ioc.subst", "wait_list.yaml"];

fn run_tool(mut cmd: Command, dir: &Path, defs: &[PathBuf], out: &str) -> Outcome {
    cmd.env("IOC_NAME", "gen-ioc-from-env");
    let o = util::render_no_pvi(
        cmd,
        &dir.join("config"),
        defs,
        &dir.join(out),
        &dir.join("epics"),
    );
    if !o.status.success() {
        return Outcome::Failed(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Outcome::Rendered(
        OUTPUTS
            .iter()
            .map(|f| {
                (
                    (*f).to_owned(),
                    std::fs::read_to_string(dir.join(out).join(f)).ok(),
                )
            })
            .collect(),
    )
}

struct Run {
    case: Case,
    ibek: Outcome,
    iocrun: Outcome,
}

impl Run {
    /// Why the two tools disagree, if they do.
    fn mismatch(&self) -> Option<String> {
        match (&self.ibek, &self.iocrun, self.case.expect) {
            (_, _, Expect::Fail) if self.ibek.ok() || self.iocrun.ok() => Some(format!(
                "an error case: ibek {}, iocrun {}",
                self.ibek.reason(),
                self.iocrun.reason()
            )),
            (Outcome::Failed(_), Outcome::Failed(_), _) => None,
            (Outcome::Rendered(a), Outcome::Rendered(b), _) => {
                let diff: Vec<String> = a
                    .iter()
                    .zip(b)
                    .filter(|(x, y)| x != y)
                    .map(|((f, x), (_, y))| first_difference(f, x.as_deref(), y.as_deref()))
                    .collect();
                (!diff.is_empty()).then(|| diff.join("\n"))
            }
            (i, o, _) => Some(format!(
                "ibek {}, iocrun {}",
                if i.ok() { "rendered" } else { "failed" },
                match o {
                    Outcome::Failed(e) => format!("failed: {}", last_error_line(e)),
                    _ => format!("rendered (ibek: {})", i.reason()),
                }
            )),
        }
    }
}

fn first_difference(file: &str, a: Option<&str>, b: Option<&str>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => {
            let line = a
                .lines()
                .zip(b.lines())
                .position(|(x, y)| x != y)
                .unwrap_or_else(|| a.lines().count().min(b.lines().count()));
            format!(
                "{file} line {}:\n  ibek:   {:?}\n  iocrun: {:?}",
                line + 1,
                a.lines().nth(line).unwrap_or("<end>"),
                b.lines().nth(line).unwrap_or("<end>")
            )
        }
        (a, b) => format!(
            "{file}: ibek {} it, iocrun {} it",
            if a.is_some() {
                "wrote"
            } else {
                "did not write"
            },
            if b.is_some() {
                "wrote"
            } else {
                "did not write"
            }
        ),
    }
}

/// Render every case with both tools, one ibek process per core (at most four).
fn run_all(ibek: &Path, root: &Path, cases: Vec<Case>) -> Vec<Run> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let queue = Mutex::new(cases.into_iter().enumerate().collect::<Vec<_>>());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let Some((i, case)) = queue.lock().expect("queue").pop() else {
                    break;
                };
                let dir = root.join(format!("{i:03}-{}", sanitize(&case.name)));
                std::fs::create_dir_all(dir.join("config")).expect("mkdir");
                std::fs::create_dir_all(dir.join("epics")).expect("mkdir");
                std::fs::write(dir.join("config/ioc.yaml"), &case.ioc_yaml).expect("write");
                let mut reference = Command::new(ibek);
                reference.args(["runtime", "generate2"]);
                let ibek_out = run_tool(reference, &dir, &case.defs, "ibek");
                let mut ours = util::iocrun();
                ours.arg("generate");
                let iocrun_out = run_tool(ours, &dir, &case.defs, "iocrun");
                done.lock().expect("done").push((
                    i,
                    Run {
                        case,
                        ibek: ibek_out,
                        iocrun: iocrun_out,
                    },
                ));
            });
        }
    });
    let mut runs = done.into_inner().expect("done");
    runs.sort_by_key(|(i, _)| *i);
    runs.into_iter().map(|(_, r)| r).collect()
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[test]
fn every_ibek_support_model_renders_as_ibek_does() {
    let (Some(shared), Some(ibek)) = (util::shared_dir(), util::tool_var("IOCRUN_IBEK")) else {
        return;
    };
    let cat = Catalog::load(&shared.join("conformance/ibek-support"));
    assert!(cat.models.len() > 150, "only {} models", cat.models.len());
    let tmp = tempfile::tempdir().expect("tmp");
    let both = [Variant::Required, Variant::All];

    // level 1: one plain and one spelled instance per module, one error instance per module
    let mut cases = Vec::new();
    for module in cat.modules() {
        let models = gen::module_models(&cat, &module);
        cases.push(gen::models_case(
            &cat,
            &format!("plain {module}"),
            &models,
            &both,
        ));
        cases.push(gen::models_case(
            &cat,
            &format!("spelling {module}"),
            &models,
            &[Variant::Spelling],
        ));
    }
    cases.extend(gen::error_cases(&cat));
    let mut runs = run_all(&ibek, &tmp.path().join("groups"), cases);

    // level 2: a group ibek rejected is split in halves until each rejected instance holds
    // one model (a bisection: few runs when few models are at fault)
    let index = |full: &str| cat.models.iter().position(|m| m.full == full);
    let mut pending: Vec<(bool, Vec<usize>)> = runs
        .iter()
        .filter(|r| r.case.expect == Expect::Agree && !r.ibek.ok() && r.case.models.len() > 1)
        .map(|r| {
            let spelling = r.case.name.starts_with("spelling");
            (
                spelling,
                r.case.models.iter().filter_map(|m| index(m)).collect(),
            )
        })
        .collect();
    let mut singles = Vec::new();
    let mut round = 0;
    while !pending.is_empty() {
        round += 1;
        let cases = pending
            .drain(..)
            .flat_map(|(spelling, models)| {
                let (a, b) = models.split_at(models.len() / 2);
                [(spelling, a.to_vec()), (spelling, b.to_vec())]
            })
            .filter(|(_, m)| !m.is_empty())
            .map(|(spelling, models)| {
                let (what, variants): (&str, &[Variant]) = if spelling {
                    ("spelling", &[Variant::Spelling])
                } else {
                    ("plain", &both)
                };
                let name = match models.as_slice() {
                    [one] => format!("{what} {}", cat.models[*one].full),
                    _ => format!(
                        "{what} {} models from {}",
                        models.len(),
                        cat.models[models[0]].full
                    ),
                };
                gen::models_case(&cat, &name, &models, variants)
            })
            .collect();
        for r in run_all(&ibek, &tmp.path().join(format!("split{round}")), cases) {
            if !r.ibek.ok() && r.case.models.len() > 1 {
                let spelling = r.case.name.starts_with("spelling");
                pending.push((
                    spelling,
                    r.case.models.iter().filter_map(|m| index(m)).collect(),
                ));
            }
            singles.push(r);
        }
    }

    // level 3: a plain model ibek rejected, with its required parameters only
    let mut required = Vec::new();
    for r in singles
        .iter()
        .filter(|r| r.case.name.starts_with("plain") && r.case.models.len() == 1 && !r.ibek.ok())
    {
        if let Some(i) = index(&r.case.models[0]) {
            required.push(gen::models_case(
                &cat,
                &format!("required {}", r.case.models[0]),
                &[i],
                &[Variant::Required],
            ));
        }
    }
    let required = run_all(&ibek, &tmp.path().join("required"), required);

    // the verdicts
    let mut cannot: Vec<(String, String)> = required
        .iter()
        .filter(|r| !r.ibek.ok())
        .map(|r| (r.case.models[0].clone(), r.ibek.reason()))
        .collect();
    cannot.sort();
    runs.extend(singles);
    runs.extend(required);
    let rendered_by_ibek: std::collections::BTreeSet<&str> = runs
        .iter()
        .filter(|r| r.ibek.ok())
        .flat_map(|r| r.case.models.iter().map(String::as_str))
        .collect();
    let mismatches: Vec<String> = runs
        .iter()
        .filter_map(|r| r.mismatch().map(|m| format!("{}: {m}", r.case.name)))
        .collect();
    let errors = runs
        .iter()
        .filter(|r| r.case.expect == Expect::Fail)
        .count();
    eprintln!(
        "ibek-support: {} models; {} ibek runs; {} models rendered by ibek in at least one instance; {} error cases",
        cat.models.len(),
        runs.len(),
        rendered_by_ibek.len(),
        errors
    );
    for (m, why) in &cannot {
        eprintln!("ibek cannot render {m}: {why}");
    }
    for r in runs
        .iter()
        .filter(|r| !r.ibek.ok() && r.case.expect == Expect::Agree)
    {
        eprintln!("ibek rejects instance {}: {}", r.case.name, r.ibek.reason());
    }
    if let Some(dir) = std::env::var_os("IOCRUN_KEEP_GENERATED") {
        // for looking at the instances: copy the temp tree out
        let _ = Command::new("cp")
            .arg("-r")
            .arg(tmp.path())
            .arg(&dir)
            .status();
    }
    // every model was either rendered by ibek in some instance or shown unrenderable alone
    let unaccounted: Vec<&str> = cat
        .models
        .iter()
        .map(|m| m.full.as_str())
        .filter(|m| !rendered_by_ibek.contains(m) && !cannot.iter().any(|(c, _)| c == m))
        .collect();
    assert!(
        unaccounted.is_empty(),
        "models never tried: {unaccounted:?}"
    );
    assert!(
        mismatches.is_empty(),
        "{} instances differ between ibek and iocrun:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
