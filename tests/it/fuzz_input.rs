//! Seeded stand-ins for the cargo-fuzz targets `yaml`, `subst` and `template`
//! (`fuzz/fuzz_targets/`), run in the normal test suite: real inputs (the shared conformance
//! YAML and msi vectors) mutated a few thousand times, plus the hostile shapes of issue 11
//! (deep nesting, alias bombs), go through the YAML loader and msi's expansion. Any input may be
//! rejected; none may panic or overflow the stack.
//!
//! Mutations start from the real inputs only; the hostile shapes are checked once each.
//! The generator is seeded, so a failure names the seed and iteration that reproduce it.
//! `IOCRUN_FUZZ_ITERS` changes the number of mutated inputs per target (default 1500).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::fuzz_render::{mutate_with, Rng};
use crate::util;

/// Fragments that reach unusual paths of the YAML loader.
const YAML_TOKENS: &[&str] = &[
    "&a ",
    "*a",
    "<<: *a",
    "<<: [*a, *a]",
    "- ",
    "-",
    ": ",
    "? ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "|",
    "|+",
    ">-",
    "!!str ",
    "!!int ",
    "!!binary ",
    "!custom ",
    "\"",
    "'",
    "\\0",
    "\\x00",
    "\n",
    "\n  ",
    "\t",
    "~",
    "0x1F",
    "0o17",
    "1_000",
    ".inf",
    "-.nan",
    "2001-01-01",
    "%YAML 1.2\n",
    "---\n",
    "...\n",
    "#",
    "\u{feff}",
    "é",
    "[[[[[[[[",
    "- - - - - - - -",
];

/// Fragments that reach unusual paths of msi's parser and macLib.
const MSI_TOKENS: &[&str] = &[
    "$(",
    "${",
    ")",
    "}",
    "$(a)",
    "$(a=",
    "$(a,b=",
    "=",
    ",",
    "\"",
    "'",
    "\\",
    "\\\"",
    "{",
    "}",
    "file ",
    "pattern ",
    "global ",
    "include \"",
    "substitute \"",
    "#",
    "\n",
    " ",
    "\t",
    "$(P)",
    "$(R=$(P))",
    "$(a$(a$(a",
    "t.template",
    "\u{0}",
    "é",
];

fn iterations() -> usize {
    std::env::var("IOCRUN_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

/// Run `f` on `iterations()` mutations of the seeds; a panic names the iteration and input.
fn run_mutations(
    name: &str,
    seeds: &[String],
    tokens: &[&str],
    seed: u64,
    mut f: impl FnMut(&str) -> bool,
) {
    assert!(!seeds.is_empty(), "{name}: no seed inputs");
    let mut rng = Rng(seed);
    let (mut ok, mut rejected) = (0, 0);
    for i in 0..iterations() {
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            input = mutate_with(&input, &mut rng, tokens);
        }
        match catch_unwind(AssertUnwindSafe(|| f(&input))) {
            Ok(true) => ok += 1,
            Ok(false) => rejected += 1,
            Err(_) => panic!("{name} panicked on iteration {i} (seed {seed:#x}); input:\n{input}"),
        }
    }
    eprintln!("{name}: {ok} accepted, {rejected} rejected, 0 panics");
}

/// The hostile shapes of issue 11, at sizes that overflowed the stack or the memory before.
fn hostile_yaml() -> Vec<String> {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..=8 {
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    vec![
        format!("shared:\n  {}x\n", "- ".repeat(20_000)),
        format!("shared: {}{}\n", "[".repeat(20_000), "]".repeat(20_000)),
        format!("shared: {}\n", "{a: ".repeat(5_000)),
        bomb,
    ]
}

fn yaml_accepts(text: &str) -> bool {
    let path = Path::new("fuzz.yaml");
    let instance = iocrun::config::Instance::parse(path, text).is_ok();
    let support = iocrun::config::parse_yaml(path, text).is_ok_and(|v| {
        iocrun::config::Definitions::default()
            .add_value(path, text, v)
            .is_ok()
    });
    instance || support
}

#[test]
fn mutated_yaml_never_panics() {
    let Some(shared) = util::shared_dir() else {
        return;
    };
    let mut seeds = Vec::new();
    for case in ["ibek-utils", "ibek-listarg", "ibek-repeat", "ibek-motorSim"] {
        let dir = shared
            .join("conformance/ibek/cases")
            .join(case)
            .join("input");
        seeds.push(std::fs::read_to_string(dir.join("config/ioc.yaml")).expect("ioc.yaml"));
    }
    seeds.push(
        std::fs::read_to_string(util::repo_root().join("support-yaml/epics.ibek.support.yaml"))
            .expect("support yaml"),
    );
    // the hostile shapes once each (mutating them would spend the run building 500,000 nodes)
    for hostile in hostile_yaml() {
        assert!(!yaml_accepts(&hostile), "a hostile shape must be refused");
    }
    run_mutations("yaml", &seeds, YAML_TOKENS, 0x11_2026, yaml_accepts);
}

/// The msi conformance vectors' substitution files and templates.
fn msi_inputs(ext: &str) -> Vec<String> {
    let Some(shared) = util::shared_dir() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for case in std::fs::read_dir(shared.join("conformance/msi"))
        .expect("msi vectors")
        .flatten()
    {
        for f in std::fs::read_dir(case.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = f.path();
            if p.extension().is_some_and(|e| e == ext) {
                if let Ok(text) = std::fs::read_to_string(&p) {
                    out.push(text);
                }
            }
        }
    }
    out
}

/// A scratch folder with the template the substitution files name.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("scratch");
    std::fs::write(
        dir.path().join("t.template"),
        "record(ai, \"$(P)$(R=x)\") {\n  field(DESC, \"${D,a=$(P)}\")\n}\n",
    )
    .expect("template");
    let path = dir.path().to_owned();
    (dir, path)
}

fn expand(opts: &iocrun::expand::Options) -> bool {
    let mut warn = |_: &str| {};
    iocrun::expand::run(opts, Vec::new(), &mut warn).is_ok()
}

#[test]
fn mutated_substitution_files_never_panic() {
    let mut seeds = msi_inputs("subst");
    seeds.extend(msi_inputs("substitutions"));
    if seeds.is_empty() {
        return;
    }
    seeds.push(format!(
        "file t.template {{ {{ P=\"{}\" }} }}\n",
        "$(a".repeat(50_000)
    ));
    let (_keep, dir) = scratch();
    let subst = dir.join("fuzz.subst");
    run_mutations("subst", &seeds, MSI_TOKENS, 0x5b_2026, |text| {
        std::fs::write(&subst, text).expect("write subst");
        expand(&iocrun::expand::Options {
            include_path: vec![dir.clone()],
            subst: Some(subst.clone()),
            ..Default::default()
        })
    });
}

#[test]
fn mutated_templates_never_panic() {
    let mut seeds = msi_inputs("template");
    if seeds.is_empty() {
        return;
    }
    seeds.push(format!("x {} y\n", "$(a".repeat(50_000)));
    let (_keep, dir) = scratch();
    let template = dir.join("fuzz.template");
    run_mutations("template", &seeds, MSI_TOKENS, 0x7e_2026, |text| {
        std::fs::write(&template, text).expect("write template");
        expand(&iocrun::expand::Options {
            include_path: vec![dir.clone()],
            macros: vec![b"P=p:,R=$(P)r,D=$(Q=q)".to_vec()],
            template: Some(b"fuzz.template".to_vec()),
            ..Default::default()
        })
    });
}

/// Fragments that reach the pvi device reader's checks: other types, nulls, bad numbers.
const PVI_TOKENS: &[&str] = &[
    "type: Group",
    "type: SignalR",
    "type: SignalRW",
    "type: SignalX",
    "type: Include",
    "type: DeviceRef",
    "type: Device",
    "{type: BitField, number_of_bits: ",
    "{type: ImageRead, color_map: ",
    "{type: ButtonPanel, actions: {",
    "{type: ArrayWrite, widget: ",
    "{type: TableRead, widgets: [",
    "layout: {type: Row, header: [",
    "children: ",
    "read_pv: ",
    "name: ",
    "null",
    "-1",
    "300",
    "1.5",
    "true",
    "lowerCase",
    "&a ",
    "*a",
    "<<: *a",
    "\n  - ",
    "\n    ",
    "{",
    "}",
    "[",
    "]",
    ",",
    ": ",
    "'",
];

/// The 53 ibek-support device files, mutated, through the pvi device reader and the template
/// and screen formatting of what it accepts.
#[test]
fn mutated_pvi_device_files_never_panic() {
    let Some(shared) = util::shared_dir() else {
        return;
    };
    let defs = shared.join("conformance/pvi/defs");
    let mut seeds = Vec::new();
    for f in std::fs::read_dir(&defs).expect("pvi defs").flatten() {
        if f.file_name()
            .to_string_lossy()
            .ends_with(".pvi.device.yaml")
        {
            seeds.push(std::fs::read_to_string(f.path()).expect("device file"));
        }
    }
    seeds.sort();
    let dir = tempfile::tempdir().expect("scratch");
    let device = dir.path().join("Fuzz.pvi.device.yaml");
    run_mutations("pvi", &seeds, PVI_TOKENS, 0x9e_2026, |text| {
        std::fs::write(&device, text).expect("write device");
        let Ok(d) = iocrun::pvi::load(&device) else {
            return false;
        };
        let template = iocrun::pvi::format_template(&d, "$(P)");
        let screens = iocrun::pvi::format_screens(&d, "Fuzz");
        template.is_ok() && screens.is_ok()
    });
}
