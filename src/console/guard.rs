//! The console's guards against keys that end the IOC by accident (Ctrl-C, Ctrl-D and `exit`
//! at an attached console are a well-known foot-gun).
//!
//! [`StopKeyGuard`] (on by default): Ctrl-C reaches the PTY's line discipline as SIGINT to the
//! IOC's group and Ctrl-D at an empty iocsh prompt is EOF, so either ends softIoc and the
//! restart policy starts it again. Both bytes are dropped wherever they appear in a client's
//! input, and the client is told, at most once per [`HINT_EVERY`], how to leave and how to turn
//! the guard off. There is deliberately no "press twice to send": a user who wants to leave
//! presses Ctrl-C again and again, and the second press would kill the IOC.
//!
//! [`ExitGuard`] (`--console-confirm-exit`, off by default):
//! With `--console-confirm-exit`, each client's typed line is followed; when a line that reads
//! exactly `exit` is entered, the Enter is held back and replaced by Ctrl-U (kill line, in the
//! PTY's canonical mode and in readline alike), and the user is told to type it again. A second
//! `exit` within [`CONFIRM_WINDOW`] goes through. Lines the guard cannot follow (escape sequences
//! such as history recall with the arrow keys) are let through untouched.

use std::time::{Duration, Instant};

/// How long a first `exit` arms the confirmation.
pub(crate) const CONFIRM_WINDOW: Duration = Duration::from_secs(10);
const KILL_LINE: u8 = 0x15;
/// Longer lines are not `exit`; stop collecting.
const MAX_LINE: usize = 16;

/// Ctrl-C and Ctrl-D, the bytes [`StopKeyGuard`] holds back.
pub(crate) const STOP_KEYS: [u8; 2] = [0x03, 0x04];
/// A client that keeps pressing a stop key is reminded at most this often.
pub(crate) const HINT_EVERY: Duration = Duration::from_secs(10);

/// One client's stop-key guard: remembers when it last hinted.
#[derive(Debug, Default)]
pub(crate) struct StopKeyGuard {
    last_hint: Option<Instant>,
}

impl StopKeyGuard {
    /// Remove Ctrl-C and Ctrl-D from `bytes`. Returns the first key removed when a hint is
    /// due (none was given in the last [`HINT_EVERY`]).
    pub(crate) fn filter(&mut self, bytes: &mut Vec<u8>, now: Instant) -> Option<u8> {
        let first = bytes.iter().copied().find(|b| STOP_KEYS.contains(b))?;
        bytes.retain(|b| !STOP_KEYS.contains(b));
        let due = self
            .last_hint
            .is_none_or(|t| now.saturating_duration_since(t) >= HINT_EVERY);
        due.then(|| {
            self.last_hint = Some(now);
            first
        })
    }
}

/// One client's view of the line being typed.
#[derive(Debug, Default)]
pub(crate) struct ExitGuard {
    line: Vec<u8>,
    /// The line holds keys the guard cannot interpret.
    unknown: bool,
    armed: Option<Instant>,
}

impl ExitGuard {
    /// Filter typed bytes; the bool says an `exit` was held back (tell the user).
    pub(crate) fn filter(&mut self, input: &[u8], now: Instant) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        let mut held = false;
        for &b in input {
            match b {
                b'\r' | b'\n' => {
                    if self.is_exit() && !self.confirmed(now) {
                        self.armed = Some(now);
                        out.push(KILL_LINE);
                        held = true;
                        self.clear();
                        continue;
                    }
                    if self.is_exit() {
                        self.armed = None;
                    }
                    self.clear();
                }
                0x7f | 0x08 => {
                    self.line.pop();
                }
                KILL_LINE | 0x03 => self.clear(),
                0x20..=0x7e if self.line.len() < MAX_LINE => self.line.push(b),
                0x20..=0x7e => self.unknown = true,
                _ => self.unknown = true,
            }
            out.push(b);
        }
        (out, held)
    }

    fn is_exit(&self) -> bool {
        !self.unknown && self.line.trim_ascii() == b"exit"
    }

    fn confirmed(&self, now: Instant) -> bool {
        self.armed
            .is_some_and(|t| now.saturating_duration_since(t) <= CONFIRM_WINDOW)
    }

    fn clear(&mut self) {
        self.line.clear();
        self.unknown = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_keys_are_dropped_and_hinted_once_per_period() {
        let mut g = StopKeyGuard::default();
        let t = Instant::now();
        let mut b = b"ab\x03c\x04\r".to_vec();
        assert_eq!(g.filter(&mut b, t), Some(0x03));
        assert_eq!(b, b"abc\r");
        let mut b = b"\x04\x04".to_vec();
        assert_eq!(
            g.filter(&mut b, t + HINT_EVERY / 2),
            None,
            "no second hint yet"
        );
        assert!(b.is_empty());
        let mut b = b"\x04".to_vec();
        assert_eq!(g.filter(&mut b, t + HINT_EVERY), Some(0x04));
        let mut b = b"dbl\r".to_vec();
        assert_eq!(
            g.filter(&mut b, t + HINT_EVERY * 3),
            None,
            "nothing to hold back"
        );
        assert_eq!(b, b"dbl\r");
    }

    #[test]
    fn first_exit_is_held_and_the_line_killed() {
        let mut g = ExitGuard::default();
        let t = Instant::now();
        assert_eq!(g.filter(b"exit\r", t), (b"exit\x15".to_vec(), true));
    }

    #[test]
    fn second_exit_within_the_window_goes_through() {
        let mut g = ExitGuard::default();
        let t = Instant::now();
        g.filter(b"exit\r", t);
        let t2 = t + Duration::from_secs(3);
        assert_eq!(g.filter(b" exit \r", t2), (b" exit \r".to_vec(), false));
        // and the confirmation is used up
        assert!(g.filter(b"exit\r", t2).1);
    }

    #[test]
    fn second_exit_after_the_window_is_held_again() {
        let mut g = ExitGuard::default();
        let t = Instant::now();
        g.filter(b"exit\r", t);
        assert!(g.filter(b"exit\r", t + CONFIRM_WINDOW * 2).1);
    }

    #[test]
    fn key_by_key_typing_and_backspace() {
        let mut g = ExitGuard::default();
        let t = Instant::now();
        for b in b"exitt\x7f" {
            assert!(!g.filter(&[*b], t).1);
        }
        assert_eq!(g.filter(b"\r", t), (vec![KILL_LINE], true));
    }

    #[test]
    fn other_lines_pass_untouched() {
        let mut g = ExitGuard::default();
        let t = Instant::now();
        for line in [&b"dbl\r"[..], b"exit_status\r", b"echo exit\r", b"exi\r"] {
            assert_eq!(g.filter(line, t), (line.to_vec(), false));
        }
    }

    #[test]
    fn lines_with_escape_sequences_are_let_through() {
        let mut g = ExitGuard::default();
        let t = Instant::now();
        // up-arrow history recall then "exit": the guard cannot know the line; it lets it be
        assert_eq!(
            g.filter(b"\x1b[Aexit\r", t),
            (b"\x1b[Aexit\r".to_vec(), false)
        );
    }
}
