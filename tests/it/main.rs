//! The single integration-test binary. One `mod` per theme; each test gets its own temporary
//! EPICS tree through `util::TestEnv` and never reads the real `/epics`.
//!
//! External tools (softIoc, msi, ibek, the ibek sdist samples) are found through the variables
//! `scripts/install-test-deps.sh` writes; `scripts/test.sh` sets them.

mod autosave; // iocrun autosave vs ibek runtime generate-autosave
mod ca; // iocrun caget vs EPICS caget on a loopback softIoc
mod check; // iocrun check over many instance folders: verdicts, annotations, suggestions
mod container; // the static binary as a podman container's ENTRYPOINT (PID 1)
mod entrypoint; // iocrun CMD (a one-shot, like tini), the start.sh shim nested, stdin EOF
mod fuzz_input; // seeded mutations of YAML, substitution files and templates: no panics
mod fuzz_render; // seeded mutations of real inputs through the in-memory render: no panics
mod fuzz_runtime; // seeded mutations of console, control, CA and HTTP messages: no panics, bounds kept
mod hostile; // hostile input files (issue 11): bounded, clean errors, outputs intact
mod ibek_support_diff; // every ibek-support model, generated instances, iocrun vs ibek 4.8.2
mod ibek_support_gen; // the instance generator for ibek_support_diff
mod live; // every start re-reads the config: restarts, reload, control commands, start hooks
mod msi; // iocrun expand vs msi: conformance vectors and a property test
mod msi_gen; // seeded input generator for the msi property test
mod pid1; // PID-1 duties T1-T8, as subreaper and as real PID 1
mod place_files; // iocrun place-files vs ibek runtime place-files
mod pvi;
mod pvmetrics; // PV values as metrics through CA monitors, on a real softIoc under iocrun start
mod render; // iocrun generate vs ibek runtime generate2: conformance cases, probes, sdist samples
mod render_fixtures; // our instances over real support modules vs ibek 4.8.2 goldens; embedded epics.*
mod schema; // iocrun schema vs ibek ioc generate-schema; validated with jsonschema/check-jsonschema
mod serve; // health verdicts, probes and metrics (strict OpenMetrics parser, promtool)
mod start; // iocrun start with softIoc: start steps, console input, restarts, failure pause
mod util;
mod wait; // iocrun wait vs ibek ioc do-wait, with loopback listeners

// the console server, its socket protocol and `iocrun attach`
mod console;
// the console end to end: iocrun start with softIoc, clients, attach in a PTY
mod console_ioc;
