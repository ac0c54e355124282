//! Definition strings `a=x,b=y` as macLib's `macParseDefns` splits them: quotes
//! and escapes protect `,` `=` and blanks; a name without `=` means delete; names lose their
//! quotes and escapes, values stay raw (they are unquoted when expanded).

use super::macros::{at, is_space};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    PreName,
    InName,
    PreValue,
    InValue,
}

/// `macParseDefns`: split `a=x,b=y` into (name, value) pairs; `None` deletes (no `=`).
/// Names lose their quotes and escapes; values are kept raw.
pub(crate) fn parse_defns(defs: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut marks = Marks::default();
    let mut quote = 0u8;
    let mut state = State::PreName;
    let mut c = 0;
    while at(defs, c) != 0 {
        let ch = defs[c];
        if quote != 0 {
            if ch == quote {
                quote = 0;
            }
        } else if ch == b'\'' || ch == b'"' {
            quote = ch;
        }
        let escape = ch == b'\\' && at(defs, c + 1) != 0;
        let free = quote == 0 && !escape;
        state = step(state, ch, free, c, defs, &mut marks);
        if escape {
            c += 1;
        }
        c += 1;
    }
    match state {
        State::PreName => {}
        State::InName => {
            marks.close(c, defs, true);
            marks.open(c);
            marks.close(c, defs, false);
        }
        State::PreValue => {
            marks.open(c);
            marks.close(c, defs, false);
        }
        State::InValue => marks.close(c, defs, false),
    }
    marks.pairs(defs)
}

/// Start and end of each name and value, with C's fall-through between states.
fn step(mut state: State, ch: u8, free: bool, c: usize, defs: &[u8], m: &mut Marks) -> State {
    loop {
        match state {
            State::PreName => {
                if free && (is_space(ch) || ch == b',') {
                    return state;
                }
                m.open(c);
                state = State::InName;
            }
            State::InName => {
                if !free || (ch != b'=' && ch != b',') {
                    return state;
                }
                // a ',' right after the name: no value, so the macro is deleted
                m.close(c, defs, ch == b',');
                if ch != b',' {
                    return State::PreValue;
                }
                state = State::PreValue;
            }
            State::PreValue => {
                if free && is_space(ch) {
                    return state;
                }
                m.open(c);
                state = State::InValue;
            }
            State::InValue => {
                if !free || ch != b',' {
                    return state;
                }
                m.close(c, defs, false);
                return State::PreName;
            }
        }
    }
}

#[derive(Default)]
struct Marks {
    ptr: Vec<usize>,
    end: Vec<usize>,
    /// Per slot: the following value slot is a deletion.
    del_next: Vec<bool>,
}

impl Marks {
    fn open(&mut self, c: usize) {
        self.ptr.push(c);
    }
    fn close(&mut self, c: usize, defs: &[u8], delete_next: bool) {
        let start = *self.ptr.last().expect("close follows open");
        let mut end = c;
        while end > start && is_space(defs[end - 1]) {
            end -= 1;
        }
        self.end.push(end);
        self.del_next.push(delete_next);
    }
    fn pairs(&self, defs: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let n = self.end.len() / 2;
        (0..n)
            .map(|k| {
                let name = unquote(&defs[self.ptr[2 * k]..self.end[2 * k]]);
                let value = (!self.del_next[2 * k])
                    .then(|| defs[self.ptr[2 * k + 1]..self.end[2 * k + 1]].to_vec());
                (name, value)
            })
            .collect()
    }
}

/// Remove quotes and escape backslashes from a macro name.
fn unquote(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut quote = 0u8;
    let mut s = 0;
    while s < name.len() {
        let ch = name[s];
        if quote != 0 {
            if ch == quote {
                quote = 0;
                s += 1;
                continue;
            }
        } else if ch == b'\'' || ch == b'"' {
            quote = ch;
            s += 1;
            continue;
        }
        if ch == b'\\' && s + 1 < name.len() {
            s += 1;
        }
        out.push(name[s]);
        s += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(s: &str) -> Vec<(String, Option<String>)> {
        parse_defns(s.as_bytes())
            .into_iter()
            .map(|(n, v)| {
                let n = String::from_utf8(n).unwrap();
                (n, v.map(|v| String::from_utf8(v).unwrap()))
            })
            .collect()
    }

    fn some(n: &str, v: &str) -> (String, Option<String>) {
        (n.to_owned(), Some(v.to_owned()))
    }

    #[test]
    fn parse_trims_and_keeps_raw_values() {
        assert_eq!(
            defs(" A = 1 , B= two words"),
            vec![some("A", "1"), some("B", "two words")]
        );
        assert_eq!(defs("A=b=c"), vec![some("A", "b=c")]);
        assert_eq!(defs("\"P\"=\"x,y\""), vec![some("P", "\"x,y\"")]);
    }

    #[test]
    fn parse_name_without_equals_deletes() {
        assert_eq!(
            defs("A,B=1,C"),
            vec![("A".into(), None), some("B", "1"), ("C".into(), None)]
        );
        assert_eq!(defs("A="), vec![some("A", "")]);
        assert_eq!(defs("=x"), vec![some("", "x")]);
    }

    /// msi 7.0.8.1 overflows its heap arrays on this (they are sized by the string length)
    /// and aborts; see docs/compat.md.
    #[test]
    fn deviation_short_deletions_parse() {
        assert_eq!(
            defs("C,A=,A"),
            vec![("C".into(), None), some("A", ""), ("A".into(), None)]
        );
    }
}
