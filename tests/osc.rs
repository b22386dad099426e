//! OSC control of a real `chronus play` process: a third-party client
//! (liblo's `oscsend`), hostile input, bundles, floods, /quit. Each run's
//! recording must equal the offline render of its journal.
//!
//! These tests play in real time, so they run one at a time (`RT_LOCK`).

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::util::play::{Play, free_port, msg};
use crate::util::*;
use rosc::{OscBundle, OscPacket, OscTime, OscType, encoder};

fn oscsend(play: &Play, args: &[&str]) {
    let (host, port) = play.osc.split_once(':').unwrap();
    let status = Command::new("oscsend").args([host, port]).args(args).status().expect(
        "liblo's oscsend is needed for the interop test (Debian: apt-get install liblo-tools; .ci/run installs it)",
    );
    assert!(status.success());
}

/// Quits `play` and checks the recording against the offline render of
/// the journal (as played: silence where the machine stalled the output,
/// if it did; Chronus's own losses are checked through /status); returns
/// (stdout, left, right, its directory).
fn quit_and_check(play: Play) -> (String, Vec<f32>, Vec<f32>, TempDir) {
    let (out, dir) = play.quit();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "play exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, left, right) = chronus::audio::read_wav(&dir.path("played.wav")).unwrap();
    let (l2, r2) = render_as_played(&dir.path("run.journal"), &dir.path("rendered.wav"));
    assert_eq!(first_difference(&left, &l2), None, "recording differs from the journal's render");
    assert_eq!(first_difference(&right, &r2), None);
    (stdout, left, right, dir)
}

fn first_sound(left: &[f32]) -> Option<usize> {
    left.iter().position(|s| *s != 0.0)
}

#[test]
fn oscsend_drives_the_engine_and_the_recording_shows_it() {
    let _rt = rt_lock();
    let play = Play::null("osc-oscsend", &[]);
    play.play_for(Duration::from_millis(300));
    oscsend(&play, &["/set", "sf", "release", "0.05"]);
    oscsend(&play, &["/note_on", "iff", "3", "440", "0.5"]);
    play.play_for(Duration::from_millis(400));
    oscsend(&play, &["/voice/set", "isf", "3", "cutoff", "800"]);
    oscsend(&play, &["/note_off", "i", "3"]);
    play.play_for(Duration::from_millis(300));
    let (_, left, _, dir) = quit_and_check(play);
    let journal = std::fs::read_to_string(dir.path("run.journal")).unwrap();
    for line in ["/set release 0.05", "/note_on 3 440 0.5", "/voice/set 3 cutoff 800", "/note_off 3"] {
        assert!(journal.contains(line), "journal lacks {line}:\n{journal}");
    }
    let start = first_sound(&left).expect("the note was not played");
    assert!(start > 48_000 / 10, "sound before the note was sent (frame {start})");
    let last = left.iter().rposition(|s| *s != 0.0).unwrap();
    assert!(last < left.len() - 4_800, "the note did not stop");
}

#[test]
fn hostile_input_gets_errors_and_counters_and_never_a_glitch() {
    let _rt = rt_lock();
    let play = Play::null("osc-hostile", &["--voices", "8"]);
    play.send(&msg("/note_on", vec![OscType::Int(1), OscType::Float(220.0), OscType::Float(0.4)]));
    let bad: Vec<Vec<u8>> = vec![
        b"\x00\x01garbage".to_vec(),
        vec![0xff; 10_000],
        encoder::encode(&msg("/nope", vec![])).unwrap(),
        encoder::encode(&msg("/note_on", vec![OscType::Int(1)])).unwrap(),
        encoder::encode(&msg("/note_on", vec![OscType::Int(8), OscType::Float(1.0), OscType::Float(1.0)]))
            .unwrap(),
        encoder::encode(&msg(
            "/note_on",
            vec![OscType::Int(2), OscType::Float(f32::NAN), OscType::Float(1.0)],
        ))
        .unwrap(),
        encoder::encode(&msg("/set", vec![OscType::String("q".into()), OscType::Double(f64::INFINITY)]))
            .unwrap(),
        encoder::encode(&msg("/set", vec![OscType::Float(1.0), OscType::String("q".into())])).unwrap(),
        encoder::encode(&msg(
            "/voice/set",
            vec![OscType::Int(1), OscType::String("master".into()), OscType::Int(1)],
        ))
        .unwrap(),
    ];
    let mut errors = 0;
    for packet in &bad {
        play.send_bytes(packet);
        let reply = play.reply().expect("no reply to a bad packet");
        assert_eq!(reply.addr, "/error", "{reply:?}");
        assert!(!reply.args.is_empty());
        errors += 1;
    }
    let status = play.status();
    assert_eq!(status.osc_errors, errors, "error counter");
    assert_eq!(status.lost_frames(), 0);
    let (_, left, _, _) = quit_and_check(play);
    assert!(left.iter().all(|s| s.is_finite()));
}

#[test]
fn bundles_apply_at_their_time_tag() {
    let _rt = rt_lock();
    let play = Play::null("osc-bundle", &[]);
    play.play_for(Duration::from_millis(200));
    let playing = play.status().frames_played as u64;
    let at = SystemTime::now() + Duration::from_millis(600);
    play.send(&OscPacket::Bundle(OscBundle {
        timetag: OscTime::try_from(at).unwrap(),
        content: vec![msg("/note_on", vec![OscType::Int(0), OscType::Float(330.0), OscType::Float(0.5)])],
    }));
    play.play_for(Duration::from_millis(900));
    let (_, left, _, dir) = quit_and_check(play);
    let journal = std::fs::read_to_string(dir.path("run.journal")).unwrap();
    let frame: u64 = journal
        .lines()
        .find(|l| l.contains("/note_on 0 330"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let start = first_sound(&left).unwrap() as u64;
    assert_eq!(start, frame, "the note must start exactly at its stamped frame");
    // The stamp is the time tag's frame (0.6 s after the send), not the
    // arrival's: `playing` was read just before sending (it runs up to one
    // 256-frame period ahead of the clock: a period is produced when due).
    let (lo, hi) = (playing + 48_000 * 6 / 10 - 256, playing + 48_000 * 85 / 100);
    assert!((lo..hi).contains(&frame), "scheduled at frame {frame}, expected {lo}..{hi}");
}

#[test]
fn a_flood_during_faults_loses_nothing_and_status_still_answers() {
    let _rt = rt_lock();
    let play = Play::null("osc-flood", &["--faults", "--voices", "16"]);
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    let note =
        encoder::encode(&msg("/note_on", vec![OscType::Int(5), OscType::Float(300.0), OscType::Float(0.2)]))
            .unwrap();
    let junk = vec![0xabu8; 300];
    let started = Instant::now();
    let mut sent = 0u32;
    let mut killed: u32 = 0;
    while started.elapsed() < Duration::from_millis(1_500) {
        for _ in 0..200 {
            let _ = flood.send_to(if sent.is_multiple_of(2) { &note } else { &junk }, &play.osc);
            sent += 1;
        }
        if started.elapsed() > Duration::from_millis(400 * u64::from(killed + 1)) && killed < 3 {
            let s = play.status();
            // One fault at a time: the last one noticed and a verified
            // standby back (a loaded machine may delay this loop so that two
            // kills fall due together; that would be a double fault, which
            // no single standby survives).
            let (active, standby) = (s.active_pid, s.standby_pid);
            if s.failovers == i64::from(killed) && standby != 0 {
                Command::new("kill").args(["-9", &active.to_string()]).status().unwrap();
                killed += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(killed >= 2, "only {killed} kills in 1.5 s");
    // A verified standby again, every kill noticed (not HEALTHY: that waits
    // 10 s after any underrun, and a stalled host may cause one).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = play.status();
        if s.standby_pid != 0 && s.failovers == i64::from(killed) {
            assert_eq!(s.lost_frames(), 0, "frames lost during the flood and faults: {s:?}\n{}", play.log());
            break;
        }
        assert!(Instant::now() < deadline, "no verified standby after the flood: {s:?}\n{}", play.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(sent > 10_000, "only {sent} packets sent");
    quit_and_check(play);
}

#[test]
fn a_patch_changes_while_playing_through_a_kill_in_its_crossfade_bit_exactly() {
    let _rt = rt_lock();
    let patches = TempDir::new("osc-patch-dir");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/patches/pad.toml"),
        patches.path("pad.toml"),
    )
    .unwrap();
    std::fs::write(patches.path("bad.toml"), "wave = \"saw\"\ncutof = 900\n").unwrap();
    let dir = patches.0.to_str().unwrap();
    let play =
        Play::null("osc-patch", &["--faults", "--voices", "16", "--patch", "bass", "--patch-dir", dir]);
    let s = |v: &str| OscType::String(v.into());
    play.send(&msg("/note/on", vec![OscType::Int(1), OscType::Float(110.0), OscType::Float(0.6)]));
    play.play_for(Duration::from_millis(300));
    // Fades of 0.4 s each way, so the kill lands inside the change.
    play.send(&msg("/patch/load", vec![s("pad.toml"), OscType::Float(0.4)]));
    play.send(&msg("/note/on", vec![OscType::Int(2), OscType::Float(220.0), OscType::Float(0.4)]));
    play.play_for(Duration::from_millis(200));
    let before = play.status();
    Command::new("kill").args(["-9", &before.active_pid.to_string()]).status().unwrap();
    play.wait_for("the failover and a new standby", Duration::from_secs(5), |s| {
        s.failovers >= 1 && s.standby_pid > 0 && s.active_pid != before.active_pid
    });
    // A broken patch in the patch directory: an /error naming the line,
    // and nothing changes.
    play.send(&msg("/patch/load", vec![s("bad.toml")]));
    let reply = play.reply().expect("no reply to a broken patch");
    assert_eq!(reply.addr, "/error");
    let text = format!("{:?}", reply.args);
    assert!(text.contains("line 2: unknown parameter 'cutof' (did you mean cutoff?)"), "{text}");
    play.send(&msg("/patch/preset", vec![s("lead")]));
    play.send(&msg("/note/on", vec![OscType::Int(3), OscType::Float(440.0), OscType::Float(0.4)]));
    play.play_for(Duration::from_millis(400));
    let status = play.status();
    assert!(status.failovers >= 1, "the kill was a failover: {status:?}");
    assert_eq!(status.lost_frames(), 0, "{}", play.log());
    let (_, left, _, dir) = quit_and_check(play);
    assert!(left.iter().any(|x| x.abs() > 0.05), "it should be audible");
    // The journal holds the patches themselves, not the file's name.
    let journal = std::fs::read_to_string(dir.path("run.journal")).unwrap();
    assert_eq!(journal.matches("/patch/begin").count(), 3, "bass, pad, lead:\n{journal}");
    assert!(journal.contains("/set reverb_mix 0.35"), "{journal}");
    assert!(!journal.contains("pad.toml") && !journal.contains("/patch/load"), "{journal}");
}

#[test]
fn listening_beyond_loopback_needs_the_senders_named() {
    let _rt = rt_lock();
    let port = free_port();
    for addr in [format!("0.0.0.0:{port}"), format!("[::]:{port}")] {
        let started = Instant::now();
        let out = chronus(&["play", "--sink", "null", "--osc", &addr, "--duration", "5", "--name", "door"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(79), "{addr}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("listens beyond loopback") && stderr.contains("--allow"), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing started: {}", String::from_utf8_lossy(&out.stdout));
        assert!(started.elapsed() < Duration::from_secs(5), "refused before playing");
    }
    // Admitting every host is possible, and said at start.
    let dir = TempDir::new("osc-door-open");
    let addr = format!("0.0.0.0:{port}");
    let mut child = Command::new(chronus_exe())
        .args(["play", "--sink", "null", "--osc", &addr, "--allow", "0.0.0.0/0", "--name", "door-open"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(child.id());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let local = format!("127.0.0.1:{port}");
    loop {
        socket.send_to(&encoder::encode(&msg("/status", vec![])).unwrap(), &local).unwrap();
        let mut buf = [0u8; 4096];
        if socket.recv_from(&mut buf).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the open engine did not answer");
    }
    socket.send_to(&encoder::encode(&msg("/quit", vec![])).unwrap(), &local).unwrap();
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(dir.path("stderr.log")).unwrap();
    assert!(log.contains("accepts commands from every host"), "no warning: {log}");
}

#[test]
fn patch_loads_read_only_patch_files_under_the_patch_directory() {
    let _rt = rt_lock();
    let root = TempDir::new("osc-door-patches");
    let patches = root.path("patches");
    std::fs::create_dir(&patches).unwrap();
    std::fs::write(patches.join("warm.toml"), "wave = \"saw\"\ncutoff = 700\n").unwrap();
    std::fs::write(root.path("secret.toml"), "cutoff = 100\n").unwrap();
    std::os::unix::fs::symlink("../secret.toml", patches.join("link.toml")).unwrap();
    std::fs::write(patches.join("huge.toml"), vec![b'#'; 70_000]).unwrap();
    let play = Play::null("osc-door", &["--patch-dir", patches.to_str().unwrap()]);
    let before = play.status();
    let s = |v: &str| OscType::String(v.into());
    let secret = root.path("secret.toml");
    let refused = [
        ("../../etc/passwd", "only patch files"),
        ("/etc/passwd", "only patch files"),
        ("../secret.toml", "outside the patch directory"),
        (secret.to_str().unwrap(), "outside the patch directory"),
        ("link.toml", "outside the patch directory"),
        ("huge.toml", "over the 65536-byte limit"),
    ];
    for (path, says) in refused {
        play.send(&msg("/patch/load", vec![s(path)]));
        let reply = play.reply().unwrap_or_else(|| panic!("no reply to /patch/load {path}"));
        assert_eq!(reply.addr, "/error", "{path}: {reply:?}");
        let text = format!("{:?}", reply.args);
        assert!(text.contains(says), "{path}: {text}");
    }
    let after = play.status();
    assert_eq!(after.files_refused, refused.len() as i64, "each refusal counted: {after:?}");
    assert_eq!(after.events_stamped, before.events_stamped, "nothing stamped: {after:?}");
    assert_eq!(after.osc_errors - before.osc_errors, refused.len() as i64, "each refusal is an OSC error");
    // A missing patch is an error, not a refusal; one inside is loaded.
    play.send(&msg("/patch/load", vec![s("missing.toml")]));
    assert_eq!(play.reply().unwrap().addr, "/error");
    play.send(&msg("/patch/load", vec![s("warm.toml")]));
    play.play_for(Duration::from_millis(200));
    assert_eq!(play.status().files_refused, refused.len() as i64);
    let (_, _, _, dir) = quit_and_check(play);
    let journal = std::fs::read_to_string(dir.path("run.journal")).unwrap();
    assert_eq!(journal.matches("/patch/begin").count(), 1, "only warm.toml was applied:\n{journal}");
    assert!(journal.contains("/set cutoff 700") && !journal.contains("/set cutoff 100"), "{journal}");

    // Without --patch-dir: the bundled presets, by file name, and nothing else.
    let play = Play::null("osc-door-bundled", &[]);
    play.send(&msg("/patch/load", vec![s(secret.to_str().unwrap())]));
    let text = format!("{:?}", play.reply().unwrap().args);
    assert!(text.contains("only the bundled patches are served"), "{text}");
    play.send(&msg("/patch/load", vec![s("pad.toml")]));
    play.play_for(Duration::from_millis(200));
    assert_eq!(play.status().files_refused, 1);
    let (_, _, _, dir) = quit_and_check(play);
    let journal = std::fs::read_to_string(dir.path("run.journal")).unwrap();
    assert_eq!(journal.matches("/patch/begin").count(), 1, "pad.toml, bundled:\n{journal}");
}

/// Runs `sh -c script` in a network namespace of its own (util-linux's
/// `unshare`): loopback up, and 10.77.0.1 on it, an address that is not
/// loopback. Needs root (CAP_SYS_ADMIN).
fn in_own_network(script: &str) -> Command {
    let setup = "ip link set lo up && ip addr add 10.77.0.1/32 dev lo && ";
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "sh", "-c"]).arg(format!("{setup}{script}"));
    cmd
}

#[test]
fn a_sender_not_allowed_is_dropped_unread_even_its_quit() {
    let _rt = rt_lock();
    if !chronus::sys::process::is_root() {
        eprintln!("SKIPPED: a network namespace needs root (CI runs as root)");
        return;
    }
    let dir = TempDir::new("osc-door-denied");
    // The engine listens on every address of its namespace and allows one
    // host, 10.77.0.9; a client there sending from 10.77.0.1 is someone else.
    let mut engine = in_own_network(&format!(
        "exec {} play --sink null --osc 0.0.0.0:57300 --allow 10.77.0.9 --name door-denied",
        chronus_exe().display()
    ))
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(dir.path("stderr.log")).unwrap())
    .spawn()
    .expect("unshare (util-linux) and ip (iproute2) are needed; scripts/test installs them");
    let _guard = KillOnDrop(engine.id());
    let netns = format!("--net=/proc/{}/ns/net", engine.id());
    let client = |to: &str, args: &[&str]| {
        let out = Command::new("nsenter")
            .arg(&netns)
            .arg(chronus_exe())
            .args(args)
            .args(["--to", to])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while client("127.0.0.1:57300", &["status", "--json"]).0 != Some(0) {
        assert!(
            Instant::now() < deadline,
            "no engine in the namespace: {}",
            std::fs::read_to_string(dir.path("stderr.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // From 10.77.0.1: not allowed. No reply, not even to /status, and /quit
    // does nothing.
    let (code, _) = client("10.77.0.1:57300", &["status"]);
    assert_eq!(code, Some(69), "a sender not allowed got an answer");
    client("10.77.0.1:57300", &["send", "/quit"]);
    client("10.77.0.1:57300", &["send", "/note_on", "1", "440", "0.5"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(engine.try_wait().unwrap().is_none(), "a /quit from a sender not allowed stopped it");
    let (code, json) = client("127.0.0.1:57300", &["status", "--json"]);
    assert_eq!(code, Some(0));
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(status["osc_denied"], 3, "{json}");
    assert_eq!(status["events_stamped"], 0, "{json}");
    // Loopback is always allowed.
    client("127.0.0.1:57300", &["send", "/quit"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = engine.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the loopback /quit did not stop it");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}
