//! Engine health and status.

use serde::Serialize;

pub use chronus_policy::health::Health;

/// The engine's counters, read at once from what the threads share: the
/// one definition both [`Status`] (while it runs) and
/// [`crate::RunReport`] (when it stopped) carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Frames played.
    pub frames_played: u64,
    /// Frames played as silence because no worker had them.
    pub underrun_frames: u64,
    /// Of those, frames the machine did not let the output play in time (a
    /// stalled host: a descheduled virtual CPU; see `docs/failover.md`).
    /// No worker could have filled them; they are reported apart and left
    /// out of the bit-exact comparison.
    pub machine_stall_frames: u64,
    /// Times the supervisor thread itself was held off so long that the
    /// watchdog excused the workers' missing progress.
    pub supervisor_stalls: u64,
    /// Times the watchdog found a stalled worker starved (runnable, next
    /// to no CPU time) and gave it patience instead of killing it.
    pub starved_workers: u64,
    /// Frames taken from a standby because the active lacked them.
    pub fallback_frames: u64,
    /// Times the active was outvoted by two replicas that agreed (two
    /// standbys, or the standby and a referee), and replaced.
    pub outvoted: u64,
    /// Frames of a replica found wrong played before the vote (the
    /// outvoted active's; a standby's played as a fallback while the
    /// active was late): wrong audio heard (0 whenever the vote came
    /// within the lead), journaled as `@wrong`.
    pub wrong_frames_played: u64,
    /// Disputes between two replicas that a referee ruled on.
    pub disputes_ruled: u64,
    /// Disputes no referee ruled on in time: the standby was replaced, the
    /// active assumed right.
    pub disputes_undecided: u64,
    /// Times the audio device ran dry (xruns its driver reported).
    pub device_xruns: u64,
    /// Frames the device played as silence in those xruns: lost audio,
    /// though not a worker's doing.
    pub device_xrun_frames: u64,
    /// Non-finite samples from workers replaced by silence.
    pub corrupt_samples: u64,
    /// Journal entries, notes or recorded samples lost to full queues
    /// (must stay 0).
    pub io_overruns: u64,
    /// Commands dropped because the input queue was full.
    pub commands_dropped: u64,
    /// Scheduled commands played later than asked.
    pub commands_late: u64,
    /// Events left out because a later one at the same frame superseded
    /// them (coalescing).
    pub events_coalesced: u64,
    /// Events stamped so far.
    pub events_stamped: u64,
    /// Commands cut out as poisons (every replica crashed or hung applying
    /// them); journaled as `@excise`.
    pub excised_commands: u64,
    /// Commands refused because they equal one cut out.
    pub poison_refusals: u64,
    /// Times the engine became overloaded.
    pub overloads: u64,
}

impl Counters {
    /// Frames the listener lost, except those a stalled machine kept the
    /// output from playing: underruns outside machine stalls, and frames the
    /// audio device played as silence (xruns). The promise is that this
    /// stays 0 whatever the workers do.
    pub fn lost_frames(&self) -> u64 {
        self.underrun_frames - self.machine_stall_frames.min(self.underrun_frames) + self.device_xrun_frames
    }
}

/// A snapshot of the engine's state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    /// Health.
    pub health: Health,
    /// Pid of the active worker.
    pub active_pid: Option<u32>,
    /// Pid of the verified standby.
    pub standby_pid: Option<u32>,
    /// Pid of a replacement still joining.
    pub joining_pid: Option<u32>,
    /// Worker faults handled so far.
    pub failovers: u64,
    /// The engine's counters.
    #[serde(flatten)]
    pub counters: Counters,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Frames per period.
    pub block: u32,
    /// What the active worker's DSP reports sounding (voices, strings, …).
    pub active_voices: u32,
    /// Respawning gave up after repeated failed restarts.
    pub quarantined: bool,
    /// A restart is waiting out its backoff.
    pub backing_off: bool,
    /// The DSP was found not to be deterministic: the first frame where two
    /// workers' audio differed. No standby is kept from then on.
    pub nondeterministic_at: Option<u64>,
    /// Spare workers ready to start.
    pub spares_ready: u32,
    /// Every replica renders over its budget right now.
    pub overloaded: bool,
    /// Worker processes spawned since the start, the first ones included
    /// (a replacement or spare each; a poison trial that passed is reused,
    /// not respawned).
    pub workers_spawned: u64,
    /// The workers' sandbox: `on`, `off` or `audit`.
    pub sandbox: &'static str,
    /// Workers the sandbox killed (SIGSYS) for a system call it forbids.
    pub sandbox_kills: u64,
    /// The last system call it refused one (`openat`), by name.
    pub last_forbidden_call: Option<String>,
}

impl Status {
    pub(crate) fn starting(cfg: &crate::EngineConfig) -> Self {
        Self {
            health: Health::Critical,
            active_pid: None,
            standby_pid: None,
            joining_pid: None,
            failovers: 0,
            counters: Counters::default(),
            sample_rate: cfg.sample_rate,
            block: cfg.block,
            active_voices: 0,
            quarantined: false,
            backing_off: false,
            nondeterministic_at: None,
            spares_ready: 0,
            overloaded: false,
            workers_spawned: 0,
            sandbox: cfg.sandbox.name(),
            sandbox_kills: 0,
            last_forbidden_call: None,
        }
    }
}
