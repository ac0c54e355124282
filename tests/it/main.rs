//! The single integration-test binary. One `mod` per theme; each test gets its own temporary
//! EPICS tree through `util::TestEnv` and never reads the real `/epics`.
//!
//! External tools (softIoc, msi, ibek, the ibek sdist samples) are found through the variables
//! `scripts/install-test-deps.sh` writes; `scripts/test.sh` sets them.

mod autosave; // iocrun autosave vs ibek runtime generate-autosave
mod msi; // iocrun expand vs msi: conformance vectors and a property test
mod msi_gen; // seeded input generator for the msi property test
mod place_files; // iocrun place-files vs ibek runtime place-files
mod pvi;
mod render; // iocrun generate vs ibek runtime generate2: conformance cases, probes, sdist samples
mod util;
mod wait; // iocrun wait vs ibek ioc do-wait, with loopback listeners

// the console server, its socket protocol and `iocrun attach`
mod console;
