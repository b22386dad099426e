//! What a run produced, and the bit-exact check against the offline render.

use chronus_dsp::{DspSpec, Setup, TimedEvent};
pub use chronus_journal::FrameSpan;
use chronus_journal::{Annotations, Journal, JournalError, JournalHeader};

use crate::events::FailoverEvent;

/// Everything a finished run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The DSP that ran.
    pub spec: DspSpec,
    /// Its setup (sample rate, block grid).
    pub setup: Setup,
    /// What was played, left channel (empty unless recorded in memory).
    pub left: Vec<f32>,
    /// What was played, right channel.
    pub right: Vec<f32>,
    /// Every stamped event, in order (empty unless the journal was kept in
    /// memory).
    pub events: Vec<TimedEvent>,
    /// What else the journal records: silences, excisions, resets, the end.
    pub notes: Annotations,
    /// Worker faults and their recoveries (the newest, up to the engine's
    /// bound; see [`RunReport::events_dropped`]).
    pub failovers: Vec<FailoverEvent>,
    /// Failover events dropped to keep memory bounded (oldest first).
    pub events_dropped: u64,
    /// The engine's counters at the end.
    pub counters: crate::status::Counters,
    /// The first underrun, if any: what the rings held then.
    pub first_underrun: Option<UnderrunDetail>,
    /// The DSP was found not to be deterministic: the first frame where two
    /// workers differed.
    pub nondeterministic_at: Option<u64>,
    /// Errors writing the journal or recording files.
    pub errors: Vec<String>,
}

impl RunReport {
    /// The journal of the run (from what was kept in memory).
    pub fn journal(&self) -> Journal {
        Journal {
            header: JournalHeader::of(&self.spec, &self.setup),
            events: self.events.clone(),
            notes: self.notes.clone(),
        }
    }

    /// Frames the listener lost ([`crate::Counters::lost_frames`]): the
    /// promise is that this stays 0 whatever the workers do.
    pub fn lost_frames(&self) -> u64 {
        self.counters.lost_frames()
    }

    /// Renders the journal offline (as the run should have sounded: excised
    /// events left out and resets applied, as the workers did) and compares
    /// it with the recording, frame by frame and bit by bit, except the
    /// frames of machine stalls (silence the machine imposed; the workers
    /// rendered those frames all the same, so everything after them still
    /// compares). Returns the first differing frame, or `None` when
    /// identical. Streams: constant memory whatever the run's length.
    ///
    /// # Errors
    /// [`JournalError`] if the offline DSP cannot be prepared.
    pub fn first_difference(&self) -> Result<Option<u64>, JournalError> {
        let recording = self.left.iter().copied().zip(self.right.iter().copied());
        chronus_journal::first_difference(
            &self.spec,
            self.setup,
            &self.notes,
            self.events.iter().copied().map(Ok),
            recording,
            self.counters.frames_played,
        )
    }
}

/// What the rings held at the first underrun.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnderrunDetail {
    /// The frame nobody could supply.
    pub frame: u64,
    /// How far the first two slots' workers had written then.
    pub written: [u64; 2],
    /// The first two slots' states then (0 empty, 1 joining, 2 live, 3 dead).
    pub states: [u8; 2],
    /// How late the output thread was past that period's deadline, µs.
    pub late_us: u64,
    /// When, µs after the output started.
    pub at_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronus_synth::{Command, Synth, SynthConfig};

    const SETUP: Setup = Setup { sample_rate: 48_000, block: 256 };

    /// A run that played exactly the offline render of one note.
    fn faithful_run() -> RunReport {
        let spec = DspSpec::new::<Synth>(SynthConfig::new(8)).unwrap();
        let events = vec![TimedEvent {
            frame: 0,
            event: Command::NoteOn { voice: 0, freq: 440.0, amp: 0.5 }.to_event(),
        }];
        let offline =
            chronus_journal::render_offline(&spec, SETUP, &events, &Annotations::default(), 4_800, false)
                .unwrap();
        RunReport {
            spec,
            setup: SETUP,
            counters: crate::Counters { frames_played: 4_800, ..Default::default() },
            left: offline.left,
            right: offline.right,
            events,
            notes: Annotations::default(),
            failovers: Vec::new(),
            events_dropped: 0,
            first_underrun: None,
            nondeterministic_at: None,
            errors: Vec::new(),
        }
    }

    fn silence(run: &mut RunReport, span: FrameSpan) {
        let range = span.first as usize..(span.first + span.frames) as usize;
        run.left[range.clone()].fill(0.0);
        run.right[range].fill(0.0);
        run.counters.underrun_frames += span.frames;
    }

    #[test]
    fn a_faithful_run_has_no_difference() {
        assert_eq!(faithful_run().first_difference().unwrap(), None);
    }

    #[test]
    fn frames_lost_by_chronus_are_differences() {
        let mut run = faithful_run();
        silence(&mut run, FrameSpan { first: 1_000, frames: 256 });
        run.notes.gaps.push(FrameSpan { first: 1_000, frames: 256 });
        assert_eq!(run.lost_frames(), 256);
        assert_eq!(run.first_difference().unwrap(), Some(1_000));
    }

    #[test]
    fn machine_stalls_are_left_out_and_nothing_else() {
        let mut run = faithful_run();
        for span in [FrameSpan { first: 512, frames: 256 }, FrameSpan { first: 2_048, frames: 512 }] {
            silence(&mut run, span);
            run.notes.stalls.push(span);
            run.counters.machine_stall_frames += span.frames;
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
        run.right.truncate(4_000);
        assert_eq!(run.first_difference().unwrap(), Some(4_000));
    }

    #[test]
    fn device_xruns_are_lost_frames_and_their_silence_is_skipped() {
        let mut run = faithful_run();
        let xrun = FrameSpan { first: 2_000, frames: 300 };
        run.left.splice(2_000..2_000, vec![0.0; 300]);
        run.right.splice(2_000..2_000, vec![0.0; 300]);
        run.notes.xruns.push(xrun);
        run.counters.device_xruns = 1;
        run.counters.device_xrun_frames = 300;
        assert_eq!(run.lost_frames(), 300);
        assert_eq!(run.first_difference().unwrap(), None);
        // The render as played has the same silence at the same place.
        let played =
            chronus_journal::render_offline(&run.spec, SETUP, &run.events, &run.notes, 4_800, true).unwrap();
        assert_eq!(played.left, run.left);
    }
}
