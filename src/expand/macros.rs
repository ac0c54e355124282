//! The macro table: EPICS macLib semantics.
//!
//! This is a close port of `macCore.c`/`macUtil.c`, because the observable output depends on
//! details of the C scanner: where a reference ends, when cached (pre-expanded) values are used
//! instead of raw ones (the `dirty` flag), which names are "visited" during an expansion, and
//! how a full buffer stops an escape from consuming its character. Positions are byte indices;
//! [`at`] reads a 0 past the end, standing in for C's terminating NUL.

use std::rc::Rc;

use super::defns::parse_defns;
use crate::limits::{MACRO_MAX_DEPTH, MACRO_MAX_STEPS};

/// `MAC_SIZE`: macro values and names are cut to this many bytes.
pub(crate) const MAC_SIZE: usize = 256;

/// The byte at `i`, or 0 past the end (C's terminator; an embedded NUL ends the text too).
#[inline(always)]
pub(crate) fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// Bytes that mean something to `trans` in any state: NUL, `$`, quotes, backslash.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[0] = true;
    t[b'$' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A terminator set of up to three bytes (C's `term` string); NUL always terminates.
#[derive(Clone, Copy)]
struct Term([u8; 3]);

impl Term {
    const END: Term = Term([0, 0, 0]);

    /// `=,)` or `=,}` after `$(` / `${`.
    fn name(open: u8) -> Term {
        Term([b'=', b',', if open == b'(' { b')' } else { b'}' }])
    }

    /// The same without `=`: where a default or a scoped value ends.
    fn value(self) -> Term {
        Term([self.0[1], self.0[2], 0])
    }

    #[inline(always)]
    fn ends(self, c: u8) -> bool {
        c == 0 || c == self.0[0] || c == self.0[1] || c == self.0[2]
    }
}

/// C `isspace` in the C locale.
#[inline]
pub(crate) fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Macro,
    Env,
    Scope,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Macro => "macro",
            Kind::Env => "environment variable",
            Kind::Scope => "scope marker",
        }
    }
}

#[derive(Debug)]
struct Entry {
    name: Rc<[u8]>,
    raw: Rc<[u8]>,
    /// The value expanded by [`MacroTable::refresh`], at most [`MAC_SIZE`] bytes.
    value: Vec<u8>,
    error: bool,
    visited: bool,
    kind: Kind,
    level: u32,
}

/// What is being expanded: named in warnings, and collects the error flag (C's `entry`).
struct Ctx {
    kind: &'static str,
    name: Rc<[u8]>,
    error: bool,
}

/// One macro table: definitions, scopes and the expansion engine.
#[derive(Debug)]
pub(crate) struct MacroTable {
    entries: Vec<Entry>,
    level: u32,
    /// Set by every change; cached values are stale until [`MacroTable::refresh`].
    dirty: bool,
    /// Without `-V` msi suppresses warnings, which also selects the `$(NAME)` placeholder.
    suppress: bool,
    /// Nesting of default texts and reference-scoped definitions, where warnings are off.
    quiet: u32,
    /// Look names up in the process environment (msi's `macEnvExpand` for file names).
    use_env: bool,
    /// macLib warnings not yet handed to the caller.
    warnings: Vec<String>,
    /// Names found undefined outside defaults, for the caller's diagnostics.
    undefined: Vec<Vec<u8>>,
    empty: Rc<[u8]>,
    scope_name: Rc<[u8]>,
    /// Spare buffers for reference names (one per nesting level in use).
    pool: Vec<Vec<u8>>,
    /// Why the last expansion was cut short (C recurses and re-scans without bound); it must
    /// be reported as an error.
    cut: Option<Cut>,
    /// Scans (`trans` calls) of the current expansion, against [`MACRO_MAX_STEPS`].
    steps: u64,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cut::Depth => write!(
                f,
                "macro references nested deeper than {MACRO_MAX_DEPTH} levels"
            ),
            Cut::Steps => write!(f, "macro expansion needs more than {MACRO_MAX_STEPS} scans"),
        }
    }
}

/// Why an expansion was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// References nested deeper than [`MACRO_MAX_DEPTH`].
    Depth,
    /// More than [`MACRO_MAX_STEPS`] scans: defaults inside defaults are scanned twice per
    /// level, so a few hundred bytes can take exponential time (in msi too).
    Steps,
}

impl MacroTable {
    /// An empty table. `suppress` is msi's behaviour without `-V`.
    pub(crate) fn new(suppress: bool) -> MacroTable {
        MacroTable {
            entries: Vec::new(),
            level: 0,
            dirty: false,
            suppress,
            quiet: 0,
            use_env: false,
            warnings: Vec::new(),
            undefined: Vec::new(),
            empty: Rc::from(&b""[..]),
            scope_name: Rc::from(&b"<scope>"[..]),
            pool: Vec::new(),
            cut: None,
            steps: 0,
        }
    }

    /// Take the warnings produced so far (macLib's `errlogPrintf` lines, without newline).
    pub(crate) fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Take the names that were undefined in expanded text so far.
    pub(crate) fn take_undefined(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.undefined)
    }

    /// Parse a definition string and install it at the current level (msi's
    /// `addMacroReplacements`: `macParseDefns` then `macInstallMacros`).
    pub(crate) fn install(&mut self, defs: &[u8]) {
        for (name, value) in parse_defns(defs) {
            self.put_value(&name, value.as_deref());
        }
    }

    /// `macPutValue`: define, or with `None` delete the name from every scope.
    /// As in C, only a stored value or a deleted entry marks the table dirty.
    pub(crate) fn put_value(&mut self, name: &[u8], value: Option<&[u8]>) {
        let Some(value) = value else {
            while let Some(i) = self.lookup(name) {
                let env = self.entries[i].kind == Kind::Env;
                self.entries.remove(i);
                self.dirty = true;
                if env {
                    break;
                }
            }
            return;
        };
        match self.lookup(name) {
            Some(i) if self.entries[i].level >= self.level => {
                self.entries[i].raw = Rc::from(value);
            }
            _ => self.create(Rc::from(name), Rc::from(value), Kind::Macro),
        }
        self.dirty = true;
    }

    /// `macPushScope`. A scope marker alone does not make cached values stale.
    pub(crate) fn push_scope(&mut self) {
        self.level += 1;
        let (name, empty) = (self.scope_name.clone(), self.empty.clone());
        self.create(name, empty, Kind::Scope);
    }

    /// `macPopScope`: drop the newest scope marker and everything defined after it.
    pub(crate) fn pop_scope(&mut self) {
        if self.level == 0 {
            return;
        }
        if let Some(i) = self.entries.iter().rposition(|e| e.kind == Kind::Scope) {
            self.entries.truncate(i);
            self.dirty = true;
            self.level -= 1;
        }
    }

    fn create(&mut self, name: Rc<[u8]>, raw: Rc<[u8]>, kind: Kind) {
        self.entries.push(Entry {
            name,
            raw,
            value: Vec::new(),
            error: false,
            visited: false,
            kind,
            level: self.level,
        });
    }

    /// Newest non-scope entry of that name; with `use_env`, an environment variable becomes
    /// a new entry on first use.
    fn lookup(&mut self, name: &[u8]) -> Option<usize> {
        let found = self
            .entries
            .iter()
            .rposition(|e| e.kind != Kind::Scope && *e.name == *name);
        if found.is_some() || !self.use_env || name.is_empty() {
            return found;
        }
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let value = std::env::var_os(std::ffi::OsStr::from_bytes(name))?;
        self.create(Rc::from(name), Rc::from(value.into_vec()), Kind::Env);
        self.dirty = true;
        Some(self.entries.len() - 1)
    }

    /// C `expand()`: re-expand every raw value when the table changed.
    pub(crate) fn refresh(&mut self) {
        if !self.dirty {
            return;
        }
        self.steps = 0;
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].kind != Kind::Scope {
                let raw = self.entries[i].raw.clone();
                let mut ctx = Ctx {
                    kind: self.entries[i].kind.label(),
                    name: self.entries[i].name.clone(),
                    error: false,
                };
                let mut value = std::mem::take(&mut self.entries[i].value);
                value.clear();
                let mut r = 0;
                self.trans(&mut ctx, 1, Term::END, &raw, &mut r, &mut value, MAC_SIZE);
                self.entries[i].value = value;
                self.entries[i].error = ctx.error;
            }
            i += 1;
        }
        self.dirty = false;
    }

    /// Why an expansion since the last call was cut short (its output is then incomplete);
    /// clears it.
    pub(crate) fn take_cut(&mut self) -> Option<Cut> {
        self.cut.take()
    }

    /// `macExpandString` without a length limit: expand `src` (at level 0, so quotes and
    /// escapes are kept) onto `out`. Returns true when a reference was undefined or recursive.
    pub(crate) fn expand_str(&mut self, src: &[u8], out: &mut Vec<u8>) -> bool {
        self.refresh();
        self.steps = 0;
        let name = if self.suppress {
            self.empty.clone()
        } else {
            Rc::from(src)
        };
        let mut ctx = Ctx {
            kind: "string",
            name,
            error: false,
        };
        let start = out.len();
        let mut r = 0;
        self.trans(&mut ctx, 0, Term::END, src, &mut r, out, usize::MAX);
        // macExpandString returns -length on error, so an empty result never counts
        ctx.error && out.len() > start
    }

    /// `trans()`: copy `src` from `*r` up to a terminator in `term` (or the end), expanding
    /// references. At level > 0 quotes and escape backslashes are dropped. Writes stop once
    /// `out` reaches `valend` bytes. `*r` is left on the terminator, or on the last byte when
    /// the text ran out (C steps back so the caller still sees the end).
    #[allow(clippy::too_many_arguments)]
    fn trans(
        &mut self,
        ctx: &mut Ctx,
        level: u32,
        term: Term,
        src: &[u8],
        r: &mut usize,
        out: &mut Vec<u8>,
        valend: usize,
    ) {
        self.steps += 1;
        if level > MACRO_MAX_DEPTH || self.steps > MACRO_MAX_STEPS {
            // stop scanning: every enclosing level then sees the end of the text
            let why = if level > MACRO_MAX_DEPTH {
                Cut::Depth
            } else {
                Cut::Steps
            };
            self.cut.get_or_insert(why);
            *r = src.len();
            return;
        }
        let discard = level > 0;
        let mut quote = 0u8;
        let mut i = *r;
        loop {
            let c = at(src, i);
            if term.ends(c) {
                break;
            }
            if !SPECIAL[c as usize] {
                // a run of bytes with no meaning here is copied in one go
                let start = i;
                while i < src.len() && !SPECIAL[src[i] as usize] && !term.ends(src[i]) {
                    i += 1;
                }
                let n = (i - start).min(valend.saturating_sub(out.len()));
                out.extend_from_slice(&src[start..start + n]);
                continue;
            }
            if quote != 0 {
                if c == quote {
                    quote = 0;
                    if discard {
                        i += 1;
                        continue;
                    }
                }
            } else if c == b'"' || c == b'\'' {
                quote = c;
                if discard {
                    i += 1;
                    continue;
                }
            }
            let mac_ref = c == b'$' && matches!(at(src, i + 1), b'(' | b'{');
            if mac_ref && quote != b'\'' {
                self.refer(ctx, level, src, &mut i, out, valend);
            } else if c == b'\\' && at(src, i + 1) != 0 {
                if out.len() < valend && !discard {
                    out.push(b'\\');
                }
                // a full buffer leaves the escaped byte to be scanned again (C quirk)
                if out.len() < valend {
                    i += 1;
                    out.push(at(src, i));
                }
            } else if out.len() < valend {
                out.push(c);
            }
            i += 1;
        }
        *r = if at(src, i) == 0 {
            i.saturating_sub(1)
        } else {
            i
        };
    }

    /// `refer()`: one `$(name[=default][,n=v...])` reference starting at `src[*r]` (the `$`).
    #[allow(clippy::too_many_arguments)]
    fn refer(
        &mut self,
        ctx: &mut Ctx,
        level: u32,
        src: &[u8],
        r: &mut usize,
        out: &mut Vec<u8>,
        valend: usize,
    ) {
        let mut i = *r + 1;
        let mac_end = Term::name(at(src, i));
        i += 1;
        let mut refname = self.pool.pop().unwrap_or_default();
        refname.clear();
        self.trans(ctx, level + 1, mac_end, src, &mut i, &mut refname, MAC_SIZE);

        let mut defval = None;
        if at(src, i) == b'=' {
            // skip the default without output; it is translated again only if needed
            self.quiet += 1;
            i += 1;
            defval = Some(i);
            // warnings are off here, so the context needs no name
            let mut dctx = Ctx {
                kind: "default value",
                name: self.empty.clone(),
                error: false,
            };
            let end = out.len();
            self.trans(&mut dctx, level + 1, mac_end.value(), src, &mut i, out, end);
            self.quiet -= 1;
        }

        let pop = at(src, i) == b',';
        if pop {
            self.scoped_defs(level, mac_end, src, &mut i);
        }

        match self.lookup(&refname) {
            Some(idx) if !self.entries[idx].visited => {
                if !self.dirty {
                    let entry = &self.entries[idx];
                    let room = valend.saturating_sub(out.len());
                    out.extend_from_slice(&entry.value[..entry.value.len().min(room)]);
                    ctx.error |= entry.error;
                } else {
                    let raw = self.entries[idx].raw.clone();
                    self.entries[idx].visited = true;
                    let mut rv = 0;
                    self.trans(ctx, level + 1, Term::END, &raw, &mut rv, out, valend);
                    self.entries[idx].visited = false;
                }
            }
            Some(idx) => {
                ctx.error = true;
                if !self.silent() {
                    let e = &self.entries[idx];
                    let msg = format!(
                        "macLib: {} {} is recursive (expanding {} {})",
                        ctx.kind,
                        String::from_utf8_lossy(&ctx.name),
                        e.kind.label(),
                        String::from_utf8_lossy(&e.name)
                    );
                    self.warnings.push(msg);
                }
                self.placeholder(&refname, b",recursive)", out, valend);
            }
            None => {
                if let Some(mut d) = defval {
                    self.trans(ctx, level + 1, mac_end.value(), src, &mut d, out, valend);
                } else {
                    ctx.error = true;
                    if self.quiet == 0 && !self.undefined.contains(&refname) {
                        self.undefined.push(refname.clone());
                    }
                    if !self.silent() {
                        let msg = format!(
                            "macLib: macro {} is undefined (expanding {} {})",
                            String::from_utf8_lossy(&refname),
                            ctx.kind,
                            String::from_utf8_lossy(&ctx.name)
                        );
                        self.warnings.push(msg);
                    }
                    self.placeholder(&refname, b",undefined)", out, valend);
                }
            }
        }
        if pop {
            self.pop_scope();
        }
        self.pool.push(refname);
        *r = i;
    }

    /// The `,N=V,...` part of a reference: a new scope holding those definitions.
    fn scoped_defs(&mut self, level: u32, mac_end: Term, src: &[u8], i: &mut usize) {
        self.quiet += 1;
        self.push_scope();
        while at(src, *i) == b',' {
            *i += 1;
            let start = *i;
            // warnings are off here, so the context needs no name
            let mut sctx = Ctx {
                kind: "scoped macro",
                name: self.empty.clone(),
                error: false,
            };
            let mut subname = Vec::new();
            self.trans(
                &mut sctx,
                level + 1,
                mac_end,
                src,
                i,
                &mut subname,
                MAC_SIZE,
            );
            if *i < start {
                // `$(A,` at the very end: C loops for ever here; stop instead
                break;
            }
            if at(src, *i) == b'=' {
                *i += 1;
                let mut subval = Vec::new();
                self.trans(
                    &mut sctx,
                    level + 1,
                    mac_end.value(),
                    src,
                    i,
                    &mut subval,
                    MAC_SIZE,
                );
                self.put_value(&subname, Some(&subval));
            }
        }
        self.quiet -= 1;
    }

    fn silent(&self) -> bool {
        self.suppress || self.quiet > 0
    }

    /// A bad reference is written back as `$(NAME)`, or `$(NAME,undefined)` with `-V`.
    fn placeholder(&self, name: &[u8], errval: &[u8], out: &mut Vec<u8>, valend: usize) {
        let mut put = |bytes: &[u8]| {
            let room = valend.saturating_sub(out.len());
            out.extend_from_slice(&bytes[..bytes.len().min(room)]);
        };
        put(b"$(");
        put(name);
        if self.silent() {
            put(b")");
        } else {
            put(errval);
        }
    }
}

/// Expand `text` against the process environment only (msi's `macEnvExpand`).
/// `Err` carries macLib's warnings when a reference is undefined.
pub(crate) fn env_expand(text: &[u8]) -> Result<Vec<u8>, Vec<String>> {
    let mut table = MacroTable::new(false);
    table.use_env = true;
    let mut out = Vec::new();
    let error = table.expand_str(text, &mut out);
    if let Some(cut) = table.take_cut() {
        return Err(vec![cut.to_string()]);
    }
    if error {
        return Err(table.take_warnings());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(table: &mut MacroTable, s: &str) -> String {
        let mut out = Vec::new();
        table.expand_str(s.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn table(defs: &str) -> MacroTable {
        let mut t = MacroTable::new(true);
        t.install(defs.as_bytes());
        t
    }

    /// Runs on a test thread (2 MiB stack, like the start sequence's blocking thread): the
    /// deepest nesting allowed must fit, one more is refused without recursing further.
    #[test]
    fn defaults_in_defaults_are_bounded_in_scans() {
        // each level scans its default twice when the name is undefined: 2^40 scans unbounded
        let mut t = table("");
        let line = format!("{}x{}", "$(A=".repeat(40), ")".repeat(40));
        expand(&mut t, &line);
        assert_eq!(t.take_cut(), Some(Cut::Steps));
        let line = format!("{}x{}", "$(A=".repeat(12), ")".repeat(12));
        assert_eq!(expand(&mut t, &line), "x");
        assert_eq!(t.take_cut(), None);
    }

    #[test]
    fn nesting_is_bounded_within_a_small_stack() {
        let depth = MACRO_MAX_DEPTH as usize;
        let mut t = table("");
        let ok = format!("{}{}", "$(a".repeat(depth), ")".repeat(depth));
        expand(&mut t, &ok);
        assert_eq!(t.take_cut(), None);
        let deep = format!("{}{}", "$(a".repeat(50_000), ")".repeat(50_000));
        expand(&mut t, &deep);
        assert_eq!(t.take_cut(), Some(Cut::Depth));
        // a chain of definitions, each naming the next, nests through the values
        let chain: Vec<String> = (0..depth + 10)
            .map(|i| format!("m{i}=$(m{})", i + 1))
            .collect();
        let mut t = table(&chain.join(","));
        expand(&mut t, "$(m0)");
        assert_eq!(t.take_cut(), Some(Cut::Depth));
        assert!(env_expand(deep.as_bytes()).is_err_and(|w| w[0].contains("deeper")));
    }

    #[test]
    fn defaults_escapes_and_quotes() {
        let mut t = table("A=1");
        assert_eq!(
            expand(&mut t, "$(A) $(U=d) ${U=\"a b\"} $(U=)|\n"),
            "1 d a b |\n"
        );
        assert_eq!(
            expand(&mut t, "\\$(A) '$(A)' \"$(A)\"\n"),
            "\\$(A) '$(A)' \"1\"\n"
        );
        assert_eq!(expand(&mut t, "$(A=x\\)y)"), "1y)");
    }

    #[test]
    fn undefined_placeholders_depend_on_warnings() {
        let mut t = table("");
        assert_eq!(expand(&mut t, "${X} $(Y)"), "$(X) $(Y)");
        let mut v = MacroTable::new(false);
        let mut out = Vec::new();
        assert!(v.expand_str(b"$(X)", &mut out));
        assert_eq!(out, b"$(X,undefined)");
        assert_eq!(v.take_warnings().len(), 1);
    }

    #[test]
    fn recursion_follows_the_visited_rule() {
        let mut t = table("A=\"$(B)\",B=\"$(A)\",C=$(C)x");
        assert_eq!(expand(&mut t, "$(A) $(C)"), "$(B) $(C)xx");
    }

    #[test]
    fn scopes_shadow_and_pop() {
        let mut t = table("P=a");
        t.push_scope();
        t.install(b"P=\"$(P)b\",Q=1");
        assert_eq!(expand(&mut t, "$(P) $(Q)"), "$(P)bb 1");
        t.pop_scope();
        assert_eq!(expand(&mut t, "$(P) $(Q)"), "a $(Q)");
        t.install(b"P");
        assert_eq!(expand(&mut t, "$(P)"), "$(P)");
    }

    #[test]
    fn nested_names_and_scoped_references() {
        let mut t = table("N=1,P1=one");
        assert_eq!(expand(&mut t, "$(P$(N))"), "one");
        assert_eq!(expand(&mut t, "$(A,A=inner) $(B=dflt,B=set)"), "inner set");
    }

    #[test]
    fn values_are_cut_to_mac_size() {
        let long = "x".repeat(300);
        let mut t = table(&format!("L={long}"));
        assert_eq!(expand(&mut t, "$(L)").len(), MAC_SIZE);
    }

    #[test]
    fn env_expansion_uses_only_the_environment() {
        std::env::set_var("IOCRUN_TEST_ENV_EXPAND", "d");
        assert_eq!(
            env_expand(b"$(IOCRUN_TEST_ENV_EXPAND)/t").unwrap(),
            b"d/t".to_vec()
        );
        assert!(env_expand(b"$(IOCRUN_TEST_SURELY_UNSET)/t").is_err());
    }
}
