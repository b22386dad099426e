//! What a run produced, and the bit-exact check against the offline render.

use chronus_dsp::{DspError, TimedCommand};
pub use chronus_journal::FrameSpan;
use chronus_journal::{Journal, render_offline};

use crate::events::FailoverEvent;

/// Everything a finished run produced.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Voices.
    pub voices: u32,
    /// Frames played.
    pub frames_played: u64,
    /// What was played, left channel (empty unless recorded in memory).
    pub left: Vec<f32>,
    /// What was played, right channel.
    pub right: Vec<f32>,
    /// Every stamped command, in order.
    pub commands: Vec<TimedCommand>,
    /// Every worker fault and its recovery.
    pub events: Vec<FailoverEvent>,
    /// Frames played as silence because no worker had them.
    pub underrun_frames: u64,
    /// Of `underrun_frames`, those in periods the output thread itself
    /// started too late to deliver (the machine did not run it: a
    /// descheduled virtual CPU, a stalled host). No worker could have
    /// filled them; they are reported apart and left out of
    /// [`RunReport::first_difference`]. See [`RunReport::lost_frames`].
    pub machine_stall_frames: u64,
    /// Those frames as spans, in order, adjacent spans merged.
    pub machine_stalls: Vec<FrameSpan>,
    /// Times the supervisor thread itself was held off so long that the
    /// watchdog excused the workers' missing progress instead of killing
    /// them.
    pub supervisor_stalls: u64,
    /// Frames taken from the standby because the active lacked them.
    pub fallback_frames: u64,
    /// The first underrun, if any: what the rings held then.
    pub first_underrun: Option<UnderrunDetail>,
    /// Non-finite samples from workers replaced by silence.
    pub corrupt_samples: u64,
    /// Journal entries or recorded samples lost to full queues.
    pub io_overruns: u64,
    /// Commands dropped because the input queue was full.
    pub commands_dropped: u64,
    /// Scheduled commands played later than asked.
    pub commands_late: u64,
    /// Errors writing the journal or recording files.
    pub errors: Vec<String>,
}

impl RunReport {
    /// The command journal of the run.
    pub fn journal(&self) -> Journal {
        Journal {
            sample_rate: self.sample_rate,
            voices: self.voices,
            commands: self.commands.clone(),
            end_frame: Some(self.frames_played),
            stalls: self.machine_stalls.clone(),
        }
    }

    /// Frames lost for Chronus's own reasons: underruns outside machine
    /// stalls. The promise is that this stays 0 whatever the workers do.
    pub fn lost_frames(&self) -> u64 {
        self.underrun_frames - self.machine_stall_frames.min(self.underrun_frames)
    }

    /// Renders the journal offline and compares it with the recording,
    /// frame by frame and bit by bit, except the frames of
    /// [`RunReport::machine_stalls`] (silence the machine imposed; the
    /// workers rendered those frames all the same, so everything after them
    /// still compares). Returns the first differing frame, or `None` when
    /// identical.
    ///
    /// # Errors
    /// [`DspError`] if the offline synth cannot be built.
    pub fn first_difference(&self) -> Result<Option<u64>, DspError> {
        if self.left.len() as u64 != self.frames_played || self.right.len() != self.left.len() {
            return Ok(Some(self.left.len().min(self.right.len()).min(self.frames_played as usize) as u64));
        }
        let offline = render_offline(&self.commands, self.sample_rate, self.voices, self.frames_played)?;
        let mut from = 0usize;
        for span in self.machine_stalls.iter().map(|s| Some(*s)).chain([None]) {
            let to = span.map_or(self.left.len(), |s| (s.first as usize).min(self.left.len()));
            let range = from.min(to)..to;
            let differs = |a: &[f32], b: &[f32]| {
                a[range.clone()].iter().zip(&b[range.clone()]).position(|(x, y)| x.to_bits() != y.to_bits())
            };
            let first = [differs(&self.left, &offline.left), differs(&self.right, &offline.right)]
                .into_iter()
                .flatten()
                .min();
            if let Some(k) = first {
                return Ok(Some((range.start + k) as u64));
            }
            from = span.map_or(to, |s| (s.first + s.frames) as usize);
        }
        Ok(None)
    }
}

/// What the rings held at the first underrun.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnderrunDetail {
    /// The frame nobody could supply.
    pub frame: u64,
    /// How far each slot's worker had written then.
    pub written: [u64; 2],
    /// Each slot's state then (0 empty, 1 joining, 2 live, 3 dead).
    pub states: [u8; 2],
    /// How late the output thread was past that period's deadline, µs.
    pub late_us: u64,
    /// When, µs after the output started.
    pub at_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronus_dsp::Command;

    /// A run that played exactly the offline render of one note.
    fn faithful_run() -> RunReport {
        let commands =
            vec![TimedCommand { frame: 0, command: Command::NoteOn { voice: 0, freq: 440.0, amp: 0.5 } }];
        let offline = render_offline(&commands, 48_000, 8, 4_800).unwrap();
        RunReport {
            sample_rate: 48_000,
            voices: 8,
            frames_played: 4_800,
            left: offline.left,
            right: offline.right,
            commands,
            ..RunReport::default()
        }
    }

    fn silence(run: &mut RunReport, span: FrameSpan) {
        let range = span.first as usize..(span.first + span.frames) as usize;
        run.left[range.clone()].fill(0.0);
        run.right[range].fill(0.0);
        run.underrun_frames += span.frames;
    }

    #[test]
    fn a_faithful_run_has_no_difference() {
        assert_eq!(faithful_run().first_difference().unwrap(), None);
    }

    #[test]
    fn frames_lost_by_chronus_are_differences() {
        let mut run = faithful_run();
        silence(&mut run, FrameSpan { first: 1_000, frames: 256 });
        assert_eq!(run.lost_frames(), 256);
        assert_eq!(run.first_difference().unwrap(), Some(1_000));
    }

    #[test]
    fn machine_stalls_are_left_out_and_nothing_else() {
        let mut run = faithful_run();
        for span in [FrameSpan { first: 512, frames: 256 }, FrameSpan { first: 2_048, frames: 512 }] {
            silence(&mut run, span);
            run.machine_stalls.push(span);
            run.machine_stall_frames += span.frames;
        }
        assert_eq!(run.lost_frames(), 0);
        assert_eq!(run.first_difference().unwrap(), None);
        // A difference between, or after, the stalls is still found.
        run.right[1_500] = 0.25;
        assert_eq!(run.first_difference().unwrap(), Some(1_500));
        run.right[1_500] = faithful_run().right[1_500];
        run.left[4_799] = 0.25;
        assert_eq!(run.first_difference().unwrap(), Some(4_799));
        // A recording shorter than what was played differs where it ends.
        run.left.truncate(4_000);
        assert_eq!(run.first_difference().unwrap(), Some(4_000));
    }
}
