//! `iocrun check DIR...` as a services repository's CI runs it: many instance folders in one
//! process with the definitions found beside each instance, a verdict line per folder, GitHub
//! annotations, and warnings/suggestions for what ibek would do silently or reject tersely.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::util;

/// A services-repo-like folder for one conformance case: its config files, its support YAML
/// and its pvi device files side by side (the default definitions are found there).
fn services_folder(case: &Path, into: &Path) {
    std::fs::create_dir_all(into).expect("mkdir");
    let link_all = |from: &Path| {
        if let Ok(entries) = std::fs::read_dir(from) {
            for e in entries.flatten() {
                let target = into.join(e.file_name());
                if !target.exists() {
                    std::os::unix::fs::symlink(e.path(), target).expect("link");
                }
            }
        }
    };
    link_all(&case.join("input/config"));
    link_all(&case.join("input/pvi-defs"));
    let defs = std::fs::read_to_string(case.join("defs.txt")).expect("defs.txt");
    for line in defs.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let src = case.join("input").join(line);
        let name = src.file_name().expect("file name");
        std::os::unix::fs::symlink(&src, into.join(name)).expect("link support yaml");
    }
}

#[test]
fn check_gives_every_conformance_instance_its_verdict_in_one_run() {
    let Some(shared) = util::shared_dir() else {
        return;
    };
    let cases = shared.join("conformance/ibek/cases");
    let env = util::TestEnv::new();
    let mut names: Vec<String> = std::fs::read_dir(&cases)
        .expect("cases")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut expected = Vec::new();
    for name in &names {
        let dir = env.root().join("services").join(name);
        services_folder(&cases.join(name), &dir);
        let meta = std::fs::read_to_string(cases.join(name).join("meta.json")).expect("meta");
        let meta: serde_json::Value = serde_json::from_str(&meta).expect("meta json");
        let verdict = if meta["error_expected"] == serde_json::Value::Bool(true) {
            "FAIL"
        } else {
            "ok"
        };
        expected.push(format!("{verdict} {}", dir.display()));
        dirs.push(dir);
    }
    let start = Instant::now();
    let out = env
        .iocrun()
        .arg("check")
        .args(&dirs)
        .env("IOC_NAME", "svc-ioc")
        .output()
        .expect("run check");
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdicts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL "))
        .collect();
    util::assert_text_eq("verdicts", &expected.join("\n"), &verdicts.join("\n"));
    let failures = expected.iter().filter(|v| v.starts_with("FAIL")).count();
    assert_eq!(out.status.code(), Some(1), "some instances fail");
    assert!(
        stdout.ends_with(&format!(
            "{} of {} instances ok, {failures} failed\n",
            names.len() - failures,
            names.len()
        )),
        "{stdout}"
    );
    // every failure names a file, line and column (or a file for whole-file problems)
    for block in stdout.split("\nFAIL ").skip(1) {
        let first_error = block.lines().nth(1).unwrap_or("");
        assert!(
            first_error.starts_with("  error: /"),
            "a failure without a located error: {block}"
        );
    }
    eprintln!(
        "iocrun check: {} instances in one process, {:.0} ms",
        names.len(),
        took.as_secs_f64() * 1000.0
    );
}

const SUPPORT: &str = "module: t\nentity_models:\n  - name: Dev\n    description: d\n    parameters:\n      name: {type: id, description: n}\n      baud: {type: int, description: v, default: 9600}\n";

#[test]
fn check_warns_and_suggests_and_annotates_for_github() {
    let env = util::TestEnv::new();
    let good = env.root().join("svc/good");
    let bad = env.root().join("svc/bad");
    env.write("svc/good/t.ibek.support.yaml", SUPPORT);
    env.write(
        "svc/good/ioc.yaml",
        "ioc_name: \"{{ _global.get_env('IOC_NAME') }}\"\ndescription: d\nentities:\n  - {type: t.Dev, name: a}\n",
    );
    env.write("svc/bad/t.ibek.support.yaml", SUPPORT);
    env.write(
        "svc/bad/ioc.yaml",
        "ioc_name: bad\ndescription: d\nentities:\n  - type: t.Dve\n    name: a\n  - type: t.Dev\n    name: b\n    buad: 19200\n",
    );
    let run = |format: &str| {
        let mut cmd = env.iocrun();
        cmd.arg("check")
            .arg(&good)
            .arg(&bad)
            .args(["--no-pvi", "--format", format])
            .env_remove("IOC_NAME");
        cmd.output().expect("run check")
    };
    let out = run("text");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let good_yaml = good.join("ioc.yaml");
    let bad_yaml = bad.join("ioc.yaml");
    // the good instance passes, with the IOC_NAME warning at its ioc_name line
    assert!(
        text.contains(&format!(
            "ok {}\n  warning: {}:1:32: IOC_NAME is not set",
            good.display(),
            good_yaml.display()
        )),
        "{text}"
    );
    // the bad one fails with both errors, located, each with a suggestion
    assert!(
        text.contains(&format!("FAIL {}\n", bad.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("  error: {}:4:5: ", bad_yaml.display()))
            && text.contains("(did you mean 't.Dev'?)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("  error: {}:8:5: ", bad_yaml.display()))
            && text.contains("(did you mean 'baud'?)"),
        "{text}"
    );
    assert!(text.ends_with("1 of 2 instances ok, 1 failed\n"), "{text}");

    let out = run("github");
    let gh = String::from_utf8_lossy(&out.stdout);
    assert!(
        gh.contains(&format!(
            "::warning file={},line=1,col=32,title=iocrun check::IOC_NAME is not set",
            good_yaml.display()
        )),
        "{gh}"
    );
    assert!(
        gh.contains(&format!(
            "::error file={},line=8,col=5,title=iocrun check::entities.1.`t.Dev`.buad: Extra inputs are not permitted",
            bad_yaml.display()
        )),
        "{gh}"
    );

    // IOC_NAME set: no warning, and the good folder alone passes
    let out = env
        .iocrun()
        .arg("check")
        .arg(&good)
        .arg("--no-pvi")
        .env("IOC_NAME", "good")
        .output()
        .expect("run check");
    util::assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("ok {}\n", good.display())
    );
}
