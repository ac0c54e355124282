//! "Did you mean …?" for a misspelt entity type or argument: the closest known name by edit
//! distance, when it is close enough to be a likely typo.

/// The candidate closest to `word` (Levenshtein distance, ignoring case), if it is within a
/// third of the word's length (at least 1, at most 3 edits). Ties go to the first candidate.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        // long candidates cannot be close; skip the quadratic work
        if c.len().abs_diff(word.len()) > limit || c == word {
            continue;
        }
        let d = distance(&word_lower, &c.to_lowercase());
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance over chars where swapping two neighbours is one edit (optimal string
/// alignment: `baud`/`buad` and `t.Dev`/`t.Dve` are one typo apart).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; 3];
    rows[1] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let (before, rest) = rows.split_at_mut(1);
        let (prev, cur) = rest.split_at_mut(1);
        let (prev2, prev, cur) = (&before[0], &prev[0], &mut cur[0]);
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        rows.rotate_left(1);
    }
    rows[1][b.len()]
}

/// ` (did you mean 'x'?)`, or nothing.
pub fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let types = ["asyn.AsynIP", "asyn.AsynSerial", "motorSim.simMotorAxis"];
        assert_eq!(did_you_mean("asyn.AsynIp", types), Some("asyn.AsynIP"));
        assert_eq!(did_you_mean("asyn.AsyncIP", types), Some("asyn.AsynIP"));
        assert_eq!(
            did_you_mean("motorSim.simMotorAxes", types),
            Some("motorSim.simMotorAxis")
        );
        assert_eq!(did_you_mean("pmac.GeoBrick", types), None);
        assert_eq!(
            did_you_mean("PORT", ["P", "PORT_NAME", "PORTS"]),
            Some("PORTS")
        );
        assert_eq!(did_you_mean("x", ["y"]), Some("y"));
        assert_eq!(did_you_mean("ab", ["xy"]), None);
        assert_eq!(
            hint("baud", ["baudrate", "bauds"]),
            " (did you mean 'bauds'?)"
        );
        // a swap of two neighbours is one typo
        assert_eq!(did_you_mean("buad", ["baud", "bits"]), Some("baud"));
        assert_eq!(did_you_mean("t.Dve", ["t.Dev"]), Some("t.Dev"));
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
    }
}
