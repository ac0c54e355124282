//! The `exit` guard: typing `exit` at iocsh stops softIoc, which a restart policy then turns into
//! a restart (deploy-k8s.md §3.2 calls Ctrl-C, Ctrl-D and `exit` a foot-gun; spec
//! supervise-console.md §12.8 asks for `exit` to be confirmed or blocked).
//!
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
