//! `$SUPPORT/configure/RELEASE.shell`: the `export` lines start.sh `source`d, read without a
//! shell (start step 2: st.cmd uses e.g. `$(PVLOGGING)`).

/// The `export NAME=VALUE` lines of a RELEASE.shell, as bash would set them: double quotes and
/// bare words expand `$VAR` and `${VAR}` (from earlier lines, then `lookup`), single quotes do
/// not. Other lines are ignored.
pub fn parse_release_shell(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("export ") else {
            continue;
        };
        let Some((name, raw)) = rest.trim().split_once('=') else {
            continue;
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            continue;
        }
        let known = |n: &str| {
            out.iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .or_else(|| lookup(n))
        };
        let value = if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            inner.to_owned()
        } else {
            let inner = raw
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .unwrap_or(raw);
            expand_vars(inner, known)
        };
        out.push((name.to_owned(), value));
    }
    out
}

fn expand_vars(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, skip) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(&lookup(name).unwrap_or_default());
            rest = &after[skip..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_shell_exports_quoted_and_expanded() {
        let text = r#"# generated
export SUPPORT="/epics/support"
export ASYN="${SUPPORT}/asyn"
export CALC=$SUPPORT/calc
export LITERAL='$SUPPORT'
export EPICS_DB_INCLUDE_PATH="$ASYN/db:$CALC/db:$HOME/x"
not an export
export 1BAD="x"
"#;
        let got = parse_release_shell(text, |n| (n == "HOME").then(|| "/tmp".to_owned()));
        let want = [
            ("SUPPORT", "/epics/support"),
            ("ASYN", "/epics/support/asyn"),
            ("CALC", "/epics/support/calc"),
            ("LITERAL", "$SUPPORT"),
            (
                "EPICS_DB_INCLUDE_PATH",
                "/epics/support/asyn/db:/epics/support/calc/db:/tmp/x",
            ),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_and_lone_dollars() {
        assert_eq!(expand_vars("a$NOPE-b", |_| None), "a-b");
        assert_eq!(expand_vars("cost $ 5", |_| None), "cost $ 5");
        assert_eq!(expand_vars("x${Y", |_| None), "x${Y");
    }
}
