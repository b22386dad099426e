//! The command journal: every stamped command of a run, one per line.
//!
//! ```text
//! # chronus journal v1
//! @sample_rate 48000
//! @voices 64
//! 0 /set release 0.3
//! 24000 /note_on 1 440 0.5
//! 72000 /note_off 1
//! @end 96000
//! ```
//! Lines are `FRAME ADDRESS ARGS…`, in the order the commands were stamped
//! (which is also frame order). Floats are written in Rust's shortest
//! round-trip form, so a journal replays bit for bit; `NaN` and `inf` are
//! written as such (the synth refuses them again on replay, as it did live).
//! `@end` gives the number of frames the run played. `@stall FIRST FRAMES`
//! records frames the machine did not let the output play in time (a
//! stalled host): the recording holds silence there, the render does not
//! unless asked ([`Journal::silence_stalls`]). `#` starts a comment.

use std::io::Write;

use chronus_dsp::{Command, TimedCommand};

use crate::JournalError;
use crate::address::{Arg, command_address, parse_command};

/// First line of every journal.
pub const JOURNAL_MAGIC: &str = "# chronus journal v1";

/// A parsed journal.
#[derive(Clone, Debug, PartialEq)]
pub struct Journal {
    /// Sample rate of the run, Hz.
    pub sample_rate: u32,
    /// Voices of the run.
    pub voices: u32,
    /// The stamped commands, in stamp order.
    pub commands: Vec<TimedCommand>,
    /// Frames played, if the run ended cleanly.
    pub end_frame: Option<u64>,
    /// Frames the machine did not let the output play in time, in order.
    pub stalls: Vec<FrameSpan>,
}

/// A run of consecutive frames: `[first, first + frames)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameSpan {
    /// The first frame.
    pub first: u64,
    /// How many frames.
    pub frames: u64,
}

/// Splits a line into whitespace-separated tokens and types each one: a
/// whole number is an `Int`, another number a `Float`, the rest a `Str`.
pub(crate) fn typed_args<'a>(tokens: &[&'a str]) -> Vec<Arg<'a>> {
    tokens
        .iter()
        .map(|t| {
            if let Ok(i) = t.parse::<i64>() {
                Arg::Int(i)
            } else if let Ok(f) = t.parse::<f32>() {
                Arg::Float(f)
            } else {
                Arg::Str(t)
            }
        })
        .collect()
}

/// The non-empty lines of `text` as (1-based line number, tokens), with
/// `#` comments stripped.
pub(crate) fn numbered_tokens(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, raw)| {
        let tokens: Vec<&str> = raw.split('#').next().unwrap_or("").split_whitespace().collect();
        (!tokens.is_empty()).then_some((i + 1, tokens))
    })
}

/// The command in `ADDRESS ARGS…` (what follows the time on a line).
pub(crate) fn line_command(line: usize, rest: &[&str]) -> Result<Command, JournalError> {
    let Some((address, args)) = rest.split_first() else {
        return Err(JournalError::Syntax {
            line,
            message: "a time must be followed by an address, e.g. 0.5 /note_on 1 440 0.5".into(),
        });
    };
    parse_command(address, &typed_args(args)).map_err(|source| JournalError::Command { line, source })
}

/// Formats one journal line (without newline).
pub fn format_line(command: &TimedCommand) -> String {
    use std::fmt::Write as _;
    let (address, args) = command_address(&command.command);
    let mut line = format!("{} {address}", command.frame);
    for arg in args {
        let _ = match arg {
            Arg::Int(i) => write!(line, " {i}"),
            Arg::Float(f) => write!(line, " {f}"),
            Arg::Str(s) => write!(line, " {s}"),
        };
    }
    line
}

impl Journal {
    /// Parses a journal.
    ///
    /// # Errors
    /// [`JournalError::Header`] without the magic line or the settings,
    /// [`JournalError::Syntax`] / [`JournalError::Command`] naming the line.
    pub fn parse(text: &str) -> Result<Self, JournalError> {
        match text.lines().next() {
            Some(first) if first.trim() == JOURNAL_MAGIC => {}
            _ => {
                return Err(JournalError::Header(format!("the first line must be '{JOURNAL_MAGIC}'")));
            }
        }
        let (mut sample_rate, mut voices, mut end_frame) = (None, None, None);
        let mut commands = Vec::new();
        let mut stalls = Vec::new();
        let body = text.split_once('\n').map_or("", |(_, rest)| rest);
        for (line, tokens) in numbered_tokens(body) {
            let line = line + 1;
            let syntax = |message: String| JournalError::Syntax { line, message };
            if tokens[0] == "@stall" {
                let span = match tokens.as_slice() {
                    [_, first, frames] => first.parse().ok().zip(frames.parse().ok()),
                    _ => None,
                };
                let (first, frames) = span.ok_or_else(|| syntax("@stall takes FIRST FRAMES".into()))?;
                stalls.push(FrameSpan { first, frames });
                continue;
            }
            if let Some(setting) = tokens[0].strip_prefix('@') {
                let value = match tokens.as_slice() {
                    [_, v] => {
                        v.parse::<u64>().map_err(|_| syntax(format!("@{setting} needs a whole number")))?
                    }
                    _ => return Err(syntax(format!("@{setting} takes one value"))),
                };
                match setting {
                    "sample_rate" => sample_rate = u32::try_from(value).ok(),
                    "voices" => voices = u32::try_from(value).ok(),
                    "end" => end_frame = Some(value),
                    _ => return Err(syntax(format!("unknown setting @{setting}"))),
                }
                continue;
            }
            let frame: u64 =
                tokens[0].parse().map_err(|_| syntax(format!("'{}' is not a frame number", tokens[0])))?;
            let command = line_command(line, &tokens[1..])?;
            if commands.last().is_some_and(|c: &TimedCommand| c.frame > frame) {
                return Err(syntax("frames must not go backwards".into()));
            }
            commands.push(TimedCommand { frame, command });
        }
        let missing = |what: &str| JournalError::Header(format!("missing @{what}"));
        Ok(Self {
            sample_rate: sample_rate.ok_or_else(|| missing("sample_rate"))?,
            voices: voices.ok_or_else(|| missing("voices"))?,
            commands,
            end_frame,
            stalls,
        })
    }

    /// Silences the frames of [`Journal::stalls`] in a render of this
    /// journal, so that it equals what was played, stalls included.
    pub fn silence_stalls(&self, left: &mut [f32], right: &mut [f32]) {
        for s in &self.stalls {
            for channel in [&mut *left, &mut *right] {
                let end = usize::try_from(s.first.saturating_add(s.frames)).unwrap_or(usize::MAX);
                let range = (s.first as usize).min(channel.len())..end.min(channel.len());
                channel[range].fill(0.0);
            }
        }
    }

    /// Writes the journal in its text form.
    ///
    /// # Errors
    /// Any I/O error of `out`.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut w = JournalWriter::new(out, self.sample_rate, self.voices)?;
        for c in &self.commands {
            w.append(c)?;
        }
        for s in &self.stalls {
            w.stall(*s)?;
        }
        if let Some(end) = self.end_frame {
            w.finish(end)?;
        }
        Ok(())
    }
}

/// Appends stamped commands to a journal as they happen.
#[derive(Debug)]
pub struct JournalWriter<W: Write> {
    out: W,
}

impl<W: Write> JournalWriter<W> {
    /// Writes the header.
    ///
    /// # Errors
    /// Any I/O error of `out`.
    pub fn new(mut out: W, sample_rate: u32, voices: u32) -> std::io::Result<Self> {
        writeln!(out, "{JOURNAL_MAGIC}\n@sample_rate {sample_rate}\n@voices {voices}")?;
        Ok(Self { out })
    }

    /// Appends one command.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn append(&mut self, command: &TimedCommand) -> std::io::Result<()> {
        writeln!(self.out, "{}", format_line(command))
    }

    /// Records frames the machine did not let the output play in time.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn stall(&mut self, span: FrameSpan) -> std::io::Result<()> {
        writeln!(self.out, "@stall {} {}", span.first, span.frames)
    }

    /// Records the number of frames played and flushes.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn finish(&mut self, end_frame: u64) -> std::io::Result<()> {
        writeln!(self.out, "@end {end_frame}")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronus_dsp::{Command, Param};

    #[test]
    fn journals_round_trip_bit_for_bit() {
        let journal = Journal {
            sample_rate: 44_100,
            voices: 3,
            commands: vec![
                TimedCommand { frame: 0, command: Command::Set { param: Param::Release, value: 0.1 + 0.2 } },
                TimedCommand {
                    frame: 10,
                    command: Command::NoteOn { voice: 2, freq: 440.123_45, amp: f32::MIN_POSITIVE },
                },
                TimedCommand {
                    frame: 10,
                    command: Command::VoiceSet { voice: 0, param: Param::Q, value: f32::NAN },
                },
                TimedCommand { frame: 99, command: Command::NoteOff { voice: 1 } },
            ],
            end_frame: Some(1_000),
            stalls: vec![FrameSpan { first: 256, frames: 512 }, FrameSpan { first: 900, frames: 3 }],
        };
        let mut text = Vec::new();
        journal.write_to(&mut text).unwrap();
        let back = Journal::parse(std::str::from_utf8(&text).unwrap()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{journal:?}"));
        for (a, b) in back.commands.iter().zip(&journal.commands) {
            assert_eq!(format_line(a), format_line(b));
        }
    }

    #[test]
    fn errors_name_the_line() {
        let text = format!("{JOURNAL_MAGIC}\n@sample_rate 48000\n@voices 4\n0 /note_on 1 440\n");
        let e = Journal::parse(&text).unwrap_err().full_message();
        assert!(e.starts_with("line 4: /note_on takes 3 arguments"), "{e}");
        assert!(Journal::parse("0 /note_off 1").is_err());
        let text = format!("{JOURNAL_MAGIC}\n@voices 4\n");
        assert!(Journal::parse(&text).unwrap_err().to_string().contains("@sample_rate"));
        let text = format!("{JOURNAL_MAGIC}\n@sample_rate 48000\n@voices 4\n5 /note_off 1\n4 /note_off 1\n");
        assert!(Journal::parse(&text).unwrap_err().to_string().contains("backwards"));
    }
}
