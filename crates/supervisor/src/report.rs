//! What a run produced, and the bit-exact check against the offline render.

use chronus_dsp::{DspError, TimedCommand};
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
        }
    }

    /// Renders the journal offline and compares it with the recording,
    /// frame by frame and bit by bit. Returns the first differing frame, or
    /// `None` when identical.
    ///
    /// # Errors
    /// [`DspError`] if the offline synth cannot be built.
    pub fn first_difference(&self) -> Result<Option<u64>, DspError> {
        let offline = render_offline(&self.commands, self.sample_rate, self.voices, self.frames_played)?;
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits());
        if self.left.len() as u64 != self.frames_played {
            return Ok(Some(self.left.len().min(self.frames_played as usize) as u64));
        }
        let l = same(&self.left, &offline.left);
        let r = same(&self.right, &offline.right);
        Ok(match (l, r) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(usize::MAX).min(b.unwrap_or(usize::MAX)) as u64),
        })
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
