//! A seeded generator of msi inputs for the property test in `msi.rs`: substitution files
//! (pattern, regular and global blocks, quoting, comments, the odd syntax error) and templates
//! (macros with defaults, nested and scoped references, undefined names, escapes, quotes,
//! `include` and `substitute` lines), plus msi options.

/// splitmix64: small, seedable, good enough to spread cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// 0..n
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// true with probability p percent
    pub fn pct(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// One generated case: files to write into a folder, and msi's arguments (paths relative to
/// that folder are made absolute by the caller).
#[derive(Debug, Default)]
pub struct Case {
    pub files: Vec<(String, String)>,
    pub macros: Vec<String>,
    pub verbose: bool,
    pub global_scope: bool,
    /// The `-S` file name, if any.
    pub subst: Option<String>,
    pub template: Option<String>,
    /// `-D`: print make dependencies (the caller adds `-o`).
    pub deps: bool,
}

const NAMES: &[&str] = &["A", "B", "C", "P", "R", "N", "P1", "Q"];
const WORDS: &[&str] = &["x", "1", "two", "a b", "v=1", "", "ai", "Z9", "-", "%d"];

pub fn case(rng: &mut Rng) -> Case {
    let mut c = Case {
        verbose: rng.pct(30),
        global_scope: rng.pct(15),
        ..Case::default()
    };
    for _ in 0..rng.below(3) {
        c.macros.push(defs(rng, 3));
    }
    let n_templates = 1 + rng.below(3);
    for i in 0..n_templates {
        c.files.push((format!("t{i}.template"), template(rng)));
    }
    c.files
        .push(("inc.inc".into(), template_lines(rng, 3, false)));
    if rng.pct(10) {
        // no substitution file: the template expanded once with the -M macros
        c.template = Some("t0.template".into());
        return c;
    }
    c.deps = rng.pct(5);
    let mut text = String::new();
    if rng.pct(8) {
        // sets outside any file block: they need the template argument ("No template file")
        c.template = rng
            .pct(80)
            .then(|| format!("t{}.template", rng.below(n_templates)));
        text.push_str(&format!("{{ {} }}\n", defs(rng, 2)));
        if rng.pct(50) {
            text.push_str(&format!(
                "pattern {{ A, B }}\n{{ 1, {} }}\n",
                pattern_value(rng)
            ));
        }
    } else if rng.pct(5) {
        c.template = Some(format!("t{}.template", rng.below(n_templates)));
    }
    text.push_str(&subst(rng, n_templates));
    c.files.push(("s.subst".into(), text));
    c.subst = Some("s.subst".into());
    c
}

/// A macro value: words, references of every form, quotes and escapes.
fn value(rng: &mut Rng, depth: usize) -> String {
    let mut v = String::new();
    for _ in 0..rng.below(4) {
        match rng.below(12) {
            0..=3 => v.push_str(rng.pick(WORDS)),
            4 | 5 => v.push_str(&reference(rng, depth + 1)),
            6 => v.push_str(&format!("\"{}\"", rng.pick(WORDS))),
            7 => v.push_str(&format!("'{}'", rng.pick(WORDS))),
            8 => v.push_str(rng.pick(&["\\$", "\\\"", "\\,", "\\\\", "\\n"])),
            9 => v.push_str(rng.pick(&["(", ")", "{", "}", "=", ","])),
            10 if rng.pct(10) => v.push_str(&"L".repeat(250 + rng.below(20))),
            _ => v.push_str(rng.pick(NAMES)),
        }
    }
    v
}

/// `$(NAME…)` in all its forms, some malformed.
fn reference(rng: &mut Rng, depth: usize) -> String {
    let name = if depth < 3 && rng.pct(10) {
        format!("P{}", reference(rng, depth + 1))
    } else {
        rng.pick(NAMES).to_owned()
    };
    let (open, close) = if rng.pct(20) {
        ("${", "}")
    } else {
        ("$(", ")")
    };
    let inner = match rng.below(10) {
        0 | 1 if depth < 3 => format!("{name}={}", default_text(rng, depth)),
        2 if depth < 3 => format!("{name},{name}={}", rng.pick(WORDS)),
        3 => format!("{name}="),
        _ => name,
    };
    // malformed references only in template lines, which end in a newline: msi loops for
    // ever on `$(A,B=x,` at the very end of a macro value
    if depth == 0 && rng.pct(2) {
        // unterminated: the name runs to the end of the line
        return format!("{open}{inner}");
    }
    if depth == 0 && rng.pct(2) {
        return format!("{open}{inner}{}", if close == ")" { "}" } else { ")" });
    }
    format!("{open}{inner}{close}")
}

fn default_text(rng: &mut Rng, depth: usize) -> String {
    match rng.below(6) {
        0 => format!("\"{}\"", rng.pick(WORDS)),
        1 => reference(rng, depth + 1),
        2 => "x\\)y".to_owned(),
        3 => "'q'".to_owned(),
        _ => rng.pick(WORDS).to_owned(),
    }
}

/// A definition string for -M, substitute, sets and globals.
fn defs(rng: &mut Rng, max: usize) -> String {
    let mut parts = Vec::new();
    for _ in 0..=rng.below(max) {
        let name = rng.pick(NAMES);
        parts.push(match rng.below(10) {
            0 => name.to_owned(), // no '=': delete
            1 => format!("{name} = {}", simple_value(rng)),
            2 => format!("{name}=\"{}\"", quotable(&value(rng, 1))),
            _ => format!("{name}={}", simple_value(rng)),
        });
    }
    // msi's macParseDefns sizes its arrays by the string length and overflows the heap when
    // short definitions (`A,B,C=`) need more slots than that; keep clear of its crash
    let mut text = parts.join(",");
    let mut slots = 2 * parts.len() + 2;
    while text.len() <= slots {
        text.push_str(",ZZZZZZZZZZ=1");
        slots += 2;
    }
    text
}

/// A value safe inside a definition string (no bare commas or quotes to upset the split).
fn simple_value(rng: &mut Rng) -> String {
    value(rng, 1)
        .chars()
        .filter(|c| !matches!(c, ',' | '"' | '\'' | '{' | '}' | ' ' | '\\'))
        .collect()
}

fn template(rng: &mut Rng) -> String {
    let n = 1 + rng.below(6);
    let mut t = template_lines(rng, n, true);
    if rng.pct(10) {
        t.push_str("end"); // no final newline: instances run together
    }
    t
}

fn template_lines(rng: &mut Rng, n: usize, directives: bool) -> String {
    let mut t = String::new();
    for _ in 0..n {
        if directives && rng.pct(8) {
            t.push_str(match rng.below(12) {
                0..=4 => "include \"inc.inc\"\n",
                5..=8 => "  include \"inc.inc\"  \n",
                9 | 10 => "include \"inc.inc\" #not a directive\n",
                _ => "include \"missing.inc\"\n",
            });
            continue;
        }
        if directives && rng.pct(6) {
            t.push_str(&format!(
                "substitute \"{}\"\n",
                defs(rng, 2).replace('"', "")
            ));
            continue;
        }
        t.push_str(&template_line(rng));
    }
    t
}

fn template_line(rng: &mut Rng) -> String {
    let mut line = String::from(rng.pick(&["", "  ", "\t", "record(ai, \""]));
    for _ in 0..1 + rng.below(5) {
        match rng.below(10) {
            0..=4 => line.push_str(&reference(rng, 0)),
            5 => line.push_str(rng.pick(WORDS)),
            6 => line.push_str(rng.pick(&["\"", "'", "\\", "\\$(A)", "$", "$A", "it's "])),
            7 => line.push_str(&format!("\"{}\"", reference(rng, 0))),
            8 => line.push_str(rng.pick(&["field(DESC, \"", "\")", "#", " # c"])),
            _ => line.push(' '),
        }
    }
    line.push_str(if rng.pct(5) { "\r\n" } else { "\n" });
    line
}

/// Syntax errors msi reports; injected rarely.
const BREAKAGES: &[&str] = &[
    "}\n",
    "{ A={x} }\n",
    "{ X, a } # trailing\n",
    "    # indented\n",
    "{ \"open\n",
    "file\nt0.template {\n",
    "pattern { A } junk\n",
];

fn subst(rng: &mut Rng, n_templates: usize) -> String {
    let mut s = String::new();
    if rng.pct(30) {
        s.push_str("# header comment\n#\n");
    }
    if rng.pct(25) {
        s.push_str(&format!("global {{ {} }}\n", defs(rng, 2)));
    }
    for _ in 0..1 + rng.below(3) {
        let t = if rng.pct(3) {
            "missing.template".to_owned()
        } else {
            format!("t{}.template", rng.below(n_templates))
        };
        let name = if rng.pct(50) { format!("\"{t}\"") } else { t };
        let brace = if rng.pct(15) { "\n{" } else { " {" };
        s.push_str(&format!("file {name}{brace}\n"));
        if rng.pct(50) {
            pattern_block(rng, &mut s);
        } else {
            regular_block(rng, &mut s);
        }
        if rng.pct(4) {
            s.push_str(BREAKAGES[rng.below(BREAKAGES.len())]);
        }
        s.push_str(if rng.pct(3) { "" } else { "}\n" });
    }
    if rng.pct(10) {
        s.push_str("# trailing comment\n");
    }
    s
}

fn pattern_block(rng: &mut Rng, s: &mut String) {
    let n = 1 + rng.below(4);
    let names: Vec<String> = (0..n)
        .map(|_| {
            let name = rng.pick(NAMES);
            if rng.pct(50) {
                format!("\"{name}\"")
            } else {
                name.to_owned()
            }
        })
        .collect();
    s.push_str(&format!("pattern\n\t{{ {} }}\n", names.join(", ")));
    for _ in 0..rng.below(4) {
        let k = (n + rng.below(3)).saturating_sub(1);
        let values: Vec<String> = (0..k).map(|_| pattern_value(rng)).collect();
        let sep = if rng.pct(20) { " " } else { ", " };
        s.push_str(&format!("\t{{ {} }}\n", values.join(sep)));
    }
}

fn pattern_value(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => rng.pick(&["1", "x", "$(A)", "v=1"]).to_owned(),
        1 => "\"a\\\"b\"".to_owned(),
        2 => "\"\"".to_owned(),
        _ => format!("\"{}\"", quotable(&value(rng, 1))),
    }
}

/// Text that can sit between double quotes: no quotes, no backslash escaping the closing one.
fn quotable(text: &str) -> String {
    text.replace('"', "").trim_end_matches('\\').to_owned()
}

fn regular_block(rng: &mut Rng, s: &mut String) {
    for i in 0..1 + rng.below(3) {
        // msi takes a global inside a file block only after a set (before one it expects
        // `pattern`)
        if i > 0 && rng.pct(15) {
            s.push_str(&format!("global {{ {} }}\n", defs(rng, 1)));
        }
        let defs_text = defs(rng, 2);
        match rng.below(6) {
            0 => s.push_str("{}\n"),
            1 if !defs_text.contains('"') => {
                s.push_str(&format!("{{ {} }}\n", defs_text.replace(',', "\n")))
            }
            2 => s.push_str(&format!("{{ {} }}\n", defs_text.replace(',', " "))),
            _ => s.push_str(&format!("\t{{ {} }}\n", defs(rng, 3))),
        }
    }
}
