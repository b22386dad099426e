//! A run's failover figures in the shape `bench failover` and `soak` report.

use std::collections::BTreeMap;

use serde::Serialize;

use chronus_supervisor::RunReport;
use chronus_supervisor::{DetectedBy, FailoverEvent, Percentiles, Role};

/// The figures of one run.
#[derive(Clone, Debug, Serialize)]
pub struct FailoverSummary {
    /// Faults handled (in the events kept; see `events_dropped`).
    pub faults: usize,
    /// Failover events the engine dropped to keep memory bounded (their
    /// latencies are not in the percentiles).
    pub events_dropped: u64,
    /// Events left out because a later one at the same frame superseded them.
    pub events_coalesced: u64,
    /// Faults per kind (`"external"` for faults not injected by Chronus).
    pub fault_kinds: BTreeMap<String, usize>,
    /// Faults on the active worker.
    pub active_faults: usize,
    /// Workers their sandbox killed (SIGSYS), by the system call refused
    /// (`openat`; `unnamed` when the worker recorded none).
    pub sandbox_kills: BTreeMap<String, usize>,
    /// Frames the listener did not get from a worker (silence played) for
    /// Chronus's own reasons: underruns outside machine stalls.
    pub lost_frames: u64,
    /// Every frame played as silence, machine stalls included.
    pub underruns: u64,
    /// Frames played as silence because the machine did not run the output
    /// thread in time (see [`chronus_supervisor::Counters::machine_stall_frames`]); left out of
    /// the bit-exact comparison.
    pub machine_stall_frames: u64,
    /// Machine stalls that cost frames (spans of consecutive frames).
    pub machine_stalls: usize,
    /// Times the supervisor was itself held off and excused the workers.
    pub supervisor_stalls: u64,
    /// Times a stalled worker was found starved (runnable, no CPU time)
    /// and given patience instead of being killed.
    pub starved_workers: u64,
    /// Frames played from the standby because the active lacked them.
    pub fallback_frames: u64,
    /// Times the active was outvoted (it diverged; two replicas agreed
    /// against it) and replaced.
    pub outvoted: u64,
    /// Frames of an outvoted active played before the vote (journaled as
    /// `@wrong`; left out of the bit-exact comparison).
    pub wrong_frames_played: u64,
    /// Disputes between two replicas a referee ruled on.
    pub disputes_ruled: u64,
    /// Disputes no referee ruled on in time (the active was kept).
    pub disputes_undecided: u64,
    /// Times the audio device ran dry.
    pub device_xruns: u64,
    /// Frames the device played as silence then (part of `lost_frames`).
    pub device_xrun_frames: u64,
    /// Frames played.
    pub frames_played: u64,
    /// Seconds played.
    pub seconds_played: f64,
    /// The recording equals the offline render of the journal, bit for bit.
    pub bit_exact: bool,
    /// First differing frame when not bit-exact.
    pub first_difference: Option<u64>,
    /// What the rings held at the first underrun, if any.
    pub first_underrun: Option<chronus_supervisor::UnderrunDetail>,
    /// Fault → noticed (pidfd or watchdog), µs.
    pub detection_us: Percentiles,
    /// Fault → active switched, µs (faults on the active only).
    pub switch_us: Percentiles,
    /// Fault → replacement process ready, µs.
    pub respawn_us: Percentiles,
    /// Fault → replacement verified in lockstep, µs.
    pub rejoin_us: Percentiles,
    /// Fault → redundant again (as many verified replicas as the engine
    /// keeps, covering every frame still to be played), µs.
    pub redundant_us: Percentiles,
    /// Faults after which the engine never became redundant again.
    pub unjoined: usize,
    /// The kernel's floor for crash detection measured in the same run
    /// ([`crate::kill_floor`]), µs, when the run measured it.
    pub kill_floor_us: Option<Percentiles>,
    /// Every fault and its recovery, in order.
    pub events: Vec<FailoverEvent>,
    /// The same latencies per class of fault: `crash` (the process ended;
    /// noticed by its death word or its pidfd), `stall` (it hung, froze or
    /// slowed down; noticed by the watchdog) and `divergence` (it rendered
    /// wrong audio; noticed by its checksums, and refereed or outvoted).
    pub by_class: BTreeMap<&'static str, ClassFigures>,
}

/// Latencies of one class of fault.
#[derive(Clone, Debug, Serialize)]
pub struct ClassFigures {
    /// Faults in the class.
    pub faults: usize,
    /// Fault → noticed, µs.
    pub detection_us: Percentiles,
    /// Fault → active flipped, µs (faults on the active).
    pub switch_us: Percentiles,
    /// Fault → replacement ready, µs.
    pub respawn_us: Percentiles,
    /// Fault → verified lockstep, µs.
    pub rejoin_us: Percentiles,
    /// Fault → redundant again, µs.
    pub redundant_us: Percentiles,
}

impl ClassFigures {
    fn of(events: &[&FailoverEvent]) -> Self {
        let p = |f: &dyn Fn(&FailoverEvent) -> Option<f64>| -> Percentiles {
            Percentiles::of(&events.iter().filter_map(|e| f(e)).collect::<Vec<_>>())
        };
        Self {
            faults: events.len(),
            detection_us: p(&|e| Some(e.detection_us())),
            switch_us: p(&|e| (e.role == Role::Active).then(|| e.switch_us())),
            respawn_us: p(&|e| e.respawn_us()),
            rejoin_us: p(&|e| e.rejoin_us()),
            redundant_us: p(&|e| e.redundant_us()),
        }
    }
}

impl FailoverSummary {
    /// Summarises `report` (renders its journal offline for the bit-exact
    /// check when the audio was recorded in memory).
    pub fn of(report: &RunReport) -> Self {
        Self::with_first_difference(report, report.first_difference().unwrap_or(Some(0)))
    }

    /// Summarises `report` whose bit-exact check was made elsewhere (e.g.
    /// [`crate::verify_files`], streaming from disk): `first_difference`
    /// is its outcome.
    pub fn with_first_difference(report: &RunReport, first_difference: Option<u64>) -> Self {
        let e = &report.failovers;
        let mut fault_kinds = BTreeMap::new();
        for ev in e {
            let name = ev.fault.map_or("external", |k| k.name());
            *fault_kinds.entry(name.to_owned()).or_insert(0) += 1;
        }
        let mut sandbox_kills = BTreeMap::new();
        for ev in e.iter().filter(|ev| ev.exit.by_sandbox()) {
            let call = ev.exit.forbidden_call_name().unwrap_or_else(|| "unnamed".into());
            *sandbox_kills.entry(call).or_insert(0) += 1;
        }
        let all: Vec<&FailoverEvent> = e.iter().collect();
        let overall = ClassFigures::of(&all);
        let mut by_class = BTreeMap::new();
        let class_of = |ev: &FailoverEvent| match ev.detected_by {
            DetectedBy::Divergence => "divergence",
            by if by.is_exit() => "crash",
            _ => "stall",
        };
        for class in ["crash", "stall", "divergence"] {
            let members: Vec<&FailoverEvent> = e.iter().filter(|ev| class_of(ev) == class).collect();
            if !members.is_empty() {
                by_class.insert(class, ClassFigures::of(&members));
            }
        }
        Self {
            faults: e.len(),
            events_dropped: report.events_dropped,
            events_coalesced: report.counters.events_coalesced,
            fault_kinds,
            active_faults: e.iter().filter(|ev| ev.role == Role::Active).count(),
            sandbox_kills,
            lost_frames: report.lost_frames(),
            underruns: report.counters.underrun_frames,
            machine_stall_frames: report.counters.machine_stall_frames,
            machine_stalls: report.notes.stalls.len(),
            supervisor_stalls: report.counters.supervisor_stalls,
            starved_workers: report.counters.starved_workers,
            fallback_frames: report.counters.fallback_frames,
            outvoted: report.counters.outvoted,
            wrong_frames_played: report.counters.wrong_frames_played,
            disputes_ruled: report.counters.disputes_ruled,
            disputes_undecided: report.counters.disputes_undecided,
            device_xruns: report.counters.device_xruns,
            device_xrun_frames: report.counters.device_xrun_frames,
            frames_played: report.counters.frames_played,
            seconds_played: report.counters.frames_played as f64 / f64::from(report.setup.sample_rate.max(1)),
            bit_exact: first_difference.is_none(),
            first_difference,
            first_underrun: report.first_underrun,
            detection_us: overall.detection_us,
            switch_us: overall.switch_us,
            respawn_us: overall.respawn_us,
            rejoin_us: overall.rejoin_us,
            redundant_us: overall.redundant_us,
            unjoined: e.iter().filter(|ev| ev.t_redundant.is_none()).count(),
            by_class,
            kill_floor_us: None,
            events: report.failovers.clone(),
        }
    }

    /// Whether the run kept the promise: nothing lost, bit-exact, every
    /// replacement joined.
    pub fn passed(&self) -> bool {
        self.lost_frames == 0 && self.bit_exact && self.unjoined == 0
    }

    /// A one-line account of the divergences, if there were any: disputes
    /// refereed, actives outvoted, wrong frames heard.
    pub fn divergence_note(&self) -> Option<String> {
        let any = self.disputes_ruled + self.disputes_undecided + self.outvoted > 0;
        any.then(|| {
            format!(
                "divergences: {} dispute(s) refereed, {} undecided (the active kept), {} active(s) outvoted, {} \
                 wrong frame(s) played (journaled as @wrong)",
                self.disputes_ruled, self.disputes_undecided, self.outvoted, self.wrong_frames_played
            )
        })
    }

    /// A one-line account of machine stalls, if there were any: frames the
    /// machine did not let the output play, and times the supervisor was
    /// held off.
    pub fn stall_note(&self) -> Option<String> {
        (self.machine_stall_frames > 0 || self.supervisor_stalls > 0 || self.starved_workers > 0).then(|| {
            format!(
                "the machine stalled: {} frames in {} span(s) not played in time (the output thread was \
                 held off past the device buffer; excluded from the bit-exact comparison), supervisor \
                 held off {} time(s), {} stalled worker(s) found starved of CPU and spared",
                self.machine_stall_frames, self.machine_stalls, self.supervisor_stalls, self.starved_workers
            )
        })
    }

    /// The rows of the latency table: (class, phase, percentiles).
    pub fn rows(&self) -> Vec<(String, &'static str, Percentiles)> {
        let mut rows = Vec::new();
        let mut add = |class: String, f: &ClassFigures| {
            for (phase, p) in [
                ("detection", f.detection_us),
                ("switch", f.switch_us),
                ("respawn", f.respawn_us),
                ("rejoin", f.rejoin_us),
                ("redundant", f.redundant_us),
            ] {
                rows.push((class.clone(), phase, p));
            }
        };
        let overall = ClassFigures {
            faults: self.faults,
            detection_us: self.detection_us,
            switch_us: self.switch_us,
            respawn_us: self.respawn_us,
            rejoin_us: self.rejoin_us,
            redundant_us: self.redundant_us,
        };
        add(format!("all ({})", self.faults), &overall);
        for (class, f) in &self.by_class {
            add(format!("{class} ({})", f.faults), f);
        }
        if let Some(floor) = self.kill_floor_us {
            rows.push(("kernel floor".to_owned(), "kill→pidfd", floor));
        }
        rows
    }

    /// Crash detection p50 over the kernel's floor p50, when both were
    /// measured.
    pub fn detection_over_floor(&self) -> Option<f64> {
        let floor = self.kill_floor_us.filter(|f| f.p50 > 0.0)?;
        Some(self.by_class.get("crash")?.detection_us.p50 / floor.p50)
    }

    /// The latency table as Markdown (µs).
    pub fn markdown_table(&self) -> String {
        let mut t = String::from(
            "| faults | phase | min | p50 | p95 | p99 | max |\n|---|---|---:|---:|---:|---:|---:|\n",
        );
        for (class, phase, p) in self.rows() {
            t.push_str(&format!(
                "| {class} | {phase} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
                p.min, p.p50, p.p95, p.p99, p.max
            ));
        }
        t
    }

    /// JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
