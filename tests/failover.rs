//! Process-level failover tests: real worker processes, a real-time paced
//! sink recording a WAV, real faults. Every run must be bit-identical to the
//! offline render of its journal, with no underrun.
//!
//! These tests play in real time, so they run one at a time (`RT_LOCK`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::util::*;
use chronus::supervisor::{Engine, EngineConfig, FaultKind, PacedSink, RunReport, Target};

const SR: u32 = 48_000;

/// Open fds, memfd mappings and engine threads of this process. (The test
/// harness runs other tests' threads too, so only `chronus-*` threads count.)
fn resources() -> (usize, usize, usize) {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let engine_threads = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("chronus-")))
        .count();
    (fds, maps.lines().filter(|l| l.contains("memfd:chronus")).count(), engine_threads)
}

pub(crate) fn config(dir: &TempDir) -> EngineConfig {
    let mut cfg = engine_config();
    cfg.faults_enabled = true;
    cfg.record_in_memory = true;
    cfg.record_path = Some(dir.path("played.wav"));
    cfg.journal_path = Some(dir.path("run.journal"));
    cfg
}

/// Runs `body` while the demo score plays into `engine` in real time,
/// looping; stops feeding when `body` returns (or panics).
pub(crate) fn while_playing<R>(engine: &Engine, body: impl FnOnce() -> R) -> R {
    let cmds = demo_events(engine.dsp(), &engine.config().setup());
    let length = cmds.last().unwrap().frame + u64::from(SR);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| chronus::harness::play_looped(engine, &cmds, length, &stop));
        let _stop = StopOnDrop(&stop);
        body()
    })
}

/// Sets the flag when dropped, so the feeder stops even if a check panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Waits until the engine has noticed `faults` faults in all.
pub(crate) fn wait_failovers(engine: &Engine, faults: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while engine.status().failovers < faults as u64 {
        assert!(
            Instant::now() < deadline,
            "fault {faults} was not noticed within 5 s: {:?}",
            engine.status()
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Waits for a verified standby. (Not for HEALTHY: health reads DEGRADED for
/// 10 s after any underrun, and a machine stall causes some.)
pub(crate) fn wait_standby(engine: &Engine) {
    let ok = |s: &chronus::supervisor::Status| s.standby_pid.is_some() && s.joining_pid.is_none();
    if let Err(s) = engine.wait_for(Duration::from_secs(5), ok) {
        panic!("no verified standby 5 s after a fault: {s:?}");
    }
}

/// Plays while `target` is told to diverge `times` times, each once a
/// standby is verified and has played 50 ms, and noticed; then plays 200 ms
/// more after a last standby is verified.
pub(crate) fn diverge_while_playing(engine: &Engine, target: Target, times: usize) {
    while_playing(engine, || {
        for n in 1..=times {
            wait_standby(engine);
            play_for(engine, Duration::from_millis(50));
            engine.inject(target, FaultKind::Diverge).unwrap();
            wait_failovers(engine, n);
        }
        wait_standby(engine);
        play_for(engine, Duration::from_millis(200));
    });
}

/// Checks everything a run must satisfy; returns the report for more checks.
fn check_run(report: &RunReport, dir: &TempDir, faults: usize) {
    // Frames the machine did not let the output play (a descheduled virtual
    // CPU) are reported apart and left out of the comparison below; every
    // other missing frame fails the run.
    assert_eq!(report.lost_frames(), 0, "underruns; events: {:#?}", report.failovers);
    assert_eq!(report.counters.io_overruns, 0, "journal or recording lost data");
    assert_eq!(
        report.failovers.len(),
        faults,
        "one failover per fault, no spurious respawn: {:#?}",
        report.failovers
    );
    for e in &report.failovers {
        assert!(e.t_rejoin.is_some(), "a replacement never joined: {e:?}");
    }
    assert_eq!(
        report.first_difference().unwrap(),
        None,
        "the run differs from the offline render of its journal"
    );
    // The WAV on disk holds exactly what was played, and the journal on disk
    // renders to it through the CLI.
    let (sr, left, right) = chronus::audio::read_wav(&dir.path("played.wav")).unwrap();
    assert_eq!(sr, SR);
    assert_eq!(first_difference(&left, &report.left), None);
    assert_eq!(first_difference(&right, &report.right), None);
    let rendered = dir.path("rendered.wav");
    let (mut l2, mut r2) = render_as_played(&dir.path("run.journal"), &rendered);
    // Frames of a replica found wrong that were heard (`@wrong`) are the
    // one thing a render cannot reproduce: left out.
    for w in &report.notes.wrong {
        let span = w.first as usize..(w.first + w.frames) as usize;
        if span.end <= l2.len().min(left.len()) {
            l2[span.clone()].copy_from_slice(&left[span.clone()]);
            r2[span.clone()].copy_from_slice(&right[span]);
        }
    }
    assert_eq!(
        first_difference(&l2, &left),
        None,
        "chronus render --journal does not reproduce the recording"
    );
    assert_eq!(first_difference(&r2, &right), None);
}

fn assert_gone(pids: impl IntoIterator<Item = u32>) {
    for pid in pids {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "worker {pid} is still there (or a zombie)");
    }
}

#[test]
fn every_fault_kind_on_active_and_standby_is_survived_bit_exactly() {
    let _rt = rt_lock();
    let dir = TempDir::new("failover-kinds");
    let before = resources();
    let engine = Engine::start(config(&dir), PacedSink::new(SR)).unwrap();
    let mut faults = 0;
    while_playing(&engine, || {
        play_for(&engine, Duration::from_millis(300));
        for kind in FaultKind::ALL {
            for target in [Target::Active, Target::Standby] {
                wait_standby(&engine);
                play_for(&engine, Duration::from_millis(40));
                engine.inject(target, kind).unwrap();
                faults += 1;
                wait_failovers(&engine, faults);
            }
        }
        wait_standby(&engine);
        play_for(&engine, Duration::from_millis(200));
    });
    let status = engine.status();
    let report = engine.stop().unwrap();
    check_run(&report, &dir, faults);
    for kind in FaultKind::ALL {
        let n = report.failovers.iter().filter(|e| e.fault == Some(kind)).count();
        assert_eq!(n, 2, "{kind}: expected one fault on the active and one on the standby");
    }
    assert!(report.failovers.iter().any(|e| e.detected_by == chronus::supervisor::DetectedBy::Watchdog));
    assert!(report.failovers.iter().any(|e| e.detected_by == chronus::supervisor::DetectedBy::Slow));
    assert_gone(report.failovers.iter().map(|e| e.pid).chain(status.active_pid).chain(status.standby_pid));
    assert_eq!(resources(), before, "fds, shared-memory mappings or engine threads left behind");
}

#[test]
fn faults_close_together_and_while_joining_are_survived() {
    let _rt = rt_lock();
    let dir = TempDir::new("failover-close");
    // No spare: each replacement is spawned, so it joins slowly enough to be
    // killed while it joins.
    let mut cfg = config(&dir);
    cfg.spares = 0;
    // Checkpoints a second apart: a replacement catches up over up to a
    // second of audio, a window wide enough to be killed in.
    cfg.checkpoint_every = SR;
    let engine = Engine::start(cfg, PacedSink::new(SR)).unwrap();
    let mut faults = 0;
    while_playing(&engine, || {
        play_for(&engine, Duration::from_millis(200));
        let mut missed = 0;
        for _ in 0..3 {
            // Kill the active, then its replacement while it is still joining,
            // from outside. A join takes a few ms: one may be
            // over before this thread sees it; then the active is killed
            // again (bounded, counted).
            let joining = loop {
                wait_standby(&engine);
                engine.signal(Target::Active, libc::SIGKILL).unwrap();
                faults += 1;
                wait_failovers(&engine, faults);
                let deadline = Instant::now() + Duration::from_secs(2);
                let seen = loop {
                    let s = engine.status();
                    if let Some(pid) = s.joining_pid {
                        break Some(pid);
                    }
                    if Instant::now() > deadline || (s.standby_pid.is_some() && s.joining_pid.is_none()) {
                        break None;
                    }
                    std::thread::sleep(Duration::from_micros(100));
                };
                match seen {
                    Some(pid) => break pid,
                    None => {
                        missed += 1;
                        assert!(missed <= 6, "missed the replacement's join {missed} times");
                    }
                }
            };
            // kill(2) from this process, not kill(1): the engine does not
            // know of it either way, and spawning /bin/kill took longer
            // than a join on a fresh machine (its pages not yet cached), so
            // the kill landed on a promoted standby.
            chronus::sys::process::kill(joining, libc::SIGKILL).unwrap();
            faults += 1;
            wait_failovers(&engine, faults);
            // Then two faults back to back: the new active as soon as it has a
            // verified standby, and that standby's successor right away.
            wait_standby(&engine);
            engine.inject(Target::Active, FaultKind::Segv).unwrap();
            faults += 1;
            wait_failovers(&engine, faults);
            wait_standby(&engine);
            engine.inject(Target::Active, FaultKind::Exit1).unwrap();
            faults += 1;
            wait_failovers(&engine, faults);
        }
        // A worker frozen from outside (kill -STOP) is caught by the watchdog.
        wait_standby(&engine);
        let pid = engine.status().standby_pid.unwrap();
        std::process::Command::new("kill").args(["-STOP", &pid.to_string()]).status().unwrap();
        faults += 1;
        wait_failovers(&engine, faults);
        wait_standby(&engine);
        play_for(&engine, Duration::from_millis(200));
    });
    let report = engine.stop().unwrap();
    check_run(&report, &dir, faults);
    assert!(report.failovers.iter().any(|e| e.role == chronus::supervisor::Role::Joining));
    assert_gone(report.failovers.iter().map(|e| e.pid));
}

#[test]
fn fault_injection_is_refused_unless_enabled() {
    let _rt = rt_lock();
    let dir = TempDir::new("failover-disabled");
    let mut cfg = config(&dir);
    cfg.faults_enabled = false;
    let engine = Engine::start(cfg, PacedSink::new(SR)).unwrap();
    let err = engine.inject(Target::Active, FaultKind::Kill).unwrap_err();
    assert!(matches!(err, chronus::supervisor::EngineError::FaultsDisabled), "{err}");
    play_for(&engine, Duration::from_millis(100));
    let report = engine.stop().unwrap();
    assert!(report.failovers.is_empty());
}

/// A paced sink (3 periods of buffer, 16 ms at 256 frames) whose thread is
/// descheduled once, as a loaded machine would do to it.
struct StallingSink {
    inner: PacedSink,
    periods: u32,
    stall_at: u32,
    stall: Duration,
}

impl chronus::supervisor::Sink for StallingSink {
    fn wait_period(&mut self, frames: u32) -> Option<Instant> {
        self.periods += 1;
        if self.periods == self.stall_at {
            std::thread::sleep(self.stall);
        }
        self.inner.wait_period(frames)
    }

    fn is_realtime(&self) -> bool {
        true
    }
}

/// Plays with an output stall of `stall` after ~0.5 s and a kill of the
/// active right after it; returns the report.
fn run_with_output_stall(dir: &TempDir, stall: Duration) -> RunReport {
    let sink = StallingSink { inner: PacedSink::new(SR), periods: 0, stall_at: 94, stall };
    let engine = Engine::start(config(dir), sink).unwrap();
    while_playing(&engine, || {
        wait_standby(&engine);
        std::thread::sleep(Duration::from_millis(500) + stall);
        engine.signal(Target::Active, libc::SIGKILL).unwrap();
        wait_failovers(&engine, 1);
        wait_standby(&engine);
        play_for(&engine, Duration::from_millis(300));
    });
    engine.stop().unwrap()
}

#[test]
fn an_output_stall_shorter_than_the_device_buffer_loses_nothing() {
    let _rt = rt_lock();
    let dir = TempDir::new("failover-short-stall");
    let report = run_with_output_stall(&dir, Duration::from_millis(8));
    check_run(&report, &dir, 1);
}

#[test]
fn an_output_stall_longer_than_the_device_buffer_is_counted_and_recovered_from() {
    let _rt = rt_lock();
    let dir = TempDir::new("failover-long-stall");
    let report = run_with_output_stall(&dir, Duration::from_millis(80));
    // A real device would have played silence too: it is counted, not hidden
    // (and health reads DEGRADED for 10 s after it), as a stall of the
    // machine: the output thread itself was late, no worker was.
    assert!(report.counters.underrun_frames > 0);
    assert!(
        report.counters.underrun_frames < 48_000 / 10,
        "more lost than the stall: {}",
        report.counters.underrun_frames
    );
    assert_eq!(
        report.counters.machine_stall_frames, report.counters.underrun_frames,
        "{:?}",
        report.notes.stalls
    );
    assert_eq!(report.lost_frames(), 0);
    assert_eq!(report.failovers.len(), 1);
    assert!(report.failovers[0].t_rejoin.is_some());
    // The workers rendered through the stall: everything else is bit-exact.
    assert_eq!(report.first_difference().unwrap(), None);
}

/// Stops `pids` with SIGSTOP for `how_long`, then continues them, from a
/// helper process (so that this process may be among them), at real-time
/// priority when permitted: a helper preempted between two of its signals
/// would stop or continue the workers apart, and a worker left stopped
/// while the other runs is rightly killed as hung.
pub(crate) fn freeze(engine: &Engine, pids: &[u32], how_long: Duration) {
    let list = pids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    let script = format!("kill -STOP {list}; sleep {}; kill -CONT {list}", how_long.as_secs_f64());
    let realtime =
        std::process::Command::new("chrt").args(["-f", "90", "true"]).status().is_ok_and(|s| s.success());
    let mut helper = std::process::Command::new(if realtime { "chrt" } else { "sh" });
    if realtime {
        helper.args(["-f", "90", "sh"]);
    }
    let status = helper.args(["-c", &script]).status().unwrap();
    assert!(status.success(), "{script}: a pid was gone; {:?}", engine.status());
}

pub(crate) fn worker_pids(engine: &Engine) -> Vec<u32> {
    let s = engine.status();
    vec![s.active_pid.unwrap(), s.standby_pid.unwrap()]
}

/// Plays for a while, freezes what `pids` picks for `how_long`, plays on;
/// returns the report.
fn run_with_freeze(dir: &TempDir, pids: impl Fn(&Engine) -> Vec<u32>, how_long: Duration) -> RunReport {
    let engine = Engine::start(config(dir), PacedSink::new(SR)).unwrap();
    while_playing(&engine, || {
        wait_standby(&engine);
        play_for(&engine, Duration::from_millis(300));
        freeze(&engine, &pids(&engine), how_long);
        play_for(&engine, Duration::from_millis(300));
    });
    engine.stop().unwrap()
}

#[test]
fn a_machine_freeze_kills_no_worker_and_is_reported_as_the_machines() {
    let _rt = rt_lock();
    let dir = TempDir::new("failover-machine-freeze");
    // This process (supervisor, output, everything) and both workers at
    // once: a virtual machine whose CPUs the host took away for 80 ms.
    let everything = |engine: &Engine| {
        let mut pids = worker_pids(engine);
        pids.push(std::process::id());
        pids
    };
    let report = run_with_freeze(&dir, everything, Duration::from_millis(80));
    assert!(report.failovers.is_empty(), "a healthy worker was killed: {:#?}", report.failovers);
    assert!(report.counters.supervisor_stalls > 0, "the supervisor did not notice it was held off");
    assert!(report.counters.underrun_frames > 0, "an 80 ms freeze fits no 16 ms device buffer");
    assert_eq!(
        report.counters.machine_stall_frames, report.counters.underrun_frames,
        "{:?}",
        report.notes.stalls
    );
    assert_eq!(report.first_difference().unwrap(), None);
    // The journal on disk says where, so a render can be compared as played.
    let (journal, _) = chronus::journal::Journal::parse(
        &std::fs::read_to_string(dir.path("run.journal")).unwrap(),
        spec_for_journal,
    )
    .unwrap();
    let stalled: u64 = journal.notes.stalls.iter().map(|s| s.frames).sum();
    assert_eq!(stalled, report.counters.machine_stall_frames);
}

#[test]
fn a_worker_starved_of_its_cpu_is_spared_not_killed_as_hung() {
    // What a host that takes away the virtual CPU a worker runs on looks
    // like from inside: the worker is runnable and gets no CPU time, for
    // longer than the hang timeout. Made here for real: the active is
    // moved onto one CPU, and a real-time spinner holds that CPU for 80 ms
    // (4 hang timeouts). Before, the watchdog killed it as hung (a healthy
    // worker lost, and one failover more than faults in a soak).
    let _rt = rt_lock();
    let cpus = chronus::sys::sched::allowed_cpus().unwrap();
    assert!(cpus.len() >= 2, "this test needs two CPUs, has {cpus:?}");
    let cpu = *cpus.last().unwrap();
    let dir = TempDir::new("failover-starved");
    let engine = Engine::start(config(&dir), PacedSink::new(SR)).unwrap();
    while_playing(&engine, || {
        wait_standby(&engine);
        play_for(&engine, Duration::from_millis(300));
        let active = engine.status().active_pid.unwrap();
        chronus::sys::sched::set_affinity(active, [cpu]).unwrap();
        let spin = std::process::Command::new("timeout")
            .args([
                "0.08",
                "chrt",
                "-f",
                "90",
                "taskset",
                "-c",
                &cpu.to_string(),
                "sh",
                "-c",
                "while :; do :; done",
            ])
            .status()
            .unwrap();
        assert_eq!(spin.code(), Some(124), "the spinner ran until its timeout");
        // (Fails only if it was killed, which the checks below report.)
        let _ = chronus::sys::sched::set_affinity(active, cpus.iter().copied());
        play_for(&engine, Duration::from_millis(300));
    });
    let report = engine.stop().unwrap();
    assert!(report.counters.starved_workers >= 1, "{:?}", report.counters);
    check_run(&report, &dir, 0);
}

#[test]
fn both_workers_stalled_together_are_given_time_and_their_gap_counts_as_lost() {
    let _rt = rt_lock();
    let dir = TempDir::new("failover-common-stall");
    // Longer than the hang timeout, shorter than the patience for a common
    // stall: killing both would lose the synth's state.
    let report = run_with_freeze(&dir, worker_pids, Duration::from_millis(60));
    assert!(report.failovers.is_empty(), "a worker was killed: {:#?}", report.failovers);
    // The output was on time and no worker delivered: that is lost audio,
    // not the machine's doing, and the comparison shows it. (60 ms frozen,
    // less the lead and the device buffer the output may wait through:
    // well over 1,000 frames. The machine may stall on its own as well,
    // which is why this is not `machine_stall_frames == 0`.)
    assert!(report.lost_frames() >= 1_000, "{} lost, {:?}", report.lost_frames(), report.notes.stalls);
    assert!(report.first_difference().unwrap().is_some());
}

#[test]
fn a_diverged_standby_is_caught_by_its_checksums_and_replaced() {
    let _rt = rt_lock();
    let dir = TempDir::new("failover-diverge");
    let engine = Engine::start(config(&dir), PacedSink::new(SR)).unwrap();
    diverge_while_playing(&engine, Target::Standby, 3);
    let report = engine.stop().unwrap();
    check_run(&report, &dir, 3);
    for e in &report.failovers {
        assert_eq!(e.detected_by, chronus::supervisor::DetectedBy::Divergence, "{e:?}");
        assert_eq!(e.role, chronus::supervisor::Role::Standby);
    }
    // Two replicas, one against one: each dispute was refereed, and the
    // referee sided with the active.
    assert_eq!(report.counters.disputes_ruled, 3, "{:?}", report.counters);
    assert_eq!(report.counters.outvoted, 0);
}

#[test]
fn a_diverged_standby_heard_while_the_active_was_late_is_counted_journaled_and_never_heard_again() {
    // The active is late (stopped for 80 ms, well inside a long hang
    // timeout), so the output plays the standby's frames; the standby
    // diverges meanwhile. Its wrong frames were heard before any vote
    // could be taken (the active had not rendered them): they must be
    // counted and journaled, and once it is ruled wrong, never played
    // again (before: uncounted, and its dead ring stayed readable, so the
    // recording was not the journal's render).
    let _rt = rt_lock();
    let dir = TempDir::new("failover-diverged-fallback");
    let mut cfg = config(&dir);
    cfg.hang_timeout = Duration::from_millis(500);
    let engine = Engine::start(cfg, PacedSink::new(SR)).unwrap();
    while_playing(&engine, || {
        wait_standby(&engine);
        play_for(&engine, Duration::from_millis(300));
        let active = engine.status().active_pid.unwrap();
        std::thread::scope(|s| {
            let frozen = s.spawn(|| freeze(&engine, &[active], Duration::from_millis(80)));
            let deadline = Instant::now() + Duration::from_secs(5);
            while chronus::sys::process::process_state(active) != Some(b'T') {
                assert!(Instant::now() < deadline, "the active was not stopped");
                std::thread::sleep(Duration::from_micros(200));
            }
            engine.inject(Target::Standby, FaultKind::Diverge).unwrap();
            frozen.join().unwrap();
        });
        wait_failovers(&engine, 1);
        wait_standby(&engine);
        play_for(&engine, Duration::from_millis(300));
    });
    let report = engine.stop().unwrap();
    assert_eq!(report.counters.disputes_ruled, 1, "{:?}", report.counters);
    assert_eq!(report.counters.outvoted, 0);
    let e = &report.failovers[0];
    assert_eq!(
        (e.role, e.detected_by),
        (chronus::supervisor::Role::Standby, chronus::supervisor::DetectedBy::Divergence)
    );
    assert!(report.counters.fallback_frames > 0, "the output never fell back: {:?}", report.counters);
    let wrong: u64 = report.notes.wrong.iter().map(|w| w.frames).sum();
    assert!(wrong > 0, "none of the diverged standby's frames were heard: {:?}", report.counters);
    assert_eq!(wrong, report.counters.wrong_frames_played, "{:?}", report.notes.wrong);
    check_run(&report, &dir, 1);
}

#[test]
fn with_two_replicas_a_diverged_active_is_refereed_and_replaced_before_it_is_heard() {
    // The active changes its own state in silence. Two replicas cannot
    // tell which of them is wrong; a spare renders the disputed block again
    // from the last checkpoint they agreed on, and sides with the standby.
    // (Before referees, the healthy standby was replaced and the wrong
    // active kept playing: this test failed on `outvoted`.)
    let _rt = rt_lock();
    let dir = TempDir::new("failover-refereed");
    let engine = Engine::start(config(&dir), PacedSink::new(SR)).unwrap();
    diverge_while_playing(&engine, Target::Active, 3);
    let report = engine.stop().unwrap();
    assert_eq!(report.counters.outvoted, 3, "{:#?}", report.failovers);
    assert_eq!(report.counters.disputes_ruled, 3, "{:?}", report.counters);
    assert_eq!(report.counters.disputes_undecided, 0);
    for e in &report.failovers {
        assert_eq!(e.detected_by, chronus::supervisor::DetectedBy::Divergence, "{e:?}");
        assert_eq!(e.role, chronus::supervisor::Role::Active, "{e:?}");
    }
    // The ruling comes within the lead (two blocks): none of the wrong
    // audio was played, so the recording is the journal's render bit for
    // bit.
    assert_eq!(report.counters.wrong_frames_played, 0);
    assert!(report.notes.wrong.is_empty(), "{:?}", report.notes.wrong);
    check_run(&report, &dir, 3);
}

#[test]
fn with_three_replicas_a_diverged_active_is_outvoted_and_replaced_before_it_is_heard() {
    // The active changes its own state in silence: with two replicas the
    // active is believed; with three, the two standbys agree against it.
    let _rt = rt_lock();
    let dir = TempDir::new("failover-outvoted");
    let mut cfg = config(&dir);
    cfg.replicas = 3;
    let engine = Engine::start(cfg, PacedSink::new(SR)).unwrap();
    diverge_while_playing(&engine, Target::Active, 3);
    let report = engine.stop().unwrap();
    assert_eq!(report.counters.outvoted, 3, "{:#?}", report.failovers);
    for e in &report.failovers {
        assert_eq!(e.detected_by, chronus::supervisor::DetectedBy::Divergence, "{e:?}");
        assert_eq!(e.role, chronus::supervisor::Role::Active, "{e:?}");
    }
    // The vote comes within the lead (two blocks): none of the wrong audio
    // was played, so the recording is the journal's render bit for bit.
    assert_eq!(report.counters.wrong_frames_played, 0);
    check_run(&report, &dir, 3);
}

#[test]
fn a_free_running_sink_plays_faster_than_real_time_through_faults() {
    let _rt = rt_lock();
    let dir = TempDir::new("failover-free");
    let engine = Engine::start(config(&dir), chronus::supervisor::FreeRunningSink).unwrap();
    // Commands go in as fast as the engine plays: a dense, unpaced load.
    let cmds = demo_events(engine.dsp(), &engine.config().setup());
    let started = Instant::now();
    for (n, kind) in
        [FaultKind::Kill, FaultKind::Segv, FaultKind::Panic, FaultKind::Hang].into_iter().enumerate()
    {
        for c in &cmds {
            engine.send(c.event).unwrap();
        }
        wait_standby(&engine);
        engine.inject(if n % 2 == 0 { Target::Active } else { Target::Standby }, kind).unwrap();
        wait_failovers(&engine, n + 1);
    }
    wait_standby(&engine);
    let report = engine.stop().unwrap();
    let played = report.counters.frames_played as f64 / f64::from(SR);
    assert!(
        played > started.elapsed().as_secs_f64(),
        "free-running played {played} s in {:?}",
        started.elapsed()
    );
    check_run(&report, &dir, 4);
}
