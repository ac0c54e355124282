//! The substitution-file tokenizer, as msi's `subGetNextToken` behaves.
//!
//! The file is read a line at a time. Whole lines starting with `#` are skipped; a `#`, end
//! of line or NUL *at the scan position* ends the line and gives a separator. Otherwise
//! whitespace is skipped silently (so it is not a separator before another token on the same
//! line), and `{ } , "…"` or a bare word follows.

use std::io::BufRead;

use super::macros::{at, is_space};

/// One token of a substitution file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    LBrace,
    RBrace,
    Separator,
    /// A quoted (quotes included) or bare word; its text is [`Lexer::text`].
    Str,
    Eof,
}

/// A tokenizer failure (only unterminated quoted strings) or a read error.
#[derive(Debug)]
pub(crate) enum LexError {
    Unterminated,
    Io(std::io::Error),
}

/// The tokenizer state: the current line, the scan position and the current token.
pub(crate) struct Lexer<R> {
    reader: R,
    line: Vec<u8>,
    /// Scan position in `line`; `None` once the file is exhausted.
    pos: Option<usize>,
    /// msi's counter: starts at 1 and counts every read, so it is one ahead.
    msi_line: usize,
    token: Token,
    text: Vec<u8>,
    /// Where the current token starts in `line` (0-based byte column).
    column: usize,
    /// Bytes of the file before `line`.
    line_offset: usize,
    /// Length of `line` as read, counted into `line_offset` when the next line is read.
    line_len: usize,
}

impl<R: BufRead> Lexer<R> {
    /// A tokenizer positioned before the first token; call [`Lexer::next_token`].
    pub(crate) fn new(reader: R) -> Lexer<R> {
        Lexer {
            reader,
            line: Vec::new(),
            pos: Some(0),
            msi_line: 1,
            token: Token::Separator,
            text: Vec::new(),
            column: 0,
            line_offset: 0,
            line_len: 0,
        }
    }

    /// The current token.
    pub(crate) fn token(&self) -> Token {
        self.token
    }

    /// The current string token's text (quotes included for quoted strings).
    pub(crate) fn text(&self) -> &[u8] {
        &self.text
    }

    /// The line being scanned (empty at end of file).
    pub(crate) fn line(&self) -> &[u8] {
        &self.line
    }

    /// The real 1-based line number of the line being scanned.
    pub(crate) fn line_number(&self) -> usize {
        self.msi_line.saturating_sub(1).max(1)
    }

    /// 1-based column where the current token starts.
    pub(crate) fn column(&self) -> usize {
        self.column + 1
    }

    /// Byte offset in the file where the current token starts.
    pub(crate) fn token_offset(&self) -> usize {
        self.line_offset + self.column
    }

    fn next_line(&mut self) -> Result<(), LexError> {
        loop {
            self.line_offset += self.line_len;
            self.line.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(LexError::Io)?;
            self.line_len = n;
            self.msi_line += 1;
            if n == 0 {
                self.line.clear();
                self.pos = None;
                self.token = Token::Eof;
                return Ok(());
            }
            if self.line[0] != b'#' {
                self.pos = Some(0);
                return Ok(());
            }
        }
    }

    /// Advance to the next token and return it.
    pub(crate) fn next_token(&mut self) -> Result<Token, LexError> {
        let Some(mut p) = self.pos else {
            self.token = Token::Eof;
            return Ok(self.token);
        };
        self.column = p;
        let c = at(&self.line, p);
        if c == 0 || c == b'\n' || c == b'#' {
            self.next_line()?;
            self.column = 0;
            self.token = if self.pos.is_some() {
                Token::Separator
            } else {
                Token::Eof
            };
            return Ok(self.token);
        }
        while is_space(at(&self.line, p)) {
            p += 1;
        }
        self.column = p;
        self.token = match at(&self.line, p) {
            b'{' => {
                p += 1;
                Token::LBrace
            }
            b'}' => {
                p += 1;
                Token::RBrace
            }
            0 | b',' => {
                while is_space(at(&self.line, p)) || at(&self.line, p) == b',' {
                    p += 1;
                }
                Token::Separator
            }
            b'"' => {
                p = self.quoted(p)?;
                Token::Str
            }
            _ => {
                self.text.clear();
                loop {
                    let c = at(&self.line, p);
                    if c == 0 || is_space(c) || matches!(c, b'"' | b',' | b'{' | b'}') {
                        break;
                    }
                    self.text.push(c);
                    p += 1;
                }
                Token::Str
            }
        };
        self.pos = Some(p);
        Ok(self.token)
    }

    /// A quoted string from the `"` at `p`; `\"` stays as two bytes and does not end it.
    fn quoted(&mut self, mut p: usize) -> Result<usize, LexError> {
        self.text.clear();
        self.text.push(b'"');
        p += 1;
        loop {
            let c = at(&self.line, p);
            if c == b'"' {
                break;
            }
            if c == 0 || c == b'\n' {
                self.column = p;
                return Err(LexError::Unterminated);
            }
            if c == b'\\' && at(&self.line, p + 1) == b'"' {
                self.text.extend_from_slice(b"\\\"");
                p += 2;
                continue;
            }
            self.text.push(c);
            p += 1;
        }
        self.text.push(b'"');
        Ok(p + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(src: &str) -> Vec<String> {
        let mut lx = Lexer::new(src.as_bytes());
        let mut out = Vec::new();
        loop {
            let t = lx.next_token().unwrap();
            out.push(match t {
                Token::LBrace => "{".to_owned(),
                Token::RBrace => "}".to_owned(),
                Token::Separator => ",".to_owned(),
                Token::Str => String::from_utf8(lx.text().to_vec()).unwrap(),
                Token::Eof => break,
            });
        }
        out
    }

    #[test]
    fn blanks_between_tokens_are_not_separators() {
        assert_eq!(tokens("{ A=1 B=2 }\n"), [",", "{", "A=1", "B=2", "}"]);
        assert_eq!(tokens("{A=1,B=2}\n"), [",", "{", "A=1", ",", "B=2", "}"]);
    }

    #[test]
    fn comments_only_at_column_zero_or_glued() {
        assert_eq!(tokens("# c\n}# c\n"), [",", "}"]);
        assert_eq!(tokens("} # c\n"), [",", "}", "#", "c"]);
    }

    #[test]
    fn quoted_strings_keep_quotes_and_escapes() {
        assert_eq!(tokens("\"a b\\\"c\"x\n"), [",", "\"a b\\\"c\"", "x"]);
        let mut lx = Lexer::new(&b"\n \"open\n"[..]);
        lx.next_token().unwrap();
        lx.next_token().unwrap();
        assert!(matches!(lx.next_token(), Err(LexError::Unterminated)));
        assert_eq!((lx.line_number(), lx.column()), (2, 7));
    }

    #[test]
    fn bare_words_end_at_braces_and_quotes() {
        assert_eq!(tokens("${T}/x {\n"), [",", "$", "{", "T", "}", "/x", "{"]);
    }
}
