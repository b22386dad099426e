//! What happened: failover events with their timings, and percentiles.

use chronus_ipc::FaultKind;
use serde::Serialize;

/// How a fault was noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectedBy {
    /// The worker's pidfd became readable (it exited or was killed).
    Pidfd,
    /// The kernel marked the worker's death word as it exited (before
    /// unmapping its memory, so before its pidfd: `chronus_sys::death`).
    DeathWord,
    /// The hang watchdog saw no progress while there was work.
    Watchdog,
    /// Its render time stayed over budget.
    Slow,
    /// Its block checksums disagreed with the active's.
    Divergence,
    /// Its join failed (it did not become ready, start or catch up in time).
    JoinFailed,
}

impl DetectedBy {
    /// The worker ended by itself or was killed from outside, and the
    /// kernel told (its death word or its pidfd): a crash, not a verdict.
    pub fn is_exit(self) -> bool {
        matches!(self, Self::Pidfd | Self::DeathWord)
    }
}

/// How a worker process ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitStatus {
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Killed by SIGSYS: the system call its sandbox refused (the number,
    /// as the process recorded it; see [`ExitStatus::forbidden_call_name`]).
    pub forbidden_call: Option<u32>,
}

impl ExitStatus {
    /// How a process ended, as `waitpid` said.
    pub fn of(exit: chronus_sys::process::Exit) -> Self {
        use chronus_sys::process::Exit;
        match exit {
            Exit::Code(code) => Self { code: Some(code), signal: None, forbidden_call: None },
            Exit::Signal(sig) => Self { code: None, signal: Some(sig), forbidden_call: None },
        }
    }

    /// Whether the sandbox killed it (SIGSYS).
    pub fn by_sandbox(&self) -> bool {
        self.signal == Some(libc::SIGSYS)
    }

    /// The name of the system call the sandbox refused, if it did
    /// (`openat`).
    pub fn forbidden_call_name(&self) -> Option<String> {
        self.forbidden_call.filter(|_| self.by_sandbox()).map(chronus_worker::sandbox::call_name)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exited with status {code}"),
            (None, Some(sig)) => {
                write!(f, "killed by {}", chronus_sys::process::signal_name(sig))?;
                match self.forbidden_call_name() {
                    Some(call) => write!(f, " (forbidden system call {call})"),
                    None if self.by_sandbox() => f.write_str(" (a system call its sandbox forbids)"),
                    None => Ok(()),
                }
            }
            (None, None) => f.write_str("ended"),
        }
    }
}

impl serde::Serialize for ExitStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A command cut out as a poison (see `docs/failover.md`, "Common-mode
/// faults"): every replica that applied it crashed or hung in the same
/// block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cut {
    /// Its event number in the journal (`@excise` names it).
    pub seq: u64,
    /// The frame it was stamped at.
    pub frame: u64,
    /// What it was.
    pub event: chronus_dsp::Event,
    /// Who sent it: the origin passed to [`crate::Engine::send_all_from`]
    /// (0: unknown).
    pub origin: u32,
}

/// Which worker a fault hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The worker whose audio was being played.
    Active,
    /// The verified standby.
    Standby,
    /// A replacement that had not joined yet.
    Joining,
}

/// One worker fault and the recovery from it. Times are CLOCK_MONOTONIC ns.
#[derive(Clone, Debug, Serialize)]
pub struct FailoverEvent {
    /// Slot index (0 or 1).
    pub slot: usize,
    /// Generation of the worker that failed.
    pub generation: u64,
    /// Its pid.
    pub pid: u32,
    /// Its role when it failed.
    pub role: Role,
    /// The injected fault, when known.
    #[serde(serialize_with = "fault_name")]
    pub fault: Option<FaultKind>,
    /// How it was noticed.
    pub detected_by: DetectedBy,
    /// How it ended.
    pub exit: ExitStatus,
    /// When the fault happened (injected or sent), or when it was noticed
    /// if unknown.
    pub t_fault: u64,
    /// When it was noticed.
    pub t_detect: u64,
    /// When the active was switched (or the fault was noticed, when the
    /// active was not affected).
    pub t_switch: u64,
    /// When the slot it died in held a ready worker again (a spare).
    pub t_respawn: Option<u64>,
    /// When a replacement was first verified in lockstep (a block agreed).
    pub t_rejoin: Option<u64>,
    /// When the engine was redundant again: as many verified replicas as it
    /// keeps, covering every frame still to be played.
    pub t_redundant: Option<u64>,
}

fn fault_name<S: serde::Serializer>(fault: &Option<FaultKind>, s: S) -> Result<S::Ok, S::Error> {
    match fault {
        Some(kind) => s.serialize_str(kind.name()),
        None => s.serialize_none(),
    }
}

impl FailoverEvent {
    fn since_fault(&self, t: u64) -> f64 {
        t.saturating_sub(self.t_fault) as f64 / 1_000.0
    }

    /// Fault → noticed, µs.
    pub fn detection_us(&self) -> f64 {
        self.since_fault(self.t_detect)
    }

    /// Fault → active switched, µs.
    pub fn switch_us(&self) -> f64 {
        self.since_fault(self.t_switch)
    }

    /// Fault → replacement ready, µs.
    pub fn respawn_us(&self) -> Option<f64> {
        self.t_respawn.map(|t| self.since_fault(t))
    }

    /// Fault → replacement verified in lockstep, µs.
    pub fn rejoin_us(&self) -> Option<f64> {
        self.t_rejoin.map(|t| self.since_fault(t))
    }

    /// Fault → redundant again, µs.
    pub fn redundant_us(&self) -> Option<f64> {
        self.t_redundant.map(|t| self.since_fault(t))
    }
}

/// The failover events of a run, bounded: the newest `capacity` are kept
/// (with their serial numbers), older ones dropped and counted, so a run of
/// any length holds the same memory.
#[derive(Clone, Debug)]
pub struct History {
    events: std::collections::VecDeque<FailoverEvent>,
    first_serial: u64,
    capacity: usize,
}

impl History {
    /// An empty history keeping at most `capacity` events (allocated and
    /// written once now, so its pages are resident from the start: the
    /// process does not grow as faults are recorded).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let mut events = std::collections::VecDeque::with_capacity(capacity);
        let filler = FailoverEvent {
            slot: 0,
            generation: 0,
            pid: 0,
            role: Role::Active,
            fault: None,
            detected_by: DetectedBy::Pidfd,
            exit: ExitStatus::default(),
            t_fault: 0,
            t_detect: 0,
            t_switch: 0,
            t_respawn: None,
            t_rejoin: None,
            t_redundant: None,
        };
        events.resize(capacity, filler);
        events.clear();
        Self { events, first_serial: 0, capacity }
    }

    /// Adds an event; returns its serial number.
    pub fn push(&mut self, event: FailoverEvent) -> u64 {
        if self.events.len() == self.capacity {
            self.events.pop_front();
            self.first_serial += 1;
        }
        self.events.push_back(event);
        self.first_serial + self.events.len() as u64 - 1
    }

    /// The event with serial number `serial`, if still kept.
    pub fn get_mut(&mut self, serial: u64) -> Option<&mut FailoverEvent> {
        let i = serial.checked_sub(self.first_serial)?;
        self.events.get_mut(usize::try_from(i).ok()?)
    }

    /// Events recorded in all.
    pub fn total(&self) -> u64 {
        self.first_serial + self.events.len() as u64
    }

    /// Events dropped to keep the bound.
    pub fn dropped(&self) -> u64 {
        self.first_serial
    }

    /// The events kept, oldest first.
    pub fn into_vec(self) -> Vec<FailoverEvent> {
        self.events.into()
    }
}

/// min / p50 / p95 / p99 / max of a series, in µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles (nearest rank) of `values`; all zero when empty.
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| v[(((p / 100.0) * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Self { min: v[0], p50: rank(50.0), p95: rank(95.0), p99: rank(99.0), max: v[v.len() - 1] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&v);
        assert_eq!((p.min, p.p50, p.p95, p.p99, p.max), (1.0, 50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&[7.0]).p99, 7.0);
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
    }
}
