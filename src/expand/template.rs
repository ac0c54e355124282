//! Template files: finding them on the include path, reading them once, and recognising the
//! `include "…"` and `substitute "…"` directive lines.
//!
//! msi re-opens and re-reads a template for every set. The files do not change during a run,
//! so each is read once and kept split into lines with its directives already recognised;
//! only the path search and the `-D` bookkeeping are repeated per open.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::macros::{at, is_space};

/// A directive line (it produces no output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Directive {
    /// `include "name"`: the name is taken literally.
    Include(Vec<u8>),
    /// `substitute "defs"`: definitions for the current scope.
    Substitute(Vec<u8>),
}

/// One line: a byte range of the file (with its `\n`), and its directive if it is one.
#[derive(Debug)]
pub(crate) struct Line {
    start: usize,
    end: usize,
    pub(crate) directive: Option<Directive>,
    /// False when the line has no `$`: it is copied without expansion.
    pub(crate) has_ref: bool,
}

/// A template read into memory.
#[derive(Debug)]
pub(crate) struct Template {
    /// The name msi records: `dir/name` when found on the path, else the name, or `stdin`.
    pub(crate) recorded: Vec<u8>,
    data: Vec<u8>,
    pub(crate) lines: Vec<Line>,
}

impl Template {
    fn parse(recorded: Vec<u8>, data: Vec<u8>) -> Template {
        let mut lines = Vec::new();
        let mut start = 0;
        while start < data.len() {
            let end = data[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |i| start + i + 1);
            let text = &data[start..end];
            lines.push(Line {
                start,
                end,
                directive: directive(text),
                has_ref: text.iter().any(|&b| b == b'$' || b == 0),
            });
            start = end;
        }
        Template {
            recorded,
            data,
            lines,
        }
    }

    /// The bytes of line `i`.
    pub(crate) fn text(&self, i: usize) -> &[u8] {
        let l = &self.lines[i];
        &self.data[l.start..l.end]
    }
}

/// Recognise a directive exactly as msi's `makeSubstitutions` does: first non-blank byte
/// `i` or `s`, the keyword anywhere after it (`substitute` wins), then a quoted string
/// followed only by spaces.
pub(crate) fn directive(line: &[u8]) -> Option<Directive> {
    let mut p = 0;
    while is_space(at(line, p)) {
        p += 1;
    }
    if !matches!(at(line, p), b'i' | b's') {
        return None;
    }
    let command = p;
    let rest = &line[command..];
    let rest = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
    let substitute = contains(rest, b"substitute");
    if !substitute && !contains(rest, b"include") {
        return None;
    }
    let keyword_len = if substitute { 10 } else { 7 };
    p = command + keyword_len;
    while is_space(at(line, p)) {
        p += 1;
    }
    if at(line, p) != b'"' {
        return None;
    }
    p += 1;
    let start = p;
    while at(line, p) != 0 && at(line, p) != b'"' {
        p += if at(line, p) == b'\\' && at(line, p + 1) == b'"' {
            2
        } else {
            1
        };
    }
    if at(line, p) == 0 {
        return None;
    }
    let arg = line[start..p].to_vec();
    p += 1;
    // only spaces may follow; a tab, CR or comment makes the line ordinary text
    while at(line, p) == b' ' {
        p += 1;
    }
    if at(line, p) != b'\n' && at(line, p) != 0 {
        return None;
    }
    Some(if substitute {
        Directive::Substitute(arg)
    } else {
        Directive::Include(arg)
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Split one `-I` value on `:`; an empty element means `.` (msi's `inputAddPath`).
pub fn split_include_path(value: &[u8]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut i = 0;
    while i < value.len() && value[i] != 0 {
        if value[i] == b':' {
            dirs.push(PathBuf::from("."));
            i += 1;
            continue;
        }
        match value[i..].iter().position(|&b| b == b':') {
            Some(k) => {
                dirs.push(path_of(&value[i..i + k]));
                i += k;
                // a trailing ':' is left to be read as the empty element
                if at(value, i + 1) != 0 {
                    i += 1;
                }
            }
            None => {
                dirs.push(path_of(&value[i..]));
                break;
            }
        }
    }
    dirs
}

pub(crate) fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

/// The include path and every template read so far.
pub(crate) struct Library {
    path: Vec<PathBuf>,
    cache: HashMap<Vec<u8>, Rc<Template>>,
    stdin: Option<Rc<Template>>,
}

impl Library {
    pub(crate) fn new(path: Vec<PathBuf>) -> Library {
        Library {
            path,
            cache: HashMap::new(),
            stdin: None,
        }
    }

    /// Open a template by name (`None` is stdin), searching the path like msi: no path or a
    /// name with `/` opens it relative to the working directory; otherwise each `-I` folder
    /// in order, and the working directory only if `.` is on the path. `None` if not found.
    pub(crate) fn open(&mut self, name: Option<&[u8]>) -> Option<Rc<Template>> {
        let Some(name) = name else {
            return self.open_stdin();
        };
        if let Some(t) = self.cache.get(name) {
            return Some(t.clone());
        }
        let template = if self.path.is_empty() || name.contains(&b'/') {
            read(&path_of(name)).map(|data| Template::parse(name.to_vec(), data))
        } else {
            self.path.iter().find_map(|dir| {
                // msi builds `dir + "/" + name` as a string, and records it so
                let mut full = dir.as_os_str().as_bytes().to_vec();
                full.push(b'/');
                full.extend_from_slice(name);
                read(&path_of(&full)).map(|data| Template::parse(full, data))
            })
        }?;
        let template = Rc::new(template);
        self.cache.insert(name.to_vec(), template.clone());
        Some(template)
    }

    fn open_stdin(&mut self) -> Option<Rc<Template>> {
        if self.stdin.is_none() {
            let mut data = Vec::new();
            // a read error ends the input, as fgets returning NULL does
            let _ = std::io::stdin().lock().read_to_end(&mut data);
            self.stdin = Some(Rc::new(Template::parse(b"stdin".to_vec(), data)));
        }
        self.stdin.clone()
    }
}

/// Read a file; `None` if it cannot be opened. A file that opens but cannot be read (a
/// folder) reads as empty, as msi's `fopen` succeeds and `fgets` then finds nothing.
fn read(path: &Path) -> Option<Vec<u8>> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut data = Vec::new();
    if file.read_to_end(&mut data).is_err() {
        data.clear();
    }
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(v: &str) -> Vec<String> {
        split_include_path(v.as_bytes())
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn include_path_empty_elements_mean_cwd() {
        assert_eq!(dirs("a:b:"), ["a", "b", "."]);
        assert_eq!(dirs("a::b"), ["a", ".", "b"]);
        assert_eq!(dirs(":a"), [".", "a"]);
        assert_eq!(dirs("::"), [".", "."]);
        assert!(dirs("").is_empty());
    }

    fn d(line: &str) -> Option<Directive> {
        directive(line.as_bytes())
    }

    #[test]
    fn directives_are_recognised_like_msi() {
        let inc = |s: &str| Some(Directive::Include(s.as_bytes().to_vec()));
        assert_eq!(d("include \"x\"\n"), inc("x"));
        assert_eq!(d("   include \"x\"   \n"), inc("x"));
        assert_eq!(d("include\t\"x\""), inc("x"));
        assert_eq!(
            d("substitute\"a=1\"\n"),
            Some(Directive::Substitute(b"a=1".to_vec()))
        );
        assert_eq!(d("include \"a\\\"b\"\n"), inc("a\\\"b"));
        assert_eq!(d("include \"x\" #c\n"), None);
        assert_eq!(d("include \"x\"\t\n"), None);
        assert_eq!(d("include \"x\"\r\n"), None);
        assert_eq!(d("includex \"x\"\n"), None);
        assert_eq!(d("record(ai, \"x\")\n"), None);
    }

    #[test]
    fn lines_keep_their_newlines() {
        let t = Template::parse(b"t".to_vec(), b"a\n$(B)\nc".to_vec());
        assert_eq!(t.lines.len(), 3);
        assert_eq!(t.text(1), b"$(B)\n");
        assert_eq!(t.text(2), b"c");
        assert!(!t.lines[0].has_ref && t.lines[1].has_ref);
    }
}
