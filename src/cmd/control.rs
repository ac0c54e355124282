//! `iocrun status`, `iocrun restart`, `iocrun stop`: requests to the running supervisor over
//! its control socket (the protocol is in `serve::control`).

use std::process::ExitCode;

use crate::cli::{ControlArgs, StatusArgs};
use crate::error::Error;
use crate::serve;

/// Print the supervisor's status as it answered.
pub fn status(args: StatusArgs) -> Result<ExitCode, Error> {
    let request = if args.json { "status json" } else { "status" };
    let answer = serve::ask(&args.control.socket, request, args.control.timeout)?;
    print!("{answer}");
    Ok(ExitCode::SUCCESS)
}

/// Send `restart` or `stop`; exit 0 when the supervisor took it, 1 when it said why not.
pub fn request(args: &ControlArgs, word: &str) -> Result<ExitCode, Error> {
    let answer = serve::ask(&args.socket, word, args.timeout)?;
    let answer = answer.trim_end();
    match answer.strip_prefix("ok ") {
        Some(what) => {
            println!("{what}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "iocrun: {}",
                answer.strip_prefix("error ").unwrap_or(answer)
            );
            Ok(ExitCode::from(1))
        }
    }
}
