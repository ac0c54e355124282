//! `iocrun pvi`: the 53 ibek-support device files render to well-formed Phoebus displays
//! (stage 1), byte-identical to pvi 0.14.4's goldens (stage 2), bad device files give clear
//! errors, the documented deviations (docs/compat.md), and how `iocrun generate` publishes them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, TestEnv};

/// Cases of conformance/pvi that still differ from pvi 0.14.4, each with a reason.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

fn pvi_dir() -> Option<PathBuf> {
    util::shared_dir().map(|d| d.join("conformance").join("pvi"))
}

fn run_pvi(device: &Path, search: &Path, out: &Path) -> std::process::Output {
    util::iocrun()
        .arg("pvi")
        .arg(device)
        .arg("--search")
        .arg(search)
        .arg("-o")
        .arg(out)
        .arg("--pv-prefix")
        .arg("$(P)$(R)")
        .output()
        .expect("run iocrun pvi")
}

/// A `.bob` must parse, be a `<display>` with a size, and every widget must have a type,
/// a version and a position; PV widgets must name their PV.
fn assert_phoebus_display(path: &Path) {
    let text = std::fs::read_to_string(path).expect("read bob");
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "display", "{}", path.display());
    assert_eq!(root.attribute("version"), Some("2.0.0"));
    let child = |n: roxmltree::Node, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(str::to_owned)
    };
    for tag in ["width", "height"] {
        let v: i64 = child(root, tag)
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{}: display has no numeric {tag}", path.display()));
        assert!(v > 0, "{}: display {tag} is {v}", path.display());
    }
    let widgets: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("widget"))
        .collect();
    assert!(!widgets.is_empty(), "{}: no widgets", path.display());
    for w in widgets {
        let ty = w.attribute("type").expect("widget type");
        assert!(w.attribute("version").is_some(), "{ty} without version");
        assert!(
            child(w, "x").is_some() && child(w, "y").is_some(),
            "{ty} without x/y"
        );
        let pv = match ty {
            "textupdate" | "textentry" | "combo" | "led" | "slide_button" | "byte_monitor" => {
                child(w, "pv_name")
            }
            "xyplot" => w
                .descendants()
                .find(|n| n.has_tag_name("y_pv"))
                .and_then(|n| n.text())
                .map(str::to_owned),
            _ => Some(String::from("-")),
        };
        assert!(
            pv.is_some_and(|p| !p.is_empty()),
            "{}: {ty} widget without a PV",
            path.display()
        );
    }
}

#[test]
fn stage1_every_device_renders_a_phoebus_display() {
    let Some(pvi) = pvi_dir() else { return };
    let defs = pvi.join("defs");
    let mut devices: Vec<PathBuf> = std::fs::read_dir(&defs)
        .expect("defs")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".pvi.device.yaml"))
        .collect();
    devices.sort();
    assert!(devices.len() >= 53, "expected the 53 ibek-support devices");
    let (mut ok, mut bobs) = (0, 0);
    for device in &devices {
        let out = tempfile::tempdir().expect("tmp");
        let res = run_pvi(device, &defs, out.path());
        assert!(
            res.status.success(),
            "{} failed: {}",
            device.display(),
            String::from_utf8_lossy(&res.stderr)
        );
        let name = device.file_name().expect("name").to_string_lossy();
        let name = name.split('.').next().expect("stem");
        assert!(out.path().join(format!("{name}.pvi.bob")).is_file());
        assert!(out.path().join(format!("{name}.pvi.template")).is_file());
        for f in std::fs::read_dir(out.path()).expect("out").flatten() {
            if f.path().extension().is_some_and(|e| e == "bob") {
                assert_phoebus_display(&f.path());
                bobs += 1;
            }
        }
        ok += 1;
    }
    eprintln!(
        "pvi stage 1: {ok}/{} devices rendered, {bobs} .bob files",
        devices.len()
    );
}

#[test]
fn stage2_byte_identical_to_pvi_0_14_4() {
    let Some(pvi) = pvi_dir() else { return };
    let template = format!(
        "{} pvi {{device}} --search {{defs_dir}} -o {{out_dir}} --pv-prefix '$(P)$(R)'",
        util::iocrun_bin().display()
    );
    let out = Command::new("bash")
        .arg(pvi.join("compare.sh"))
        .arg(&template)
        .output()
        .expect("run compare.sh");
    let report = String::from_utf8_lossy(&out.stdout);
    let mut failed = Vec::new();
    let (mut pass, mut fail) = (0, 0);
    for line in report.lines() {
        if let Some(case) = line.strip_prefix("PASS  ") {
            pass += 1;
            assert!(
                !KNOWN_FAILURES.iter().any(|(k, _)| case.starts_with(k)),
                "{case} passes now: remove it from KNOWN_FAILURES"
            );
        } else if let Some(rest) = line.strip_prefix("FAIL  ") {
            fail += 1;
            let case = rest.split_whitespace().next().unwrap_or_default();
            if !KNOWN_FAILURES.iter().any(|(k, _)| *k == case) {
                failed.push(case.to_owned());
            }
        }
    }
    eprintln!(
        "pvi stage 2: {pass} passed, {fail} failed ({} known)",
        KNOWN_FAILURES.len()
    );
    assert!(pass > 0, "compare.sh ran no cases:\n{report}");
    assert!(
        failed.is_empty(),
        "unexpected failures {failed:?}:\n{report}"
    );
}

/// docs/compat.md "write-button pv_name": pvi 0.14.4 writes the literal `SignalX` as the
/// WritePV widget's own `<pv_name>`; iocrun writes the PV the button writes. Apart from those
/// lines the screen equals ibek 4.8.2 + pvi 0.14.4's.
#[test]
fn deviation_write_button_pv_name() {
    let Some(shared) = util::shared_dir() else {
        return;
    };
    let case = shared.join("conformance/ibek/cases/es-bl01t-mo-sim-01");
    let defs = case.join("input/pvi-defs");
    let expected_path = case.join("expected/opi/asynMotorAxis.pvi.bob");
    let out = tempfile::tempdir().expect("tmp");
    let res = run_pvi(
        &defs.join("asynMotorAxis.pvi.device.yaml"),
        &defs,
        out.path(),
    );
    util::assert_success(&res);
    let expected = std::fs::read_to_string(expected_path).expect("golden");
    let actual = std::fs::read_to_string(out.path().join("asynMotorAxis.pvi.bob")).expect("bob");
    let (exp, act): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
    assert_eq!(exp.len(), act.len());
    let mut fixed = 0;
    for (i, (e, a)) in exp.iter().zip(&act).enumerate() {
        if e.trim() == "<pv_name>SignalX</pv_name>" {
            // the action's <pv_name> sits 4 lines above the widget's in the template
            let action_pv = act[i - 4].trim();
            assert!(
                action_pv.starts_with("<pv_name>$("),
                "line {}: {action_pv}",
                i - 3
            );
            assert_eq!(a.trim(), action_pv, "line {}", i + 1);
            fixed += 1;
        } else {
            assert_eq!(e, a, "line {}", i + 1);
        }
    }
    assert!(fixed > 0, "the golden has no write buttons any more");
}

fn bad_device(env: &TestEnv, body: &str) -> String {
    let device = env.write("defs/Bad.pvi.device.yaml", body);
    let out = env
        .iocrun()
        .arg("pvi")
        .arg(&device)
        .arg("-o")
        .arg(env.root().join("out"))
        .output()
        .expect("run");
    assert!(!out.status.success(), "bad device accepted");
    assert!(!env.root().join("out").exists(), "nothing may be written");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_device_files_name_file_and_key() {
    let env = TestEnv::new();
    let unknown_widget = "label: B\nchildren:\n  - type: SignalR\n    name: A\n    read_pv: X\n    read_widget:\n      type: Dial\n";
    let err = bad_device(&env, unknown_widget);
    assert!(
        err.contains("Bad.pvi.device.yaml") && err.contains("Dial"),
        "{err}"
    );
    let missing_parent = "label: B\nparent: NoSuchBase\nchildren: []\n";
    let err = bad_device(&env, missing_parent);
    assert!(err.contains("NoSuchBase.pvi.device.yaml"), "{err}");
    let bad_type = "label: B\nchildren:\n  - type: SignalR\n    name: A\n    read_pv: 1\n";
    let err = bad_device(&env, bad_type);
    assert!(
        err.contains("line 3") && err.contains("expected a string"),
        "{err}"
    );
    let unknown_key =
        "label: B\nchildren:\n  - type: SignalW\n    name: A\n    write_pv: X\n    colour: red\n";
    let err = bad_device(&env, unknown_key);
    assert!(err.contains("colour"), "{err}");
    let bad_name = "label: B\nchildren:\n  - type: Group\n    name: G\n    layout: {type: Grid}\n    children:\n      - {type: SignalR, name: lower, read_pv: X}\n";
    let err = bad_device(&env, bad_name);
    assert!(err.contains("children[0].children[0].name"), "{err}");
}

/// An `iocrun generate` command for a shared ibek conformance case, in `env` laid out as the
/// case's compare.sh does (pvi-defs linked in, outputs into `env`'s runtime folder).
fn generate_cmd(env: &TestEnv, name: &str) -> Option<Command> {
    let mut cmd = case_cmd(env, name, "generate")?;
    cmd.arg("-o").arg(env.runtime_dir());
    Some(cmd)
}

/// `iocrun SUBCOMMAND CONFIG_DIR --definitions …` for a shared ibek conformance case.
fn case_cmd(env: &TestEnv, name: &str, subcommand: &str) -> Option<Command> {
    let case = util::shared_dir()?
        .join("conformance/ibek/cases")
        .join(name);
    let link = env.root().join("pvi-defs");
    if !link.exists() {
        std::os::unix::fs::symlink(case.join("input/pvi-defs"), link).expect("link pvi-defs");
    }
    let mut cmd = env.iocrun();
    cmd.arg(subcommand).arg(case.join("input/config"));
    let defs = std::fs::read_to_string(case.join("defs.txt")).expect("defs");
    for line in defs.lines().map(str::trim).filter(|l| !l.is_empty()) {
        cmd.arg("--definitions").arg(case.join("input").join(line));
    }
    Some(cmd)
}

/// docs/compat.md "screens are not worth an outage": ibek stops on a missing device file; for
/// an entity without `pv: true` iocrun warns, writes st.cmd and ioc.subst, and leaves a
/// `pvi_failed` note in the runtime folder.
#[test]
fn deviation_missing_screen_device_warns() {
    let env = TestEnv::new();
    let Some(mut cmd) = generate_cmd(&env, "err-pmac-unknown-builtin-wait_ip") else {
        return;
    };
    let out = cmd.output().expect("run generate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("WARN") && stderr.contains("pmacController.pvi.device.yaml"),
        "{stderr}"
    );
    let rt = env.runtime_dir();
    assert!(rt.join("st.cmd").is_file() && rt.join("ioc.subst").is_file());
    let note = std::fs::read_to_string(rt.join("pvi_failed")).expect("pvi_failed note");
    assert!(note.contains("pmacController.pvi.device.yaml"), "{note}");
    assert!(
        env.root().join("opi/index.bob").is_file(),
        "the other screens are published"
    );
}

/// The OPI folder gets the new screens; screens an earlier generate wrote and this one did not
/// go, a file iocrun did not write stays (docs/compat.md); `--no-pvi` leaves the folder alone.
#[test]
fn generate_refreshes_the_opi_folder_keeps_foreign_files_and_no_pvi_skips_it() {
    let env = TestEnv::new();
    let Some(mut cmd) = generate_cmd(&env, "ibek-motorSim") else {
        return;
    };
    let opi = env.root().join("opi");
    std::fs::create_dir_all(&opi).expect("opi");
    std::fs::write(opi.join("mine.bob"), "user").expect("foreign file");
    // a screen an earlier generate wrote (it carries iocrun's mark), no longer made
    std::fs::write(opi.join("stale.bob"), "old").expect("stale");
    mark_as_written_by_iocrun(&opi.join("stale.bob"));
    let out = cmd.output().expect("run generate");
    util::assert_success(&out);
    assert!(opi.join("index.bob").is_file() && opi.join("simple.pvi.bob").is_file());
    assert!(
        !opi.join("stale.bob").exists(),
        "a screen iocrun wrote before and no longer makes is removed"
    );
    assert_eq!(
        std::fs::read_to_string(opi.join("mine.bob")).expect("foreign file kept"),
        "user"
    );
    assert!(env.runtime_dir().join("simple.pvi.template").is_file());
    assert!(!env.runtime_dir().join("pvi_failed").exists());
    std::fs::write(opi.join("stale.bob"), "old").expect("stale");
    let skipped = cmd.arg("--no-pvi").output().expect("run generate --no-pvi");
    assert!(skipped.status.success());
    assert!(
        opi.join("stale.bob").exists(),
        "--no-pvi leaves the OPI folder alone"
    );
    assert!(
        !env.runtime_dir().join("simple.pvi.template").exists(),
        "the template the previous generate wrote is removed"
    );
}

/// Give `path` the extended attribute iocrun puts on the files it publishes.
fn mark_as_written_by_iocrun(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: NUL-terminated strings and a 1-byte value
    let rc = unsafe {
        libc::setxattr(
            c_path.as_ptr(),
            c"user.iocrun".as_ptr(),
            c"1".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
}

/// `iocrun check` makes the screens in memory and fails on a device file `generate` would only
/// warn about, so services-repository CI catches it.
#[test]
fn check_fails_on_a_missing_screen_device() {
    let env = TestEnv::new();
    let Some(mut cmd) = case_cmd(&env, "err-pmac-unknown-builtin-wait_ip", "check") else {
        return;
    };
    let out = cmd.output().expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("pmacController.pvi.device.yaml"),
        "{stdout}"
    );
}

/// pvi 0.14.4 itself, run on a device the way ibek formats it (for devices that are not in the
/// shared goldens). `None` when the reference tool is not installed (outside CI).
fn reference_pvi(device: &Path, search: &Path, out: &Path) -> Option<()> {
    let ibek = util::tool_var("IOCRUN_IBEK")?;
    let python = ibek.parent().expect("venv bin").join("python");
    let script = "import sys\nfrom pathlib import Path\n\
        from pvi._format.dls import DLSFormatter\n\
        from pvi._format.template import format_template\n\
        from pvi.device import Device\n\
        device, defs, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])\n\
        name = device.name.split('.')[0]\n\
        d = Device.deserialize(device)\n\
        d.deserialize_parents([defs])\n\
        format_template(d, '$(P)$(R)', out / f'{name}.pvi.template')\n\
        DLSFormatter().format(d, out / f'{name}.pvi.bob')\n";
    let res = Command::new(python)
        .arg("-c")
        .arg(script)
        .args([device, search, out])
        .output()
        .expect("run pvi 0.14.4");
    util::assert_success(&res);
    Some(())
}

/// Every file of `expected` equals `actual`'s, except the write-button `<pv_name>` fix.
fn assert_same_files(expected: &Path, actual: &Path) -> usize {
    let mut names: Vec<_> = std::fs::read_dir(expected)
        .expect("dir")
        .flatten()
        .collect();
    names.sort_by_key(|e| e.file_name());
    let got = std::fs::read_dir(actual).expect("dir").count();
    assert_eq!(names.len(), got, "file count in {}", actual.display());
    for entry in &names {
        let exp = std::fs::read_to_string(entry.path()).expect("expected");
        let act = std::fs::read_to_string(actual.join(entry.file_name())).expect("actual file");
        let act_lines: Vec<&str> = act.lines().collect();
        let exp: String = exp
            .lines()
            .enumerate()
            .map(|(i, e)| match act_lines.get(i) {
                Some(a) if e.trim() == "<pv_name>SignalX</pv_name>" => a,
                _ => e,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let act: String = act_lines.iter().map(|l| format!("{l}\n")).collect();
        util::assert_text_eq(&entry.file_name().to_string_lossy(), &exp, &act);
    }
    names.len()
}

/// Devices written for iocrun's tests (tests/fixtures/pvi) that use everything the real files
/// do not: every widget, tables, images, stacked grids, headers, escaping, macro includes,
/// an empty label. The goldens are made by running pvi 0.14.4 itself.
#[test]
fn synthetic_devices_match_pvi_0_14_4() {
    let fixtures = util::repo_root().join("tests/fixtures/pvi");
    for name in ["Edge", "Untitled"] {
        let device = fixtures.join(format!("{name}.pvi.device.yaml"));
        let (exp, act) = (
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        );
        if reference_pvi(&device, &fixtures, exp.path()).is_none() {
            return;
        }
        let res = run_pvi(&device, &fixtures, act.path());
        util::assert_success(&res);
        let n = assert_same_files(exp.path(), act.path());
        assert!(n >= 3, "{name}: only {n} files");
    }
}

/// A whole IOC with 40 pvi entities of two devices (tests/fixtures/pvi/many): index.bob wraps
/// into a second column, same-labelled devices each get a button, templates and ioc.subst
/// rows appear once per `pv: true` entity. The golden is made by running ibek 4.8.2 itself.
#[test]
fn generate_matches_ibek_for_many_pvi_entities() {
    let Some(ibek) = util::tool_var("IOCRUN_IBEK") else {
        return;
    };
    let fixtures = util::repo_root().join("tests/fixtures/pvi");
    let config = fixtures.join("many/config");
    let support = fixtures.join("many/many.ibek.support.yaml");
    let tree = |root: &Path| {
        std::fs::create_dir_all(root.join("opi")).expect("opi");
        std::fs::create_dir_all(root.join("runtime")).expect("runtime");
        std::os::unix::fs::symlink(&fixtures, root.join("pvi-defs")).expect("link");
    };
    let (reference, ours) = (TestEnv::new(), TestEnv::new());
    tree(reference.root());
    tree(ours.root());
    let res = Command::new(ibek)
        .args(["runtime", "generate2"])
        .arg(&config)
        .arg("--definitions")
        .arg(&support)
        .arg("-o")
        .arg(reference.runtime_dir())
        .env("EPICS_ROOT", reference.root())
        .current_dir(reference.root())
        .output()
        .expect("run ibek");
    util::assert_success(&res);
    let res = ours
        .iocrun()
        .arg("generate")
        .arg(&config)
        .arg("--definitions")
        .arg(&support)
        .output()
        .expect("run iocrun");
    util::assert_success(&res);
    assert_same_files(&reference.root().join("opi"), &ours.root().join("opi"));
    // st.cmd names each tree's own $IOC; it is render's business and tested there
    for env in [&reference, &ours] {
        std::fs::remove_file(env.runtime_dir().join("st.cmd")).expect("st.cmd");
    }
    assert_same_files(&reference.runtime_dir(), &ours.runtime_dir());
    let index = std::fs::read_to_string(ours.root().join("opi/index.bob")).expect("index");
    assert_eq!(index.matches("<widget type=\"action_button\"").count(), 40);
}

/// A generate opens one file at a time: the 60 screens of an areaDetector IOC are published
/// under a descriptor limit of 32 (each screen's temporary file is closed once written; they
/// used to stay open until the renames, and the screens failed with "Too many open files").
/// A failure half-way through leaves the OPI folder as it was (tested by the full-disk cases).
#[test]
fn generate_publishes_many_screens_under_a_low_descriptor_limit() {
    use std::os::unix::process::CommandExt;
    let env = TestEnv::new();
    let Some(mut cmd) = generate_cmd(&env, "adsim-bl01t-ea-ioc-02") else {
        return;
    };
    // SAFETY: only async-signal-safe calls between fork and exec
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 32,
                rlim_max: 32,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run generate");
    util::assert_success(&out);
    let opi = env.root().join("opi");
    let screens = std::fs::read_dir(&opi).expect("opi").count();
    assert!(screens > 32, "only {screens} screens in {}", opi.display());
    assert!(
        !env.runtime_dir().join("pvi_failed").exists(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let leftovers: Vec<_> = std::fs::read_dir(&opi)
        .expect("opi")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".iocrun-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Screens are written one by one as they are made, but published all or nothing: when the
/// last one (`index.bob`) cannot be written, the screens already written are thrown away and
/// the OPI folder keeps the previous generate's files, untouched (same inodes), with no
/// temporary file left; st.cmd and ioc.subst are still written and `pvi_failed` says why.
#[test]
fn a_screen_that_cannot_be_written_leaves_the_previous_screens_untouched() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new();
    let Some(mut cmd) = generate_cmd(&env, "adsim-bl01t-ea-ioc-02") else {
        return;
    };
    util::assert_success(&cmd.output().expect("first generate"));
    let opi = env.root().join("opi");
    std::fs::remove_file(opi.join("index.bob")).expect("index.bob written");
    std::fs::create_dir(opi.join("index.bob")).expect("a folder in its way");
    let inodes = || -> Vec<(String, u64)> {
        let mut v: Vec<_> = std::fs::read_dir(&opi)
            .expect("opi")
            .flatten()
            .map(|e| {
                let ino = e.metadata().expect("meta").ino();
                (e.file_name().to_string_lossy().into_owned(), ino)
            })
            .collect();
        v.sort();
        v
    };
    let before = inodes();
    assert!(
        before.len() > 2,
        "the case makes several screens: {before:?}"
    );
    std::fs::remove_file(env.runtime_dir().join("st.cmd")).expect("st.cmd written");
    let out = cmd.output().expect("second generate");
    util::assert_success(&out);
    assert_eq!(inodes(), before, "the OPI folder is as it was");
    let note = std::fs::read_to_string(env.runtime_dir().join("pvi_failed")).expect("pvi_failed");
    assert!(note.contains("index.bob"), "{note}");
    assert!(
        env.runtime_dir().join("st.cmd").is_file(),
        "the IOC outputs are written"
    );
}
