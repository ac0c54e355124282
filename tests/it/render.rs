//! `iocrun generate` against ibek 4.8.2: the shared conformance cases and probes (through
//! their own `compare.sh`), the upstream sdist samples byte for byte, the sample error cases
//! with the message substrings ibek's tests check, and atomic output on failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util;

/// Probes/cases that still fail, each with the reason. Any other failure fails the test.
/// (none at the moment)
const KNOWN_FAILURES: &[(&str, &str)] = &[];

/// Probes where iocrun deliberately differs from ibek (docs/compat.md); each has its own
/// `deviation_*` test below that checks what iocrun writes instead.
const DEVIATIONS: &[(&str, &str)] = &[
    (
        "st-env-vars",
        "two env_vars of one entity on separate lines (deviation_env_vars_one_per_line)",
    ),
    (
        "err-when-last",
        "when: last renders for the last instance (deviation_when_last)",
    ),
    (
        "err-env-int-coerce",
        "| int inside longer text is not coerced (deviation_int_filter_in_longer_text)",
    ),
    (
        "err-db-mixed-int",
        "| int inside longer text is not coerced (deviation_int_filter_in_longer_text)",
    ),
    (
        "err-pmac-unknown-builtin-wait_ip",
        "a missing screen-only pvi device warns (pvi::deviation_missing_screen_device_warns)",
    ),
];

fn allowed(name: &str) -> bool {
    KNOWN_FAILURES
        .iter()
        .chain(DEVIATIONS)
        .any(|(k, _)| *k == name)
}

/// Run one conformance set's compare.sh with iocrun (PVI screens and templates included) and
/// check the result.
fn run_compare(set: &str) {
    let Some(shared) = util::shared_dir() else {
        return;
    };
    let script = shared.join("conformance").join(set).join("compare.sh");
    let template = format!(
        "{} generate {{config_dir}} {{definitions}} -o {{out_dir}} --opi {{opi_dir}}",
        util::iocrun_bin().display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .arg(&template)
        .output()
        .expect("run compare.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut passed = 0;
    let mut unexpected = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("PASS") {
            passed += 1;
            if let Some(name) = line.split_whitespace().nth(1) {
                if allowed(name) {
                    eprintln!(
                        "note: known failure {name} now passes; remove it from KNOWN_FAILURES"
                    );
                }
            }
        } else if let Some(rest) = line.strip_prefix("FAIL") {
            let name = rest.split_whitespace().next().unwrap_or("?");
            if !allowed(name) {
                unexpected.push(name.to_owned());
            }
        }
    }
    let summary = stdout.lines().last().unwrap_or("");
    eprintln!(
        "{set}: {summary} (allowed: {} known failures, {} deviations)",
        KNOWN_FAILURES.len(),
        DEVIATIONS.len()
    );
    assert!(passed > 0, "no case passed:\n{stdout}");
    assert!(
        unexpected.is_empty(),
        "unexpected failures {unexpected:?}:\n{stdout}"
    );
}

#[test]
fn conformance_ibek_cases() {
    run_compare("ibek");
}

#[test]
fn conformance_ibek_probes() {
    run_compare("ibek-probes");
}

/// The runnable upstream samples: (ioc, support files, outputs folder), as
/// tests/generate_samples.sh in the ibek sdist makes them.
const SAMPLES: &[(&str, &[&str], &str)] = &[
    ("repeat", &["asyn", "epics", "motorSim"], "repeat"),
    (
        "subentity_test",
        &["subentity_test", "epics"],
        "subentity_test",
    ),
    ("quadem", &["ADCore", "quadem"], "quadem"),
    ("quadem", &["ADCore", "quadem_repeat"], "quadem_repeat"),
    ("motorSim", &["asyn", "motorSim"], "motorSim"),
    ("utils", &["utils"], "utils"),
    ("ipac-test", &["ipac", "epics"], "ipac-test"),
    ("gauges", &["asyn", "gauges"], "gauges"),
    ("technosoft", &["technosoft"], "technosoft"),
    ("listarg", &["listarg"], "listarg"),
    ("fastVacuum", &["fastVacuum"], "fastVacuum"),
    ("dlsPLC", &["dlsPLC", "asyn"], "dlsPLC"),
    ("wait", &["epics", "asyn", "motorSim"], "wait"),
];

/// Run iocrun on one sample in a fresh EPICS_ROOT with the sdist's test environment.
fn generate_sample(
    samples: &Path,
    ioc: &str,
    support: &[&str],
) -> (tempfile::TempDir, std::process::Output) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("epics");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::os::unix::fs::symlink(samples.join("epics/pvi-defs"), root.join("pvi-defs"))
        .expect("link");
    let mut cmd = util::iocrun();
    cmd.arg("generate")
        .arg("-i")
        .arg(samples.join(format!("iocs/{ioc}.ibek.ioc.yaml")))
        .arg("-o")
        .arg(root.join("runtime"))
        .env("EPICS_ROOT", &root)
        .env("IOC", "/epics/ioc")
        .env("RUNTIME_DIR", "/epics/runtime")
        .env("IOC_NAME", "TEST_IOC");
    for s in support {
        cmd.arg("--definitions")
            .arg(samples.join(format!("support/{s}.ibek.support.yaml")));
    }
    let out = cmd.output().expect("run iocrun");
    (tmp, out)
}

fn samples_dir() -> Option<PathBuf> {
    util::tool_var("IOCRUN_IBEK_SAMPLES")
}

#[test]
fn upstream_samples_render_byte_identical() {
    let Some(samples) = samples_dir() else { return };
    for (ioc, support, outputs) in SAMPLES {
        let (tmp, out) = generate_sample(&samples, ioc, support);
        assert!(
            out.status.success(),
            "{outputs}: iocrun failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected_dir = samples.join("outputs").join(outputs);
        let runtime = tmp.path().join("epics/runtime");
        for file in ["st.cmd", "ioc.subst", "wait_list.yaml"] {
            let exp = expected_dir.join(file);
            if !exp.exists() {
                continue;
            }
            let expected = std::fs::read_to_string(&exp).expect("expected");
            let actual = std::fs::read_to_string(runtime.join(file)).unwrap_or_default();
            util::assert_text_eq(&format!("{outputs}/{file}"), &expected, &actual);
        }
    }
}

#[test]
fn upstream_sample_errors_name_the_problem() {
    let Some(samples) = samples_dir() else { return };
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "bad_counter2",
            &["utils"],
            "Counter InterruptVector exceeded maximum value of 194",
        ),
        (
            "bad_ref",
            &["asyn", "motorSim"],
            "object controllerOnePort_BAD_REF not found",
        ),
        (
            "bad_db",
            &["bad_db"],
            "'non-existant' in database template 'test.db' not found",
        ),
        ("bad_default", &["asyn"], "Field required [type=missing"),
        (
            "DLS8515",
            &["DLS8515", "ipac", "epics"],
            "`ipac.Hy8002`.interrupt_vector",
        ),
    ];
    for (ioc, support, needle) in cases {
        let (_tmp, out) = generate_sample(&samples, ioc, support);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{ioc}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{ioc}: expected {needle:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{ioc}: {stderr}");
    }
    // bad_counter succeeds: a later `start` is ignored for an existing counter
    let (_tmp, out) = generate_sample(&samples, "bad_counter", &["utils"]);
    util::assert_success(&out);
}

const SUPPORT: &str = "module: t\nentity_models:\n  - name: Dev\n    description: d\n    parameters:\n      name: {type: id, description: n}\n      v: {type: int, description: v, default: 1}\n    pre_init:\n      - value: dev {{ name }} {{ v }}\n";

#[test]
fn failed_generate_leaves_previous_outputs_intact() {
    let env = util::TestEnv::new();
    let defs = env.write("defs/t.ibek.support.yaml", SUPPORT);
    env.write(
        "ioc/config/ioc.yaml",
        "ioc_name: x\ndescription: d\nentities:\n  - {type: t.Dev, name: a}\n",
    );
    let run = || {
        env.iocrun()
            .arg("generate")
            .arg(env.config_dir())
            .arg("--definitions")
            .arg(&defs)
            .output()
            .expect("run")
    };
    let ok = run();
    util::assert_success(&ok);
    let st = std::fs::read_to_string(env.runtime_dir().join("st.cmd")).expect("st.cmd");
    assert!(st.contains("dev a 1\n"), "{st}");
    env.write("ioc/config/ioc.yaml", "ioc_name: x\ndescription: d\nentities:\n  - {type: t.Dev, name: a}\n  - {type: t.Dev, name: a, v: 2.5}\n");
    let bad = run();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("ioc.yaml:5:28: entities.1.`t.Dev`.v"),
        "{stderr}"
    );
    assert!(stderr.contains("int_from_float"), "{stderr}");
    let after = std::fs::read_to_string(env.runtime_dir().join("st.cmd")).expect("st.cmd");
    assert_eq!(st, after, "previous output must survive a failed run");
}

#[test]
fn check_validates_without_writing() {
    let env = util::TestEnv::new();
    let defs = env.write("defs/t.ibek.support.yaml", SUPPORT);
    env.write("ioc/config/ioc.yaml", "ioc_name: x\ndescription: d\nentities:\n  - {type: t.Dev, name: a}\n  - {type: t.Dev, name: a}\n");
    let out = env
        .iocrun()
        .arg("check")
        .arg(env.config_dir())
        .arg("--definitions")
        .arg(&defs)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("FAIL "), "{stdout}");
    assert!(stdout.contains("Duplicate id a"), "{stdout}");
    assert!(!env.runtime_dir().exists());
}

#[test]
fn generate_needs_an_instance() {
    let out = util::iocrun().arg("generate").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config folder or instance files"));
}

/// Run iocrun on one probe of the shared set into a temp EPICS_ROOT; returns the runtime dir.
fn run_probe(name: &str) -> Option<(tempfile::TempDir, std::process::Output, PathBuf)> {
    let shared = util::shared_dir()?;
    let probe = shared.join("conformance/ibek-probes").join(name);
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("epics");
    std::fs::create_dir_all(root.join("pvi-defs")).expect("mkdir");
    let mut cmd = util::iocrun();
    cmd.arg("generate")
        .arg(probe.join("input/config"))
        .arg("-o")
        .arg(root.join("runtime"));
    for line in std::fs::read_to_string(probe.join("defs.txt"))
        .expect("defs")
        .lines()
    {
        if !line.trim().is_empty() {
            cmd.arg("--definitions")
                .arg(probe.join("input").join(line.trim()));
        }
    }
    for line in std::fs::read_to_string(probe.join("env.txt"))
        .expect("env")
        .lines()
    {
        if let Some((k, v)) = line.split_once('=') {
            cmd.env(k, v);
        }
    }
    let out = cmd.env("EPICS_ROOT", &root).output().expect("run");
    Some((tmp, out, probe))
}

#[test]
fn deviation_env_vars_one_per_line() {
    let Some((tmp, out, probe)) = run_probe("st-env-vars") else {
        return;
    };
    util::assert_success(&out);
    let ibek = std::fs::read_to_string(probe.join("expected/st.cmd")).expect("expected");
    // ibek's bytes with each glued `epicsEnvSet` moved to its own line
    let fixed = ibek
        .replace("epicsEnvSet", "\nepicsEnvSet")
        .replace("\n\nepicsEnvSet", "\nepicsEnvSet");
    assert_ne!(fixed, ibek, "the probe should show the glued lines");
    let actual = std::fs::read_to_string(tmp.path().join("epics/runtime/st.cmd")).expect("st.cmd");
    util::assert_text_eq("st.cmd", &fixed, &actual);
}

#[test]
fn deviation_when_last() {
    let Some((tmp, out, _)) = run_probe("err-when-last") else {
        return;
    };
    util::assert_success(&out);
    let st = std::fs::read_to_string(tmp.path().join("epics/runtime/st.cmd")).expect("st.cmd");
    assert_eq!(st.matches("last l1\n").count(), 1, "{st}");
    // with two instances only the last one prints it
    let env = util::TestEnv::new();
    let defs = env.write(
        "defs/t.ibek.support.yaml",
        "module: t\nentity_models:\n  - name: L\n    description: d\n    parameters: {name: {type: id, description: n}}\n    pre_init: [{when: last, value: 'last {{ name }}'}, {value: 'every {{ name }}'}]\n",
    );
    env.write("ioc/config/ioc.yaml", "ioc_name: x\ndescription: d\nentities:\n  - {type: t.L, name: a}\n  - {type: t.L, name: b}\n");
    let out = env
        .iocrun()
        .arg("generate")
        .arg(env.config_dir())
        .arg("--definitions")
        .arg(&defs)
        .output()
        .expect("run");
    util::assert_success(&out);
    let st = std::fs::read_to_string(env.runtime_dir().join("st.cmd")).expect("st.cmd");
    assert!(st.contains("every a\nlast b\nevery b\n"), "{st}");
}

#[test]
fn deviation_int_filter_in_longer_text() {
    let Some((tmp, out, _)) = run_probe("err-env-int-coerce") else {
        return;
    };
    util::assert_success(&out);
    let st = std::fs::read_to_string(tmp.path().join("epics/runtime/st.cmd")).expect("st.cmd");
    assert!(st.contains("\nepicsEnvSet E1 1\n"), "{st}");
    let Some((tmp, out, _)) = run_probe("err-db-mixed-int") else {
        return;
    };
    util::assert_success(&out);
    let subst = std::fs::read_to_string(tmp.path().join("epics/runtime/ioc.subst")).expect("subst");
    assert!(subst.contains("{ \"1-1\" }"), "{subst}");
}

/// Small instances written for these tests, rendered by ibek 4.8.2 and by iocrun at test
/// time: (support YAML, ioc.yaml). Each covers a rule the shared probes do not.
const DIFFERENTIAL: &[(&str, &str)] = &[
    // non-Jinja string defaults are read in lax mode by the support model
    (
        "module: t\nentity_models:\n  - name: D\n    description: d\n    parameters:\n      name: {type: id, description: n}\n      i: {type: int, description: v, default: \"12\"}\n      b: {type: bool, description: v, default: \"yes\"}\n      f: {type: float, description: v, default: \"2\"}\n      b2: {type: bool, description: v, default: 1}\n    pre_init:\n      - value: \"{{ i }} {{ b }} {{ f }} {{ b2 }} {{ i + 1 }}\"\n",
        "ioc_name: x\ndescription: d\nentities:\n  - {type: t.D, name: a}\n",
    ),
    // Python formatting of odd values, tuples, dict and list methods
    (
        "module: t\nentity_models:\n  - name: D\n    description: d\n    parameters:\n      name: {type: id, description: n}\n      l: {type: list, description: v, default: [3, 1, 2]}\n    pre_init:\n      - value: \"{{ l | sort }} {{ (l[0], name) }} {{ '%5.1f|%-4s|%x' % (2.25, name, 255) }} {{ '{:>6}'.format(name) }} {{ {'k': l} }} {{ 10 / 4 }} {{ 7 // 2 }} {{ 2 ** 10 }}\"\n",
        "ioc_name: x\ndescription: d\nentities:\n  - {type: t.D, name: a}\n",
    ),
    // sub-entities with repeats, counters in databases
    (
        "module: t\nentity_models:\n  - name: P\n    description: d\n    parameters:\n      name: {type: id, description: n}\n      n: {type: int, description: v, default: 2}\n    sub_entities:\n      - type: ibek.repeat\n        values: \"{{ range(n) | list }}\"\n        entity: {type: t.C, name: \"{{ name }}_{{ index }}\"}\n  - name: C\n    description: d\n    parameters:\n      name: {type: id, description: n}\n    databases:\n      - file: c.db\n        args: {N: \"{{ name }}\", K: \"{{ _global.incrementor('k', start=10) }}\"}\n",
        "ioc_name: x\ndescription: d\nentities:\n  - {type: t.P, name: p}\n  - {type: t.P, name: q, n: 3}\n",
    ),
    // string methods, filters, tests, slices, tojson, dict iteration
    (
        "module: t\nentity_models:\n  - name: D\n    description: d\n    parameters:\n      name: {type: id, description: n}\n      s: {type: str, description: v, default: \"a,b,c\"}\n      n: {type: float, description: v, default: 2.567}\n    pre_init:\n      - value: \"{{ s.upper() }} {{ s.replace(',', ';') }} {{ s.split(',') }} {{ s.startswith('a') }} {{ '%(a)s-%(b)d' % {'a': name, 'b': 3} }} {{ '{x}/{y:03d}'.format(x=name, y=7) }}\"\n      - value: \"{{ n | round }} {{ n | round(1) }} {{ -3 | abs }} {{ [3,1,2] | max }} {{ [1,1,2] | unique | list }} {{ s | replace(',', '') }} {{ 'ab cd' | title }} {{ 'ab' | capitalize }} {{ s | length }} {{ [1,2] | first }} {{ [1,2] | last }}\"\n      - value: \"{{ s | tojson }} {{ {'a': 1} | tojson }} {{ 3 is odd }} {{ 6 is divisibleby(3) }} {{ 'x' is string }} {{ 1 is number }} {{ 'b' in s }} {{ range(3) | join('-') }} {{ [1, 2] | sum }} {{ 'abc'[1:] }} {{ 'abc'[::-1] }}\"\n      - value: \"{{ dict(a=1) }} {{ (n * 100) | int }} {{ n // 1 }} {{ 2.0 }} {{ 1 / 3 }} {{ 3 * 'ab' }} {{ [1] + [2] }} {{ 'a' ~ none }} {{ 10 | string }} {{ 1.0 | string }} {{ true and 'x' }} {{ 0 or 'y' }}\"\n      - value: \"{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %} {{ loop_test | default('d') }} {{ {'a': 1}.get('b', 'z') }} {{ {'a': 1}.keys() | list }} {{ 'x y'.split() }} {{ '  x '.lstrip() }}|\"\n",
        "ioc_name: x\ndescription: d\nentities:\n  - {type: t.D, name: a}\n",
    ),
];

#[test]
fn differential_against_ibek() {
    let Some(ibek) = util::tool_var("IOCRUN_IBEK") else {
        return;
    };
    for (i, (support, ioc)) in DIFFERENTIAL.iter().enumerate() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("cfg")).expect("mkdir");
        std::fs::create_dir_all(dir.join("epics")).expect("mkdir");
        std::fs::write(dir.join("t.ibek.support.yaml"), support).expect("write");
        std::fs::write(dir.join("cfg/ioc.yaml"), ioc).expect("write");
        let run = |cmd: Command, out: &str| {
            let o = util::render_no_pvi(
                cmd,
                &dir.join("cfg"),
                &[dir.join("t.ibek.support.yaml")],
                &dir.join(out),
                &dir.join("epics"),
            );
            assert!(
                o.status.success(),
                "case {i} {out}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let mut reference = Command::new(&ibek);
        reference.args(["runtime", "generate2"]);
        run(reference, "ibek");
        let mut ours = util::iocrun();
        ours.arg("generate");
        run(ours, "iocrun");
        for file in ["st.cmd", "ioc.subst"] {
            let expected =
                std::fs::read_to_string(dir.join("ibek").join(file)).expect("ibek output");
            let actual = std::fs::read_to_string(dir.join("iocrun").join(file)).expect("output");
            util::assert_text_eq(&format!("case {i} {file}"), &expected, &actual);
        }
    }
}

/// The start sequence renders `config/ioc.yaml` (step 5) with the support YAML in
/// `$EPICS_ROOT/ibek-defs`, expands the result and runs it: softIoc serves the rendered PV.
#[test]
fn start_renders_ioc_yaml_and_runs_it() {
    let Some(bin) = util::epics_bin() else {
        return;
    };
    let env = util::TestEnv::new();
    let ioc_bin = env.root().join("ioc/bin/linux-x86_64");
    std::fs::create_dir_all(&ioc_bin).expect("ioc bin dir");
    std::os::unix::fs::symlink(bin.join("softIoc"), ioc_bin.join("ioc")).expect("symlink ioc");
    env.write(
        "ibek-defs/demo/demo.ibek.support.yaml",
        "module: demo\nentity_models:\n  - name: Temp\n    description: a temperature\n    parameters:\n      name: {type: id, description: PV prefix}\n      temp: {type: float, description: value}\n    databases:\n      - {file: demo.db, args: {P: '{{ name }}', T: '{{ temp }}'}}\n    pre_init:\n      - {type: comment, value: 'demo {{ name }}'}\n    post_init:\n      - value: dbl\n",
    );
    env.write(
        "ioc/config/demo.db",
        "record(ai, \"$(P):TEMP\") {\n    field(VAL, \"$(T)\")\n}\n",
    );
    env.write(
        "ioc/config/ioc.yaml",
        "ioc_name: demo\ndescription: d\nentities:\n  - {type: demo.Temp, name: DEMO, temp: 21}\n",
    );
    let cmd = env.iocrun_ioc();
    let r = crate::pid1::start(crate::pid1::Mode::Subreaper, cmd);
    r.wait_for("DEMO:TEMP");
    r.signal(nix::sys::signal::Signal::SIGTERM);
    let (_, out) = r.wait();
    assert!(out.contains("iocRun: All initialization complete"), "{out}");
    let st = std::fs::read_to_string(env.runtime_dir().join("st.cmd")).expect("st.cmd");
    assert!(st.contains("\n# demo DEMO\n"), "{st}");
    let subst = std::fs::read_to_string(env.runtime_dir().join("ioc.subst")).expect("subst");
    assert!(subst.contains("{ \"DEMO\", \"21.0\" }"), "{subst}");
    let db = std::fs::read_to_string(env.runtime_dir().join("ioc.db")).expect("ioc.db");
    assert!(db.contains("DEMO:TEMP"), "{db}");
}
