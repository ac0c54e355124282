//! `iocrun caget PV [-w SECONDS]`: one Channel Access read, printed as EPICS `caget` prints it.

use std::process::ExitCode;

use crate::cli::CagetArgs;
use crate::error::Error;
use crate::serve::ca;

/// Search for the PV, read it once, print `NAME VALUE`.
pub fn run(args: CagetArgs) -> Result<ExitCode, Error> {
    let config = ca::Config::from_lookup(|name| std::env::var(name).ok());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ca::CaError::Io {
            what: "start the async runtime",
            source,
        })?;
    let reading = runtime.block_on(ca::get(&config, &args.pv, args.wait))?;
    println!("{}", ca::caget_line(&args.pv, &reading.value.values));
    Ok(ExitCode::SUCCESS)
}
