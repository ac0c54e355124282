//! `iocrun expand`: msi's command line, messages and exit codes.
//!
//! The arguments are parsed by hand because msi's forms cannot be expressed in clap: options
//! are recognised by prefix (`-Idir` and `-I dir`, `-ofile`, `-Ma=b`), parsing stops at the
//! first argument not starting with `-`, and `-V`, `-g`, `-D`, `-h` must be exact. msi's
//! stderr layout is part of what users see, so this command prints its own messages and
//! returns the exit status (0, 1, or 2 for `-V` with undefined macros) instead of an error.
//! The one addition: `--help`, a bad argument to msi, prints the usage on stdout and exits 0.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::ExpandArgs;
use crate::error::Error;
use crate::expand::{self, split_include_path, ExpandError, Options};
use crate::paths::Paths;

const USAGE: &str = "Usage: msi [options] [template]
  stdin is used if neither template nor substitution file is given
  options:
    -h        Print this help message
    -D        Output file dependencies, not substitutions
    -V        Undefined macros generate an error
    -g        All macros have global scope
    -o<FILE>  Send output to <FILE>
    -I<DIR>   Add <DIR> to include file search path
    -M<SUBST> Add <SUBST> to (global) macro definitions
              (<SUBST> takes the form VAR=VALUE,...)
    -S<FILE>  Expand the substitutions in FILE
";

/// `--help`, which msi rejects as a bad argument: the usage under iocrun's name, on stdout.
fn help() -> String {
    format!(
        "iocrun expand: msi (EPICS base 7.0.8.1) built into iocrun, with the same options, output \
         bytes and exit codes\n(0; 1 for any error; 2 with -V when a macro is undefined).\n\n{}",
        USAGE.replacen("Usage: msi", "Usage: iocrun expand", 1)
    )
}

/// What the command line asked for, or an early exit (usage, bad argument).
#[derive(Debug)]
enum Parsed {
    Run {
        opts: Options,
        out: Option<PathBuf>,
    },
    Exit {
        message: String,
        code: u8,
    },
    /// `--help`: print to stdout, exit 0.
    Help,
}

/// Run `iocrun expand`.
pub fn run(args: ExpandArgs) -> Result<ExitCode, Error> {
    let (opts, out) = match parse(args.args) {
        Parsed::Run { opts, out } => (opts, out),
        Parsed::Exit { message, code } => {
            eprint!("{message}");
            return Ok(ExitCode::from(code));
        }
        Parsed::Help => {
            print!("{}", help());
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut warn = |w: &str| eprintln!("{w}");
    let result = match (&out, opts.deps_target.is_some()) {
        (Some(path), false) => {
            if let Err(e) = check_writable(path) {
                eprint!("{}", message(&e));
                return Ok(ExitCode::from(1));
            }
            expand::expand_to_file(&opts, path, &mut warn)
        }
        _ => {
            let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
            expand::run(&opts, stdout, &mut warn)
                .map(|(outcome, _)| outcome)
                .map_err(|(e, _)| e)
        }
    };
    match result {
        Ok(outcome) => Ok(ExitCode::from(if outcome.undefined_error { 2 } else { 0 })),
        Err(e) => {
            if let Some(path) = &out {
                // msi's abortExit removes the -o file (also in -D mode)
                let _ = std::fs::remove_file(path);
            }
            eprint!("{}", message(&e));
            Ok(ExitCode::from(1))
        }
    }
}

/// Start step 6: when `$RUNTIME_DIR/ioc.subst` exists, expand it in-process into
/// `$RUNTIME_DIR/ioc.db` with the search path config, `$SUPPORT/*/db`, runtime, then the
/// folders of `also` (no `-V`). Macros left unexpanded are logged at info level; any failure
/// is an error (msi's exit 1 stops start.sh too).
pub fn ioc_db_step(paths: &Paths, also: &[PathBuf]) -> Result<(), Error> {
    let subst = paths.runtime("ioc.subst");
    if !subst.exists() {
        tracing::debug!("no {}; nothing to expand", subst.display());
        return Ok(());
    }
    let mut include =
        expand::ioc_include_path(&paths.config_dir, &paths.support, &paths.runtime_dir);
    include.extend_from_slice(also);
    let out = paths.runtime("ioc.db");
    let outcome = expand::expand_subst_file(&subst, &include, &out)?;
    if !outcome.undefined_names.is_empty() {
        tracing::info!(
            "{} has undefined macros, left as $(NAME): {}",
            out.display(),
            outcome.undefined_names.join(", ")
        );
    }
    tracing::debug!("expanded {} into {}", subst.display(), out.display());
    Ok(())
}

/// msi opens (creates) the output before doing anything else; fail the same way.
fn check_writable(path: &std::path::Path) -> Result<(), ExpandError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(|_| ())
        .map_err(|source| ExpandError::CreateOutput {
            path: path.to_owned(),
            source,
        })
}

/// msi's option loop (`main` in msi.cpp).
fn parse(args: Vec<OsString>) -> Parsed {
    let args: Vec<Vec<u8>> = args.into_iter().map(OsStringExt::into_vec).collect();
    let mut opts = Options::default();
    let mut out: Option<Vec<u8>> = None;
    let mut deps = false;
    let mut i = 0;
    while i < args.len() && args[i].first() == Some(&b'-') {
        let arg = &args[i];
        let exact = |flag: &[u8]| arg.as_slice() == flag;
        if exact(b"--help") {
            // the one argument msi has no meaning for that iocrun gives one
            return Parsed::Help;
        }
        if exact(b"-D") || exact(b"-V") || exact(b"-g") || exact(b"-h") {
            match arg[1] {
                b'D' => deps = true,
                b'V' => opts.undefined_is_error = true,
                b'g' => opts.global_scope = true,
                _ => return exit(USAGE.to_owned(), 0),
            }
            i += 1;
            continue;
        }
        let Some(&kind) = arg.get(1).filter(|c| b"IoMS".contains(c)) else {
            return bad_argument(arg);
        };
        // a bare `-I` takes the next argument; otherwise the value is attached
        let value = if arg.len() == 2 {
            i += 1;
            match args.get(i) {
                Some(v) => v.clone(),
                None => return bad_argument(arg),
            }
        } else {
            arg[2..].to_vec()
        };
        i += 1;
        match kind {
            b'I' => opts.include_path.extend(split_include_path(&value)),
            b'o' => out = Some(value),
            b'M' => opts.macros.push(value),
            _ => opts.subst = Some(PathBuf::from(std::ffi::OsStr::from_bytes(&value))),
        }
    }
    let rest = &args[i..];
    if rest.len() > 1 {
        return exit(format!("msi: Too many arguments\n{USAGE}"), 1);
    }
    opts.template = rest.first().cloned();
    if deps {
        let Some(target) = out.clone() else {
            return exit(
                "msi: Option -D requires -o for Makefile target\n".to_owned(),
                1,
            );
        };
        opts.deps_target = Some(target);
    }
    let out = out.map(|o| PathBuf::from(std::ffi::OsStr::from_bytes(&o)));
    Parsed::Run { opts, out }
}

fn exit(message: String, code: u8) -> Parsed {
    Parsed::Exit { message, code }
}

fn bad_argument(arg: &[u8]) -> Parsed {
    let arg = String::from_utf8_lossy(arg);
    exit(format!("msi: Bad argument \"{arg}\"\n{USAGE}"), 1)
}

/// msi's wording for each failure, with the line and column added.
fn message(e: &ExpandError) -> String {
    let error = if std::io::stderr().is_terminal() {
        "\x1b[31;1mERROR\x1b[0m"
    } else {
        "ERROR"
    };
    match e {
        ExpandError::OpenSubst { path, .. } => {
            format!("{error} msi: Can't open file '{}'\n", path.display())
        }
        ExpandError::OpenTemplate { name, trace, .. } => {
            format!("{error} msi: Can't open file '{name}'\n{trace}")
        }
        ExpandError::IncludeDepth { trace, .. } => format!("msi: {e}\n{trace}"),
        ExpandError::MacroBound { .. } => format!("msi: {e}\n"),
        ExpandError::Syntax { path, error } => {
            let extra = if error.message.starts_with("Strings") {
                "\n"
            } else {
                ""
            };
            let mut text = error.text.clone();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            format!(
                "msi: {}{extra}\n  in substitution file '{}' at line {}, column {}:\n  {text}",
                error.message,
                path.display(),
                error.line,
                error.column
            )
        }
        ExpandError::NoTemplate => format!("msi: No template file\n{USAGE}"),
        ExpandError::CreateOutput { path, source } => format!(
            "msi: Can't open {} for writing: {}\n",
            path.display(),
            strerror(source)
        ),
        ExpandError::ReadSubst { source, .. } | ExpandError::Write(source) => {
            format!("msi: {e}: {}\n", strerror(source))
        }
        ExpandError::Files(f) => format!("msi: {}\n", crate::error::chain(f)),
    }
}

/// The C library's text for an errno, without Rust's "(os error N)".
fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_owned(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Parsed {
        parse(args.iter().map(OsString::from).collect())
    }

    fn opts(args: &[&str]) -> (Options, Option<PathBuf>) {
        match p(args) {
            Parsed::Run { opts, out } => (opts, out),
            Parsed::Exit { message, .. } => panic!("{message}"),
            Parsed::Help => panic!("help"),
        }
    }

    #[test]
    fn attached_and_separate_values() {
        let (o, out) = opts(&[
            "-I", "a", "-Ib:c", "-oout.db", "-MA=1", "-M", "B=2", "-Ss", "t",
        ]);
        assert_eq!(o.include_path, ["a", "b", "c"].map(PathBuf::from));
        assert_eq!(out, Some(PathBuf::from("out.db")));
        assert_eq!(o.macros, [b"A=1".to_vec(), b"B=2".to_vec()]);
        assert_eq!(o.subst, Some(PathBuf::from("s")));
        assert_eq!(o.template, Some(b"t".to_vec()));
    }

    #[test]
    fn options_stop_at_the_first_positional() {
        assert!(matches!(
            p(&["t.template", "-MA=1"]),
            Parsed::Exit { code: 1, .. }
        ));
    }

    #[test]
    fn flags_must_be_exact() {
        assert!(matches!(p(&["-Vx"]), Parsed::Exit { code: 1, .. }));
        assert!(matches!(p(&["-h"]), Parsed::Exit { code: 0, .. }));
        assert!(matches!(p(&["--help"]), Parsed::Help));
        assert!(matches!(p(&["-I", ".", "--help"]), Parsed::Help));
        assert!(
            matches!(p(&["-help"]), Parsed::Exit { code: 1, .. }),
            "as msi"
        );
        assert!(matches!(p(&["-D", "-Ss"]), Parsed::Exit { code: 1, .. }));
        let (o, _) = opts(&["-D", "-o", "x", "-V", "-g"]);
        assert!(o.undefined_is_error && o.global_scope);
        assert_eq!(o.deps_target, Some(b"x".to_vec()));
    }
}
