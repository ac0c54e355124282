//! Live operation with the real softIoc: every restart re-reads the config folder (issue 9),
//! a config that no longer renders keeps the IOC on its last good outputs, and start hooks run
//! before the render.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::pid1::{self, Mode, Running};
use crate::start::example_tree;
use crate::util::TestEnv;

/// The demo's post-iocInit `dbpf` of TICK:LIMIT prints the value it wrote.
fn dbpf_line(value: u32) -> String {
    format!("DBF_DOUBLE:         {value}")
}

/// Change the value the demo's ioc.yaml gives TICK:LIMIT after iocInit.
fn set_tick_limit(env: &TestEnv, value: u32) {
    let yaml = env.config_dir().join("ioc.yaml");
    let text = std::fs::read_to_string(&yaml).expect("ioc.yaml");
    let edited = text.replace("    value: \"50\"", &format!("    value: \"{value}\""));
    assert_ne!(text, edited, "the demo's dbpf value moved");
    std::fs::write(&yaml, edited).expect("write ioc.yaml");
}

/// Wait until `text` appears `n` times in the output.
fn wait_count(r: &Running, text: &str, n: usize) {
    let until = Instant::now() + pid1::DEADLINE;
    while r.output().matches(text).count() < n {
        assert!(
            Instant::now() < until,
            "{text:?} not seen {n} times:\n{}",
            r.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn demo_iocrun(env: &TestEnv) -> std::process::Command {
    let mut cmd = env.iocrun_ioc();
    cmd.args(["--restart-delay", "50ms"])
        .env("IOC_NAME", "it-live")
        .env("IOCRUN_WAIT_DONE_FILE", env.root().join("done.txt"));
    cmd
}

#[test]
fn an_edited_ioc_yaml_is_live_after_exit_and_a_broken_one_keeps_the_last_good() {
    let Some(env) = example_tree() else { return };
    let mut r = pid1::start(Mode::Subreaper, demo_iocrun(&env));
    r.wait_for(&dbpf_line(50));
    set_tick_limit(&env, 77);
    r.type_text("exit\n");
    r.wait_for(&dbpf_line(77));
    let st_cmd = std::fs::read_to_string(env.runtime_dir().join("st.cmd")).expect("st.cmd");
    assert!(
        st_cmd.contains("dbpf \"IT-LIVE:TICK:LIMIT\" \"77\""),
        "{st_cmd}"
    );
    // a typo: the IOC still comes back, on the outputs of the last good start
    std::fs::write(env.config_dir().join("ioc.yaml"), "entities: [\n").expect("break");
    r.type_text("exit\n");
    wait_count(&r, &dbpf_line(77), 2);
    r.signal(Signal::SIGTERM);
    let (_, out) = r.wait();
    assert_eq!(out.matches("started pid").count(), 3, "{out}");
    assert!(
        out.contains("config error: ")
            && out.contains("starting the IOC from the last good outputs"),
        "{out}"
    );
    assert!(out.contains("start step ibek_generate failed in"), "{out}");
    let kept = std::fs::read_to_string(env.runtime_dir().join("st.cmd")).expect("st.cmd");
    assert_eq!(kept, st_cmd, "a failed render leaves the last good outputs");
}
