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
//! The addresses are the DSP's (and any it expands, such as a patch load).
//! Times need not be sorted: commands are ordered by time, keeping line
//! order for equal times. A time becomes the frame
//! `round(seconds · sample_rate)`.

use chronus_dsp::{Arg, DspSpec, Setup, TimedEvent};

use crate::JournalError;
use crate::text::{tokens, typed_arg};

/// Parses a score into events stamped for `setup`'s sample rate.
///
/// # Errors
/// [`JournalError::Syntax`] or [`JournalError::Command`] naming the line.
pub fn parse_score(text: &str, spec: &DspSpec, setup: &Setup) -> Result<Vec<TimedEvent>, JournalError> {
    let mut out = Vec::new();
    let mut events = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = tokens(raw);
        let Some((time, rest)) = t.split_first() else { continue };
        let seconds: f64 =
            time.parse().ok().filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1.0e7).ok_or_else(
                || JournalError::Syntax {
                    line, message: format!("'{time}' is not a time in seconds (≥ 0)")
                },
            )?;
        let Some((path, args)) = rest.split_first() else {
            return Err(JournalError::Syntax {
                line,
                message: "a time must be followed by an address, e.g. 0.5 /note_on 1 440 0.5".into(),
            });
        };
        let args: Vec<Arg<'_>> = args.iter().map(|a| typed_arg(a)).collect();
        events.clear();
        spec.parse(setup, path, &args, &chronus_dsp::AnyFile, &mut events)
            .map_err(|source| JournalError::Command { line, source })?;
        let frame = (seconds * f64::from(setup.sample_rate)).round() as u64;
        out.extend(events.iter().map(|&event| TimedEvent { frame, event }));
    }
    out.sort_by_key(|c| c.frame);
    Ok(out)
}
