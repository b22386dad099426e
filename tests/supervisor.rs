//! The supervisor's own guarantees, on real `chronus play` processes: the
//! singleton lease, no orphans, clean shutdown, crash-loop quarantine.
//! These tests play in real time, so they run one at a time (`RT_LOCK`).

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn free_port() -> String {
    format!("127.0.0.1:{}", UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
}

fn play(exe: &Path, name: &str, osc: &str, extra: &[&str]) -> Child {
    Command::new(exe)
        .args(["play", "--sink", "null", "--name", name, "--osc", osc])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the engine at `osc` answers, returns its worker pids.
fn worker_pids(osc: &str) -> (u32, u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = chronus(&["status", "--json", "--to", osc, "--timeout-ms", "300"]);
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let pid = |k: &str| v[k].as_u64().unwrap() as u32;
            if pid("active_pid") != 0 && pid("standby_pid") != 0 {
                return (pid("active_pid"), pid("standby_pid"));
            }
        }
        assert!(Instant::now() < deadline, "the engine at {osc} never answered with two workers");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: u32) -> bool {
    // A zombie is dead too: look at its state.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

#[test]
fn one_supervisor_per_name_and_no_orphans_when_it_is_killed() {
    let _rt = rt_lock();
    let name = format!("lease-test-{}", std::process::id());
    let osc = free_port();
    let mut first = play(&chronus_exe(), &name, &osc, &[]);
    let _guard = KillOnDrop(first.id());
    let (a, b) = worker_pids(&osc);

    let second = Command::new(chronus_exe())
        .args(["play", "--sink", "null", "--name", &name, "--osc", &free_port(), "--duration", "1"])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(77));
    let stderr = String::from_utf8_lossy(&second.stderr);
    let expected = format!("another chronus supervisor (pid {}) holds instance {name}", first.id());
    assert!(stderr.contains(&expected), "{stderr}");

    // SIGKILL the supervisor: its workers must follow within 100 ms.
    first.kill().unwrap();
    let killed = Instant::now();
    first.wait().unwrap();
    while alive(a) || alive(b) {
        assert!(killed.elapsed() < Duration::from_millis(100), "orphaned workers {a} {b}");
        std::thread::sleep(Duration::from_millis(2));
    }
    // And the name is free again at once.
    let third = Command::new(chronus_exe())
        .args(["play", "--sink", "null", "--name", &name, "--osc", &free_port(), "--duration", "0.5"])
        .output()
        .unwrap();
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
}

#[test]
fn sigterm_fades_out_finalises_the_recording_and_exits_0() {
    let _rt = rt_lock();
    let dir = TempDir::new("sigterm");
    let osc = free_port();
    let (wav, journal) = (dir.path("played.wav"), dir.path("run.journal"));
    let mut child = play(
        &chronus_exe(),
        &format!("sigterm-{}", std::process::id()),
        &osc,
        &["--record", wav.to_str().unwrap(), "--journal", journal.to_str().unwrap()],
    );
    let _guard = KillOnDrop(child.id());
    let (a, b) = worker_pids(&osc);
    chronus(&["send", "--to", &osc, "/note_on", "1", "440", "0.8"]);
    std::thread::sleep(Duration::from_millis(300));
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!alive(a) && !alive(b), "workers left behind");
    let (_, left, _) = chronus::audio::read_wav(&wav).expect("the WAV must be finalised");
    assert!(left.iter().any(|s| s.abs() > 0.1), "the note must be in the recording");
    assert!(left[left.len() - 64..].iter().all(|s| *s == 0.0), "the end must be silent (faded out)");
    let rendered = dir.path("rendered.wav");
    let (l2, _) = render_as_played(&journal, &rendered);
    assert_eq!(first_difference(&left, &l2), None, "the fade must be in the journal too");
}

#[test]
fn a_crash_loop_is_quarantined_and_exit_on_quarantine_exits_78() {
    let _rt = rt_lock();
    // Run a copy of the binary, so its workers' executable can be broken
    // while it plays (a broken install: every replacement dies at once).
    let dir = TempDir::new("quarantine");
    let exe = dir.path("chronus");
    std::fs::copy(chronus_exe(), &exe).unwrap();
    let osc = free_port();
    // Workers from the path, not from the running file (which would survive
    // the breakage: see the test below).
    let mut child = Command::new(&exe)
        .args(["play", "--sink", "null", "--name", &format!("quarantine-{}", std::process::id())])
        .args(["--osc", &osc, "--backoff", "0.02", "--quarantine-after", "3", "--exit-on-quarantine"])
        .env("CHRONUS_WORKER_EXE", &exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(child.id());
    let (_, standby) = worker_pids(&osc);
    let broken = dir.path("broken");
    std::fs::write(&broken, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&broken, &exe).unwrap();
    Command::new("kill").args(["-9", &standby.to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no quarantine within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("quarantined"), "{stderr}");
    assert!(stderr.contains("failed restarts in a row; retrying in"), "backoff must show: {stderr}");
}

#[test]
fn workers_come_from_the_running_binary_even_when_its_file_is_replaced() {
    let _rt = rt_lock();
    let dir = TempDir::new("replaced-binary");
    let exe = dir.path("chronus");
    std::fs::copy(chronus_exe(), &exe).unwrap();
    let osc = free_port();
    let child = play(&exe, &format!("replaced-{}", std::process::id()), &osc, &["--duration", "6"]);
    let _guard = KillOnDrop(child.id());
    let (active, _) = worker_pids(&osc);
    // An upgrade replaces the file while it runs (here by one that cannot
    // be a worker at all).
    let new = dir.path("new");
    std::fs::write(&new, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&new, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&new, &exe).unwrap();
    Command::new("kill").args(["-9", &active.to_string()]).status().unwrap();
    // The replacement is the running version, and joins.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (a, s) = worker_pids(&osc);
        if a != active && s != active {
            break;
        }
        assert!(Instant::now() < deadline, "no replacement joined");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 failover(s), frames lost: 0,"), "{stdout}");
    // Silence the machine imposed (the output thread held off) is excused,
    // bounded and shown.
    let machine: u64 = stdout
        .split(" while the machine held the output off")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no machine-stall figure: {stdout}"));
    if machine > 0 {
        eprintln!("excused: {machine} frames while the machine held the output off");
    }
    assert!(machine <= 4_800, "{stdout}");
}
