//! The sound-card path, headless: `chronus play --sink device --device jack`
//! through cpal's ALSA host and ALSA's jack plugin into JACK's dummy backend,
//! which paces a real audio graph with no sound card. A worker is killed
//! halfway; the recording must equal the offline render of the journal.
//!
//! Needs jackd (Debian: jackd2) and ALSA's jack plugin (libasound2-plugins);
//! `scripts/test` installs them.

use std::process::Command;

use crate::util::jackd::Jack;
use crate::util::*;

/// These tests play in real time: one at a time.
#[test]
fn plays_through_a_real_audio_graph_and_survives_a_kill_bit_exactly() {
    let _rt = rt_lock();
    let jack = Jack::start(256);
    let dir = TempDir::new("device-jack");
    let (wav, journal) = (dir.path("played.wav"), dir.path("run.journal"));
    let out = Command::new(chronus_exe())
        .args([
            "play",
            "--sink",
            "device",
            "--device",
            "jack",
            "--demo",
            "--duration",
            "3",
            "--osc",
            "127.0.0.1:0",
            "--name",
            &format!("device-test-{}", std::process::id()),
        ])
        .arg("--record")
        .arg(&wav)
        .arg("--journal")
        .arg(&journal)
        .env("JACK_DEFAULT_SERVER", &jack.name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "play failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("playing through device"), "{stdout}");
    assert!(stdout.contains("48000 Hz, block 256"), "the device's settings must drive the engine: {stdout}");
    assert!(
        stdout.contains("1 failover(s), frames lost: 0, bit-exact with the offline render: yes"),
        "{stdout}"
    );

    let rendered = dir.path("rendered.wav");
    let run = chronus(&["render", "--journal", journal.to_str().unwrap(), "-o", rendered.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let (sr, left, right) = chronus::audio::read_wav(&wav).unwrap();
    let (_, l2, r2) = chronus::audio::read_wav(&rendered).unwrap();
    assert_eq!(sr, 48_000);
    assert!(left.len() >= 48_000 * 29 / 10, "played only {} frames", left.len());
    assert_eq!(first_difference(&left, &l2), None);
    assert_eq!(first_difference(&right, &r2), None);
    assert!(left.iter().any(|s| s.abs() > 0.05), "the demo should be audible");
}

#[test]
fn auto_falls_back_to_the_null_sink_without_a_sound_card_and_says_so() {
    let _rt = rt_lock();
    let name = format!("device-auto-{}", std::process::id());
    // No JACK server for this process, and ALSA's default here is `null`.
    let dir = TempDir::new("device-auto");
    let out = Command::new(chronus_exe())
        .args(["play", "--duration", "0.5", "--osc", "127.0.0.1:0", "--name", &name])
        .arg("--record")
        .arg(dir.path("x.wav"))
        .env("JACK_DEFAULT_SERVER", "chronus-no-such-server")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    if stdout.contains("playing through device") {
        // A machine with a real sound card: nothing to fall back from.
        return;
    }
    assert!(stderr.contains("playing through the paced null sink instead"), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.contains("null sink")).count(), 1, "one line: {stderr}");
    let named = Command::new(chronus_exe())
        .args(["play", "--device", "no-such-device", "--duration", "0.2", "--name", &name])
        .output()
        .unwrap();
    assert_eq!(named.status.code(), Some(74), "{}", String::from_utf8_lossy(&named.stderr));
}
