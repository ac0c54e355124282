//! msi's main loop: macros from `-M`, then either one template, or every set of a
//! substitution file expanded against its template in file order.

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::rc::Rc;

use super::macros::MacroTable;
use super::parse::{ParseFail, SubstParser};
use super::template::{Directive, Library, Template};
use super::ExpandError;

/// msi caps nothing; iocrun stops a runaway `include` chain here.
pub const MAX_INCLUDE_DEPTH: usize = 64;
/// msi remembers at most this many dependencies for `-D`.
const MAX_DEPS: usize = 1024;

/// What to expand and how: msi's options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-I` folders, in search order (already split on `:`).
    pub include_path: Vec<PathBuf>,
    /// `-M` definition strings, applied in order.
    pub macros: Vec<Vec<u8>>,
    /// `-V`: undefined macros are errors (exit status 2) and are reported.
    pub undefined_is_error: bool,
    /// `-g`: no per-set scope.
    pub global_scope: bool,
    /// `-D` with the `-o` name: print make dependencies instead of the expansion.
    pub deps_target: Option<Vec<u8>>,
    /// `-S`: the substitution file.
    pub subst: Option<PathBuf>,
    /// The template argument (replaces every `file` name); stdin when neither it nor `-S`.
    pub template: Option<Vec<u8>>,
}

/// How a successful expansion went.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// With `-V`: some expanded line had an undefined or recursive macro (msi exits 2).
    pub undefined_error: bool,
    /// Macro names left unexpanded in the output, in first-seen order, each once.
    pub undefined_names: Vec<String>,
}

/// One run of the expansion, writing to `out` and reporting warnings to `warn`.
pub(crate) struct Run<'a, W: Write> {
    opts: &'a Options,
    table: MacroTable,
    library: Library,
    out: W,
    warn: &'a mut dyn FnMut(&str),
    deps: Vec<Vec<u8>>,
    deps_count: usize,
    reported_undefined: bool,
    outcome: Outcome,
    /// The last line of the last template finished, for the error trace.
    last: Option<(Rc<Template>, usize)>,
    line_buf: Vec<u8>,
}

/// An open template and the next line to read from it.
struct Frame {
    template: Rc<Template>,
    next: usize,
}

impl<'a, W: Write> Run<'a, W> {
    pub(crate) fn new(opts: &'a Options, out: W, warn: &'a mut dyn FnMut(&str)) -> Self {
        let mut table = MacroTable::new(!opts.undefined_is_error);
        for defs in &opts.macros {
            table.install(defs);
        }
        Run {
            opts,
            table,
            library: Library::new(opts.include_path.clone()),
            out,
            warn,
            deps: Vec::new(),
            deps_count: 0,
            reported_undefined: false,
            outcome: Outcome::default(),
            last: None,
            line_buf: Vec::new(),
        }
    }

    /// The whole run. On error, output produced so far has been written to `out`.
    pub(crate) fn run(mut self) -> Result<(Outcome, W), (ExpandError, W)> {
        let result = self.run_inner();
        self.flush_warnings();
        let flushed = self.out.flush();
        match result.and(flushed.map_err(ExpandError::write)) {
            Ok(()) => {
                let mut names = Vec::new();
                for n in self.table.take_undefined() {
                    let n = String::from_utf8_lossy(&n).into_owned();
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
                self.outcome.undefined_names = names;
                Ok((self.outcome, self.out))
            }
            Err(e) => Err((e, self.out)),
        }
    }

    fn run_inner(&mut self) -> Result<(), ExpandError> {
        if let Some(target) = &self.opts.deps_target {
            self.out.write_all(target).map_err(ExpandError::write)?;
            self.out.write_all(b":").map_err(ExpandError::write)?;
        }
        match self.opts.subst.clone() {
            None => self.substitute(self.opts.template.clone().as_deref())?,
            Some(path) => self.subst_file(&path)?,
        }
        if self.opts.deps_target.is_some() {
            self.out.write_all(b"\n").map_err(ExpandError::write)?;
        }
        Ok(())
    }

    fn subst_file(&mut self, path: &std::path::Path) -> Result<(), ExpandError> {
        let file = std::fs::File::open(path).map_err(|source| ExpandError::OpenSubst {
            path: path.to_owned(),
            source,
        })?;
        let shown = path.to_string_lossy().into_owned();
        let fail = |f: ParseFail| match f {
            ParseFail::Syntax(error) => ExpandError::Syntax {
                path: path.to_owned(),
                error,
            },
            ParseFail::Io(source) => ExpandError::ReadSubst {
                path: path.to_owned(),
                source,
            },
        };
        let mut parser = SubstParser::new(BufReader::new(file), &shown).map_err(fail)?;
        loop {
            let global = parser.global_set().map_err(fail)?;
            if global {
                if let Some(defs) = parser.global_replacements().map_err(fail)? {
                    self.table.install(defs);
                }
                continue;
            }
            let next = parser.next_set().map_err(fail);
            self.warnings_from(parser.take_warnings());
            let Some(file) = next? else { break };
            let name = match (&self.opts.template, file) {
                (Some(t), _) => t.clone(),
                (None, Some(f)) => f,
                (None, None) => return Err(ExpandError::NoTemplate),
            };
            let mut defs = Vec::new();
            loop {
                let more = match parser.replacements() {
                    Ok(Some(d)) => {
                        defs.clear();
                        defs.extend_from_slice(d);
                        Ok(true)
                    }
                    Ok(None) => Ok(false),
                    Err(e) => Err(fail(e)),
                };
                self.warnings_from(parser.take_warnings());
                if !more? {
                    break;
                }
                if !self.opts.global_scope {
                    self.table.push_scope();
                }
                self.table.install(&defs);
                self.substitute(Some(&name))?;
                if !self.opts.global_scope {
                    self.table.pop_scope();
                }
            }
        }
        Ok(())
    }

    fn warnings_from(&mut self, warnings: Vec<String>) {
        for w in warnings {
            (self.warn)(&w);
        }
    }

    fn flush_warnings(&mut self) {
        let w = self.table.take_warnings();
        self.warnings_from(w);
    }

    /// msi's `makeSubstitutions`: expand one template (with its includes) onto the output.
    fn substitute(&mut self, name: Option<&[u8]>) -> Result<(), ExpandError> {
        let mut stack: Vec<Frame> = Vec::new();
        let first = self.open(name, &stack)?;
        stack.push(Frame {
            template: first,
            next: 0,
        });
        while let Some(frame) = stack.last_mut() {
            let i = frame.next;
            if i >= frame.template.lines.len() {
                if let Some(done) = stack.pop().filter(|f| f.next > 0) {
                    self.last = Some((done.template, done.next - 1));
                }
                continue;
            }
            frame.next += 1;
            let template = frame.template.clone();
            match &template.lines[i].directive {
                Some(Directive::Include(inc)) => {
                    if stack.len() >= MAX_INCLUDE_DEPTH {
                        return Err(ExpandError::IncludeDepth {
                            name: String::from_utf8_lossy(inc).into_owned(),
                            trace: self.trace(&stack),
                        });
                    }
                    let t = self.open(Some(inc), &stack)?;
                    stack.push(Frame {
                        template: t,
                        next: 0,
                    });
                }
                Some(Directive::Substitute(defs)) => self.table.install(defs),
                None if self.opts.deps_target.is_some() => {}
                None => self.expand_line(&template, i)?,
            }
        }
        self.flush_warnings();
        Ok(())
    }

    fn expand_line(&mut self, template: &Template, i: usize) -> Result<(), ExpandError> {
        let text = template.text(i);
        let cut_short = |table: &mut MacroTable| match table.take_cut() {
            None => Ok(()),
            Some(cut) => Err(ExpandError::MacroBound {
                template: String::from_utf8_lossy(&template.recorded).into_owned(),
                line: i + 1,
                cut: cut.to_string(),
            }),
        };
        if !template.lines[i].has_ref {
            // nothing to expand, but a changed table is still re-expanded (and warns)
            self.table.refresh();
            cut_short(&mut self.table)?;
            return self.out.write_all(text).map_err(ExpandError::write);
        }
        self.line_buf.clear();
        let error = self.table.expand_str(text, &mut self.line_buf);
        cut_short(&mut self.table)?;
        self.out
            .write_all(&self.line_buf)
            .map_err(ExpandError::write)?;
        if error && self.opts.undefined_is_error {
            self.outcome.undefined_error = true;
            if !self.reported_undefined {
                self.reported_undefined = true;
                self.flush_warnings();
                (self.warn)("msi: Error - undefined macros present");
            }
        }
        Ok(())
    }

    /// Open a template, recording it for `-D`; a missing file is fatal with msi's trace.
    fn open(&mut self, name: Option<&[u8]>, stack: &[Frame]) -> Result<Rc<Template>, ExpandError> {
        let Some(t) = self.library.open(name) else {
            let dirs = &self.opts.include_path;
            let searched = match name {
                Some(n) if !dirs.is_empty() && !n.contains(&b'/') => {
                    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                    format!(" (searched {})", dirs.join(", "))
                }
                _ => String::new(),
            };
            return Err(ExpandError::OpenTemplate {
                name: String::from_utf8_lossy(name.unwrap_or(b"stdin")).into_owned(),
                searched,
                trace: self.trace(stack),
            });
        };
        if self.opts.deps_target.is_some() {
            self.record_dep(&t.recorded)?;
        }
        Ok(t)
    }

    fn record_dep(&mut self, name: &[u8]) -> Result<(), ExpandError> {
        if self.deps.iter().any(|d| d == name) {
            return Ok(());
        }
        let wrap: &[u8] = if self.deps_count > 0 { b" \\\n" } else { b"" };
        self.out.write_all(wrap).map_err(ExpandError::write)?;
        self.out.write_all(b" ").map_err(ExpandError::write)?;
        self.out.write_all(name).map_err(ExpandError::write)?;
        self.deps_count += 1;
        if self.deps.len() < MAX_DEPS {
            self.deps.push(name.to_vec());
        } else {
            (self.warn)(&format!("msi: More than {MAX_DEPS} dependencies!"));
            self.deps[0] = name.to_vec();
        }
        Ok(())
    }

    /// msi's `inputErrPrint`: the last line read and the include stack.
    fn trace(&self, stack: &[Frame]) -> String {
        let current = stack.iter().rev().find(|f| f.next > 0);
        let last = match (current, &self.last) {
            (Some(f), _) => String::from_utf8_lossy(f.template.text(f.next - 1)).into_owned(),
            (None, Some((t, i))) => String::from_utf8_lossy(t.text(*i)).into_owned(),
            (None, None) => String::new(),
        };
        let mut s = format!("input: '{last}' at ");
        for (k, frame) in stack.iter().rev().enumerate() {
            let name = String::from_utf8_lossy(&frame.template.recorded);
            s.push_str(&format!("line {} of  file {name}\n", frame.next));
            s.push_str(if k + 1 < stack.len() {
                "  included from "
            } else {
                "\n"
            });
        }
        s.push('\n');
        s
    }
}
