//! Checking a DSP before shipping it: the same events rendered by worker
//! processes must agree with each other, with an in-process render, and a
//! worker started from a snapshot must continue exactly as the one that
//! took it; and it must make no system call the workers' sandbox forbids.
//! [`check_determinism`] runs all three with real processes (the program
//! given, which calls [`chronus_worker::init`] for the DSP), their sandbox
//! auditing: a forbidden call fails with `EPERM`, is recorded, and the
//! render goes on, so every one is named.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use chronus_dsp::{DspSpec, Setup, TimedEvent};
use chronus_ipc::{AudioReader, Bus, Geometry, LogWriter, StartKind, WorkerRegion, WorkerState};
use chronus_journal::{Annotations, render_offline};
use chronus_worker::{SandboxMode, WorkerCommand, WorkerProcess, spawn_worker};

use chronus_supervisor::EngineError;

/// What [`check_determinism`] found. Each field is the first frame where
/// two renders differ (`None`: identical).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeterminismReport {
    /// Frames rendered.
    pub frames: u64,
    /// Worker process A against worker process B: the DSP gives the same
    /// bits in two processes of the same binary.
    pub between_processes: Option<u64>,
    /// Worker process A against an in-process render of the same events.
    pub against_in_process: Option<u64>,
    /// Worker C, started from A's snapshot halfway, against A from there:
    /// the snapshot holds the whole state.
    pub from_snapshot: Option<u64>,
    /// Where C started.
    pub snapshot_frame: u64,
    /// System calls the workers' sandbox refused the DSP (by name,
    /// ascending): an engine's workers would die of SIGSYS on each.
    pub forbidden_calls: Vec<String>,
}

impl DeterminismReport {
    /// Whether every render agreed and no forbidden call was made.
    pub fn passed(&self) -> bool {
        self.between_processes.is_none()
            && self.against_in_process.is_none()
            && self.from_snapshot.is_none()
            && self.forbidden_calls.is_empty()
    }
}

impl std::fmt::Display for DeterminismReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict =
            |d: Option<u64>| d.map_or_else(|| "identical".to_owned(), |f| format!("differ from frame {f}"));
        write!(
            f,
            "{} frames: two worker processes {}; a worker against the in-process render {}; a worker started from a \
             snapshot at frame {} {}",
            self.frames,
            verdict(self.between_processes),
            verdict(self.against_in_process),
            self.snapshot_frame,
            verdict(self.from_snapshot)
        )?;
        if self.forbidden_calls.is_empty() {
            write!(f, "; no system call the sandbox forbids")
        } else {
            write!(
                f,
                "; system calls the sandbox forbids: {} (a worker dies of SIGSYS on each: docs/security.md)",
                self.forbidden_calls.join(", ")
            )
        }
    }
}

struct Worker {
    region: WorkerRegion,
    process: WorkerProcess,
    left: Vec<f32>,
    right: Vec<f32>,
}

fn first_difference(a: (&[f32], &[f32]), b: (&[f32], &[f32]), from: usize) -> Option<u64> {
    let n = a.0.len().min(b.0.len());
    (from..n)
        .find(|&k| a.0[k].to_bits() != b.0[k].to_bits() || a.1[k].to_bits() != b.1[k].to_bits())
        .map(|k| k as u64)
}

/// Renders `events` (sorted by frame) for `frames` frames of `spec` at
/// `setup` in three worker processes run from `worker`, and in-process, and
/// compares: see [`DeterminismReport`]. A DSP that passes keeps its
/// replicas in lockstep; one that fails is reported by the engine as not
/// deterministic.
///
/// # Errors
/// [`EngineError`] if the DSP cannot be prepared, the shared memory set up,
/// or a worker does not start or dies.
pub fn check_determinism(
    spec: &DspSpec,
    worker: &WorkerCommand,
    setup: Setup,
    events: &[TimedEvent],
    frames: u64,
) -> Result<DeterminismReport, EngineError> {
    let block = u64::from(setup.block);
    let frames = frames.div_ceil(block).max(2) * block;
    let snapshot_bytes = spec.prepare(&setup)?.snapshot_len() as u64;
    let geometry = Geometry {
        sample_rate: setup.sample_rate,
        block: setup.block,
        audio_frames: (4 * setup.block).next_power_of_two().max(1_024),
        log_slots: (events.len() as u32 + 1).next_power_of_two().max(64),
        snapshot_bytes,
        checkpoints: 1,
        excise_slots: 1,
        config_bytes: 0,
        _pad: 0,
    };
    let epoch = 0x5eed;
    let bus = Bus::create(geometry, epoch, spec.name(), spec.config_json(), false)?;
    let bus_fd = bus.read_only_fd()?;
    let mut log = LogWriter::new(&bus);
    for e in events {
        log.push(e.frame, e.event, 0).map_err(|_| EngineError::Config("too many events"))?;
    }
    let mut workers = Vec::new();
    for generation in 1..=3 {
        let region = WorkerRegion::create(geometry, epoch, generation)?;
        let process = spawn_worker(worker, &region, bus_fd.as_fd(), None, SandboxMode::Audit)
            .map_err(|e| EngineError::WorkerStart(format!("cannot run {}: {e}", worker.exe.display())))?;
        workers.push(Worker { region, process, left: Vec::new(), right: Vec::new() });
    }
    for (i, w) in workers.iter().enumerate() {
        if w.region.wait_worker_ready(Duration::from_secs(10)) != Some(WorkerState::Ready) {
            return Err(EngineError::WorkerStart(format!(
                "worker {i} did not become ready: does {} call chronus_worker::init for '{}'?",
                worker.exe.display(),
                spec.name()
            )));
        }
    }
    let half = frames / 2 / block * block;
    workers[0].region.request_start(StartKind::Fresh, 0, 0, 0);
    workers[1].region.request_start(StartKind::Fresh, 0, 0, 0);
    bus.publish_render_limit(half);
    let drain = |workers: &mut [Worker], until: u64, which: &[usize]| -> Result<(), EngineError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        for &i in which {
            let w = &mut workers[i];
            loop {
                w.region.wake_worker();
                let mut reader = AudioReader::new(&w.region);
                let (read, written) = reader.span();
                if written > read {
                    let n = (written - read) as usize;
                    let at = w.left.len();
                    w.left.resize(at + n, 0.0);
                    w.right.resize(at + n, 0.0);
                    let _ = reader.read(&mut w.left[at..], &mut w.right[at..]);
                }
                if reader.span().0 >= until {
                    break;
                }
                if Instant::now() > deadline || w.process.try_wait().ok().flatten().is_some() {
                    return Err(EngineError::WorkerStart(format!("worker {i} stopped before frame {until}")));
                }
                reader.wait_for(read + 1, Duration::from_millis(10));
            }
        }
        Ok(())
    };
    drain(&mut workers, half, &[0, 1])?;
    // A is idle at `half` (its limit): its snapshot is taken there.
    let id = workers[0].region.request_snapshot(half);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !workers[0].region.snapshot_done(id) {
        if Instant::now() > deadline {
            return Err(EngineError::WorkerStart("worker 0 did not write its snapshot".into()));
        }
        workers[0].region.wake_worker();
        std::thread::sleep(Duration::from_micros(200));
    }
    let info = bus.store_checkpoint(0, &workers[0].region)?;
    // C's ring starts at the snapshot's frame: its first frame there.
    workers[2].region.request_start(StartKind::Checkpoint, info.frame, 0, 0);
    workers[2].left.resize(info.frame as usize, 0.0);
    workers[2].right.resize(info.frame as usize, 0.0);
    bus.publish_render_limit(frames);
    drain(&mut workers, frames, &[0, 1, 2])?;
    for w in &mut workers {
        w.region.request_stop();
        let _ = w.process.wait();
    }
    let offline = render_offline(spec, setup, events, &Annotations::default(), frames, false)
        .map_err(|e| EngineError::Output(e.to_string()))?;
    let mut forbidden: Vec<u32> = workers.iter().flat_map(|w| w.region.forbidden_calls()).collect();
    forbidden.sort_unstable();
    forbidden.dedup();
    let (a, b, c) = (&workers[0], &workers[1], &workers[2]);
    Ok(DeterminismReport {
        frames,
        between_processes: first_difference((&a.left, &a.right), (&b.left, &b.right), 0),
        against_in_process: first_difference((&a.left, &a.right), (&offline.left, &offline.right), 0),
        from_snapshot: first_difference((&a.left, &a.right), (&c.left, &c.right), info.frame as usize),
        snapshot_frame: info.frame,
        forbidden_calls: forbidden.into_iter().map(chronus_worker::sandbox::call_name).collect(),
    })
}
