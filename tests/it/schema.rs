//! `iocrun schema`: the JSON schema of ioc.yaml, compared with `ibek ioc generate-schema`'s
//! output (the ibek sdist's `tests/samples/schemas` and the fixtures' `expected/ioc.schema.json`,
//! both made by ibek) and checked with real JSON-schema validators (Python `jsonschema` and
//! `check-jsonschema`): valid instances pass, broken ones fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::render_fixtures::{fixture_names, Fixture};
use crate::util::{self, assert_text_eq};

/// The ibek sdist's schema files and the support files `generate_samples.sh` made each from.
const SAMPLE_SCHEMAS: &[(&str, &[&str])] = &[
    ("quadem.ibek.ioc.schema.json", &["ADCore", "quadem"]),
    (
        "quadem_repeat.ibek.ioc.schema.json",
        &["ADCore", "quadem_repeat"],
    ),
    ("single.ibek.ioc.schema.json", &["motorSim"]),
    ("motorSim.ibek.ioc.schema.json", &["asyn", "motorSim"]),
    ("utils.ibek.ioc.schema.json", &["utils"]),
    ("ipac.ibek.ioc.schema.json", &["ipac", "epics"]),
    ("gauges.ibek.ioc.schema.json", &["asyn", "gauges"]),
    ("technosoft.ibek.ioc.schema.json", &["technosoft"]),
    ("listarg.ibek.schema.json", &["listarg"]),
    ("fastVacuum.ibek.ioc.schema.json", &["fastVacuum"]),
    ("dlsPLC.ibek.ioc.schema.json", &["dlsPLC", "asyn"]),
];

/// Run `iocrun schema` with these definitions into `out`; the schema text.
fn schema(defs: &[PathBuf], out: &Path) -> String {
    let mut cmd = util::iocrun();
    cmd.env("EPICS_ROOT", out.parent().expect("parent"))
        .arg("schema");
    for d in defs {
        cmd.arg("--definitions").arg(d);
    }
    let res = cmd.arg("-o").arg(out).output().expect("run iocrun schema");
    util::assert_success(&res);
    std::fs::read_to_string(out).expect("schema written")
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("valid JSON")
}

#[test]
fn schema_matches_ibek_samples() {
    let Some(samples) = util::tool_var("IOCRUN_IBEK_SAMPLES") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    for (file, modules) in SAMPLE_SCHEMAS {
        let defs: Vec<PathBuf> = modules
            .iter()
            .map(|m| {
                samples
                    .join("support")
                    .join(format!("{m}.ibek.support.yaml"))
            })
            .collect();
        let ours = schema(&defs, &tmp.path().join(file));
        let theirs = std::fs::read_to_string(samples.join("schemas").join(file)).expect(file);
        assert_text_eq(file, &theirs, &ours);
    }
}

#[test]
fn schema_matches_ibek_on_fixture_definitions() {
    let mut compared = 0;
    for name in fixture_names() {
        let Some(fx) = Fixture::load(&name) else {
            return;
        };
        let Some(expected) = fx.expected("ioc.schema.json") else {
            continue;
        };
        let tmp = tempfile::tempdir().expect("temp dir");
        let ours = schema(&fx.defs, &tmp.path().join("ioc.schema.json"));
        assert_text_eq(&format!("{name} ioc.schema.json"), &expected, &ours);
        compared += 1;
    }
    assert!(compared >= 5, "fixtures with a schema golden: {compared}");
}

/// Without `--definitions`: the image's ibek-defs, plus the embedded `epics.*` when the image
/// has none; without `-o` the schema goes to stdout.
#[test]
fn schema_defaults_to_ibek_defs_and_embedded_epics() {
    let env = util::TestEnv::new();
    env.write(
        "ibek-defs/dev/dev.ibek.support.yaml",
        "module: dev\nentity_models:\n  - name: Box\n    description: a box\n    parameters:\n      size: {type: int, description: edge, default: 3}\n",
    );
    let out = env.iocrun().arg("schema").output().expect("run");
    util::assert_success(&out);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.ends_with("}\n"));
    let v = json(&text);
    let mapping = &v["properties"]["entities"]["items"]["discriminator"]["mapping"];
    assert_eq!(mapping["dev.Box"], "#/$defs/dev_Box");
    assert_eq!(mapping["epics.EpicsEnvSet"], "#/$defs/epics_EpicsEnvSet");
    assert_eq!(v["$defs"]["dev_Box"]["properties"]["size"]["default"], 3);
}

#[test]
fn schema_reports_a_bad_support_file() {
    let env = util::TestEnv::new();
    let bad = env.write(
        "bad.ibek.support.yaml",
        "module: x\nentity_models:\n  - name: A\n",
    );
    let out = env
        .iocrun()
        .args(["schema", "--definitions"])
        .arg(&bad)
        .arg("-o")
        .arg(env.root().join("s.json"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.ibek.support.yaml"), "{err}");
    assert!(
        !env.root().join("s.json").exists(),
        "nothing written on error"
    );
}

/// Instances that break the schema, each on top of a valid lab-quirks style instance.
const BROKEN: &[(&str, &str)] = &[
    ("unknown type", "  - type: lab.Nope\n    name: X\n"),
    (
        "missing required arg",
        "  - type: lab.Controller\n    name: L9\n    P: X\n",
    ),
    (
        "extra arg",
        "  - type: lab.Controller\n    name: L9\n    P: X\n    host: h\n    colour: red\n",
    ),
    (
        "bad enum",
        "  - type: lab.Channel\n    controller: L9\n    index: 1\n    mode: ohms\n",
    ),
    (
        "word for an int",
        "  - type: lab.Channel\n    controller: L9\n    index: one\n",
    ),
    (
        "list for a str",
        "  - type: lab.Controller\n    name: [L9]\n    P: X\n    host: h\n",
    ),
    (
        "bad wait timeout",
        "  - type: ibek.wait_ip\n    address: h:1\n    timeout: soon\n",
    ),
];

const VALID_HEAD: &str = "ioc_name: x\ndescription: d\nentities:\n  - type: lab.Controller\n    name: L9\n    P: X\n    host: h\n";

/// Validate each instance with Python `jsonschema`; one line per instance, `ok` or an error.
fn validate(schema: &Path, instances: &[PathBuf]) -> Option<Vec<String>> {
    let python = util::tool_var("IOCRUN_PYTHON")?;
    let script = r#"
import json, sys
import jsonschema
from ruamel.yaml import YAML
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    doc = YAML(typ="safe").load(open(path))
    errors = list(validator.iter_errors(doc))
    print("ok" if not errors else "invalid: " + errors[0].message.replace("\n", " ")[:200])
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(schema)
        .args(instances)
        .output()
        .expect("run python");
    util::assert_success(&out);
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn schema_accepts_valid_instances_and_rejects_broken_ones() {
    let Some(fx) = Fixture::load("lab-quirks") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let schema_path = tmp.path().join("ioc.schema.json");
    schema(&fx.defs, &schema_path);
    let mut instances = vec![fx.dir.join("config/ioc.yaml")];
    for (i, (_, tail)) in BROKEN.iter().enumerate() {
        let p = tmp.path().join(format!("broken{i}.yaml"));
        std::fs::write(&p, format!("{VALID_HEAD}{tail}")).expect("write");
        instances.push(p);
    }
    let valid_extra = tmp.path().join("valid.yaml");
    std::fs::write(&valid_extra, format!("{VALID_HEAD}  - type: lab.Channel\n    controller: L9\n    index: \"{{{{ 1 + 1 }}}}\"\n    mode: amps\n")).expect("write");
    instances.push(valid_extra);
    let Some(results) = validate(&schema_path, &instances) else {
        return;
    };
    assert_eq!(results.len(), instances.len(), "{results:?}");
    assert_eq!(results[0], "ok", "the lab-quirks instance is valid");
    for (i, (what, _)) in BROKEN.iter().enumerate() {
        assert!(results[i + 1].starts_with("invalid"), "{what} accepted");
    }
    assert_eq!(
        results.last().map(String::as_str),
        Some("ok"),
        "Jinja for an int is valid"
    );
}

/// Every fixture instance ibek renders is valid against the schema of its definitions, checked
/// by the `check-jsonschema` command a services repository's CI would run.
#[test]
fn check_jsonschema_accepts_every_fixture_instance() {
    let Some(python) = util::tool_var("IOCRUN_PYTHON") else {
        return;
    };
    let check = python.with_file_name("check-jsonschema");
    let mut checked = 0;
    for name in fixture_names() {
        let Some(fx) = Fixture::load(&name) else {
            return;
        };
        if fx.expected("error.txt").is_some() {
            continue;
        }
        let tmp = tempfile::tempdir().expect("temp dir");
        let schema_path = tmp.path().join("ioc.schema.json");
        schema(&fx.defs, &schema_path);
        let mut files = vec![fx.dir.join("config/ioc.yaml")];
        let runtime = fx.dir.join("config/runtime.yaml");
        if runtime.exists() {
            files.push(runtime);
        }
        let out = Command::new(&check)
            .arg("--schemafile")
            .arg(&schema_path)
            .args(&files)
            .output()
            .expect("run check-jsonschema");
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 5);
}
