//! `iocrun expand` against EPICS base 7.0.8.1 msi: the recorded conformance vectors, and a
//! seeded property test that runs the real msi on generated inputs (see `msi_gen.rs`).

use std::process::Command;

use crate::{msi_gen, util};

/// Vectors iocrun is expected to fail, each with the reason (docs/compat.md).
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

/// Generated cases per run; `IOCRUN_MSI_CASES` and `IOCRUN_MSI_SEED` change them.
const PROPERTY_CASES: u64 = 2000;

#[test]
fn property_matches_real_msi() {
    let Some(bin) = util::epics_bin() else {
        return;
    };
    let msi = bin.join("msi");
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let cases = var("IOCRUN_MSI_CASES", PROPERTY_CASES);
    let seed = var("IOCRUN_MSI_SEED", 0x5eed_0001);
    let threads = 2;
    let results: Vec<Result<[u64; 3], String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let msi = &msi;
                s.spawn(move || {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let mut rcs = [0u64; 3];
                    for k in (t..cases).step_by(threads as usize) {
                        match compare_case(msi, dir.path(), seed.wrapping_add(k), k) {
                            Ok(rc) => rcs[rc.clamp(0, 2) as usize] += 1,
                            Err(report) => return Err(report),
                        }
                    }
                    Ok(rcs)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("property thread"))
            .collect()
    });
    let mut rcs = [0u64; 3];
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(counts) => (0..3).for_each(|i| rcs[i] += counts[i]),
            Err(report) => failures.push(report),
        }
    }
    eprintln!(
        "msi property test: {cases} cases, seed {seed:#x}; agreed exit 0: {}, 1: {}, 2: {}",
        rcs[0], rcs[1], rcs[2]
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Run one generated case through the real msi and the library: the agreed exit status, or
/// a report of the difference.
fn compare_case(
    msi: &std::path::Path,
    dir: &std::path::Path,
    seed: u64,
    k: u64,
) -> Result<i32, String> {
    let case = msi_gen::case(&mut msi_gen::Rng::new(seed));
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        std::fs::remove_file(entry.path()).expect("clean case dir");
    }
    for (name, text) in &case.files {
        std::fs::write(dir.join(name), text).expect("write case file");
    }
    let mut args: Vec<String> = case.macros.iter().map(|m| format!("-M{m}")).collect();
    if case.verbose {
        args.push("-V".into());
    }
    if case.global_scope {
        args.push("-g".into());
    }
    let deps_target = dir.join("out.d");
    if case.deps {
        args.push("-D".into());
        args.push(format!("-o{}", deps_target.display()));
    }
    args.push(format!("-I{}", dir.display()));
    if let Some(s) = &case.subst {
        args.push(format!("-S{}", dir.join(s).display()));
    }
    args.extend(case.template.clone());
    let (want_rc, want) = run_with_timeout(Command::new(msi).args(&args).current_dir(dir))?;

    let opts = iocrun::expand::Options {
        include_path: vec![dir.to_owned()],
        macros: case.macros.iter().map(|m| m.as_bytes().to_vec()).collect(),
        undefined_is_error: case.verbose,
        global_scope: case.global_scope,
        deps_target: case
            .deps
            .then(|| deps_target.as_os_str().as_encoded_bytes().to_vec()),
        subst: case.subst.as_ref().map(|s| dir.join(s)),
        template: case.template.as_ref().map(|t| t.as_bytes().to_vec()),
    };
    let (got_rc, got) = match iocrun::expand::run(&opts, Vec::new(), &mut |_| {}) {
        Ok((outcome, out)) => (if outcome.undefined_error { 2 } else { 0 }, out),
        Err((_, out)) => (1, out),
    };
    if (want_rc, &want) == (got_rc, &got) {
        return Ok(got_rc);
    }
    if let Some(keep) = std::env::var_os("IOCRUN_MSI_KEEP") {
        // a copy of the failing case to rerun by hand
        let keep = std::path::Path::new(&keep).join(format!("case{k}"));
        std::fs::create_dir_all(&keep).expect("keep dir");
        for (name, text) in &case.files {
            std::fs::write(keep.join(name), text).expect("keep case file");
        }
    }
    let mut report = format!(
        "case {k} (seed {seed:#x}) differs: msi {}\n",
        args.join(" ")
    );
    for (name, text) in &case.files {
        report.push_str(&format!("--- {name} ---\n{text}\n"));
    }
    report.push_str(&format!(
        "--- msi (rc {want_rc}) ---\n{}\n--- iocrun (rc {got_rc}) ---\n{}\n",
        String::from_utf8_lossy(&want),
        String::from_utf8_lossy(&got)
    ));
    Err(report)
}

/// Exit code and stdout of a command, or a report if it hangs (msi can loop for ever).
fn run_with_timeout(cmd: &mut Command) -> Result<(i32, Vec<u8>), String> {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn msi");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait msi") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("msi hung: {cmd:?}"));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    };
    let out = reader.join().expect("stdout reader");
    Ok((status.code().unwrap_or(-1), out))
}

/// Start step 6 expands ioc.subst with config, `$SUPPORT/*/db` (sorted), runtime as the
/// search path: the same bytes as msi run with those `-I` folders, as start.sh does.
#[test]
fn start_step_expands_like_msi_with_the_start_search_path() {
    let Some(bin) = util::epics_bin() else {
        return;
    };
    let env = util::TestEnv::new();
    env.write("support/b/db/x.template", "record(ai, \"$(P)x_from_b\")\n");
    env.write("support/a/db/x.template", "record(ai, \"$(P)x_from_a\")\n");
    env.write("support/a/db/y.template", "include \"y.inc\"\n$(Q=dflt)\n");
    env.write("ioc/config/y.inc", "# from config $(P)\n");
    env.write("runtime/z.template", "$(P)z\n");
    let subst = "file \"x.template\" {\npattern\n\t{ \"P\" }\n\t{ \"A:\" }\n}\n\
                 file y.template { { P=B: } }\nfile z.template { { P=C: } }\n";
    env.write("runtime/ioc.subst", subst);
    let paths = iocrun::paths::Paths::from_lookup(|name| match name {
        "EPICS_ROOT" => Some(env.root().to_owned()),
        "RUNTIME_DIR" => Some(env.runtime_dir()),
        _ => None,
    });
    iocrun::cmd::expand::ioc_db_step(&paths, &[]).expect("expand step");
    let got = std::fs::read_to_string(env.runtime_dir().join("ioc.db")).expect("ioc.db");
    let root = env.root();
    let msi = Command::new(bin.join("msi"))
        .arg(format!("-I{}", root.join("ioc/config").display()))
        .arg(format!("-I{}", root.join("support/a/db").display()))
        .arg(format!("-I{}", root.join("support/b/db").display()))
        .arg(format!("-I{}", env.runtime_dir().display()))
        .arg(format!(
            "-S{}",
            env.runtime_dir().join("ioc.subst").display()
        ))
        .output()
        .expect("run msi");
    assert_eq!(msi.status.code(), Some(0));
    util::assert_text_eq("ioc.db", &String::from_utf8_lossy(&msi.stdout), &got);
    assert!(got.contains("x_from_a"), "{got}");
}

/// Parse errors name the file, the real line and the column (msi prints line + 1, no column).
#[test]
fn parse_errors_name_file_line_and_column() {
    let env = util::TestEnv::new();
    env.write("t.template", "$(A)\n");
    let subst = env.write("bad.subst", "file t.template {\n  { A={x} }\n}\n");
    let out = util::iocrun()
        .current_dir(env.root())
        .args(["expand", "-I.", "-Sbad.subst"])
        .output()
        .expect("run iocrun expand");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = "msi: Parse error, unexpected '{'\n  \
                in substitution file 'bad.subst' at line 2, column 7:\n    { A={x} }\n";
    assert!(stderr.contains(want), "{stderr}");
    assert!(subst.exists());
}

/// The start sequence expands a hand-written ioc.subst (step 6) before the IOC loads ioc.db.
#[test]
fn start_expands_ioc_subst_before_the_ioc_starts() {
    let Some(bin) = util::epics_bin() else {
        return;
    };
    let env = util::TestEnv::new();
    let ioc_bin = env.root().join("ioc/bin/linux-x86_64");
    std::fs::create_dir_all(&ioc_bin).expect("ioc bin dir");
    std::os::unix::fs::symlink(bin.join("softIoc"), ioc_bin.join("ioc")).expect("symlink ioc");
    env.write(
        "ioc/config/st.cmd",
        "dbLoadRecords(\"$(RUNTIME_DIR)/ioc.db\")\niocInit\ndbl\n",
    );
    env.write(
        "ioc/config/ioc.subst",
        "file demo.template {\npattern\n\t{ \"P\", \"N\" }\n\t{ \"EXP:\", \"1\" }\n\t{ \"EXP:\", \"2\" }\n}\n",
    );
    env.write(
        "support/mod/db/demo.template",
        "record(ai, \"$(P)T$(N)\") {\n    field(EGU, \"$(EGU=mm)\")\n}\n",
    );
    let cmd = env.iocrun_ioc();
    let r = crate::pid1::start(crate::pid1::Mode::Subreaper, cmd);
    r.wait_for("EXP:T2");
    r.signal(nix::sys::signal::Signal::SIGTERM);
    let (_, out) = r.wait();
    assert!(out.contains("EXP:T1"), "{out}");
    let db = std::fs::read_to_string(env.runtime_dir().join("ioc.db")).expect("ioc.db");
    assert_eq!(db, "record(ai, \"EXP:T1\") {\n    field(EGU, \"mm\")\n}\nrecord(ai, \"EXP:T2\") {\n    field(EGU, \"mm\")\n}\n");
}

/// A template missing from the search path stops start-up (msi's exit 1 stops start.sh too).
#[test]
fn start_fails_when_a_template_is_missing() {
    let env = util::TestEnv::new();
    std::fs::create_dir_all(env.root().join("ioc")).expect("ioc dir");
    env.write(
        "ioc/config/ioc.subst",
        "file nowhere.template {\n{ P=X }\n}\n",
    );
    env.write("ioc/config/st.cmd", "iocInit\n");
    let mut cmd = env.iocrun();
    cmd.args(["--fail-pause", "10ms"])
        .env("IOCRUN_CONSOLE_SOCKET", "none")
        .env("IOCRUN_CONTROL_SOCKET", "none");
    let (code, out) = crate::pid1::start(crate::pid1::Mode::Subreaper, cmd).wait();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("cannot open template file 'nowhere.template'"),
        "{out}"
    );
    assert!(!env.runtime_dir().join("ioc.db").exists());
}

/// `-h` is msi's own (usage on stderr, exit 0), byte for byte; `--help`, which msi rejects as
/// a bad argument, prints the usage under iocrun's name on stdout and exits 0.
#[test]
fn help_flags() {
    let Some(bin) = util::epics_bin() else {
        return;
    };
    let msi = Command::new(bin.join("msi"))
        .arg("-h")
        .output()
        .expect("msi -h");
    let ours = util::iocrun()
        .args(["expand", "-h"])
        .output()
        .expect("iocrun expand -h");
    assert_eq!(ours.status.code(), msi.status.code());
    assert_eq!(ours.stdout, msi.stdout);
    util::assert_text_eq(
        "expand -h",
        &String::from_utf8_lossy(&msi.stderr),
        &String::from_utf8_lossy(&ours.stderr),
    );
    let help = util::iocrun()
        .args(["expand", "--help"])
        .output()
        .expect("iocrun expand --help");
    util::assert_success(&help);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Usage: iocrun expand [options] [template]"),
        "{text}"
    );
    assert!(
        text.contains("-S<FILE>  Expand the substitutions in FILE"),
        "{text}"
    );
    assert!(
        help.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
}
