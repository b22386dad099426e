//! The usual Linux desktop's audio stack, headless: `chronus play --sink
//! device` through ALSA's default device, which pipewire-alsa routes to a
//! private PipeWire server (its own XDG_RUNTIME_DIR and D-Bus, a null sink,
//! the graph's quantum forced with `pw-metadata`). At every quantum the
//! demo plays its full length with no device xrun, and bit-exactly; a
//! quantum changed while playing costs at most one period of the new
//! quantum (one xrun, whose silence sizes the output's period at once),
//! counted as lost audio and journaled, so the render as played still
//! equals the recording; the in-cycle mode plays through cpal too.
//!
//! Needs Debian's pipewire, pipewire-alsa, wireplumber, pipewire-bin and
//! dbus (`scripts/test` installs them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// These tests play in real time: one at a time.
/// A private PipeWire session with a null sink, stopped on drop.
struct PipeWire {
    run: PathBuf,
    children: Vec<Child>,
}

impl PipeWire {
    fn start() -> Self {
        let run = std::env::temp_dir().join(format!("chronus-pw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let mut pw = Self { run, children: Vec::new() };
        let need = "(Debian: apt-get install pipewire pipewire-alsa wireplumber pipewire-bin dbus; scripts/test installs them)";
        let bus = format!("--address=unix:path={}", pw.run.join("bus").display());
        pw.spawn("dbus-daemon", &["--session", "--nofork", &bus], need);
        pw.wait_for(&pw.run.join("bus"), "dbus-daemon");
        pw.spawn("pipewire", &[], need);
        pw.wait_for(&pw.run.join("pipewire-0"), "pipewire");
        pw.spawn("wireplumber", &[], need);
        let sink = "{ factory.name=support.null-audio-sink node.name=chronus-test-sink media.class=Audio/Sink \
                    object.linger=true audio.position=[FL FR] }";
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let made = pw.cmd("pw-cli").args(["create-node", "adapter", sink]).output();
            let default = pw.cmd("wpctl").args(["inspect", "@DEFAULT_AUDIO_SINK@"]).output();
            if made.is_ok_and(|o| o.status.success()) && default.is_ok_and(|o| o.status.success()) {
                return pw;
            }
            assert!(Instant::now() < deadline, "PipeWire has no default sink after 10 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_RUNTIME_DIR", &self.run)
            .env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", self.run.join("bus").display()))
            .env_remove("PIPEWIRE_REMOTE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn spawn(&mut self, program: &str, args: &[&str], need: &str) {
        let child = self
            .cmd(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} {need}"));
        self.children.push(child);
    }

    fn wait_for(&self, path: &Path, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < deadline, "{what} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn quantum(&self, frames: u32) {
        let set = self
            .cmd("pw-metadata")
            .args(["-n", "settings", "0", "clock.force-quantum", &frames.to_string()])
            .output();
        assert!(set.is_ok_and(|o| o.status.success()), "pw-metadata could not set the quantum");
    }

    /// `chronus play --sink device` in this session, writing into `dir`.
    fn play(&self, dir: &TempDir, name: &str, extra: &[&str]) -> Command {
        let mut c = self.cmd(chronus_exe());
        c.args(["play", "--sink", "device", "--osc", "127.0.0.1:0", "--name", name])
            .arg("--record")
            .arg(dir.path("played.wav"))
            .arg("--journal")
            .arg(dir.path("run.journal"))
            .args(extra);
        c
    }
}

impl Drop for PipeWire {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(2);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.run);
    }
}

/// The journal's `@xrun` lines: (frame, frames).
fn xruns(journal: &Path) -> Vec<(u64, u64)> {
    spans(journal, "@xrun ")
}

/// The journal's lines starting with `tag`: (first, frames).
fn spans(journal: &Path, tag: &str) -> Vec<(u64, u64)> {
    std::fs::read_to_string(journal)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix(tag))
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

/// The recording equals the journal's render as played.
fn assert_as_played(dir: &TempDir) -> (Vec<f32>, Vec<f32>) {
    let (_, left, right) = chronus::audio::read_wav(&dir.path("played.wav")).unwrap();
    let (l2, r2) = render_as_played(&dir.path("run.journal"), &dir.path("rendered.wav"));
    assert_eq!(first_difference(&left, &l2), None, "the render as played differs from the recording");
    assert_eq!(first_difference(&right, &r2), None);
    (left, right)
}

#[test]
fn every_quantum_plays_in_full_with_no_xrun_and_bit_exactly() {
    let _rt = rt_lock();
    let pw = PipeWire::start();
    // A stalled virtual machine can make any device run dry once: one run
    // in the whole test may be repeated, and says so.
    let mut retries = 0;
    for quantum in [256, 1024, 2048] {
        pw.quantum(quantum);
        let dir = TempDir::new(&format!("pw-q{quantum}"));
        let run = || {
            pw.play(&dir, &format!("pw-{quantum}-{}", std::process::id()), &["--demo", "--duration", "3"])
                .output()
                .unwrap()
        };
        let mut out = run();
        if !xruns(&dir.path("run.journal")).is_empty() && retries == 0 {
            retries += 1;
            eprintln!(
                "quantum {quantum}: the device ran dry ({:?}); repeating this run once",
                xruns(&dir.path("run.journal"))
            );
            out = run();
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "quantum {quantum}: {stdout}\n{stderr}");
        assert!(stdout.contains("playing through device"), "quantum {quantum}: {stdout}\n{stderr}");
        assert!(
            stdout.contains("1 failover(s), frames lost: 0, bit-exact with the offline render: yes"),
            "quantum {quantum}:\n{stdout}\n{stderr}"
        );
        assert!(!stderr.contains("xrun"), "quantum {quantum}: {stderr}");
        assert_eq!(xruns(&dir.path("run.journal")), [], "quantum {quantum}");
        let (left, _) = assert_as_played(&dir);
        assert!(left.len() >= 48_000 * 29 / 10, "quantum {quantum}: played only {} frames", left.len());
        assert!(left.iter().any(|s| s.abs() > 0.05), "the demo should be audible");
    }
}

#[test]
fn in_the_cycle_through_cpal_the_demo_plays_in_full_and_its_failover_loses_nothing() {
    let _rt = rt_lock();
    let pw = PipeWire::start();
    pw.quantum(1024);
    // A stalled virtual machine can make the device run dry once: the run
    // may be repeated once, and says so.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let dir = TempDir::new(&format!("pw-low{attempt}"));
        let out = pw
            .play(
                &dir,
                &format!("pw-low-{}", std::process::id()),
                &["--demo", "--duration", "3", "--latency", "low"],
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("in the cycle"), "the low mode must say so: {stdout}");
        if !xruns(&dir.path("run.journal")).is_empty() && attempt == 1 {
            eprintln!("the device ran dry ({:?}); repeating the run once", xruns(&dir.path("run.journal")));
            continue;
        }
        // The demo kills the active halfway: the standby had the frames
        // inside the callback's budget.
        assert!(
            stdout.contains("1 failover(s), frames lost: 0, bit-exact with the offline render: yes"),
            "{stdout}\n{stderr}"
        );
        let (left, _) = assert_as_played(&dir);
        assert!(left.len() >= 48_000 * 29 / 10, "played only {} frames", left.len());
        break;
    }
}

#[test]
fn a_quantum_changed_while_playing_settles_and_its_xruns_are_counted() {
    let _rt = rt_lock();
    let pw = PipeWire::start();
    pw.quantum(256);
    let dir = TempDir::new("pw-change");
    let child = pw
        .play(&dir, &format!("pw-change-{}", std::process::id()), &["--demo", "--duration", "6"])
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(child.id());
    let started = Instant::now();
    // Larger, then smaller than the period the output settles at.
    std::thread::sleep(Duration::from_millis(2_000));
    let raised = started.elapsed();
    pw.quantum(2048);
    std::thread::sleep(Duration::from_millis(1_500));
    pw.quantum(128);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Xruns only while the output adapted to the larger quantum (within a
    // second of it), none later; each is lost audio in the verdict.
    let sr = 48_000.0;
    let runs = xruns(&dir.path("run.journal"));
    let adapted_by = ((raised.as_secs_f64() + 1.5) * sr) as u64;
    // A host that stalls the VM can make the device run dry at any time:
    // one such xrun after the change settled, of at most 1,024 frames
    // (21 ms), is excused and shown; more fail.
    let late: Vec<_> = runs.iter().filter(|&&(f, _)| f > adapted_by).collect();
    if !late.is_empty() {
        eprintln!("excused: an xrun after the change settled (a stalled host): {late:?}");
    }
    assert!(
        late.len() <= 1 && late.iter().all(|&&(_, n)| n <= 1_024),
        "xruns after the change settled: {runs:?}"
    );
    // Frames lost: the device's xruns and any gap Chronus itself left (when
    // the device was reopened with a larger period), as journaled.
    let journal = dir.path("run.journal");
    let lost: u64 = runs.iter().chain(&spans(&journal, "@gap ")).map(|&(_, n)| n).sum();
    assert!(lost > 0, "a quantum 8 times larger must make the device run dry before the output adapts");
    eprintln!("quantum 256 -> 2048 -> 128 while playing: {lost} frames lost, xruns {runs:?}");
    // The change costs at most one period of the new quantum: the first
    // xrun's silence sizes the period at once (before, the period doubled
    // after every three xruns: 9,544 frames in 6 xruns). The lowered
    // quantum costs nothing. The excused stall above comes on top.
    let excused: u64 = late.iter().map(|&&(_, n)| n).sum();
    assert!(lost - excused <= 2_048, "the change lost {lost} frames (xruns {runs:?})");
    let line = stdout.lines().find(|l| l.starts_with("played ")).unwrap_or_default();
    assert!(
        line.contains(&format!("frames lost: {lost}")),
        "the verdict must count the device's xruns ({lost}): {line}"
    );
    assert!(line.contains("bit-exact with the offline render: yes"), "{line}");
    let (left, _) = assert_as_played(&dir);
    // The whole duration is played (the bug this guards against played 1.5
    // of 8 s). PipeWire's null sink runs on a timer without real-time
    // priority: a stalled host makes it ask for fewer frames in 6 s, so a
    // shortfall of up to 0.3 s is excused, bounded and shown.
    let seconds = left.len() as f64 / sr;
    if seconds < 5.9 {
        eprintln!("excused: the device asked for {seconds:.2} s of audio in 6 s (PipeWire was held off)");
    }
    assert!(seconds >= 5.7, "played only {} frames", left.len());
}
