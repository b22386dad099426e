//! The Chronus address space: OSC-style addresses and arguments ⇄
//! [`Command`]. Scores, journals and the OSC server all use this one table.
//!
//! | address      | arguments                        |
//! |--------------|----------------------------------|
//! | `/note_on`   | `i:voice f:freq_hz f:amp`        |
//! | `/note_off`  | `i:voice`                        |
//! | `/set`       | `s:param f:value` (every voice)  |
//! | `/voice/set` | `i:voice s:param f:value`        |
//!
//! Integers and floats are accepted interchangeably where a number is
//! expected; a voice id must be a whole number ≥ 0.

use chronus_dsp::{Command, Param};

/// One argument, as it arrived.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg<'a> {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f32),
    /// A string.
    Str(&'a str),
}

/// Why an address and its arguments are not a command.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// No such address.
    #[error("unknown address {0} (known: /note_on, /note_off, /set, /voice/set)")]
    UnknownAddress(String),
    /// Wrong number of arguments.
    #[error("{address} takes {expected} arguments ({usage}), got {got}")]
    WrongArgCount {
        /// The address.
        address: &'static str,
        /// How many it takes.
        expected: usize,
        /// Its usage.
        usage: &'static str,
        /// How many came.
        got: usize,
    },
    /// An argument has the wrong type.
    #[error("{address}: argument {index} ({name}) must be {expected}")]
    WrongArgType {
        /// The address.
        address: &'static str,
        /// 1-based position.
        index: usize,
        /// Argument name.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The parameter name is unknown.
    #[error(
        "unknown parameter '{0}' (known: freq, amp, cutoff, q, attack, decay, sustain, release, pan, filter, master)"
    )]
    UnknownParam(String),
}

/// The addresses, their arity and usage.
const SPECS: [(&str, usize, &str); 4] = [
    ("/note_on", 3, "voice freq_hz amp"),
    ("/note_off", 1, "voice"),
    ("/set", 2, "param value"),
    ("/voice/set", 3, "voice param value"),
];

struct Args<'a, 'b> {
    address: &'static str,
    args: &'b [Arg<'a>],
}

impl<'a> Args<'a, '_> {
    fn err(&self, index: usize, name: &'static str, expected: &'static str) -> AddressError {
        AddressError::WrongArgType { address: self.address, index: index + 1, name, expected }
    }

    fn voice(&self, i: usize) -> Result<u32, AddressError> {
        let bad = || self.err(i, "voice", "a whole number ≥ 0");
        match self.args[i] {
            Arg::Int(v) => u32::try_from(v).map_err(|_| bad()),
            Arg::Float(f) if f.fract() == 0.0 && (0.0..=u32::MAX as f32).contains(&f) => Ok(f as u32),
            _ => Err(bad()),
        }
    }

    fn number(&self, i: usize, name: &'static str) -> Result<f32, AddressError> {
        match self.args[i] {
            Arg::Int(v) => Ok(v as f32),
            Arg::Float(f) => Ok(f),
            Arg::Str(_) => Err(self.err(i, name, "a number")),
        }
    }

    fn param(&self, i: usize) -> Result<Param, AddressError> {
        match self.args[i] {
            Arg::Str(s) => Param::from_name(s).ok_or_else(|| AddressError::UnknownParam(s.to_owned())),
            _ => Err(self.err(i, "param", "a parameter name")),
        }
    }
}

/// Builds the command for `address` with `args`.
///
/// # Errors
/// An [`AddressError`] saying what is wrong, fit to show the sender.
pub fn parse_command(address: &str, args: &[Arg<'_>]) -> Result<Command, AddressError> {
    let &(address, expected, usage) = SPECS
        .iter()
        .find(|(a, ..)| *a == address)
        .ok_or_else(|| AddressError::UnknownAddress(address.to_owned()))?;
    if args.len() != expected {
        return Err(AddressError::WrongArgCount { address, expected, usage, got: args.len() });
    }
    let a = Args { address, args };
    Ok(match address {
        "/note_on" => {
            Command::NoteOn { voice: a.voice(0)?, freq: a.number(1, "freq")?, amp: a.number(2, "amp")? }
        }
        "/note_off" => Command::NoteOff { voice: a.voice(0)? },
        "/set" => Command::Set { param: a.param(0)?, value: a.number(1, "value")? },
        _ => Command::VoiceSet { voice: a.voice(0)?, param: a.param(1)?, value: a.number(2, "value")? },
    })
}

/// The address and arguments of `command` (the inverse of
/// [`parse_command`]).
pub fn command_address(command: &Command) -> (&'static str, Vec<Arg<'static>>) {
    match *command {
        Command::NoteOn { voice, freq, amp } => {
            ("/note_on", vec![Arg::Int(voice.into()), Arg::Float(freq), Arg::Float(amp)])
        }
        Command::NoteOff { voice } => ("/note_off", vec![Arg::Int(voice.into())]),
        Command::Set { param, value } => ("/set", vec![Arg::Str(param.name()), Arg::Float(value)]),
        Command::VoiceSet { voice, param, value } => {
            ("/voice/set", vec![Arg::Int(voice.into()), Arg::Str(param.name()), Arg::Float(value)])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_and_floats_are_interchangeable() {
        let a = parse_command("/note_on", &[Arg::Float(2.0), Arg::Int(440), Arg::Float(0.5)]).unwrap();
        assert_eq!(a, Command::NoteOn { voice: 2, freq: 440.0, amp: 0.5 });
        let b = parse_command("/voice/set", &[Arg::Int(1), Arg::Str("cutoff"), Arg::Int(1200)]).unwrap();
        assert_eq!(b, Command::VoiceSet { voice: 1, param: Param::Cutoff, value: 1200.0 });
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        let e = parse_command("/note_on", &[Arg::Int(1)]).unwrap_err();
        assert_eq!(e.to_string(), "/note_on takes 3 arguments (voice freq_hz amp), got 1");
        let e = parse_command("/note_off", &[Arg::Float(1.5)]).unwrap_err();
        assert!(e.to_string().contains("voice"), "{e}");
        assert!(parse_command("/note_off", &[Arg::Int(-1)]).is_err());
        assert!(matches!(
            parse_command("/set", &[Arg::Str("volume"), Arg::Int(1)]),
            Err(AddressError::UnknownParam(_))
        ));
        assert!(matches!(parse_command("/quit_now", &[]), Err(AddressError::UnknownAddress(_))));
        assert!(parse_command("/set", &[Arg::Int(1), Arg::Int(1)]).is_err());
    }
}
