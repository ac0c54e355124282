//! Python's text forms that ibek's outputs are made of: `repr(float)` and `json.dumps`
//! strings (`ensure_ascii`). Rendering (`str()` of floats, Jinja's `tojson`) and the JSON schema
//! (pydantic's `model_json_schema` dumped by `json.dumps`) both need them byte for byte, so
//! they live here once, below both `config` and `render`.

/// Python `repr(float)`: the shortest digits that round-trip, positional when the exponent is
/// in -4..16, otherwise `d.ddde±XX`; `nan`, `inf`, `-inf`, `-0.0` as Python prints them.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives Rust's shortest round-trip digits, e.g. "1.5e20", "1e-5"
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else if exp + 1 >= n {
            format!("{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

/// A float as `json.dumps` writes it: `repr`, but `NaN`, `Infinity`, `-Infinity`.
pub fn json_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    float_repr(f)
}

/// Append `s` as a `json.dumps` string with `ensure_ascii`: non-ASCII as `\uXXXX` (UTF-16
/// surrogate pairs above the BMP). `html_safe` also escapes `< > & '`, as Jinja2's `tojson`
/// filter does after dumping.
pub fn json_string(out: &mut String, s: &str, html_safe: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\'' if html_safe => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python_repr() {
        for (f, py) in [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (1e-5, "1e-05"),
            (1.3e-05, "1.3e-05"),
            (1.5e20, "1.5e+20"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345.6, "123456789012345.6"),
            (123456.789, "123456.789"),
            (0.0001, "0.0001"),
            (-0.0027, "-0.0027"),
            (-50.0, "-50.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(float_repr(f), py, "{f}");
        }
        assert_eq!(json_float(f64::INFINITY), "Infinity");
        assert_eq!(json_float(2.0), "2.0");
    }

    #[test]
    fn strings_escape_like_json_dumps() {
        let mut out = String::new();
        json_string(&mut out, "a – é \"q\" \u{1F600}\n<&>'\u{7f}", false);
        assert_eq!(
            out,
            "\"a \\u2013 \\u00e9 \\\"q\\\" \\ud83d\\ude00\\n<&>'\u{7f}\""
        );
        let mut out = String::new();
        json_string(&mut out, "<a href='x'>&", true);
        assert_eq!(out, r#""\u003ca href=\u0027x\u0027\u003e\u0026""#);
    }
}
