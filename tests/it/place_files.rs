//! `iocrun place-files` against `ibek runtime place-files` on the same config folder: the
//! runtime trees they leave must hold the same files with the same bytes, modes and mtimes.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::util::{self, TestEnv};

/// Every file under `dir`: relative path → (contents, mode, mtime).
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let m = fs::metadata(&p).expect("meta");
            let rel = p
                .strip_prefix(dir)
                .expect("rel")
                .to_string_lossy()
                .into_owned();
            out.insert(rel, (fs::read(&p).expect("read"), m.mode(), m.mtime()));
        }
    }
    out
}

/// A config folder with every case place-files handles: both protocol suffixes, a 0600 db, a dotfile,
/// wrong case, a sub-folder, non-matching names, and a link to a file elsewhere.
fn build_config(env: &TestEnv) {
    let files = [
        ("a.proto", "proto a"),
        ("b.protocol", "protocol b"),
        ("c.db", "record(ai, c) {}"),
        (".hidden.db", "hidden"),
        ("d.template", "template d"),
        ("e.DB", "upper case"),
        ("sub/f.db", "nested"),
        ("ioc.yaml", "ioc_name: x"),
        ("st.cmd", "iocInit"),
        ("ioc.db", "generated"),
    ];
    for (name, body) in files {
        env.write(&format!("ioc/config/{name}"), body);
    }
    let config = env.config_dir();
    fs::set_permissions(config.join("c.db"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let outside = env.write("elsewhere/real.template", "linked");
    std::os::unix::fs::symlink(outside, config.join("link.template")).expect("symlink");
}

#[test]
fn same_runtime_tree_as_ibek() {
    let Some(ibek) = util::tool_var("IOCRUN_IBEK") else {
        return;
    };
    let (theirs, ours) = (TestEnv::new(), TestEnv::new());
    for env in [&theirs, &ours] {
        build_config(env);
        // an older copy that both must overwrite
        env.write("runtime/protocol/a.proto", "stale");
    }
    // ibek always writes to $EPICS_ROOT/runtime, which TestEnv's RUNTIME_DIR also is
    let out = Command::new(ibek)
        .args(["runtime", "place-files"])
        .arg(theirs.config_dir())
        .env("EPICS_ROOT", theirs.root())
        .output()
        .expect("run ibek");
    util::assert_success(&out);
    let got = ours
        .iocrun()
        .arg("place-files")
        .arg(ours.config_dir())
        .output()
        .expect("run iocrun");
    util::assert_success(&got);
    assert_eq!(got.stdout, out.stdout, "both print nothing");
    let (expected, actual) = (
        snapshot(&theirs.runtime_dir()),
        snapshot(&ours.runtime_dir()),
    );
    assert!(
        expected.contains_key("db/.hidden.db"),
        "{:?}",
        expected.keys()
    );
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>()
    );
    for (name, (body, mode, _)) in &expected {
        let (b, m, _) = &actual[name];
        assert_eq!((body, mode), (b, m), "{name}");
    }
    // copy2 keeps the source's mtime: compare against the sources, which differ per tree
    for (name, (_, _, mtime)) in &actual {
        let src = fs::metadata(
            ours.config_dir()
                .join(Path::new(name).file_name().expect("name")),
        )
        .expect("source");
        assert_eq!(*mtime, src.mtime(), "{name} keeps its mtime");
    }
}

#[test]
fn missing_config_folder_is_a_usage_error_like_ibek() {
    let env = TestEnv::new();
    let got = env
        .iocrun()
        .arg("place-files")
        .arg(env.root().join("nope"))
        .output()
        .expect("run");
    assert_eq!(got.status.code(), Some(2));
    assert!(!env.runtime_dir().exists());
}

/// ibek fails the whole step on a folder named like `x.db` (`shutil.copy2` on a directory);
/// iocrun skips it and places the rest. Listed in docs/compat.md.
#[test]
fn deviation_place_files_skips_folders() {
    let Some(ibek) = util::tool_var("IOCRUN_IBEK") else {
        return;
    };
    let env = TestEnv::new();
    env.write("ioc/config/x.db/inner", "not a db");
    env.write("ioc/config/y.db", "a db");
    let reference = Command::new(ibek)
        .args(["runtime", "place-files"])
        .arg(env.config_dir())
        .env("EPICS_ROOT", env.root().join("ibek-root"))
        .output()
        .expect("run ibek");
    assert!(!reference.status.success(), "ibek fails on the folder");
    let got = env
        .iocrun()
        .arg("place-files")
        .arg(env.config_dir())
        .output()
        .expect("run");
    util::assert_success(&got);
    assert!(env.runtime_dir().join("db/y.db").is_file());
    assert!(!env.runtime_dir().join("db/x.db").exists());
}
