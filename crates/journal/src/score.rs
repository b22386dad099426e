//! Hand-written scores: `SECONDS ADDRESS ARGS…`, one command per line.
//!
//! ```text
//! # a fifth, with a filter opening on the upper note
//! 0.0 /set release 0.3
//! 0.5 /note_on 1 440 0.5
//! 0.5 /note_on 2 660 0.3
//! 1.0 /voice/set 2 cutoff 1200
//! 1.5 /note_off 1
//! 2.0 /note_off 2
//! ```
//! Times need not be sorted: commands are ordered by time, keeping line order
//! for equal times. A time becomes the frame `round(seconds · sample_rate)`.

use chronus_dsp::TimedCommand;

use crate::JournalError;
use crate::text::{line_command, numbered_tokens};

/// Parses a score into commands stamped for `sample_rate`.
///
/// # Errors
/// [`JournalError::Syntax`] or [`JournalError::Command`] naming the line.
pub fn parse_score(text: &str, sample_rate: u32) -> Result<Vec<TimedCommand>, JournalError> {
    let mut commands = Vec::new();
    for (line, tokens) in numbered_tokens(text) {
        let seconds: f64 =
            tokens[0].parse().ok().filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1.0e7).ok_or_else(
                || JournalError::Syntax {
                    line,
                    message: format!("'{}' is not a time in seconds (≥ 0)", tokens[0]),
                },
            )?;
        let command = line_command(line, &tokens[1..])?;
        let frame = (seconds * f64::from(sample_rate)).round() as u64;
        commands.push(TimedCommand { frame, command });
    }
    commands.sort_by_key(|c| c.frame);
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronus_dsp::{Command, Param};

    #[test]
    fn scores_parse_sort_stably_and_skip_comments() {
        let score = "# tune\n\n1.5 /note_off 1\n0.5 /note_on 1 440 0.5  # A4\n0.0 /set release 0.3\n0.5 /voice/set 1 cutoff 1200\n";
        let cmds = parse_score(score, 48_000).unwrap();
        assert_eq!(
            cmds,
            vec![
                TimedCommand { frame: 0, command: Command::Set { param: Param::Release, value: 0.3 } },
                TimedCommand { frame: 24_000, command: Command::NoteOn { voice: 1, freq: 440.0, amp: 0.5 } },
                TimedCommand {
                    frame: 24_000,
                    command: Command::VoiceSet { voice: 1, param: Param::Cutoff, value: 1200.0 }
                },
                TimedCommand { frame: 72_000, command: Command::NoteOff { voice: 1 } },
            ]
        );
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let e = parse_score("0 /note_on 1 440 0.5\n-1 /note_off 1\n", 48_000).unwrap_err();
        assert!(e.to_string().starts_with("line 2:"), "{e}");
        let e = parse_score("0.1 /note_on one 440 0.5\n", 48_000).unwrap_err().full_message();
        assert!(e.starts_with("line 1: /note_on: argument 1 (voice)"), "{e}");
        assert!(parse_score("0.1\n", 48_000).is_err());
        assert!(parse_score("nan /note_off 1\n", 48_000).is_err());
    }
}
