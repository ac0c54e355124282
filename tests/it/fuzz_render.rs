//! A randomized, seeded stand-in for the cargo-fuzz target (`fuzz/fuzz_targets/render.rs`)
//! that runs in the normal test suite: real instances and their support YAML, mutated a few
//! thousand times (bytes, lines, YAML and Jinja tokens), go through the in-memory render path
//! (`iocrun::render::render_text`). Any input may be rejected; none may panic.
//!
//! The generator is seeded, so a failure names the seed and iteration that reproduce it.
//! `IOCRUN_FUZZ_ITERS` changes the number of mutated inputs (default 2000).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::util;

/// Small, varied cases: samples with repeats, sub-entities, counters, shared lists, enums.
const CASES: &[&str] = &[
    "ibek-utils",
    "ibek-listarg",
    "ibek-gauges",
    "ibek-repeat",
    "ibek-subentity_test",
    "ibek-technosoft",
    "ibek-motorSim",
    "syn-lakeshore340",
];

/// Fragments that tend to reach unusual paths in the YAML loader and the Jinja engine.
const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{{ x }}",
    "{% for i in range(3) %}",
    "{% endfor %}",
    "{% raw %}",
    " | int }}",
    " | list }}",
    "% (1, 2)",
    "'%02d' % ",
    ".format(",
    ")",
    "(",
    "[",
    "]",
    ":",
    ": ",
    "- ",
    "-",
    "\"",
    "'",
    "&a ",
    "*a",
    "<<: *a",
    "|",
    "|+",
    ">-",
    "\n",
    "\n  ",
    "\t",
    "null",
    "~",
    "true",
    "1e400",
    "-0",
    "0x1F",
    "1_000",
    "2001-01-01",
    "type: ibek.repeat",
    "type: ibek.wait_ip",
    "entity_enabled: false",
    "values: [1, 2]",
    "_global.incrementor('c')",
    "_global.set('x', 1)",
    "env.HOME",
    "ioc_name",
    "é",
    "\u{0}",
    "\u{feff}",
    "{}",
    "[]",
    "? ",
    "!!str ",
    "!!binary ",
    "%YAML 1.2\n---\n",
    "...",
    "---\n",
];

/// xorshift64*: a tiny deterministic generator, enough to pick mutations.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// The nearest char boundary at or before `i`.
fn boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Apply one random mutation to `text`, with the YAML and Jinja tokens.
fn mutate(text: &str, rng: &mut Rng) -> String {
    mutate_with(text, rng, TOKENS)
}

/// Apply one random mutation to `text`: insert one of `tokens`, cut a span, move, copy or drop
/// lines, replace a few bytes by a token, insert a character, re-indent a line.
pub(crate) fn mutate_with(text: &str, rng: &mut Rng, tokens: &[&str]) -> String {
    let mut s = text.to_owned();
    let at = boundary(&s, rng.below(s.len() + 1));
    match rng.below(7) {
        0 => s.insert_str(at, tokens[rng.below(tokens.len())]),
        1 => {
            let end = boundary(&s, at + rng.below(40));
            s.replace_range(at..end.max(at), "");
        }
        2 | 3 => {
            // swap, duplicate or drop whole lines: keeps most of the YAML valid
            let mut lines: Vec<&str> = s.lines().collect();
            if lines.len() > 1 {
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                match rng.below(3) {
                    0 => lines.swap(a, b),
                    1 => lines.insert(a, lines[b]),
                    _ => {
                        lines.remove(a);
                    }
                }
            }
            s = lines.join("\n");
        }
        4 => {
            // change a number or a word into another token
            let end = boundary(&s, at + 1 + rng.below(8));
            s.replace_range(at..end.max(at), tokens[rng.below(tokens.len())]);
        }
        5 => {
            let ch = char::from_u32(rng.below(0x250) as u32).unwrap_or('x');
            s.insert(at, ch);
        }
        _ => {
            // re-indent a line: YAML structure changes
            let mut lines: Vec<String> = s.lines().map(str::to_owned).collect();
            if !lines.is_empty() {
                let i = rng.below(lines.len());
                lines[i] = format!("{}{}", " ".repeat(rng.below(6)), lines[i].trim_start());
            }
            s = lines.join("\n");
        }
    }
    s
}

fn read_case(case: &Path) -> (String, Vec<String>) {
    let instance = std::fs::read_to_string(case.join("input/config/ioc.yaml")).expect("ioc.yaml");
    let supports = std::fs::read_to_string(case.join("defs.txt"))
        .expect("defs.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|d| std::fs::read_to_string(case.join("input").join(d.trim())).expect("support"))
        .collect();
    (instance, supports)
}

#[test]
fn mutated_inputs_never_panic() {
    let Some(shared) = util::shared_dir() else {
        return;
    };
    let iterations: usize = std::env::var("IOCRUN_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seed = 0x10c_2026_u64;
    let cases: Vec<(String, Vec<String>)> = CASES
        .iter()
        .map(|c| read_case(&shared.join("conformance/ibek/cases").join(c)))
        .collect();
    // the unmutated inputs render: the harness exercises the real path, not just errors
    for (name, (instance, supports)) in CASES.iter().zip(&cases) {
        let refs: Vec<&str> = supports.iter().map(String::as_str).collect();
        let res = iocrun::render::render_text(instance, &refs);
        assert!(res.is_ok(), "{name} should render: {:?}", res.err());
    }
    let mut rng = Rng(seed);
    let (mut ok, mut rejected) = (0, 0);
    for i in 0..iterations {
        let (instance, supports) = &cases[rng.below(cases.len())];
        let mut instance = instance.clone();
        let mut supports = supports.clone();
        for _ in 0..1 + rng.below(4) {
            // mostly the instance; sometimes a support file
            if supports.is_empty() || rng.below(4) > 0 {
                instance = mutate(&instance, &mut rng);
            } else {
                let k = rng.below(supports.len());
                supports[k] = mutate(&supports[k], &mut rng);
            }
        }
        let refs: Vec<&str> = supports.iter().map(String::as_str).collect();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            iocrun::render::render_text(&instance, &refs)
        }));
        match outcome {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(_)) => rejected += 1,
            Err(_) => {
                panic!("render panicked on iteration {i} (seed {seed:#x}); instance:\n{instance}")
            }
        }
    }
    eprintln!(
        "fuzz harness: {iterations} mutated inputs, {ok} rendered, {rejected} rejected, 0 panics"
    );
}
