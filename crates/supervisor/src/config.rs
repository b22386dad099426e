//! Engine configuration.

use std::path::PathBuf;
use std::time::Duration;

use chronus_dsp::{DspSpec, Setup};
use chronus_worker::{SandboxMode, WorkerCommand};

use crate::policy::MAX_SLOTS;

/// When a period's frames are rendered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    /// Ahead of the period that plays them (the default): each call
    /// releases the events and the render limit for the frames after it, so
    /// the workers have a whole period (plus the lead) of slack, and a
    /// command sounds a period plus the lead after it arrives. This is what
    /// PipeWire calls an async node.
    Pipelined,
    /// Inside the period that plays them, as JACK2 and PipeWire run an
    /// out-of-process client: each call stamps what has arrived at this
    /// period's frames, publishes them and a render limit covering exactly
    /// this period, wakes the replicas and waits on their rings' futexes
    /// until the first live one has the frames, or until `budget` of the
    /// period has passed. It plays the active's frames, another replica's
    /// when the active is late, dead or hung, and silence (counted and
    /// journaled) when none made it. A command sounds in the next period
    /// to start; MIDI in the period it arrived with, at its offset.
    InCycle {
        /// The share of the period the call may wait for the replicas
        /// (0 < budget < 1): the rest is the graph's and the server's.
        budget: f64,
    },
}

impl Latency {
    /// The default share of a period an in-cycle call waits at most:
    /// half. The replicas render a block in tens of µs, but are woken by
    /// the scheduler (up to a few ms late on a loaded VM); the other half
    /// is left to whatever runs after Chronus in the graph.
    pub const DEFAULT_BUDGET: f64 = 0.5;

    /// [`Latency::InCycle`] with [`Latency::DEFAULT_BUDGET`].
    pub fn in_cycle() -> Self {
        Self::InCycle { budget: Self::DEFAULT_BUDGET }
    }

    /// The budget, in the in-cycle mode.
    pub fn budget(self) -> Option<f64> {
        match self {
            Self::Pipelined => None,
            Self::InCycle { budget } => Some(budget),
        }
    }
}

/// How to build an [`crate::Engine`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The DSP the workers run, with its configuration.
    pub dsp: DspSpec,
    /// The program to run workers from: one that calls
    /// [`chronus_worker::init`] for this DSP at the top of its `main`
    /// (usually this very program: [`WorkerCommand::current_exe`]).
    pub worker: WorkerCommand,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Frames per block: the workers' grid, and the output period of the
    /// engine's own sinks.
    pub block: u32,
    /// How many blocks the workers may render ahead of the output (command
    /// latency is about `lead + 1` blocks, or a period plus the lead with a
    /// steady driver such as JACK). 0 is allowed: with a steady driver the
    /// workers then render each period while the one before plays, with no
    /// slack.
    pub lead_blocks: u32,
    /// Pipelined (the default) or in-cycle ([`Latency`]). In-cycle ignores
    /// `lead_blocks`, and wants periods that are whole blocks (a block
    /// equal to the period is best: a longer block would be rendered ahead).
    pub latency: Latency,
    /// Replicas kept in lockstep (2: an active and a standby).
    pub replicas: u32,
    /// Spare workers kept spawned, prepared and idle, so a replacement
    /// starts with no spawn or exec on the critical path (1).
    pub spares: u32,
    /// Frames of output between checkpoints (a whole number of blocks).
    pub checkpoint_every: u32,
    /// Audio ring capacity in frames (a power of two ≥ 4 blocks).
    pub ring_frames: u32,
    /// Event log capacity in slots (a power of two).
    pub log_slots: u32,
    /// Allow fault injection (tests, benchmarks, `/test/poison`). Off by
    /// default.
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
    /// and keep playing on the surviving workers.
    pub quarantine_after: u32,
    /// Failover events kept for the report (older ones are dropped and
    /// counted, so a long run's memory stays bounded).
    pub max_events: usize,
    /// Keep the recording in memory (returned by [`crate::Engine::stop`]).
    pub record_in_memory: bool,
    /// Also write the recording to this WAV file.
    pub record_path: Option<PathBuf>,
    /// Also write the event journal to this file.
    pub journal_path: Option<PathBuf>,
    /// Keep the journal in memory (returned by [`crate::Engine::stop`]); a
    /// long run writes it to `journal_path` instead.
    pub journal_in_memory: bool,
    /// The workers' sandbox (docs/security.md): once prepared, a worker
    /// makes only its render loop's system calls, and dies of SIGSYS, the
    /// call named, for any other ([`SandboxMode::Enforce`], the default).
    /// [`SandboxMode::Off`] switches it off — only for a DSP that must call
    /// the OS while it renders, knowingly; [`SandboxMode::Audit`] refuses
    /// and records instead of killing (for checks, not for playing).
    pub sandbox: SandboxMode,
    /// Make this process non-dumpable (`PR_SET_DUMPABLE` 0), so a worker
    /// running as the same non-root user cannot ptrace it or open its
    /// `/proc` files (its fds, its memory) while it prepares, before its
    /// sandbox is in force. Also: no core dumps, and no debugger attaching
    /// as that user. Off by default (it changes the embedding program);
    /// `chronus play`, `soak` and `bench` set it.
    pub protect_supervisor: bool,
}

impl EngineConfig {
    /// Defaults for `dsp`, with workers run from `worker`: 48 kHz,
    /// 256-frame blocks, 2 blocks of lead, 2 replicas.
    pub fn new(dsp: DspSpec, worker: WorkerCommand) -> Self {
        Self {
            dsp,
            worker,
            sample_rate: 48_000,
            block: 256,
            lead_blocks: 2,
            latency: Latency::Pipelined,
            replicas: 2,
            spares: 1,
            checkpoint_every: 8 * 256,
            ring_frames: 8_192,
            log_slots: 4_096,
            faults_enabled: false,
            hang_timeout: Duration::from_millis(20),
            slow_factor: 1.0,
            slow_blocks: 2,
            realtime: true,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
            quarantine_after: 6,
            max_events: 4_096,
            record_in_memory: false,
            record_path: None,
            journal_path: None,
            journal_in_memory: true,
            sandbox: SandboxMode::Enforce,
            protect_supervisor: false,
        }
    }

    /// The DSP's setup.
    pub fn setup(&self) -> Setup {
        Setup { sample_rate: self.sample_rate, block: self.block }
    }

    /// Duration of one block.
    pub fn block_duration(&self) -> Duration {
        Duration::from_nanos(u64::from(self.block) * 1_000_000_000 / u64::from(self.sample_rate.max(1)))
    }

    /// Worker slots the engine uses: replicas and spares.
    pub fn slots(&self) -> usize {
        (self.replicas + self.spares) as usize
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
        if !(8_000..=384_000).contains(&self.sample_rate) {
            return Err(bad("sample rate must be 8000..=384000 Hz"));
        }
        if !self.ring_frames.is_power_of_two() || self.ring_frames < 4 * self.block {
            return Err(bad("ring_frames must be a power of two of at least 4 blocks"));
        }
        if let Some(budget) = self.latency.budget()
            && !(budget > 0.0 && budget < 1.0)
        {
            return Err(bad("the in-cycle budget must be a share of the period between 0 and 1"));
        }
        if (self.lead_blocks + 2) * self.block > self.ring_frames {
            return Err(bad("lead_blocks must leave room in the ring"));
        }
        if !self.log_slots.is_power_of_two() || self.log_slots < 64 {
            return Err(bad("log_slots must be a power of two ≥ 64"));
        }
        if self.replicas < 1 || self.slots() > MAX_SLOTS {
            return Err(bad("replicas must be ≥ 1, and replicas + spares at most 8"));
        }
        if self.checkpoint_every < self.block {
            return Err(bad("checkpoint_every must be at least one block"));
        }
        Ok(())
    }
}
