//! Python's `ast.literal_eval` on the text a template rendered to: numbers,
//! strings, `True`/`False`/`None`, lists, tuples, dicts and sets, with unary `+`/`-`.
//! Anything else fails with Python's message (`malformed node or string`, `invalid syntax`).

use minijinja::value::Value;

/// Evaluate a Python literal.
pub fn literal_eval(text: &str) -> Result<Value, String> {
    // ast.literal_eval strips leading spaces and tabs only; Python's tokenizer then skips
    // blank lines, and an indented first line is an IndentationError
    let (src, line) = skip_blank_lines(text.trim_start_matches([' ', '\t']));
    if line > 1 {
        if src.starts_with([' ', '\t']) {
            return Err(format!("unexpected indent (<unknown>, line {line})"));
        }
        if src.is_empty() {
            return Err(format!("invalid syntax (<unknown>, line {})", line - 1));
        }
        return literal_eval_at(src).map_err(|e| e.replacen("line 1", &format!("line {line}"), 1));
    }
    literal_eval_at(src)
}

/// `text` without its leading blank lines (whitespace then a line end), and the number of
/// the line it starts on.
fn skip_blank_lines(text: &str) -> (&str, usize) {
    let mut rest = text;
    let mut line = 1;
    loop {
        let body = rest.trim_start_matches([' ', '\t', '\x0c']);
        let after = body
            .strip_prefix("\r\n")
            .or_else(|| body.strip_prefix('\n'))
            .or_else(|| body.strip_prefix('\r'));
        match after {
            Some(a) => {
                rest = a;
                line += 1;
            }
            None => return (rest, line),
        }
    }
}

fn literal_eval_at(src: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
        depth: 0,
        calls: 0,
    };
    let v = p.expr();
    p.skip_ws();
    match v {
        Ok(v) if p.i == p.s.len() => Ok(v),
        Ok(_) => Err(p.classify_rest()),
        Err(e) => Err(e),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
    calls: usize,
}

const SYNTAX: &str = "invalid syntax (<unknown>, line 1)";

fn malformed(kind: &str) -> String {
    format!("malformed node or string on line 1: <ast.{kind} object>")
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            let nl_ok = self.depth > 0 || self.s[self.i..].iter().all(|b| b.is_ascii_whitespace());
            if c == b' ' || c == b'\t' || ((c == b'\n' || c == b'\r') && nl_ok) {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// What the leftover text means to Python: an operator makes a (malformed) BinOp,
    /// anything else is a syntax error.
    fn classify_rest(&self) -> String {
        let rest = String::from_utf8_lossy(&self.s[self.i..]);
        let t = rest.trim_start();
        if t.starts_with(['+', '-', '*', '/', '%', '&', '|', '^']) {
            malformed("BinOp")
        } else if t.starts_with("if ") {
            malformed("IfExp")
        } else if t.starts_with(['<', '>', '=', '!'])
            || t.starts_with("in ")
            || t.starts_with("is ")
        {
            malformed("Compare")
        } else if t.starts_with("and ") || t.starts_with("or ") {
            malformed("BoolOp")
        } else if t.starts_with('(') {
            malformed("Call")
        } else if t.starts_with('[') {
            malformed("Subscript")
        } else if t.starts_with('.') {
            malformed("Attribute")
        } else {
            SYNTAX.into()
        }
    }

    fn expr(&mut self) -> Result<Value, String> {
        // Python's parser gives up on deep nesting too ("too many nested parentheses")
        if self.calls >= 150 {
            return Err("too many nested parentheses (<unknown>, line 1)".into());
        }
        self.calls += 1;
        let v = self.expr_inner();
        self.calls -= 1;
        v
    }

    fn expr_inner(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.peek() {
            Some(b'+') | Some(b'-') => {
                let neg = self.peek() == Some(b'-');
                self.i += 1;
                let v = self.expr()?;
                if !v.is_number() || v.kind() == minijinja::value::ValueKind::Bool {
                    return Err(malformed("UnaryOp"));
                }
                if !neg {
                    return Ok(v);
                }
                if let Some(f) = super::pyvalue::as_float_only(&v) {
                    Ok(Value::from(-f))
                } else {
                    Ok(Value::from(-i128::try_from(v).map_err(|e| e.to_string())?))
                }
            }
            _ => self.atom(),
        }
    }

    fn atom(&mut self) -> Result<Value, String> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(SYNTAX.into());
        };
        match c {
            b'0'..=b'9' | b'.' => self.number(),
            b'\'' | b'"' => self.strings(),
            b'[' => self.seq(b']').map(Value::from),
            b'(' => self.seq(b')').map(Value::from),
            b'{' => self.brace(),
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => self.name(),
            _ => Err(SYNTAX.into()),
        }
    }

    fn name(&mut self) -> Result<Value, String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
                self.i += 1;
            } else {
                break;
            }
        }
        let word = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        // string prefixes: r'..', b'..', u'..', f'..'
        if matches!(self.peek(), Some(b'\'') | Some(b'"'))
            && ["r", "u", "R", "U", "b", "B", "f", "F", "rb", "br"].contains(&word)
        {
            if word.eq_ignore_ascii_case("f") {
                return Err(malformed("JoinedStr"));
            }
            return self.strings();
        }
        match word {
            "True" => Ok(Value::from(true)),
            "False" => Ok(Value::from(false)),
            "None" => Ok(Value::from(())),
            _ => {
                self.skip_ws();
                match self.peek() {
                    None => Err(malformed("Name")),
                    Some(b'(') => Err(malformed("Call")),
                    Some(b'.') => Err(malformed("Attribute")),
                    Some(b'[') => Err(malformed("Subscript")),
                    _ => {
                        let r = self.classify_rest();
                        Err(if r == SYNTAX && self.depth > 0 {
                            malformed("Name")
                        } else {
                            r
                        })
                    }
                }
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let prev = if self.i > start {
                self.s[self.i - 1]
            } else {
                b' '
            };
            if c.is_ascii_alphanumeric()
                || c == b'_'
                || c == b'.'
                || ((c == b'+' || c == b'-')
                    && (prev == b'e' || prev == b'E')
                    && !self.s[start..].starts_with(b"0x"))
            {
                self.i += 1;
            } else {
                break;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        parse_number(text).ok_or_else(|| SYNTAX.to_owned())
    }

    fn strings(&mut self) -> Result<Value, String> {
        let mut out = String::new();
        loop {
            self.skip_ws();
            let raw = self.i > 0 && matches!(self.s[self.i - 1], b'r' | b'R');
            match self.peek() {
                Some(q @ (b'\'' | b'"')) => out.push_str(&self.one_string(q, raw)?),
                Some(c) if c == b'r' || c == b'R' || c == b'u' || c == b'U' => {
                    if matches!(self.s.get(self.i + 1), Some(b'\'') | Some(b'"')) {
                        self.i += 1;
                        continue;
                    }
                    break;
                }
                _ => break,
            }
        }
        Ok(Value::from(out))
    }

    fn one_string(&mut self, q: u8, raw: bool) -> Result<String, String> {
        let triple = self.s[self.i..].starts_with(&[q, q, q]);
        self.i += if triple { 3 } else { 1 };
        let mut bytes = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(
                    "unterminated string literal (detected at line 1) (<unknown>, line 1)".into(),
                );
            };
            if c == q && (!triple || self.s[self.i..].starts_with(&[q, q, q])) {
                self.i += if triple { 3 } else { 1 };
                break;
            }
            if c == b'\n' && !triple {
                return Err(
                    "unterminated string literal (detected at line 1) (<unknown>, line 1)".into(),
                );
            }
            if c == b'\\' && !raw {
                self.i += 1;
                let e = self.peek().unwrap_or(b'\\');
                self.i += 1;
                match e {
                    b'n' => bytes.push(b'\n'),
                    b't' => bytes.push(b'\t'),
                    b'r' => bytes.push(b'\r'),
                    b'0' => bytes.push(0),
                    b'\\' | b'\'' | b'"' => bytes.push(e),
                    b'\n' => {}
                    b'x' => {
                        let h = std::str::from_utf8(self.s.get(self.i..self.i + 2).unwrap_or(b""))
                            .unwrap_or("");
                        let v = u32::from_str_radix(h, 16).map_err(|_| SYNTAX.to_owned())?;
                        self.i += 2;
                        let mut buf = [0; 4];
                        bytes.extend(
                            char::from_u32(v)
                                .unwrap_or('?')
                                .encode_utf8(&mut buf)
                                .as_bytes(),
                        );
                    }
                    other => {
                        bytes.push(b'\\');
                        bytes.push(other);
                    }
                }
                continue;
            }
            bytes.push(c);
            self.i += 1;
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Value>, String> {
        self.i += 1;
        self.depth += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.i += 1;
                break;
            }
            items.push(self.expr()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.classify_rest()),
            }
        }
        self.depth -= 1;
        Ok(items)
    }

    fn brace(&mut self) -> Result<Value, String> {
        self.i += 1;
        self.depth += 1;
        let mut pairs = Vec::new();
        let mut set = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                break;
            }
            let k = self.expr()?;
            self.skip_ws();
            if self.peek() == Some(b':') {
                self.i += 1;
                let v = self.expr()?;
                pairs.push((k, v));
            } else {
                set.push(k);
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.classify_rest()),
            }
        }
        self.depth -= 1;
        if set.is_empty() {
            Ok(Value::from_iter(pairs))
        } else {
            Ok(Value::from(set))
        }
    }
}

/// A Python numeric literal: ints (with `_`, `0x`, `0o`, `0b`; no leading zeros) and floats.
fn parse_number(text: &str) -> Option<Value> {
    let lower = text.to_ascii_lowercase();
    if lower.contains("__") || lower.ends_with('_') {
        return None;
    }
    let clean = lower.replace('_', "");
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(d) = clean.strip_prefix(prefix) {
            return i128::from_str_radix(d, radix).ok().map(value_of_int);
        }
    }
    if clean.chars().all(|c| c.is_ascii_digit()) {
        if clean.len() > 1 && clean.starts_with('0') && clean.chars().any(|c| c != '0') {
            return None;
        }
        return clean.parse::<i128>().ok().map(value_of_int);
    }
    if clean
        .chars()
        .all(|c| c.is_ascii_digit() || ".e+-".contains(c))
    {
        return clean.parse::<f64>().ok().map(Value::from);
    }
    None
}

fn value_of_int(i: i128) -> Value {
    i64::try_from(i)
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::pyvalue::py_str;

    fn ok(s: &str) -> String {
        py_str(&literal_eval(s).unwrap())
    }

    #[test]
    fn literals() {
        assert_eq!(ok("12"), "12");
        assert_eq!(ok("1_000"), "1000");
        assert_eq!(ok("0x1F"), "31");
        assert_eq!(ok("-2.5"), "-2.5");
        assert_eq!(ok("1e3"), "1000.0");
        assert_eq!(ok("True"), "True");
        assert_eq!(ok("None"), "None");
        assert_eq!(ok("[1, 'a', (2, 3)]"), "[1, 'a', [2, 3]]");
        assert_eq!(ok("{'a': 1}"), "{'a': 1}");
        assert_eq!(ok("'x' \"y\""), "xy");
        assert_eq!(ok("  7\n"), "7");
        // leading blank lines (a `{% set %}` line before the value) are skipped
        assert_eq!(ok("\n2"), "2");
        assert_eq!(ok("\n\t\r\n[0, 0]"), "[0, 0]");
    }

    #[test]
    fn blank_lines_then_errors_name_the_line() {
        // Python 3.13's messages for these
        assert_eq!(
            literal_eval("\n  1").unwrap_err(),
            "unexpected indent (<unknown>, line 2)"
        );
        assert_eq!(
            literal_eval("\n\n").unwrap_err(),
            "invalid syntax (<unknown>, line 2)"
        );
        assert_eq!(
            literal_eval("\n1 2").unwrap_err(),
            "invalid syntax (<unknown>, line 2)"
        );
        assert!(literal_eval("\n1+2")
            .unwrap_err()
            .starts_with("malformed node or string on line 2"));
    }

    #[test]
    fn failures() {
        assert!(literal_eval("true").unwrap_err().contains("malformed node"));
        assert!(literal_eval("1-2").unwrap_err().contains("BinOp"));
        assert_eq!(literal_eval("epicsEnvSet E1 1").unwrap_err(), SYNTAX);
        assert!(literal_eval("017").is_err());
        assert!(literal_eval("").is_err());
        assert!(literal_eval(&"[".repeat(100_000)).is_err());
        assert!(literal_eval(&"-".repeat(100_000)).is_err());
    }
}
