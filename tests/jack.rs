//! The native JACK client (`chronus play --sink jack`), through a private
//! jackd with the dummy backend: playback with a worker killed, the period
//! changed while playing (`jack_bufsize`), MIDI from `jack_midiseq`, and a
//! bundle's onset at its time tag, measured by a JACK meter client (this
//! test binary, run as a child). Every run's recording must equal its
//! journal's render as played.
//!
//! Needs jackd2 (jackd, jack_bufsize, jack_midiseq, jack_connect, jack_lsp,
//! jack_wait); `scripts/test` installs it.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use crate::util::jackd::Jack;
use crate::util::osc::client;
use crate::util::play::Play;
use crate::util::*;
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType, encoder};

/// The recording equals the journal's render as played (device xruns and
/// gaps as the silence played), and it played at least `seconds`.
fn check_exact(dir: &TempDir, seconds: f64) {
    let (sr, played, _) = chronus::audio::read_wav(&dir.path("played.wav")).unwrap();
    assert_eq!(sr, 48_000);
    assert!(played.len() as f64 >= seconds * 48_000.0, "played only {} frames", played.len());
    let (rendered, _) = render_as_played(&dir.path("run.journal"), &dir.path("rendered.wav"));
    assert_eq!(first_difference(&rendered, &played), None, "the recording is not the journal's render");
    assert!(played.iter().any(|s| s.abs() > 0.01), "it should be audible");
}

fn note_on(voice: i32, freq: f32) -> Vec<OscType> {
    vec![OscType::Int(voice), OscType::Float(freq), OscType::Float(0.3)]
}

#[test]
fn native_jack_playback_survives_a_worker_kill_bit_exactly() {
    survives_a_worker_kill(&[]);
}

#[test]
fn in_the_cycle_native_jack_playback_survives_a_worker_kill_bit_exactly() {
    survives_a_worker_kill(&["--latency", "low"]);
}

fn survives_a_worker_kill(extra: &[&str]) {
    let _rt = rt_lock();
    let jack = Jack::start(256);
    let play = Play::on_jack(&jack, "jack-kill", extra);
    let ports = jack.ports();
    for p in ["out_1", "out_2"] {
        assert!(ports.iter().any(|x| x.ends_with(&format!(":{p}"))), "no {p} port: {ports:?}");
    }
    play.send_msg("/note_on", note_on(0, 440.0));
    play.play_for(Duration::from_millis(500));
    let active = play.status().active_pid;
    assert!(std::process::Command::new("kill").args(["-9", &active.to_string()]).status().unwrap().success());
    // Noticed, and a verified standby again: polled, not slept for.
    play.wait_for("the failover and a new standby", Duration::from_secs(5), |s| {
        s.failovers >= 1 && s.standby_pid > 0 && s.active_pid != active
    });
    play.send_msg("/note_on", note_on(1, 660.0));
    play.play_for(Duration::from_millis(500));
    let s = play.status();
    assert_eq!(s.failovers, 1, "one failover: {s:?}");
    assert_eq!(s.underrun_frames, 0, "no frame lost: {s:?}");
    // The callback never waits, so Chronus causes no xrun; but the dummy
    // server runs without real-time priority here, and a stall of this
    // VM's host makes it miss a cycle. Such xruns are excused, bounded and
    // shown; they are journaled, so the as-played comparison below still
    // covers every frame.
    let (xruns, xrun_frames) = (s.device_xruns, s.device_xrun_frames);
    if xruns > 0 {
        eprintln!("excused: {xruns} JACK xrun(s), {xrun_frames} frames (the dummy server was held off)");
    }
    assert!(xruns <= 4 && xrun_frames <= 4 * 256, "too many device xruns to be a stall: {s:?}");
    let (out, dir) = play.quit();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("JACK as chronus:out_1/out_2 (256 frames per period"), "{stdout}");
    check_exact(&dir, 1.4);
}

#[test]
fn the_period_can_change_while_playing() {
    let _rt = rt_lock();
    let jack = Jack::start(256);
    let play = Play::on_jack(&jack, "jack-bufsize", &[]);
    play.send_msg("/note_on", note_on(0, 330.0));
    play.play_for(Duration::from_millis(400));
    assert!(jack.tool("jack_bufsize", &["1024"]));
    play.play_for(Duration::from_millis(600));
    play.send_msg("/note_on", note_on(1, 495.0));
    assert!(jack.tool("jack_bufsize", &["256"]));
    play.play_for(Duration::from_millis(600));
    let s = play.status();
    assert_eq!(s.failovers, 0, "no failover: {s:?}");
    let (out, dir) = play.quit();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Frames the graph skipped while it changed period (if any) are counted,
    // journaled and in the recording as the silence played.
    check_exact(&dir, 1.5);
}

#[test]
fn midi_from_jack_midiseq_is_played_and_journaled() {
    let _rt = rt_lock();
    let jack = Jack::start(256);
    let play = Play::on_jack(&jack, "jack-midi", &["--midi"]);
    // A 0.5 s loop: middle C at 0 for 0.2 s, E at 0.25 s for 0.2 s.
    let mut seq = jack
        .command("jack_midiseq")
        .args(["seq", "24000", "0", "60", "9600", "12000", "64", "9600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !jack.ports().iter().any(|p| p == "seq:out") {
        assert!(Instant::now() < deadline, "jack_midiseq did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(jack.tool("jack_connect", &["seq:out", "chronus:midi_in"]));
    play.play_for(Duration::from_millis(1_600));
    let _ = seq.kill();
    let _ = seq.wait();
    let (out, dir) = play.quit();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let journal = std::fs::read_to_string(dir.path("run.journal")).unwrap();
    let ons: Vec<&str> = journal.lines().filter(|l| l.contains("/note/on")).collect();
    let offs = journal.lines().filter(|l| l.contains("/note/off")).count();
    assert!(ons.len() >= 4, "the sequence's notes: {journal}");
    assert!(offs >= 3, "and their note-offs: {journal}");
    assert!(ons.iter().any(|l| l.contains("261.62")), "middle C: {ons:?}");
    assert!(ons.iter().any(|l| l.contains("329.62")), "E: {ons:?}");
    // The notes keep their spacing: C and E 12,000 frames apart.
    let frames: Vec<u64> =
        ons.iter().map(|l| l.split_whitespace().next().unwrap().parse().unwrap()).collect();
    let gap = frames[1] - frames[0];
    assert!((11_700..=12_300).contains(&gap), "C to E: {gap} frames ({frames:?})");
    check_exact(&dir, 1.5);
}

/// Runs as a JACK meter in a child process (`CHRONUS_TEST_METER=1`): prints
/// the time (CLOCK_MONOTONIC µs) of the first sample above -80 dBFS
/// at `meter:in`, frame-accurate, then exits.
#[test]
fn meter_child() {
    if std::env::var("CHRONUS_TEST_METER").is_err() {
        return;
    }
    let (client, _) = jack::Client::new("meter", jack::ClientOptions::NO_START_SERVER).unwrap();
    let port = client.register_port("in", jack::AudioIn::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(1);
    let sr = client.sample_rate() as u64;
    let mut done = false;
    let process =
        jack::contrib::ClosureProcessHandler::new(move |c: &jack::Client, ps: &jack::ProcessScope| {
            if !done && let Some(k) = port.as_slice(ps).iter().position(|x| x.abs() > 1.0e-4) {
                // The cycle's start on JACK's clock, dated on CLOCK_MONOTONIC
                // by its age (JACK's clock is CLOCK_MONOTONIC_RAW).
                let start = ps.cycle_times().map_or(0, |t| {
                    (monotonic_us() as i64 - (c.time() as i64 - t.current_usecs as i64)) as u64
                });
                let _ = tx.try_send(start + k as u64 * 1_000_000 / sr);
                done = true;
            }
            jack::Control::Continue
        });
    let _active = client.activate_async((), process).unwrap();
    println!("READY");
    if let Ok(t) = rx.recv_timeout(Duration::from_secs(20)) {
        println!("ON {t}");
    }
}

/// CLOCK_MONOTONIC now, µs.
fn monotonic_us() -> u64 {
    chronus::sys::clock::monotonic_ns() / 1_000
}

#[test]
fn a_bundle_sounds_at_its_time_tag_on_the_jack_clock() {
    let _rt = rt_lock();
    let jack = Jack::start(256);
    let play = Play::on_jack(&jack, "jack-timetag", &[]);
    play.send_msg("/set", vec![OscType::String("attack".into()), OscType::Float(0.0)]);
    let meter = jack
        .command(std::env::current_exe().unwrap().to_str().unwrap())
        .args(["--exact", "jack::meter_child", "--nocapture"])
        .env("CHRONUS_TEST_METER", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !jack.ports().iter().any(|p| p == "meter:in") {
        assert!(Instant::now() < deadline, "the meter did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(jack.tool("jack_connect", &["chronus:out_1", "meter:in"]));
    play.play_for(Duration::from_millis(300));
    // A bundle for 200 ms from now.
    let ahead = Duration::from_millis(200);
    let (wall, mono) = (SystemTime::now(), monotonic_us());
    let tag = OscTime::try_from(wall + ahead).unwrap();
    let msg = OscMessage { addr: "/note_on".into(), args: note_on(0, 440.0) };
    let bundle = OscPacket::Bundle(OscBundle { timetag: tag, content: vec![OscPacket::Message(msg)] });
    client().send_to(&encoder::encode(&bundle).unwrap(), &play.osc).unwrap();
    let out = meter.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let onset: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ON "))
        .unwrap_or_else(|| panic!("no onset: {text}"))
        .trim()
        .parse()
        .unwrap();
    let due = mono + ahead.as_micros() as u64;
    let error_ms = (onset as f64 - due as f64) / 1_000.0;
    eprintln!("bundle onset {error_ms:+.2} ms from its time tag");
    // What this guards is the clock domain: a tag placed on the wrong clock
    // sounded 257 ms late. The frame is exact, but the onset is seen through
    // a dummy server's cycles on a shared VM, whose wake-ups run up to a few
    // ms late (1.9 ms seen on a fresh machine), so the bound is one period;
    // the precision itself is a benchmark (docs/benchmarks.md).
    let period_ms = 256.0 / 48.0;
    assert!(error_ms.abs() <= period_ms, "onset {error_ms:+.2} ms from its time tag");
    let (out, dir) = play.quit();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check_exact(&dir, 0.5);
}

/// Runs in a child (`CHRONUS_TEST_MIDI_METER=1`): a MIDI source client that
/// sends one note-on at the start of a cycle, and a meter client; prints the
/// frames from the note-on to the first sample above -80 dBFS at the meter.
#[test]
fn midi_meter_child() {
    if std::env::var("CHRONUS_TEST_MIDI_METER").is_err() {
        return;
    }
    let (source, _) = jack::Client::new("midisrc", jack::ClientOptions::NO_START_SERVER).unwrap();
    let (meter, _) = jack::Client::new("meter", jack::ClientOptions::NO_START_SERVER).unwrap();
    let mut out = source.register_port("out", jack::MidiOut::default()).unwrap();
    let input = meter.register_port("in", jack::AudioIn::default()).unwrap();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let go = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sent2, go2) = (sent.clone(), go.clone());
    let send = jack::contrib::ClosureProcessHandler::new(move |_: &jack::Client, ps: &jack::ProcessScope| {
        let mut w = out.writer(ps);
        if go2.swap(false, std::sync::atomic::Ordering::Relaxed) {
            let _ = w.write(&jack::RawMidi { time: 0, bytes: &[0x90, 69, 127] });
            sent2.store(ps.last_frame_time(), std::sync::atomic::Ordering::Relaxed);
        }
        jack::Control::Continue
    });
    let (tx, rx) = std::sync::mpsc::sync_channel::<u32>(1);
    let mut done = false;
    let listen =
        jack::contrib::ClosureProcessHandler::new(move |_: &jack::Client, ps: &jack::ProcessScope| {
            if !done && let Some(k) = input.as_slice(ps).iter().position(|x| x.abs() > 1.0e-4) {
                let _ = tx.try_send(ps.last_frame_time().wrapping_add(k as u32));
                done = true;
            }
            jack::Control::Continue
        });
    let _a = source.activate_async((), send).unwrap();
    let _b = meter.activate_async((), listen).unwrap();
    println!("READY");
    // Wait for the test to connect the ports, then play the note.
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    go.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Ok(t) = rx.recv_timeout(Duration::from_secs(10)) {
        let from = sent.load(std::sync::atomic::Ordering::Relaxed);
        println!("FRAMES {}", t.wrapping_sub(from));
    }
}

#[test]
fn a_midi_note_sounds_within_two_periods() {
    let frames = midi_note_to_sound(&["--midi"]);
    // Stamped at the next cycle's render limit plus its offset: the note
    // sounds in the cycle after the one it arrived in (a client that runs
    // before the meter in the graph), at its offset.
    assert!(frames <= 2 * 256, "{frames} frames");
}

#[test]
fn in_the_cycle_a_midi_note_sounds_in_the_cycle_it_arrived_in() {
    let frames = midi_note_to_sound(&["--midi", "--latency", "low"]);
    // Stamped at its offset (0) in the cycle it arrived with, rendered
    // inside that cycle: the meter, after Chronus in the graph, hears it
    // in the same cycle.
    assert!(frames < 256, "{frames} frames");
}

/// Frames from a MIDI note-on written at the start of a cycle to its first
/// sound at a meter after Chronus in the graph.
fn midi_note_to_sound(args: &[&str]) -> u32 {
    use std::io::{BufRead, Write};
    let _rt = rt_lock();
    let jack = Jack::start(256);
    let play = Play::on_jack(&jack, "jack-midi-latency", args);
    play.send_msg("/set", vec![OscType::String("attack".into()), OscType::Float(0.0)]);
    let mut child = jack
        .command(std::env::current_exe().unwrap().to_str().unwrap())
        .args(["--exact", "jack::midi_meter_child", "--nocapture"])
        .env("CHRONUS_TEST_MIDI_METER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.by_ref().any(|l| l.is_ok_and(|l| l.contains("READY"))));
    assert!(jack.tool("jack_connect", &["midisrc:out", "chronus:midi_in"]));
    assert!(jack.tool("jack_connect", &["chronus:out_1", "meter:in"]));
    play.play_for(Duration::from_millis(300));
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let frames: u32 = lines
        .find_map(|l| l.ok().and_then(|l| l.strip_prefix("FRAMES ").map(|f| f.trim().parse().unwrap())))
        .expect("no onset");
    let _ = child.wait();
    eprintln!("MIDI note-on to sound: {frames} frames ({:.1} ms)", f64::from(frames) / 48.0);
    let (out, _dir) = play.quit();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    frames
}

#[test]
fn a_server_that_goes_away_and_comes_back_is_reconnected_to() {
    let _rt = rt_lock();
    let mut jack = Jack::start(256);
    let play = Play::on_jack(&jack, "jack-restart", &[]);
    play.send_msg("/note_on", note_on(0, 440.0));
    play.play_for(Duration::from_millis(400));
    let before = play.status().frames_played;
    jack.restart(256, Duration::from_millis(500));
    // It reconnects within a reconnection period and plays on.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !jack.ports().iter().any(|p| p == "chronus:out_1") {
        assert!(Instant::now() < deadline, "not reconnected: {:?}", jack.ports());
        std::thread::sleep(Duration::from_millis(50));
    }
    play.play_for(Duration::from_millis(500));
    let s = play.status();
    assert!(s.frames_played > before + 48_000 / 4, "not playing again: {s:?}");
    assert_eq!(s.failovers, 0, "no worker was harmed: {s:?}");
    let (out, dir) = play.quit();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("reconnected to the JACK server"), "{stderr}");
    // The engine paused with the server: nothing was lost, nothing differs.
    check_exact(&dir, 0.8);
}
