//! Unit tests of the OS layer (they run as root in CI: SCHED_FIFO).

/// The policy field (the 41st) of a process's /proc/<pid>/stat.
fn policy_in_stat(stat: &str) -> i32 {
    // The command name, in parentheses, may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(38).unwrap().parse().unwrap()
}

#[test]
fn what_a_real_time_thread_starts_runs_as_an_ordinary_process() {
    // A thread that takes SCHED_FIFO (as root, which the tests run as),
    // then starts a process and a thread: neither inherits it.
    let seen = std::thread::spawn(|| {
        crate::sched::set_thread_fifo(10).expect("SCHED_FIFO (the tests run as root)");
        assert_eq!(crate::sched::thread_policy(), libc::SCHED_FIFO);
        let child = std::process::Command::new("cat").arg("/proc/self/stat").output().unwrap();
        let thread = std::thread::spawn(crate::sched::thread_policy).join().unwrap();
        (policy_in_stat(&String::from_utf8(child.stdout).unwrap()), thread)
    })
    .join()
    .unwrap();
    assert_eq!(seen, (libc::SCHED_OTHER, libc::SCHED_OTHER), "(process, thread) policies");
}

#[test]
fn the_thread_counter_reads_again_without_opening_anything() {
    // (Other tests run in threads of this process too: only bounds hold.)
    let counter = crate::process::ThreadCounter::open().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let extra = std::thread::spawn(move || rx.recv());
    assert!(counter.threads().unwrap() >= 2, "this thread and the one waiting");
    // Two threads (at least) while `extra` waits: no fork.
    assert!(
        matches!(crate::process::fork_single_threaded(&counter), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    );
    drop(tx);
    let _ = extra.join();
}

#[test]
fn a_process_placed_on_one_cpu_runs_there_only_and_can_be_let_go_again() {
    let cpus = crate::sched::allowed_cpus().expect("the affinity mask");
    assert!(!cpus.is_empty());
    let mut child = std::process::Command::new("sleep").arg("5").spawn().expect("sleep");
    let last = *cpus.last().unwrap();
    crate::sched::set_affinity(child.id(), [last]).expect("place on one CPU");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("Cpus_allowed_list:")).unwrap();
    assert_eq!(line.split_whitespace().nth(1), Some(last.to_string().as_str()), "{line}");
    crate::sched::set_affinity(child.id(), cpus.iter().copied()).expect("anywhere again");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("Cpus_allowed_list:")).unwrap();
    assert!(cpus.len() == 1 || line.contains(['-', ',']), "{line}");
    assert!(crate::sched::set_affinity(child.id(), []).is_err(), "an empty set is refused");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_kernel_marks_and_wakes_a_death_word_when_its_thread_exits() {
    use crate::death::{Waited, armed_by, owner_died, wait_any};
    use std::sync::atomic::{AtomicU32, Ordering::Acquire};
    use std::time::{Duration, Instant};
    let word: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
    let (armed_tx, armed_rx) = std::sync::mpsc::channel();
    let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        crate::death::arm(word).expect("set_robust_list");
        armed_tx.send(()).unwrap();
        let _ = exit_rx.recv();
    });
    armed_rx.recv().unwrap();
    let value = word.load(Acquire);
    assert!(armed_by(value).is_some(), "armed: {value:#x}");
    // Nothing wakes it while the thread lives.
    assert_eq!(wait_any(&[(word, value)], Duration::from_millis(20)), Waited::TimedOut);
    exit_tx.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !owner_died(word.load(Acquire)) {
        assert!(Instant::now() < deadline, "the exit never marked the word: {:#x}", word.load(Acquire));
        let waited = wait_any(&[(word, value)], Duration::from_secs(1));
        assert_ne!(waited, Waited::Unsupported, "futex_waitv (Linux 5.16) is missing");
    }
    thread.join().unwrap();
    assert_eq!(armed_by(word.load(Acquire)), None);
}

#[test]
fn a_process_state_tells_sleeping_stopped_and_runnable_apart() {
    use crate::process::process_state;
    // Waits poll: a state change lands a moment after the signal.
    let until = |pid: u32, want: u8| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while process_state(pid) != Some(want) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        process_state(pid)
    };
    let mut sleeper = std::process::Command::new("sleep").arg("5").spawn().expect("sleep");
    assert_eq!(until(sleeper.id(), b'S'), Some(b'S'), "sleeping");
    crate::process::kill(sleeper.id(), crate::SIGSTOP).expect("stop it");
    assert_eq!(until(sleeper.id(), b'T'), Some(b'T'), "stopped");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_eq!(process_state(sleeper.id()), None, "reaped: nothing to read");
    let mut spinner =
        std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().expect("sh");
    assert_eq!(until(spinner.id(), b'R'), Some(b'R'), "spinning");
    spinner.kill().unwrap();
    spinner.wait().unwrap();
}
