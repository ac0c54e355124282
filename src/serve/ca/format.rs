//! Values printed the way EPICS base's `caget` prints them in its default (plain) format:
//! `%-30s` name and one value, or name, element count and values for arrays; doubles as
//! `%g`, strings escaped by `epicsStrnEscapedFromRaw` (`modules/ca/src/tools/tool_lib.c`).

use super::proto::Values;

/// One caget output line (without the newline).
pub fn caget_line(name: &str, values: &Values) -> String {
    let items = texts(values);
    if items.len() <= 1 {
        // caget pads the name only for scalars
        format!(
            "{name:<30} {}",
            items.first().map(String::as_str).unwrap_or("")
        )
    } else {
        format!("{name} {} {}", items.len(), items.join(" "))
    }
}

/// Each element as caget's `val2str` writes it.
pub fn texts(values: &Values) -> Vec<String> {
    match values {
        Values::Strings(v) => v.iter().map(|s| escape(s)).collect(),
        Values::Shorts(v) => v.iter().map(i16::to_string).collect(),
        Values::Enums(v) => v.iter().map(u16::to_string).collect(),
        Values::Longs(v) => v.iter().map(i32::to_string).collect(),
        Values::Chars(v) => v.iter().map(i8::to_string).collect(),
        Values::Floats(v) => v.iter().map(|&x| format_g(f64::from(x))).collect(),
        Values::Doubles(v) => v.iter().map(|&x| format_g(x)).collect(),
    }
}

/// `epicsStrnEscapedFromRaw`: C escapes for the usual controls and quotes, `\xhh` for any
/// other byte that is not printable ASCII.
pub fn escape(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        match b {
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x0b => out.push_str("\\v"),
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// C's `printf("%g", x)`: six significant digits, `%e` style when the exponent is below -4 or
/// at least 6, trailing zeros removed.
pub fn format_g(x: f64) -> String {
    const P: i32 = 6;
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // the exponent after rounding to P significant digits decides the style
    let sci = format!("{:.*e}", (P - 1) as usize, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..P).contains(&exp) {
        let fixed = format!("{:.*}", (P - 1 - exp) as usize, x);
        trim_zeros(&fixed).to_owned()
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs())
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_matches_printf() {
        // expected texts are glibc printf("%g") results
        let cases = [
            (1.23456789, "1.23457"),
            (1.5e12, "1.5e+12"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (999999.5, "1e+06"),
            (123456789.0, "1.23457e+08"),
            (1e100, "1e+100"),
            (0.5, "0.5"),
        ];
        for (x, want) in cases {
            assert_eq!(format_g(x), want, "{x}");
        }
    }

    #[test]
    fn escapes_like_epics() {
        assert_eq!(escape(b"a\x01b\xc3\"q\t"), "a\\x01b\\xc3\\\"q\\t");
    }

    #[test]
    fn scalar_pads_name_array_prints_count() {
        assert_eq!(
            caget_line("T:AI", &Values::Doubles(vec![2.0])),
            format!("{:<30} 2", "T:AI")
        );
        assert_eq!(
            caget_line("T:WF", &Values::Chars(vec![72, 105])),
            "T:WF 2 72 105"
        );
    }
}
