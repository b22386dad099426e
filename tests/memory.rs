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

/// `(size, resident)` KiB of the mappings in `/proc/<pid>/smaps` whose
/// header line names `what`, summed.
fn mapped_kib(pid: u32, what: &str) -> (u64, u64) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let kib = |l: &str| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let (mut size, mut rss, mut inside) = (0, 0, false);
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first
            .split_once('-')
            .is_some_and(|(a, b)| u64::from_str_radix(a, 16).is_ok() && u64::from_str_radix(b, 16).is_ok())
        {
            inside = line.contains(what);
        } else if inside && first == "Size:" {
            size += kib(line);
        } else if inside && first == "Rss:" {
            rss += kib(line);
        }
    }
    (size, rss)
}

#[test]
fn a_worker_maps_only_the_memory_it_uses() {
    // A dying process's pages are unmapped before its pidfd reports the
    // death: every page a worker maps and never uses is failover time.
    // So it maps neither the bus's checkpoints (read once, when it starts
    // from one) nor the code it never runs.
    let _rt = crate::util::rt_lock();
    let port = 57_400 + (std::process::id() % 400) as u16;
    let to = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(chronus_exe())
        .args(["play", "--sink", "null", "--duration", "20", "--osc", &to])
        .args(["--name", &format!("mapped-test-{}", std::process::id())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(child.id());
    let socket = crate::util::osc::client();
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        match status(&socket, &to) {
            Some(s) if s.active_pid > 0 => break s.active_pid as u32,
            _ if Instant::now() > deadline => panic!("the engine never reported an active worker"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let (bus_size, bus_rss) = mapped_kib(pid, "chronus-bus");
    let exe = chronus_exe();
    let exe = exe.to_str().unwrap();
    let (exe_size, exe_rss) = mapped_kib(pid, exe);
    eprintln!("worker {pid}: bus {bus_rss} of {bus_size} KiB mapped, {exe} {exe_rss} of {exe_size} KiB");
    assert!(bus_size > 0 && exe_size > 0, "the worker's mappings were not found");
    assert!(
        bus_rss * 2 < bus_size,
        "the worker maps {bus_rss} of the bus's {bus_size} KiB: its checkpoints too"
    );
    assert!(exe_rss * 4 < exe_size * 3, "the worker maps {exe_rss} of its program's {exe_size} KiB");
    let _ = child.kill();
    let _ = child.wait();
}
