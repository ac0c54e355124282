//! `iocrun check DIR...`: validate IOC instances exactly as `generate` would render them,
//! writing nothing, for a services repository's CI: one verdict per folder, errors with
//! `file:line:col`, GitHub Actions annotations with `--format github`, and warnings where
//! ibek would silently do something surprising (`IOC_NAME` unset, an empty `ioc_name`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{CheckArgs, CheckFormat};
use crate::config::{ConfigError, DefinitionCache};
use crate::error::Error;
use crate::paths::Paths;
use crate::pvi::PviError;
use crate::render::{self, Inputs, Outputs, RenderError};

/// How many errors are printed per folder (the rest are counted).
const MAX_ERRORS: usize = 5;

/// One finding, located where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl Diagnostic {
    fn unlocated(message: String) -> Diagnostic {
        Diagnostic {
            file: None,
            line: None,
            column: None,
            message,
        }
    }

    /// `file:line:col: message` on one line.
    fn text(&self) -> String {
        let msg = one_line(&self.message);
        match &self.file {
            Some(f) => format!(
                "{}: {msg}",
                crate::config::location(f, self.line, self.column)
            ),
            None => msg,
        }
    }

    /// A GitHub Actions workflow command (`::error file=…,line=…,col=…::message`).
    fn github(&self, level: &str) -> String {
        let mut props = Vec::new();
        if let Some(f) = &self.file {
            props.push(format!("file={}", gh_property(&f.display().to_string())));
        }
        if let Some(l) = self.line {
            props.push(format!("line={l}"));
        }
        if let Some(c) = self.column {
            props.push(format!("col={c}"));
        }
        props.push("title=iocrun check".into());
        format!("::{level} {}::{}", props.join(","), gh_data(&self.message))
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Escaping of a workflow command's message.
fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping of a workflow command's property value.
fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The verdict on one folder.
#[derive(Debug)]
pub struct Report {
    pub dir: PathBuf,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// Run the subcommand: check every folder, print a verdict each, fail if any failed.
pub fn run(args: &CheckArgs) -> Result<ExitCode, Error> {
    let paths = Paths::from_env();
    let dirs = if args.config_dirs.is_empty() {
        vec![paths.config_dir.clone()]
    } else {
        args.config_dirs.clone()
    };
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    // support files shared by the folders (an image's, or --definitions) are read once
    let mut cache = DefinitionCache::default();
    for dir in &dirs {
        let report = check_dir(&paths, dir, &args.definitions, !args.no_pvi, &mut cache);
        if !report.errors.is_empty() {
            failed += 1;
        }
        // a closed stdout (`| head`) is no reason to stop checking
        let _ = out.write_all(format_report(&report, args.format).as_bytes());
    }
    if dirs.len() > 1 {
        let _ = writeln!(
            out,
            "{} of {} instances ok, {failed} failed",
            dirs.len() - failed,
            dirs.len()
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Render one folder in memory (pvi included unless `pvi` is false) and collect what is wrong.
pub fn check_dir(
    paths: &Paths,
    dir: &Path,
    definitions: &[PathBuf],
    pvi: bool,
    cache: &mut DefinitionCache,
) -> Report {
    let mut report = Report {
        dir: dir.to_owned(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let inputs = match super::generate::inputs(paths, Some(dir), &[], definitions, pvi) {
        Ok(mut i) => {
            // the folder checked is the one the container mounts as $EPICS_ROOT/ioc/config,
            // where pvi looks for device files first
            i.pvi_override_dir = dir.to_owned();
            i
        }
        Err(e) => {
            report.errors = diagnostics(&e);
            return report;
        }
    };
    report.warnings = ioc_name_warnings(&inputs);
    let main_file = inputs.instance_files.first().cloned();
    match render_and_check(&inputs, cache) {
        Ok(out) => {
            if out.ioc_name.is_empty() && report.warnings.is_empty() {
                report.warnings.push(Diagnostic {
                    file: inputs.instance_files.last().cloned(),
                    line: None,
                    column: None,
                    message: "ioc_name renders as an empty string".into(),
                });
            }
        }
        Err(e) => {
            // an error that names no file (a pvi device, say) is the instance's
            report.errors = diagnostics(&e);
            for d in &mut report.errors {
                if d.file.is_none() {
                    d.file = main_file.clone();
                }
            }
        }
    }
    report
}

fn render_and_check(inputs: &Inputs, cache: &mut DefinitionCache) -> Result<Outputs, Error> {
    let out = render::generate_cached(inputs, cache)?;
    if inputs.pvi {
        check_pvi(inputs, &out)?;
    }
    Ok(out)
}

/// Whether the config folder would start, as the start sequence reads it, writing nothing:
/// a `start.sh` or a hand-written `st.cmd` is taken as it is; an `ioc.yaml` must render, with
/// its PVI templates (screens that cannot be made only warn at start, so they pass here).
/// Used by `--watch-config` before it restarts the IOC on a changed folder.
pub fn config_would_start(paths: &Paths) -> Result<(), Error> {
    let dir = &paths.config_dir;
    if !dir.join("ioc.yaml").is_file() {
        if dir.join("start.sh").is_file() || dir.join("st.cmd").is_file() {
            return Ok(());
        }
        return Err(Error::Usage(format!(
            "config folder '{}' has none of ioc.yaml, st.cmd or start.sh",
            dir.display()
        )));
    }
    let inputs = super::generate::inputs(paths, Some(dir), &[], &[], true)?;
    let out = render::generate(&inputs)?;
    super::generate::check_pvi(&inputs, &out)?;
    Ok(())
}

/// Make every screen and template, keeping none; unlike `generate`, a screen that cannot be
/// made fails the check, so a services repository hears about a bad device file before
/// deploying.
fn check_pvi(inputs: &Inputs, out: &Outputs) -> Result<(), Error> {
    match super::generate::check_pvi(inputs, out)?.into_iter().next() {
        Some(err) => Err(Error::from(PviError::Screens(Box::new(err)))),
        None => Ok(()),
    }
}

/// `IOC_NAME` unset while an instance's `ioc_name` reads it: ibek renders an empty name
/// without a word (and the PV prefixes built from it are then wrong).
fn ioc_name_warnings(inputs: &Inputs) -> Vec<Diagnostic> {
    if std::env::var_os("IOC_NAME").is_some() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for file in &inputs.instance_files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let found = text.lines().enumerate().find_map(|(i, l)| {
            let t = l.trim_start();
            (t.starts_with("ioc_name:") || t.starts_with("\"ioc_name\":"))
                .then(|| l.find("IOC_NAME").map(|c| (i + 1, c + 1)))
                .flatten()
        });
        if let Some((line, column)) = found {
            out.push(Diagnostic {
                file: Some(file.clone()),
                line: Some(line),
                column: Some(column),
                message: "IOC_NAME is not set, so ioc_name renders as an empty string (ibek does \
                          this silently); set IOC_NAME as the deployment does, e.g. to the \
                          instance folder's name"
                    .into(),
            });
        }
    }
    out
}

/// Located findings from an error.
fn diagnostics(e: &Error) -> Vec<Diagnostic> {
    match e {
        Error::Render(RenderError::Entities(errs)) => errs
            .iter()
            .map(|x| {
                let full = x.to_string();
                let loc = crate::config::location(&x.file, x.line, x.column);
                Diagnostic {
                    file: Some(x.file.clone()),
                    line: x.line,
                    column: x.column,
                    message: full
                        .strip_prefix(&format!("{loc}: "))
                        .unwrap_or(&full)
                        .to_owned(),
                }
            })
            .collect(),
        Error::Render(RenderError::Config(c)) | Error::Config(c) => vec![config_diagnostic(c)],
        Error::Render(RenderError::IocName { file, message }) => vec![Diagnostic {
            file: Some(file.clone()),
            line: None,
            column: None,
            message: format!("ioc_name: {message}"),
        }],
        Error::Render(RenderError::Output { what, message }) => {
            vec![located_in_text(&format!("rendering {what}"), message)]
        }
        other => vec![Diagnostic::unlocated(crate::error::chain(other))],
    }
}

/// A message that names its entity as `file:line[:col]: …` (st.cmd and ioc.subst errors):
/// the location moved into the diagnostic's fields.
fn located_in_text(what: &str, message: &str) -> Diagnostic {
    let parsed = message.split_once(": ").and_then(|(loc, rest)| {
        let mut parts = loc.rsplitn(3, ':');
        let last: usize = parts.next()?.parse().ok()?;
        let (file, line, column) = match (parts.next(), parts.next()) {
            (Some(l), Some(f)) if l.parse::<usize>().is_ok() => (f, l.parse().ok(), Some(last)),
            (Some(f), rest) => {
                let f = match rest {
                    Some(r) => &loc[..r.len() + 1 + f.len()],
                    None => f,
                };
                (f, Some(last), None)
            }
            _ => return None,
        };
        Path::new(file).is_file().then(|| Diagnostic {
            file: Some(PathBuf::from(file)),
            line,
            column,
            message: format!("{what}: {rest}"),
        })
    });
    parsed.unwrap_or_else(|| Diagnostic::unlocated(format!("{what}: {message}")))
}

fn config_diagnostic(c: &ConfigError) -> Diagnostic {
    let (file, line, column, message) = match c {
        ConfigError::Read { path, .. } => (path, None, None, crate::error::chain(c)),
        ConfigError::Yaml {
            path,
            line,
            column,
            message,
        } => (path, *line, *column, message.clone()),
        ConfigError::Support {
            path,
            line,
            message,
        } => (path, *line, None, format!("validation error: {message}")),
        ConfigError::Instance {
            path,
            line,
            message,
        } => (path, *line, None, message.clone()),
    };
    Diagnostic {
        file: Some(file.clone()),
        line,
        column,
        message,
    }
}

/// The lines printed for one folder.
pub fn format_report(r: &Report, format: CheckFormat) -> String {
    let dir = r.dir.display();
    let mut s = String::new();
    if format == CheckFormat::Github {
        for w in &r.warnings {
            s.push_str(&w.github("warning"));
            s.push('\n');
        }
        for e in r.errors.iter().take(MAX_ERRORS) {
            s.push_str(&e.github("error"));
            s.push('\n');
        }
    }
    if r.errors.is_empty() {
        s.push_str(&format!("ok {dir}\n"));
    } else {
        s.push_str(&format!("FAIL {dir}\n"));
    }
    for e in r.errors.iter().take(MAX_ERRORS) {
        s.push_str(&format!("  error: {}\n", e.text()));
    }
    if r.errors.len() > MAX_ERRORS {
        s.push_str(&format!(
            "  ... and {} more errors\n",
            r.errors.len() - MAX_ERRORS
        ));
    }
    for w in &r.warnings {
        s.push_str(&format!("  warning: {}\n", w.text()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(msg: &str) -> Diagnostic {
        Diagnostic {
            file: Some(PathBuf::from("svc/ioc-a/config/ioc.yaml")),
            line: Some(7),
            column: Some(5),
            message: msg.into(),
        }
    }

    #[test]
    fn text_report_is_one_verdict_line_then_located_findings() {
        let r = Report {
            dir: PathBuf::from("svc/ioc-a/config"),
            errors: vec![diag("entities.2.`m.X`.baud: Field required\n  more")],
            warnings: vec![],
        };
        assert_eq!(
            format_report(&r, CheckFormat::Text),
            "FAIL svc/ioc-a/config\n  error: svc/ioc-a/config/ioc.yaml:7:5: entities.2.`m.X`.baud: Field required / more\n"
        );
        let ok = Report {
            dir: PathBuf::from("d"),
            errors: vec![],
            warnings: vec![],
        };
        assert_eq!(format_report(&ok, CheckFormat::Text), "ok d\n");
    }

    #[test]
    fn output_errors_are_located_from_their_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ioc.yaml");
        std::fs::write(&file, "x").unwrap();
        let d = located_in_text(
            "rendering ioc.subst",
            &format!("{}:37: entities.12 `a.B`: args differ", file.display()),
        );
        assert_eq!(d.file.as_deref(), Some(file.as_path()));
        assert_eq!((d.line, d.column), (Some(37), None));
        assert_eq!(
            d.message,
            "rendering ioc.subst: entities.12 `a.B`: args differ"
        );
        let d = located_in_text("rendering st.cmd", &format!("{}:3:9: bad", file.display()));
        assert_eq!((d.line, d.column), (Some(3), Some(9)));
        let d = located_in_text("rendering st.cmd", "no location: here");
        assert_eq!(d.file, None);
        assert_eq!(d.message, "rendering st.cmd: no location: here");
    }

    #[test]
    fn github_annotations_escape_their_fields() {
        let d = Diagnostic {
            file: Some(PathBuf::from("a,b:c/ioc.yaml")),
            line: Some(3),
            column: None,
            message: "100% bad\nsecond".into(),
        };
        assert_eq!(
            d.github("error"),
            "::error file=a%2Cb%3Ac/ioc.yaml,line=3,title=iocrun check::100%25 bad%0Asecond"
        );
        let r = Report {
            dir: PathBuf::from("d"),
            errors: vec![],
            warnings: vec![diag("IOC_NAME is not set")],
        };
        assert_eq!(
            format_report(&r, CheckFormat::Github),
            "::warning file=svc/ioc-a/config/ioc.yaml,line=7,col=5,title=iocrun check::IOC_NAME is not set\nok d\n  warning: svc/ioc-a/config/ioc.yaml:7:5: IOC_NAME is not set\n"
        );
    }
}
