//! Helpers for process-level tests: run the real `chronus` binary.
#![allow(dead_code)]

pub mod jackd;
pub mod osc;
pub mod play;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// Lets `engine` play `d` of audio: polls its status until that many more
/// frames were played, rather than sleeping for `d` (a machine that stalls
/// is waited for, at most 10 s beyond `d`; an engine that stops playing
/// fails the test).
pub fn play_for(engine: &chronus::supervisor::Engine, d: std::time::Duration) {
    let start = engine.status();
    let frames = (d.as_secs_f64() * f64::from(start.sample_rate)) as u64;
    let target = start.counters.frames_played + frames;
    if let Err(s) =
        engine.wait_for(d + std::time::Duration::from_secs(10), |s| s.counters.frames_played >= target)
    {
        panic!("{d:?} of audio not played within {:?}: {s:?}", d + std::time::Duration::from_secs(10));
    }
}

/// Tests that play in real time, start processes or servers take this, so
/// they run one at a time (2 cores: two at once would miss deadlines).
static RT_LOCK: Mutex<()> = Mutex::new(());

/// Takes [`RT_LOCK`] (a test that failed holding it does not poison it for
/// the others).
pub fn rt_lock() -> MutexGuard<'static, ()> {
    RT_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `chronus` binary built for these tests.
pub fn chronus_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chronus"))
}

/// Runs `chronus ARGS…` to completion.
pub fn chronus(args: &[&str]) -> Output {
    Command::new(chronus_exe()).args(args).output().expect("run chronus")
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("chronus-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The shipped demo score.
pub fn demo_score() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scores/demo.score")
}

/// Samples as bits, so NaN and signed zeros compare exactly.
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|s| s.to_bits()).collect()
}

/// The first frame where two renders differ, if any.
pub fn first_difference(a: &[f32], b: &[f32]) -> Option<usize> {
    if a.len() != b.len() {
        return Some(a.len().min(b.len()));
    }
    a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits())
}

/// Kills process `pid` (SIGKILL) when dropped, if it is still there, so a
/// failing test does not leave a `chronus play` running.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0));
        let running =
            stat.is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| !r.trim_start().starts_with('Z')));
        if running {
            let _ = Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
        }
    }
}

/// Renders `journal` with `chronus render --journal … --as-played` (silence
/// where the machine stalled the output, if it did: the journal's `@stall`
/// lines) into `out` and returns its (left, right).
pub fn render_as_played(journal: &Path, out: &Path) -> (Vec<f32>, Vec<f32>) {
    let run = chronus(&[
        "render",
        "--journal",
        journal.to_str().unwrap(),
        "--as-played",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "chronus render: {}", String::from_utf8_lossy(&run.stderr));
    let (_, left, right) = chronus::audio::read_wav(out).unwrap();
    (left, right)
}

/// The built-in synth with `voices` voices.
pub fn synth_spec(voices: u32) -> chronus::dsp::DspSpec {
    chronus::dsp::DspSpec::new::<chronus::synth::Synth>(chronus::synth::SynthConfig::new(voices)).unwrap()
}

/// An engine configuration for the built-in synth (64 voices), workers run
/// from the `chronus` binary.
pub fn engine_config() -> chronus::supervisor::EngineConfig {
    chronus::supervisor::EngineConfig::new(synth_spec(64), chronus::worker::WorkerCommand::new(chronus_exe()))
}

/// The spec a journal written by `chronus` names.
pub fn spec_for_journal(
    h: &chronus::journal::JournalHeader,
) -> Result<chronus::dsp::DspSpec, chronus::journal::JournalError> {
    Ok(chronus::dsp::DspSpec::from_json::<chronus::synth::Synth>(&h.config)?)
}

/// The shipped demo score as events for `spec` at `setup`.
pub fn demo_events(
    spec: &chronus::dsp::DspSpec,
    setup: &chronus::dsp::Setup,
) -> Vec<chronus::dsp::TimedEvent> {
    let score = std::fs::read_to_string(demo_score()).unwrap();
    chronus::journal::parse_score(&score, spec, setup).unwrap()
}
