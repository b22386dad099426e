//! A recording compared bit for bit with the offline render of its
//! journal.

use chronus_dsp::{DspSpec, Setup, TimedEvent};

use crate::{Annotations, JournalError, Renderer};

/// Compares a recording with the offline render of `events` — as the run
/// should have sounded: excised events left out and resets applied, as the
/// workers did — frame by frame and bit by bit, except the frames of
/// machine stalls (silence the machine imposed; the workers rendered those
/// frames all the same), the frames played from a replica later outvoted
/// (`@wrong`: its wrong audio, which no render reproduces; counted apart)
/// and the silence a device's xruns inserted.
/// Streams both; a recording shorter than `frames` differs where it ends.
///
/// # Errors
/// [`JournalError`] if the DSP cannot be prepared or the events fail to
/// read.
pub fn first_difference<'a>(
    spec: &DspSpec,
    setup: Setup,
    notes: &Annotations,
    events: impl Iterator<Item = Result<TimedEvent, JournalError>> + 'a,
    recording: impl Iterator<Item = (f32, f32)>,
    frames: u64,
) -> Result<Option<u64>, JournalError> {
    compare(spec, setup, notes, events, recording, frames, false)
}

/// [`first_difference`], or with `as_played` against the render as the
/// run played it (the journal's gaps as silence: frames lost are then no
/// difference, for a caller that accounts for them apart).
pub fn compare<'a>(
    spec: &DspSpec,
    setup: Setup,
    notes: &Annotations,
    events: impl Iterator<Item = Result<TimedEvent, JournalError>> + 'a,
    mut recording: impl Iterator<Item = (f32, f32)>,
    frames: u64,
    as_played: bool,
) -> Result<Option<u64>, JournalError> {
    // Rendered as it should have sounded: stalls are skipped below, gaps
    // are differences (frames Chronus lost) unless `as_played`; the silence
    // a device's xruns put into the recording is skipped.
    let mut renderer = Renderer::new(spec, setup, notes, as_played, events)?;
    let block = renderer.block();
    let (mut left, mut right) = (vec![0.0f32; block], vec![0.0f32; block]);
    let mut skipped: Vec<_> = notes.stalls.iter().chain(&notes.wrong).copied().collect();
    skipped.sort_by_key(|s| s.first);
    let mut stalls = skipped.iter().peekable();
    let mut xruns = notes.xruns.iter().peekable();
    let mut frame = 0u64;
    while frame < frames {
        renderer.render_block(&mut left, &mut right)?;
        for k in 0..block {
            let f = frame + k as u64;
            if f >= frames {
                break;
            }
            while let Some(x) = xruns.next_if(|x| x.first <= f) {
                for _ in 0..x.frames {
                    recording.next();
                }
            }
            let Some((l, r)) = recording.next() else { return Ok(Some(f)) };
            while stalls.peek().is_some_and(|s| s.end() <= f) {
                stalls.next();
            }
            if stalls.peek().is_some_and(|s| s.first <= f) {
                continue;
            }
            if l.to_bits() != left[k].to_bits() || r.to_bits() != right[k].to_bits() {
                return Ok(Some(f));
            }
        }
        frame += block as u64;
    }
    Ok(None)
}
