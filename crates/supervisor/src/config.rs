//! Engine configuration.

use std::path::PathBuf;
use std::time::Duration;

/// How to build an [`crate::Engine`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Voices of the synth.
    pub voices: u32,
    /// Frames per output period, and the workers' block grid.
    pub block: u32,
    /// How many blocks the workers may render ahead of the output (command
    /// latency is `lead + 1` blocks).
    pub lead_blocks: u32,
    /// Audio ring capacity in frames (a power of two ≥ 4 blocks).
    pub ring_frames: u32,
    /// Command ring capacity in slots (a power of two).
    pub command_slots: u32,
    /// The `chronus` binary to run workers from.
    pub worker_exe: PathBuf,
    /// Allow fault injection (tests, benchmarks). Off by default.
    pub faults_enabled: bool,
    /// A worker that has work but makes no progress for this long is hung.
    pub hang_timeout: Duration,
    /// A worker whose blocks take longer than this many block periods, for
    /// `slow_blocks` blocks in a row, is too slow and is replaced.
    pub slow_factor: f64,
    /// See `slow_factor`.
    pub slow_blocks: u32,
    /// Try SCHED_FIFO for the output and supervisor threads and the workers.
    pub realtime: bool,
    /// First wait before retrying a join that failed twice in a row; it
    /// doubles with each further failure, up to `backoff_max`.
    pub backoff_base: Duration,
    /// Longest wait between join attempts.
    pub backoff_max: Duration,
    /// After this many failed joins in a row, stop respawning (quarantine)
    /// and keep playing on the surviving worker.
    pub quarantine_after: u32,
    /// Keep the recording in memory (returned by [`crate::Engine::stop`]).
    pub record_in_memory: bool,
    /// Also write the recording to this WAV file.
    pub record_path: Option<PathBuf>,
    /// Also write the command journal to this file.
    pub journal_path: Option<PathBuf>,
    /// Keep the journal in memory (returned by [`crate::Engine::stop`]); a
    /// long run with `journal_path` set can turn this off and read the file.
    pub journal_in_memory: bool,
}

impl EngineConfig {
    /// Defaults: 48 kHz, 64 voices, 256-frame blocks, 2 blocks of lead.
    pub fn new(worker_exe: PathBuf) -> Self {
        Self {
            sample_rate: 48_000,
            voices: 64,
            block: 256,
            lead_blocks: 2,
            ring_frames: 8_192,
            command_slots: 1_024,
            worker_exe,
            faults_enabled: false,
            hang_timeout: Duration::from_millis(20),
            slow_factor: 1.0,
            slow_blocks: 2,
            realtime: true,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
            quarantine_after: 6,
            record_in_memory: false,
            record_path: None,
            journal_path: None,
            journal_in_memory: true,
        }
    }

    /// Duration of one block.
    pub fn block_duration(&self) -> Duration {
        Duration::from_nanos(u64::from(self.block) * 1_000_000_000 / u64::from(self.sample_rate))
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`crate::EngineError::Config`] naming the problem.
    pub fn validate(&self) -> Result<(), crate::EngineError> {
        let bad = crate::EngineError::Config;
        if self.block == 0 || self.block > 8_192 {
            return Err(bad("block must be 1..=8192 frames"));
        }
        if !self.ring_frames.is_power_of_two() || self.ring_frames < 4 * self.block {
            return Err(bad("ring_frames must be a power of two of at least 4 blocks"));
        }
        if self.lead_blocks == 0 || (self.lead_blocks + 2) * self.block > self.ring_frames {
            return Err(bad("lead_blocks must be ≥ 1 and leave room in the ring"));
        }
        Ok(())
    }
}
