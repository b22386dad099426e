//! A run that never grows: `chronus play` (a real process) under a steady
//! stream of 2,000 OSC commands a second and a SIGKILL of its active
//! worker every 5 s, for 60 s after a 10 s warm-up. Its resident memory
//! may not grow by more than 512 KiB: nothing accumulates per command or
//! per fault (the journal goes to disk, failover events to a bounded ring).
//!
//! It plays in real time for 70 s, alone in its test binary.

use std::time::{Duration, Instant};

use crate::util::osc::{message, status};
use crate::util::*;
use rosc::OscType;

/// The resident set of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn sixty_seconds_of_commands_and_faults_grow_the_supervisor_by_less_than_512_kib() {
    let _rt = crate::util::rt_lock();
    let dir = TempDir::new("memory");
    let port = 57_000 + (std::process::id() % 400) as u16;
    let to = format!("127.0.0.1:{port}");
    let journal = dir.path("run.journal");
    let child = std::process::Command::new(chronus_exe())
        .args(["play", "--sink", "null", "--faults", "--duration", "75", "--osc", &to])
        .args(["--name", &format!("memory-test-{}", std::process::id())])
        .args(["--journal", journal.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _guard = KillOnDrop(pid);
    let socket = crate::util::osc::client();
    std::thread::sleep(Duration::from_millis(1_500));
    let commands = [
        |k: i32| {
            message(
                "/note_on",
                vec![OscType::Int(k % 16), OscType::Float(110.0 + k as f32), OscType::Float(0.05)],
            )
        },
        |k: i32| {
            message(
                "/set",
                vec![OscType::String("cutoff".into()), OscType::Float(500.0 + (k % 3_000) as f32)],
            )
        },
        |k: i32| {
            message(
                "/voice/set",
                vec![OscType::Int(k % 16), OscType::String("pan".into()), OscType::Float(0.0)],
            )
        },
        |k: i32| message("/note_off", vec![OscType::Int((k + 8) % 16)]),
    ];
    let started = Instant::now();
    let (mut sent, mut kills, mut next_kill) = (0i32, 0u32, Duration::from_secs(3));
    let mut rss_warm = None;
    while started.elapsed() < Duration::from_secs(70) {
        // 2,000 commands a second: 2 every millisecond, on average.
        let due = (started.elapsed().as_secs_f64() * 2_000.0) as i32;
        while sent < due {
            socket.send_to(&commands[(sent % 4) as usize](sent), &to).unwrap();
            sent += 1;
        }
        if started.elapsed() >= next_kill {
            let active = status(&socket, &to).map_or(-1, |s| i64::from(s.active_pid));
            if active > 0 {
                let killed = std::process::Command::new("kill").args(["-9", &active.to_string()]).status();
                kills += u32::from(killed.is_ok_and(|s| s.success()));
            }
            next_kill += Duration::from_secs(5);
        }
        if rss_warm.is_none() && started.elapsed() >= Duration::from_secs(10) {
            rss_warm = Some(rss_kib(pid));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let rss_end = rss_kib(pid);
    let failovers = status(&socket, &to).map(|s| s.failovers);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "chronus play failed: {}", String::from_utf8_lossy(&output.stderr));
    let rss_warm = rss_warm.unwrap();
    let growth = rss_end as i64 - rss_warm as i64;
    eprintln!("{sent} commands, {kills} kills ({failovers:?} failovers): RSS {rss_warm} KiB → {rss_end} KiB");
    assert!(kills >= 12, "only {kills} kills landed");
    assert!(growth < 512, "RSS grew by {growth} KiB ({rss_warm} → {rss_end} KiB) in 60 s");
    // Every command went to the journal on disk, not to memory.
    let lines = std::fs::read_to_string(&journal).unwrap().lines().filter(|l| !l.starts_with('@')).count();
    assert!(lines as i32 > sent / 2, "{lines} journal lines for {sent} commands");
}
