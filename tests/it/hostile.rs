//! Hostile input files (issue 11): each attack, bounded in size, must end in a clear error
//! naming the file (and line, entity, argument where there is one), a non-zero exit rather than
//! a crash, memory within a stated bound, the previous outputs intact, and no file removed
//! that iocrun did not write. The bounds themselves are listed in docs/limits.md.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{self, TestEnv};

/// The address-space bound the attacks run under: the 1 GB container limit. A run that
/// needs more fails to allocate and aborts, which `assert_clean_failure` reports.
const MEMORY_BOUND: u64 = 1 << 30;

/// Run `cmd` with its address space capped at `bytes`.
fn under_memory_bound(cmd: &mut Command, bytes: u64) -> &mut Command {
    // SAFETY: only async-signal-safe calls between fork and exec
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// The run failed with exit status 1 (not a signal, not an abort) and said each of `needles`
/// (`iocrun check` reports on stdout, the other commands on stderr).
#[track_caller]
fn assert_clean_failure(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a clean exit 1, got {:?}; stderr:\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("overflowed its stack") && !stderr.contains("panicked"),
        "{stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}:\n{stderr}");
    }
}

/// Every file under `dir` (relative path, contents), sorted: to show a folder unchanged.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_owned();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `iocrun check CONFIG_DIR` with no support files (the attacks fail while loading YAML).
fn check(env: &TestEnv) -> Command {
    let mut cmd = env.iocrun();
    cmd.arg("check").arg(env.config_dir()).arg("--no-pvi");
    cmd.arg("--definitions").arg(epics_defs());
    cmd
}

/// iocrun's own `epics.*` support YAML, enough for `epics.EpicsEnvSet` instances.
fn epics_defs() -> PathBuf {
    util::repo_root().join("support-yaml/epics.ibek.support.yaml")
}

/// `iocrun generate CONFIG_DIR -o OUT --no-pvi` with the `epics.*` definitions.
fn generate(env: &TestEnv, out: &Path) -> Command {
    let mut cmd = env.iocrun();
    cmd.arg("generate")
        .arg(env.config_dir())
        .arg("--no-pvi")
        .arg("--definitions")
        .arg(epics_defs())
        .arg("-o")
        .arg(out);
    cmd
}

/// An instance with one `epics.EpicsEnvSet` whose value is `value` (YAML, as written).
fn env_set(value: &str) -> String {
    format!(
        "ioc_name: hostile\ndescription: d\nentities:\n  - type: epics.EpicsEnvSet\n    \
         name: VAR\n    value: {value}\n"
    )
}

/// The "billion laughs": 8 levels of 10 aliases (10^8 nodes when deep-copied, 2.5 GB
/// at 7 levels), in 433 bytes.
#[test]
fn hostile_yaml_alias_bomb_is_bounded() {
    let env = TestEnv::new();
    let mut bomb = String::from("  - &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..=8 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("  - &a{i} [{refs}]\n"));
    }
    let yaml = format!("ioc_name: x\ndescription: d\nentities: []\nshared:\n{bomb}");
    env.write("ioc/config/ioc.yaml", &yaml);
    let out = under_memory_bound(&mut check(&env), MEMORY_BOUND)
        .output()
        .expect("run check");
    // the alias that crosses the bound is named: a5 (line 10) holds ten copies of 111,111 nodes
    assert_clean_failure(&out, &["ioc.yaml:10:25:", "IOCRUN_YAML_MAX_NODES"]);
    // IOCRUN_YAML_MAX_NODES moves the bound, for support files too
    env.write("ioc/config/ioc.yaml", &env_set("x"));
    util::assert_success(&check(&env).output().expect("run check"));
    let out = check(&env)
        .env("IOCRUN_YAML_MAX_NODES", "5")
        .output()
        .expect("run check");
    assert_clean_failure(&out, &["epics.ibek.support.yaml:", "more than 5 nodes"]);
    // and PVI device files
    let device = env.write(
        "bomb.pvi.device.yaml",
        &format!("label: x\nchildren:\n{bomb}"),
    );
    let mut pvi = env.iocrun();
    pvi.arg("pvi").arg(&device).arg("-o").arg(env.root());
    let out = under_memory_bound(&mut pvi, MEMORY_BOUND)
        .output()
        .expect("run pvi");
    assert_clean_failure(
        &out,
        &[
            "bomb.pvi.device.yaml",
            "line 8 column 25",
            "IOCRUN_YAML_MAX_NODES",
        ],
    );
}

/// 20,000 nested block sequences (40 KB) and as many flow brackets overflowed the stack.
#[test]
fn hostile_yaml_deep_nesting_is_bounded() {
    let env = TestEnv::new();
    let header = "ioc_name: x\ndescription: d\nentities: []\nshared:\n";
    env.write(
        "ioc/config/ioc.yaml",
        &format!("{header}  {}x\n", "- ".repeat(20_000)),
    );
    let out = under_memory_bound(&mut check(&env), MEMORY_BOUND)
        .output()
        .expect("run check");
    assert_clean_failure(&out, &["ioc.yaml:5:", "nested deeper than 128 levels"]);
    env.write(
        "ioc/config/ioc.yaml",
        &format!("{header}  {}{}\n", "[".repeat(20_000), "]".repeat(20_000)),
    );
    let out = check(&env).output().expect("run check");
    assert_clean_failure(&out, &["ioc.yaml:5:"]);
    // the same nesting in a support file
    let deep_support = format!("module: m\nentity_models:\n  - {}x\n", "- ".repeat(20_000));
    let support = env.write("deep.ibek.support.yaml", &deep_support);
    env.write("ioc/config/ioc.yaml", &env_set("x"));
    let out = check(&env)
        .arg("--definitions")
        .arg(&support)
        .output()
        .expect("run check");
    assert_clean_failure(&out, &["deep.ibek.support.yaml:3:", "nested deeper"]);
}

/// A YAML file larger than the bound is refused before it is read whole.
#[test]
fn hostile_yaml_file_size_is_bounded() {
    let env = TestEnv::new();
    let padding = format!("# {}\n", "x".repeat(4000));
    env.write("ioc/config/ioc.yaml", &(env_set("x") + &padding));
    util::assert_success(&check(&env).output().expect("run check"));
    let out = check(&env)
        .env("IOCRUN_YAML_MAX_BYTES", "4000")
        .output()
        .expect("run check");
    assert_clean_failure(&out, &["ioc.yaml", "larger than 4000 bytes"]);
    // PVI device files too
    let device = env.write(
        "x.pvi.device.yaml",
        &format!("label: x\nparent: Device\nchildren: []\n{padding}"),
    );
    let out = env
        .iocrun()
        .arg("pvi")
        .arg(&device)
        .arg("-o")
        .arg(env.root())
        .env("IOCRUN_YAML_MAX_BYTES", "4000")
        .output()
        .expect("run pvi");
    assert_clean_failure(&out, &["x.pvi.device.yaml", "larger than 4000 bytes"]);
}

/// Nested `$(a` references: msi recursed for each level (iocrun overflowed its stack at 50,000).
/// Up to the bound the output is msi's; past it, a clean error naming the template line. The
/// same for the time a line may take (a fuzzing find: nested defaults).
#[test]
fn hostile_macro_nesting_is_bounded() {
    let env = TestEnv::new();
    let line = |n: usize| format!("x {} y\n", "$(a".repeat(n));
    let ok = env.write("ok.template", &line(250));
    let deep = env.write("deep.template", &format!("first\n{}", line(50_000)));
    let ours = util::iocrun()
        .arg("expand")
        .arg(&ok)
        .output()
        .expect("run expand");
    util::assert_success(&ours);
    if let Some(bin) = util::epics_bin() {
        let msi = Command::new(bin.join("msi"))
            .arg(&ok)
            .output()
            .expect("run msi");
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&msi.stdout),
            "at the bound the output is msi's"
        );
    }
    let out = under_memory_bound(util::iocrun().arg("expand").arg(&deep), MEMORY_BOUND)
        .output()
        .expect("run expand");
    assert_clean_failure(&out, &["deep.template:2:", "nested deeper than 250 levels"]);
    // a chain of macro values nests the same way: -M m0=$(m1),m1=$(m2),…
    let chain: Vec<String> = (0..300).map(|i| format!("m{i}=$(m{})", i + 1)).collect();
    let t = env.write("chain.template", "$(m0)\n");
    let out = util::iocrun()
        .arg("expand")
        .arg(format!("-M{}", chain.join(",")))
        .arg(&t)
        .output()
        .expect("run expand");
    assert_clean_failure(&out, &["chain.template:1:", "nested deeper"]);
    // 30 defaults nested in defaults: each level is scanned twice, 2^30 scans (msi: minutes)
    let t = env.write(
        "defaults.template",
        &format!("ok\n{}x{}\n", "$(A=".repeat(30), ")".repeat(30)),
    );
    let out = util::iocrun()
        .arg("expand")
        .arg(&t)
        .output()
        .expect("run expand");
    assert_clean_failure(&out, &["defaults.template:2:", "more than 1000000 scans"]);
}

/// Nested `range(100000)` loops ran without limit; the fuel bound stops them with an error
/// naming the entity, and IOCRUN_JINJA_FUEL changes the bound.
#[test]
fn hostile_jinja_loops_are_bounded_by_fuel() {
    let env = TestEnv::new();
    let runtime = env.runtime_dir();
    env.write("ioc/config/ioc.yaml", &env_set("ok"));
    util::assert_success(&generate(&env, &runtime).output().expect("generate"));
    let before = snapshot(&runtime);
    env.write(
        "ioc/config/ioc.yaml",
        &env_set(
            "\"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}\
             {% endfor %}\"",
        ),
    );
    let out = under_memory_bound(&mut generate(&env, &runtime), MEMORY_BOUND)
        .output()
        .expect("generate");
    assert_clean_failure(
        &out,
        &["ioc.yaml:4:", "epics.EpicsEnvSet", "IOCRUN_JINJA_FUEL"],
    );
    assert_eq!(snapshot(&runtime), before, "previous outputs intact");
    // few instructions, much memory: a string doubled with `~` 28 times (4 GB) stops at 100 MB
    env.write(
        "ioc/config/ioc.yaml",
        &env_set(
            "\"{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(28) %}\
             {% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}\"",
        ),
    );
    let out = under_memory_bound(&mut generate(&env, &runtime), MEMORY_BOUND)
        .output()
        .expect("generate");
    assert_clean_failure(&out, &["ioc.yaml:4:", "longer than 100000000 bytes"]);
    // a modest loop passes by default and fails under a small bound
    env.write(
        "ioc/config/ioc.yaml",
        &env_set("\"{% for i in range(200) %}{{ i }}{% endfor %}\""),
    );
    util::assert_success(&generate(&env, &runtime).output().expect("generate"));
    let out = generate(&env, &runtime)
        .env("IOCRUN_JINJA_FUEL", "100")
        .output()
        .expect("generate");
    assert_clean_failure(&out, &["more than 100 instructions"]);
}

/// A `"\0"` escape wrote a raw NUL into st.cmd (as ibek does); the IOC shell would cut the
/// line there. Refused, naming the entity and the argument.
#[test]
fn hostile_nul_escape_is_refused() {
    let env = TestEnv::new();
    let runtime = env.runtime_dir();
    env.write("ioc/config/ioc.yaml", &env_set("ok"));
    util::assert_success(&generate(&env, &runtime).output().expect("generate"));
    let before = snapshot(&runtime);
    for value in ["\"a\\0b\"", "\"{{ 'a\\x00b' }}\""] {
        env.write("ioc/config/ioc.yaml", &env_set(value));
        let out = generate(&env, &runtime).output().expect("generate");
        assert_clean_failure(
            &out,
            &["ioc.yaml:4:", "epics.EpicsEnvSet", "'value'", "NUL"],
        );
        assert_eq!(snapshot(&runtime), before, "previous outputs intact");
    }
}

/// `generate -o FILE` replaced the file with a folder and exited 0.
#[test]
fn hostile_generate_onto_a_file_is_refused() {
    let env = TestEnv::new();
    env.write("ioc/config/ioc.yaml", &env_set("ok"));
    let file = env.write("out/precious.txt", "precious\n");
    let out = generate(&env, &file).output().expect("generate");
    assert_clean_failure(&out, &["precious.txt", "not a folder"]);
    assert_eq!(
        std::fs::read_to_string(&file).expect("file kept"),
        "precious\n"
    );
    let left: Vec<_> = std::fs::read_dir(env.root().join("out"))
        .expect("out")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["precious.txt"], "nothing else created beside it");
}

/// Files in the output folder that iocrun did not write survive a generate; what an earlier
/// generate wrote and this one does not (wait_list.yaml here) is removed.
#[test]
fn generate_removes_only_files_it_wrote() {
    let env = TestEnv::new();
    let runtime = env.runtime_dir();
    let mine = env.write("runtime/notes.txt", "mine\n");
    let waited = "ioc_name: w\ndescription: d\nentities:\n  - type: ibek.wait_ip\n    \
                  device: dev\n    address: 127.0.0.1:1\n";
    env.write("ioc/config/ioc.yaml", waited);
    let first = generate(&env, &runtime).output().expect("generate");
    util::assert_success(&first);
    if !runtime.join("wait_list.yaml").exists() {
        // the instance must make a wait list for this test to mean anything
        panic!("wait_list.yaml not written: {:?}", snapshot(&runtime));
    }
    env.write("ioc/config/ioc.yaml", &env_set("ok"));
    util::assert_success(&generate(&env, &runtime).output().expect("generate"));
    assert!(
        !runtime.join("wait_list.yaml").exists(),
        "stale output removed"
    );
    assert_eq!(std::fs::read_to_string(mine).expect("kept"), "mine\n");
}

/// A full disk: `generate -o DIR` on a 64 KB tmpfs left DIR empty. Now the new files are all
/// written before any old one is replaced, so the previous outputs stay. Without permission to
/// mount, the same failure is made with RLIMIT_FSIZE (writes past it fail with EFBIG).
#[test]
fn hostile_full_disk_keeps_previous_outputs() {
    let env = TestEnv::new();
    let mnt = env.root().join("small");
    std::fs::create_dir_all(&mnt).expect("mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    let _unmount = Unmount(mounted.then(|| mnt.clone()));
    let out_dir = mnt.join("runtime");
    env.write("ioc/config/ioc.yaml", &env_set("small"));
    util::assert_success(&generate(&env, &out_dir).output().expect("generate"));
    std::fs::write(out_dir.join("notes.txt"), "mine\n").expect("foreign file");
    let before = snapshot(&out_dir);
    // 100 KB of st.cmd: more than the tmpfs holds, or than RLIMIT_FSIZE allows
    env.write("ioc/config/ioc.yaml", &env_set("\"{{ 'x' * 100000 }}\""));
    let mut cmd = generate(&env, &out_dir);
    if !mounted {
        eprintln!("mount failed: simulating the full disk with RLIMIT_FSIZE");
        // SAFETY: only async-signal-safe calls between fork and exec
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: 32 * 1024,
                    rlim_max: 32 * 1024,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = cmd.output().expect("generate");
    let cause = if mounted {
        "No space left on device"
    } else {
        "File too large"
    };
    assert_clean_failure(&out, &["cannot write", cause]);
    assert_eq!(snapshot(&out_dir), before, "previous outputs intact");
}

/// Unmounts the test's tmpfs when the test ends, whatever its outcome.
struct Unmount(Option<PathBuf>);

impl Drop for Unmount {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = Command::new("umount").arg(p).status();
        }
    }
}

/// A subfolder of the config folder that cannot be listed was skipped, so its definitions went
/// missing without a word. It is an error naming the folder. (As root, a mode-000 folder is
/// still readable, so the run drops to user nobody.)
#[test]
fn hostile_unreadable_definition_folder_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.write("ioc/config/ioc.yaml", &env_set("ok"));
    let locked = env.config_dir().join("locked");
    std::fs::create_dir_all(&locked).expect("locked");
    for dir in [env.root(), &env.root().join("ioc"), &env.config_dir()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let mut cmd = env.iocrun();
    cmd.arg("check").arg(env.config_dir()).arg("--no-pvi");
    // SAFETY: only async-signal-safe calls between fork and exec
    unsafe {
        cmd.pre_exec(|| {
            if libc::geteuid() == 0 && (libc::setgid(65534) != 0 || libc::setuid(65534) != 0) {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run check");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_clean_failure(&out, &["cannot read", "locked"]);
}

/// Recursion inside a template (a macro calling itself, deeply nested expressions) ends at the
/// engine's bounds with an error, on a 2 MiB stack like the start sequence's blocking thread
/// (test threads have 2 MiB too).
#[test]
fn hostile_jinja_recursion_is_an_error_on_a_small_stack() {
    let support = std::fs::read_to_string(epics_defs()).expect("epics defs");
    let recursive = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
    let nested = format!("{{{{ {}1{} }}}}", "(".repeat(5_000), ")".repeat(5_000));
    for template in [recursive.to_owned(), nested] {
        let instance = env_set(&format!("{template:?}"));
        let support = support.clone();
        let result = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || iocrun::render::render_text(&instance, &[support.as_str()]).map(|_| ()))
            .expect("spawn")
            .join()
            .expect("no panic");
        let err = result.expect_err("refused").to_string();
        assert!(err.contains("recursion"), "{err}");
    }
}
