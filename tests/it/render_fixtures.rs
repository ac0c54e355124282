//! Our own instances over real support modules (`tests/fixtures/render/NAME`), rendered by
//! `iocrun generate` and compared byte for byte with what ibek 4.8.2 made of them
//! (`scripts/make-render-goldens.sh` wrote `expected/` and records how in `expected/MADE.txt`).
//!
//! They cover what the shared conformance cases do not: many ids and object references,
//! repeats, enums, runtime.yaml, wait entities, Jinja quirks, pvi sections, error cases. The
//! support YAML is read at test time from `../shared/conformance` and the ibek sdist samples;
//! the fixtures hold only what we wrote. Also here: iocrun's embedded `epics.*` definitions
//! render the real conformance instances exactly as ibek-support's file does.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{self, assert_text_eq};

/// Fixtures expected to fail for now, each with the reason. Keep empty if possible.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

/// The outputs ibek writes into the runtime folder, compared when present in `expected/`.
const OUTPUTS: &[&str] = &["st.cmd", "ioc.subst", "wait_list.yaml"];

/// One fixture folder, its inputs resolved to real paths.
pub struct Fixture {
    pub name: String,
    pub dir: PathBuf,
    pub defs: Vec<PathBuf>,
    pub pvi: Vec<PathBuf>,
    pub env: Vec<(String, String)>,
}

/// Every fixture folder name, sorted.
pub fn fixture_names() -> Vec<String> {
    let root = util::repo_root().join("tests/fixtures/render");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .expect("tests/fixtures/render exists")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Resolve one `defs.txt`/`pvi.txt` line (prefixes as documented in make-render-goldens.sh).
fn resolve(line: &str, dir: &Path, shared: &Path, samples: &Path) -> PathBuf {
    if let Some(p) = line.strip_prefix("shared:") {
        shared.join("conformance").join(p)
    } else if let Some(p) = line.strip_prefix("samples:") {
        samples.join(p)
    } else if let Some(p) = line.strip_prefix("repo:") {
        util::repo_root().join(p)
    } else {
        dir.join(line)
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Fixture {
    /// Load a fixture; `None` (skip) when the shared data or the sdist samples are missing.
    pub fn load(name: &str) -> Option<Fixture> {
        let shared = util::shared_dir()?;
        let samples = util::tool_var("IOCRUN_IBEK_SAMPLES")?;
        let dir = util::repo_root().join("tests/fixtures/render").join(name);
        let defs = lines(&dir.join("defs.txt"))
            .iter()
            .map(|l| resolve(l, &dir, &shared, &samples))
            .collect();
        let pvi = lines(&dir.join("pvi.txt"))
            .iter()
            .map(|l| resolve(l, &dir, &shared, &samples))
            .collect();
        let env = lines(&dir.join("env.txt"))
            .iter()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(Fixture {
            name: name.to_owned(),
            dir,
            defs,
            pvi,
            env,
        })
    }

    pub fn expected(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join("expected").join(file)).ok()
    }

    /// Run `iocrun generate` on this fixture inside a fresh EPICS root; the runtime folder holds
    /// a marker file beforehand, to check that a failed run leaves it alone.
    fn generate(&self, root: &Path) -> Output {
        let pvi_defs = root.join("pvi-defs");
        std::fs::create_dir_all(&pvi_defs).expect("pvi-defs");
        for p in &self.pvi {
            let files: Vec<PathBuf> = if p.is_dir() {
                std::fs::read_dir(p)
                    .expect("pvi dir")
                    .flatten()
                    .map(|e| e.path())
                    .collect()
            } else {
                vec![p.clone()]
            };
            for f in files {
                let link = pvi_defs.join(f.file_name().expect("file name"));
                std::os::unix::fs::symlink(&f, link).expect("link pvi def");
            }
        }
        std::fs::create_dir_all(root.join("runtime")).expect("runtime");
        std::fs::write(root.join("runtime/keep.txt"), "earlier output").expect("marker");
        let mut cmd = util::iocrun();
        cmd.current_dir(&self.dir)
            .env("EPICS_ROOT", root)
            .arg("generate")
            .arg(self.dir.join("config"));
        for d in &self.defs {
            cmd.arg("--definitions").arg(d);
        }
        cmd.arg("-o")
            .arg(root.join("runtime"))
            .arg("--opi")
            .arg(root.join("opi"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().expect("run iocrun generate")
    }

    /// Check one fixture; `Err` describes the first difference.
    fn check(&self) -> Result<(), String> {
        let tmp = tempfile::tempdir().expect("temp dir");
        let out = self.generate(tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let runtime = tmp.path().join("runtime");
        if let Some(error) = self.expected("error.txt") {
            let message = std::fs::read_to_string(self.dir.join("message.txt")).ok();
            return check_failure(&out, &runtime, message, &error);
        }
        if !out.status.success() {
            return Err(format!("iocrun failed ({}): {stderr}", out.status));
        }
        for file in OUTPUTS {
            let actual = std::fs::read_to_string(runtime.join(file)).ok();
            match (self.expected(file), actual) {
                (Some(e), Some(a)) if e == a => {}
                (Some(e), Some(a)) => {
                    let line = first_diff_line(&e, &a);
                    return Err(format!("{file} differs from ibek's at line {line}"));
                }
                (Some(_), None) => return Err(format!("{file} not written")),
                (None, Some(_)) => return Err(format!("{file} written, ibek writes none")),
                (None, None) => {}
            }
        }
        Ok(())
    }
}

/// An error fixture: exit 1, one clean message (no panic), nothing written, earlier outputs kept.
fn check_failure(
    out: &Output,
    runtime: &Path,
    message: Option<String>,
    ibek_error: &str,
) -> Result<(), String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1) {
        return Err(format!(
            "expected exit 1 like ibek ({}), got {}: {stderr}",
            ibek_error.lines().nth(1).unwrap_or(""),
            out.status
        ));
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") || stderr.trim().is_empty()
    {
        return Err(format!("not a clean error message: {stderr:?}"));
    }
    if let Some(m) = message {
        if !stderr.contains(m.trim()) {
            return Err(format!("message does not name {:?}: {stderr}", m.trim()));
        }
    }
    if runtime.join("st.cmd").exists() || !runtime.join("keep.txt").exists() {
        return Err("a failed run touched the output folder".into());
    }
    Ok(())
}

fn first_diff_line(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()))
        + 1
}

#[test]
fn fixtures_render_like_ibek() {
    let names = fixture_names();
    let mut failed = Vec::new();
    let mut passed = 0;
    for name in &names {
        let Some(fx) = Fixture::load(name) else {
            return;
        };
        match fx.check() {
            Ok(()) => passed += 1,
            Err(why) => failed.push((name.clone(), why)),
        }
    }
    eprintln!(
        "render fixtures: {passed} passed, {} failed of {}",
        failed.len(),
        names.len()
    );
    let unexpected: Vec<_> = failed
        .iter()
        .filter(|(n, _)| !KNOWN_FAILURES.iter().any(|(k, _)| k == n))
        .collect();
    for (name, why) in &failed {
        eprintln!("FAIL {name}: {why}");
    }
    assert!(
        unexpected.is_empty(),
        "fixtures differ from ibek: {unexpected:#?}"
    );
}

/// The demo rendered the way a container does it: no `--definitions`, the image's ibek-defs
/// folder empty, so `demo.ibek.support.yaml` comes from the config folder and `epics.*` from
/// the definitions embedded in iocrun. Same bytes as ibek with both files given.
#[test]
fn demo_renders_with_embedded_definitions() {
    let Some(fx) = Fixture::load("demo") else {
        return;
    };
    let env = util::TestEnv::new();
    std::fs::create_dir_all(env.root().join("ibek-defs")).expect("ibek-defs");
    let out = env
        .iocrun()
        .env("IOC", "/epics/ioc")
        .env("RUNTIME_DIR", "/epics/runtime")
        .env("IOC_NAME", "bl99p-ea-demo-01")
        .arg("generate")
        .arg(util::repo_root().join("examples/demo/config"))
        .arg("-o")
        .arg(env.runtime_dir())
        .arg("--opi")
        .arg(env.root().join("opi"))
        .output()
        .expect("run iocrun");
    util::assert_success(&out);
    for file in ["st.cmd", "ioc.subst"] {
        let actual = std::fs::read_to_string(env.runtime_dir().join(file)).expect(file);
        assert_text_eq(file, &fx.expected(file).expect("golden"), &actual);
    }
}

/// Every conformance case that uses ibek-support's `epics` module renders the same st.cmd and
/// ioc.subst when that file is left out and iocrun's embedded definitions stand in for it.
#[test]
fn embedded_epics_matches_ibek_support_on_real_instances() {
    let Some(shared) = util::shared_dir() else {
        return;
    };
    let cases = shared.join("conformance/ibek/cases");
    let mut checked = 0;
    let mut failed = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&cases)
        .expect("cases")
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    for case in names {
        let defs = lines(&case.join("defs.txt"));
        let uses_epics = defs.iter().any(|d| d.ends_with("/epics.ibek.support.yaml"));
        if !uses_epics || case.join("expected/error.txt").exists() {
            continue;
        }
        let fx = Fixture {
            name: case
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
            dir: case.join("input"),
            defs: defs
                .iter()
                .filter(|d| !d.ends_with("/epics.ibek.support.yaml"))
                .map(|d| case.join("input").join(d))
                .collect(),
            pvi: vec![case.join("input/pvi-defs")]
                .into_iter()
                .filter(|p| p.is_dir())
                .collect(),
            env: lines(&case.join("env.txt"))
                .iter()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        let tmp = tempfile::tempdir().expect("temp dir");
        let out = fx.generate(tmp.path());
        checked += 1;
        if !out.status.success() {
            failed.push(format!(
                "{}: {}",
                fx.name,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        for file in ["st.cmd", "ioc.subst"] {
            let expected = std::fs::read_to_string(case.join("expected").join(file)).expect(file);
            let actual =
                std::fs::read_to_string(tmp.path().join("runtime").join(file)).unwrap_or_default();
            if expected != actual {
                failed.push(format!("{}: {file} differs", fx.name));
            }
        }
    }
    eprintln!(
        "embedded epics: {} of {checked} cases identical",
        checked - failed.len()
    );
    assert!(
        checked >= 10,
        "expected the conformance cases that use epics.*"
    );
    assert!(failed.is_empty(), "{failed:#?}");
}

/// The demo is what the README promises: rendered by iocrun with its built-in definitions and
/// expanded by `iocrun expand`, its database loads into a plain EPICS base `softIoc` and holds
/// the records the liveness probe and the demo show; with an IOC name as long as real ones
/// (beamline, component, device, number), every DESC still fits its 40 characters.
#[test]
fn demo_database_loads_into_a_plain_soft_ioc() {
    let Some(bin) = util::epics_bin() else { return };
    let env = util::TestEnv::new();
    let config = util::repo_root().join("examples/demo/config");
    let rendered = env
        .iocrun()
        .env("IOC_NAME", "bl45p-ea-detector-ioc-01")
        .arg("generate")
        .arg(&config)
        .arg("-o")
        .arg(env.runtime_dir())
        .output()
        .expect("run iocrun generate");
    util::assert_success(&rendered);
    let db = env.runtime_dir().join("ioc.db");
    let expanded = env
        .iocrun()
        .arg("expand")
        .arg(format!("-I{}", config.display()))
        .arg(format!("-o{}", db.display()))
        .arg(format!(
            "-S{}",
            env.runtime_dir().join("ioc.subst").display()
        ))
        .output()
        .expect("run iocrun expand");
    util::assert_success(&expanded);
    let text = std::fs::read_to_string(&db).expect("ioc.db");
    for desc in text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("field(DESC, \""))
    {
        let value = desc.trim_end_matches("\")");
        assert!(value.len() <= 40, "DESC longer than 40: {value:?}");
    }

    // iocsh reads these after iocInit; `exit` ends the IOC
    let p = "BL45P-EA-DETECTOR-IOC-01";
    let commands = format!(
        "dbgf {p}:UPTIME\ndbgf {p}:TICK:LIMIT\ndbgf {p}:TOCK:LIMIT\ndbgf {p}:SUM.INPA\n\
         dbgf {p}:SUM.DESC\nexit\n"
    );
    let mut ioc = std::process::Command::new(bin.join("softIoc"))
        .arg("-d")
        .arg(&db)
        .env("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
        .env("EPICS_CA_AUTO_ADDR_LIST", "NO")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start softIoc");
    use std::io::Write;
    ioc.stdin
        .take()
        .expect("stdin")
        .write_all(commands.as_bytes())
        .expect("write commands");
    let out = ioc.wait_with_output().expect("softIoc exits");
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    for error in ["Error", "ERROR", "Can't set"] {
        assert!(!text.contains(error), "softIoc reported errors:\n{text}");
    }
    let values: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("DBF_").map(|(_, v)| v.trim()))
        .collect();
    assert_eq!(values.len(), 5, "every record answers dbgf:\n{text}");
    assert!(
        values[0].starts_with("DOUBLE:"),
        "UPTIME is numeric: {}",
        values[0]
    );
    assert_eq!(values[1], "DOUBLE:         100");
    assert_eq!(values[2], "DOUBLE:         10");
    assert!(
        values[3].contains(&format!("{p}:TICK CP")),
        "SUM reads TICK: {}",
        values[3]
    );
    assert_eq!(
        values[4],
        "STRING:         \"Sum of the counters in INPA and INPB\""
    );
}
