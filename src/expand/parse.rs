//! The substitution-file grammar, as msi's `substitute*` functions walk it.
//!
//! msi does not build a tree: the driver asks for "a global block?", "the next file block or
//! pattern header?" and "the next set's definitions?" in turn, expanding each set before the
//! next one is parsed. Output produced before a parse error therefore stays (vector 40b), and
//! this module keeps the same pull-style interface so the driver mirrors msi's main loop.

use std::io::BufRead;

use super::lex::{LexError, Lexer, Token};
use super::macros::env_expand;

/// A parse failure with the location msi reports (and the column, which it does not).
#[derive(Debug)]
pub struct SyntaxError {
    /// msi's message, e.g. `Parse error, expecting '{'`.
    pub message: &'static str,
    /// Real 1-based line number (msi prints one more).
    pub line: usize,
    /// 1-based byte column of the offending token.
    pub column: usize,
    /// The text of that line.
    pub text: String,
}

/// Why the parser stopped.
#[derive(Debug)]
pub(crate) enum ParseFail {
    Syntax(SyntaxError),
    Io(std::io::Error),
}

type Result<T> = std::result::Result<T, ParseFail>;

/// The state msi keeps between calls (`subInfo`).
pub(crate) struct SubstParser<R> {
    lex: Lexer<R>,
    /// The file name as given, for messages.
    name: String,
    is_file: bool,
    filename: Option<Vec<u8>>,
    is_pattern: bool,
    patterns: Vec<Vec<u8>>,
    repl: Vec<u8>,
    /// Non-fatal messages (too many pattern values, undefined environment variables).
    warnings: Vec<String>,
    /// Source spans of file blocks and top-level globals, for autosave.
    spans: Vec<Span>,
    /// The file block being read: its raw name and the offset of its `{`.
    open_file: Option<(Vec<u8>, usize)>,
    global_start: usize,
    set_end: usize,
}

/// Where a block sits in the substitution file's bytes (`end` is exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Span {
    /// `file NAME {…}`: the name as written (quotes stripped, not expanded), `{` to `}`.
    File {
        name: Vec<u8>,
        start: usize,
        end: usize,
    },
    /// A top-level `global {…}`, from the keyword to its `}`.
    Global { start: usize, end: usize },
}

impl<R: BufRead> SubstParser<R> {
    /// Start parsing (reads the first token, like `substituteOpen`).
    pub(crate) fn new(reader: R, name: &str) -> Result<SubstParser<R>> {
        let mut p = SubstParser {
            lex: Lexer::new(reader),
            name: name.to_owned(),
            is_file: false,
            filename: None,
            is_pattern: false,
            patterns: Vec::new(),
            repl: Vec::new(),
            warnings: Vec::new(),
            spans: Vec::new(),
            open_file: None,
            global_start: 0,
            set_end: 0,
        };
        p.next()?;
        Ok(p)
    }

    /// Take the warnings produced so far.
    pub(crate) fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn next(&mut self) -> Result<Token> {
        self.lex.next_token().map_err(|e| match e {
            LexError::Io(e) => ParseFail::Io(e),
            LexError::Unterminated => self.error("Strings must be on single line"),
        })
    }

    fn skip_separators(&mut self) -> Result<Token> {
        while self.lex.token() == Token::Separator {
            self.next()?;
        }
        Ok(self.lex.token())
    }

    fn next_non_separator(&mut self) -> Result<Token> {
        while self.next()? == Token::Separator {}
        Ok(self.lex.token())
    }

    fn error(&self, message: &'static str) -> ParseFail {
        ParseFail::Syntax(SyntaxError {
            message,
            line: self.lex.line_number(),
            column: self.lex.column(),
            text: String::from_utf8_lossy(self.lex.line()).into_owned(),
        })
    }

    fn warn(&mut self, message: &str) {
        let text = String::from_utf8_lossy(self.lex.line()).into_owned();
        let msg = format!(
            "msi: {message}\n  in substitution file '{}' at line {}, column {}:\n  {}",
            self.name,
            self.lex.line_number(),
            self.lex.column(),
            text.trim_end_matches('\n')
        );
        self.warnings.push(msg);
    }

    /// The spans of the blocks read so far; a file block still open ends at `eof`.
    pub(crate) fn take_spans(&mut self, eof: usize) -> Vec<Span> {
        if let Some((name, start)) = self.open_file.take() {
            self.spans.push(Span::File {
                name,
                start,
                end: eof,
            });
        }
        std::mem::take(&mut self.spans)
    }

    /// `substituteGetGlobalSet`: is the next item a `global` block?
    pub(crate) fn global_set(&mut self) -> Result<bool> {
        if self.skip_separators()? == Token::Str && self.lex.text() == b"global" {
            self.global_start = self.lex.token_offset();
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// `substituteGetGlobalReplacements`: the definitions of a `global { … }` block.
    pub(crate) fn global_replacements(&mut self) -> Result<Option<&[u8]>> {
        self.repl.clear();
        match self.skip_separators()? {
            Token::RBrace if self.is_file => {
                self.end_file()?;
                Ok(None)
            }
            Token::LBrace => {
                self.regular_set()?;
                if self.open_file.is_none() {
                    self.spans.push(Span::Global {
                        start: self.global_start,
                        end: self.set_end,
                    });
                }
                Ok(Some(&self.repl))
            }
            _ => Ok(None),
        }
    }

    fn end_file(&mut self) -> Result<()> {
        if let Some((name, start)) = self.open_file.take() {
            let end = self.lex.token_offset() + 1;
            self.spans.push(Span::File { name, start, end });
        }
        self.is_file = false;
        self.filename = None;
        self.clear_pattern();
        self.next()?;
        Ok(())
    }

    fn clear_pattern(&mut self) {
        self.patterns.clear();
        self.is_pattern = false;
    }

    /// `substituteGetNextSet`: position on the next set, reading a `file NAME {` header and a
    /// `pattern {…}` header on the way. `None` at end of file; otherwise the template name in
    /// force (`Some(None)` when there is none, or its environment expansion failed).
    pub(crate) fn next_set(&mut self) -> Result<Option<Option<Vec<u8>>>> {
        if self.skip_separators()? == Token::Eof {
            return Ok(None);
        }
        if self.lex.token() == Token::Str && self.lex.text() == b"file" {
            self.file_header()?;
        }
        let filename = self.filename.clone();
        match self.skip_separators()? {
            Token::LBrace => return Ok(Some(filename)),
            Token::RBrace => return Err(self.error("Parse error, unexpected '}'")),
            Token::Str if self.lex.text() == b"pattern" => {}
            _ => return Err(self.error("Parse error, expecting 'pattern'")),
        }
        self.clear_pattern();
        self.is_pattern = true;
        if self.next_non_separator()? != Token::LBrace {
            return Err(self.error("Parse error, expecting '{'"));
        }
        while self.next_non_separator()? == Token::Str {
            self.patterns.push(self.lex.text().to_vec());
        }
        if self.lex.token() != Token::RBrace {
            return Err(self.error("Parse error, expecting '}'"));
        }
        self.next()?;
        Ok(Some(filename))
    }

    /// `file NAME {`: the name must be on the same line; quotes are stripped and the
    /// environment is expanded.
    fn file_header(&mut self) -> Result<()> {
        if let Some((name, start)) = self.open_file.take() {
            // a file block left open by a new `file` keyword ends there
            let end = self.lex.token_offset();
            self.spans.push(Span::File { name, start, end });
        }
        self.is_file = true;
        if self.next()? != Token::Str {
            return Err(self.error("Parse error, expecting a filename"));
        }
        self.clear_pattern();
        let text = self.lex.text();
        let name = if text.len() >= 2 && text[0] == b'"' && text[text.len() - 1] == b'"' {
            &text[1..text.len() - 1]
        } else {
            text
        };
        let raw = name.to_vec();
        self.filename = match env_expand(name) {
            Ok(name) => Some(name),
            Err(warnings) => {
                self.warnings.extend(warnings);
                None
            }
        };
        if self.next_non_separator()? != Token::LBrace {
            return Err(self.error("Parse error, expecting '{'"));
        }
        self.open_file = Some((raw, self.lex.token_offset()));
        self.next()?;
        Ok(())
    }

    /// `substituteGetReplacements`: the next set's definition string, or `None` when the file
    /// block ends (or something other than a set follows).
    pub(crate) fn replacements(&mut self) -> Result<Option<&[u8]>> {
        self.repl.clear();
        match self.skip_separators()? {
            Token::RBrace if self.is_file => {
                self.end_file()?;
                return Ok(None);
            }
            Token::LBrace => {}
            _ => return Ok(None),
        }
        if self.is_pattern {
            self.pattern_set()?;
        } else {
            self.regular_set()?;
        }
        Ok(Some(&self.repl))
    }

    /// `{v1, v2, …}` after a pattern header: `name1=v1,name2=v2,…` with the raw tokens.
    fn pattern_set(&mut self) -> Result<()> {
        let mut index = 0;
        self.next_non_separator()?;
        loop {
            match self.lex.token() {
                Token::RBrace => {
                    self.next()?;
                    return Ok(());
                }
                Token::Str => {}
                _ => return Err(self.error("Parse error, expecting macro value")),
            }
            if index > 0 {
                self.repl.push(b',');
            }
            if let Some(name) = self.patterns.get(index) {
                self.repl.extend_from_slice(name);
                self.repl.push(b'=');
                self.repl.extend_from_slice(self.lex.text());
            } else {
                self.warn("Warning, too many values given");
            }
            index += 1;
            self.next_non_separator()?;
        }
    }

    /// A regular set or global block: token texts joined, a `,` for each separator.
    fn regular_set(&mut self) -> Result<()> {
        loop {
            match self.next()? {
                Token::RBrace => {
                    self.set_end = self.lex.token_offset() + 1;
                    self.next()?;
                    return Ok(());
                }
                Token::Separator => self.repl.push(b','),
                Token::Str => self.repl.extend_from_slice(self.lex.text()),
                Token::LBrace => return Err(self.error("Parse error, unexpected '{'")),
                Token::Eof => return Err(self.error("Parse error, incomplete file?")),
            }
        }
    }
}

/// Walk a whole substitution file the way msi's main loop does, without expanding anything,
/// and return where its file blocks and top-level globals are.
pub(crate) fn spans(src: &[u8], name: &str) -> Result<Vec<Span>> {
    let mut p = SubstParser::new(src, name)?;
    loop {
        if p.global_set()? {
            p.global_replacements()?;
            continue;
        }
        if p.next_set()?.is_none() {
            break;
        }
        while p.replacements()?.is_some() {}
    }
    Ok(p.take_spans(src.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (template, definitions) pair and global block, in order, as msi's main loop
    /// would see them.
    fn walk(src: &str) -> std::result::Result<Vec<String>, SyntaxError> {
        let mut p = SubstParser::new(src.as_bytes(), "t.subst").map_err(syntax)?;
        let mut out = Vec::new();
        loop {
            if p.global_set().map_err(syntax)? {
                if let Some(d) = p.global_replacements().map_err(syntax)? {
                    out.push(format!("global {}", String::from_utf8_lossy(d)));
                }
                continue;
            }
            let Some(file) = p.next_set().map_err(syntax)? else {
                break;
            };
            let file = String::from_utf8(file.unwrap_or_default()).unwrap();
            while let Some(d) = p.replacements().map_err(syntax)? {
                out.push(format!("{file}: {}", String::from_utf8_lossy(d)));
            }
        }
        Ok(out)
    }

    fn syntax(e: ParseFail) -> SyntaxError {
        match e {
            ParseFail::Syntax(s) => s,
            ParseFail::Io(e) => panic!("{e}"),
        }
    }

    #[test]
    fn pattern_and_regular_blocks() {
        let src = "file \"a.t\" {\npattern\n{ \"P\", \"R\" }\n{ \"x\", \"y\" }\n{ 1 }\n}\n\
                   file b.t { {A=1,B=2}\n{ C = 3 }\n}\n";
        assert_eq!(
            walk(src).unwrap(),
            [
                "a.t: \"P\"=\"x\",\"R\"=\"y\"",
                "a.t: \"P\"=1",
                "b.t: A=1,B=2",
                "b.t: C=3"
            ]
        );
    }

    #[test]
    fn globals_inside_and_outside_files() {
        let src = "global { G=1 }\nfile t {\n{A=1}\nglobal {G=2}\n{A=2}\n}\n";
        assert_eq!(
            walk(src).unwrap(),
            ["global G=1", "t: A=1", "global G=2", "t: A=2"]
        );
    }

    #[test]
    fn spans_cover_blocks_verbatim() {
        let src = b"global {G=1}\nfile \"$(T)/a.db\" {\npattern\n\t{ \"P\" }\n\t{ \"x\" }\n}\nfile b {\n{A=1}\n";
        let spans = spans(src, "t.subst").map_err(syntax).unwrap();
        let texts: Vec<String> = spans
            .iter()
            .map(|s| match s {
                Span::File { name, start, end } => format!(
                    "{}={}",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(&src[*start..*end])
                ),
                Span::Global { start, end } => String::from_utf8_lossy(&src[*start..*end]).into(),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "global {G=1}",
                "$(T)/a.db={\npattern\n\t{ \"P\" }\n\t{ \"x\" }\n}",
                "b={\n{A=1}\n"
            ]
        );
    }

    #[test]
    fn missing_final_brace_is_accepted() {
        assert_eq!(walk("file t {\n{A=1}\n").unwrap(), ["t: A=1"]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = walk("file t {\n  { A={x} }\n}\n").unwrap_err();
        assert_eq!(e.message, "Parse error, unexpected '{'");
        assert_eq!((e.line, e.column), (2, 7));
        let e = walk("file\nt {\n").unwrap_err();
        assert_eq!(e.message, "Parse error, expecting a filename");
        let e = walk("file t {\n{ X, a } # c\n}\n").unwrap_err();
        assert_eq!(e.message, "Parse error, expecting 'pattern'");
        assert_eq!((e.line, e.column), (2, 10));
        let e = walk("file t {\n}\n").unwrap_err();
        assert_eq!((e.message, e.line), ("Parse error, unexpected '}'", 2));
        let e = walk("file t {\n{A=1\n").unwrap_err();
        assert_eq!(e.message, "Parse error, incomplete file?");
    }
}
