//! `iocrun caget [-w SECONDS] PV...`: Channel Access reads, printed as EPICS `caget` prints
//! them.
//!
//! As caget does, every PV is searched for at once within the `-w` time; when any is not found
//! nothing is printed and the exit code is 1. Otherwise each is printed on its own line in the
//! order given; a PV whose read fails is reported on stderr and makes the exit code 1.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::CagetArgs;
use crate::error::Error;
use crate::serve::ca;

/// PVs read at the same time; the rest wait for a free slot (each read holds two sockets).
const IN_FLIGHT: usize = 64;

/// Read every PV, print `NAME VALUE` lines.
pub fn run(args: CagetArgs) -> Result<ExitCode, Error> {
    let config = ca::Config::from_lookup(|name| std::env::var(name).ok());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ca::CaError::Io {
            what: "start the async runtime",
            source,
        })?;
    let readings = runtime.block_on(read_all(config, &args.pvs, args.wait));
    if let [pv] = args.pvs.as_slice() {
        // one PV: its own error, naming it, as caget's
        for reading in readings {
            println!("{}", ca::caget_line(pv, &reading?.value.values));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let missing: Vec<&str> = args
        .pvs
        .iter()
        .zip(&readings)
        .filter(|(_, r)| matches!(r, Err(ca::CaError::NotFound { .. })))
        .map(|(pv, _)| pv.as_str())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "iocrun: channel connect timed out: some PV(s) not found: '{}'",
            missing.join("', '")
        );
        return Ok(ExitCode::from(1));
    }
    let mut code = ExitCode::SUCCESS;
    for (pv, reading) in args.pvs.iter().zip(readings) {
        match reading {
            Ok(reading) => println!("{}", ca::caget_line(pv, &reading.value.values)),
            Err(err) => {
                eprintln!("iocrun: {}", crate::error::chain(&err));
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}

/// Search for and read every PV concurrently (at most [`IN_FLIGHT`] at once), each within
/// `wait`; the results in the order of `pvs`.
async fn read_all(
    config: ca::Config,
    pvs: &[String],
    wait: Duration,
) -> Vec<Result<ca::Reading, ca::CaError>> {
    let config = Arc::new(config);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, pv) in pvs.iter().enumerate() {
        let (config, slots, pv) = (config.clone(), slots.clone(), pv.clone());
        tasks.spawn(async move {
            // the semaphore is never closed, so a permit always comes
            let _slot = slots.acquire().await;
            (i, ca::get(&config, &pv, wait).await)
        });
    }
    let mut out: Vec<Option<Result<ca::Reading, ca::CaError>>> =
        std::iter::repeat_with(|| None).take(pvs.len()).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, result)) = joined {
            out[i] = Some(result);
        }
    }
    out.into_iter()
        .zip(pvs)
        .map(|(r, pv)| {
            r.unwrap_or_else(|| {
                Err(ca::CaError::Timeout {
                    pv: pv.clone(),
                    step: "read",
                })
            })
        })
        .collect()
}
