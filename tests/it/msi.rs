//! `iocrun expand` against EPICS base 7.0.8.1 msi: the recorded conformance vectors, and a
//! seeded property test that runs the real msi on generated inputs (see `msi_gen.rs`).

use std::process::Command;

use crate::util;

/// Vectors iocrun is expected to fail, each with the reason (spec §2.13, docs/compat.md).
const KNOWN_FAILURES: &[(&str, &str)] = &[(
    "56-long-lines",
    "msi cuts template lines at 4094 bytes; iocrun keeps them (documented deviation)",
)];

#[test]
fn conformance_vectors() {
    let Some(shared) = util::shared_dir() else {
        return;
    };
    let runner = shared.join("conformance/msi/run_vectors.sh");
    let cmd = format!("{} expand", util::iocrun_bin().display());
    let out = Command::new("sh")
        .arg(&runner)
        .arg(&cmd)
        .output()
        .expect("run run_vectors.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    let failed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    let summary = stdout.lines().last().unwrap_or("");
    assert!(
        summary.ends_with("failed"),
        "runner did not finish: {stdout}"
    );
    let unexpected: Vec<&&str> = failed
        .iter()
        .filter(|f| !KNOWN_FAILURES.iter().any(|(k, _)| k == *f))
        .collect();
    assert!(unexpected.is_empty(), "unexpected failures: {unexpected:?}");
    for (known, why) in KNOWN_FAILURES {
        assert!(
            failed.contains(known),
            "{known} now passes; remove it from KNOWN_FAILURES ({why})"
        );
    }
    eprintln!("msi vectors: {summary} (known: {})", KNOWN_FAILURES.len());
}

#[test]
fn deviation_include_depth_is_capped() {
    let env = util::TestEnv::new();
    let t = env.write("self.template", "x\ninclude \"self.template\"\n");
    let out = util::iocrun()
        .arg("expand")
        .arg("-I")
        .arg(t.parent().expect("folder"))
        .arg("self.template")
        .output()
        .expect("run iocrun expand");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nested deeper than 64"), "{stderr}");
    // msi's partial output stays on stdout: one `x` per level before the cap
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n".repeat(64));
}
