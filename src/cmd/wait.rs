//! `iocrun wait`: ibek's `ioc do-wait`; and start step 8, the same wait inside `iocrun start`.

use std::process::ExitCode;

use crate::cli::{WaitArgs, WaitFlags};
use crate::error::Error;
use crate::paths::Paths;
use crate::wait::{self, Lines, Options, Report};

/// Wait for the listed hardware, then create the done file.
pub fn run(args: WaitArgs) -> Result<ExitCode, Error> {
    let paths = Paths::from_env();
    let source = args
        .source
        .unwrap_or_else(|| paths.runtime("wait_list.yaml"));
    let opts = Options {
        progress_every: args.progress,
        overall: args.timeout,
    };
    let skip = args.disable.as_deref() == Some("true");
    let mut out = Lines(std::io::stdout());
    wait::do_wait(&source, &args.done_file, skip, &opts, &mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// Start step 8: wait for `$RUNTIME_DIR/wait_list.yaml` unless `IBEK_DO_WAIT_DISABLE=true` or
/// the instance has no `ioc.yaml` (start.sh runs do-wait only for ibek instances). The done
/// file is removed first and created when the wait succeeds or is skipped, so a
/// startup probe polling it works in every case. `report` receives the progress lines and
/// the pending devices (for `serve::Health`).
pub fn wait_step(paths: &Paths, flags: &WaitFlags, report: &mut dyn Report) -> Result<(), Error> {
    if !paths.config_dir.join("ioc.yaml").is_file() {
        // a hand-written instance has no wait list: nothing to say, but the probe file is due
        wait::clear_done_file(&flags.wait_done_file)?;
        wait::write_done_file(&flags.wait_done_file)?;
        return Ok(());
    }
    let skip = flags.wait_disable.as_deref() == Some("true");
    let opts = Options {
        progress_every: flags.wait_progress,
        overall: flags.wait_timeout,
    };
    let source = paths.runtime("wait_list.yaml");
    wait::do_wait(&source, &flags.wait_done_file, skip, &opts, report)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Quiet;
    impl Report for Quiet {
        fn line(&mut self, _: &str) {}
    }

    fn flags(done: &std::path::Path) -> WaitFlags {
        WaitFlags {
            wait_done_file: done.to_owned(),
            wait_timeout: Some(Duration::from_millis(200)),
            wait_progress: Duration::from_secs(10),
            wait_disable: None,
        }
    }

    #[test]
    fn step_skips_without_ioc_yaml_and_still_writes_the_done_file() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::from_lookup(|k| (k == "EPICS_ROOT").then(|| tmp.path().to_owned()));
        // a list that could never succeed: it must not even be read
        crate::files::write_atomic(&paths.runtime("wait_list.yaml"), b"- type: [").unwrap();
        let done = tmp.path().join("done");
        wait_step(&paths, &flags(&done), &mut Quiet).unwrap();
        assert!(done.exists());
    }

    #[test]
    fn step_waits_for_ibek_instances() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::from_lookup(|k| (k == "EPICS_ROOT").then(|| tmp.path().to_owned()));
        crate::files::write_atomic(&paths.config_dir.join("ioc.yaml"), b"ioc_name: x").unwrap();
        crate::files::write_atomic(&paths.runtime("wait_list.yaml"), b"- type: [").unwrap();
        let done = tmp.path().join("done");
        assert!(wait_step(&paths, &flags(&done), &mut Quiet).is_err());
        assert!(!done.exists());
    }
}
