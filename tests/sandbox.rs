//! The closed door, from inside a worker: real worker processes (this test
//! binary, `worker_test_entry!`) running hostile DSPs.
//!
//! * The bus is read-only for real: a DSP that tries, while it prepares
//!   (before its sandbox, with every right the user has), every route to a
//!   writable mapping of the bus or a write to it, fails by each.
//! * A DSP that opens a file when given a command is killed with SIGSYS in
//!   every replica; the command is cut out as a poison, the held note
//!   still sounds, nothing is lost, and the report, the status and the
//!   journal name `openat`. With the sandbox off, the same DSP plays on.
//! * `check_determinism` names the forbidden calls a DSP makes.
//!
//! These tests play in real time, so they run one at a time (`RT_LOCK`).
#![allow(unsafe_code)] // a hostile DSP, on purpose: raw mmap, mprotect, madvise

use crate::util::{play_for, rt_lock};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use chronus::dsp::{AddressSpec, ArgSpec, Block, Dsp, DspError, DspSpec, Event, Piece, Setup, TimedEvent};
use chronus::harness::{FailoverSummary, check_determinism};
use chronus::supervisor::{Engine, EngineConfig, PacedSink};
use chronus::worker::{SandboxMode, WorkerCommand};

/// The ways a process holding the bus's read-only fd might write it.
const ROUTES: [&str; 10] = [
    "reopen /proc/self/fd/N read-write and map it writable",
    "pwrite(2) through the reopened fd",
    "write(2) through the reopened fd",
    "ftruncate the reopened fd (grow)",
    "ftruncate the reopened fd (shrink)",
    "fallocate: punch a hole",
    "map the reopened fd read-only, then mprotect it writable",
    "mprotect a read-only mapping of the inherited fd writable",
    "madvise(MADV_REMOVE) on a read-only mapping",
    "open the supervisor's own fd (/proc/PPID/fd/M) read-write and map it writable",
];

/// A DSP that attacks the bus while it prepares and then plays what it
/// found: left = routes that got through (bit per route), right = routes
/// it could try.
struct Intruder {
    breached: u32,
    tried: u32,
}

/// A shared mapping of `fd` (`len` bytes), or the error.
fn map(fd: BorrowedFd<'_>, len: usize, prot: libc::c_int) -> Result<*mut libc::c_void, i32> {
    // SAFETY: mmap with a null hint creates a new mapping and touches no
    // existing memory; the result is checked.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(p)
    }
}

fn unmap(p: *mut libc::c_void, len: usize) {
    // SAFETY: `p` is a mapping of `len` bytes this function's caller made
    // and no longer uses.
    unsafe { libc::munmap(p, len) };
}

fn reopen(path: &str) -> Option<OwnedFd> {
    nix::fcntl::open(path, nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty()).ok()
}

/// The supervisor's fd of the bus, seen through /proc.
fn supervisors_bus() -> Option<String> {
    let ppid = nix::unistd::getppid();
    std::fs::read_dir(format!("/proc/{ppid}/fd")).ok()?.flatten().find_map(|e| {
        let target = std::fs::read_link(e.path()).ok()?;
        target
            .to_string_lossy()
            .contains("memfd:chronus-bus")
            .then(|| e.path().to_string_lossy().into_owned())
    })
}

/// Tries every route; returns (breached, tried) masks.
fn attack_the_bus() -> (u32, u32) {
    let (mut breached, mut tried) = (0u32, 0u32);
    // SAFETY: fd 4 is the bus this worker inherited, open for its life.
    let bus = unsafe { BorrowedFd::borrow_raw(chronus::worker::BUS_FD) };
    let len = nix::sys::stat::fstat(bus).map(|s| s.st_size as usize).unwrap_or(0);
    let page = 4096;
    let mut mark = |route: usize, got_through: bool| {
        tried |= 1 << route;
        if got_through {
            breached |= 1 << route;
        }
    };
    let rw = reopen(&format!("/proc/self/fd/{}", chronus::worker::BUS_FD));
    if let Some(rw) = &rw {
        mark(0, map(rw.as_fd(), len, libc::PROT_READ | libc::PROT_WRITE).map(|p| unmap(p, len)).is_ok());
        // The byte already there: a write that got through would change
        // nothing, but would still be a write.
        let mut byte = [0u8; 1];
        let _ = nix::sys::uio::pread(rw, &mut byte, len as i64 - 1);
        mark(1, nix::sys::uio::pwrite(rw, &byte, len as i64 - 1).is_ok());
        let mut head = [0u8; 1];
        let _ = nix::sys::uio::pread(rw, &mut head, 0);
        mark(2, nix::unistd::write(rw, &head).is_ok());
        mark(3, nix::unistd::ftruncate(rw, (len + page) as i64).is_ok());
        mark(4, nix::unistd::ftruncate(rw, (len - page) as i64).is_ok());
        let punch = nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
            | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE;
        mark(5, nix::fcntl::fallocate(rw, punch, (len - page) as i64, page as i64).is_ok());
        if let Ok(p) = map(rw.as_fd(), len, libc::PROT_READ) {
            // SAFETY: `p` is the mapping just made, `len` bytes.
            let up = unsafe { libc::mprotect(p, len, libc::PROT_READ | libc::PROT_WRITE) };
            mark(6, up == 0);
            unmap(p, len);
        }
    }
    if let Ok(p) = map(bus, len, libc::PROT_READ) {
        // SAFETY: as above.
        let up = unsafe { libc::mprotect(p, len, libc::PROT_READ | libc::PROT_WRITE) };
        mark(7, up == 0);
        // SAFETY: as above; MADV_REMOVE would free the file's pages.
        let removed = unsafe { libc::madvise(p, page, libc::MADV_REMOVE) };
        mark(8, removed == 0);
        unmap(p, len);
    }
    if let Some(path) = supervisors_bus()
        && let Some(theirs) = reopen(&path)
    {
        mark(9, map(theirs.as_fd(), len, libc::PROT_READ | libc::PROT_WRITE).map(|p| unmap(p, len)).is_ok());
    }
    (breached, tried)
}

impl Dsp for Intruder {
    type Config = ();
    const NAME: &'static str = "test-intruder/1";

    fn addresses(_: &()) -> Vec<AddressSpec> {
        vec![AddressSpec::new("/nothing", vec![], "does nothing")]
    }

    fn prepare(_: &Setup, _: &()) -> Result<Self, DspError> {
        // In a worker, the bus is fd 4; in-process (the engine preparing it
        // once to size its snapshots) there is nothing to attack.
        let in_worker = std::env::var_os(chronus::worker::ENV).is_some();
        let (breached, tried) = if in_worker { attack_the_bus() } else { (0, 0) };
        Ok(Self { breached, tried })
    }

    fn snapshot_len(&self) -> usize {
        0
    }

    fn render(&mut self, block: Block<'_>) {
        block.left.fill(self.breached as f32);
        block.right.fill(self.tried as f32);
    }

    fn snapshot(&self, _: &mut [u8]) {}

    fn restore(&mut self, _: &[u8]) -> Result<(), DspError> {
        Ok(())
    }

    fn reset(&mut self) {}
}

chronus::worker::worker_test_entry!(intruder_worker, Intruder);

#[test]
fn no_worker_can_write_the_bus_by_any_route_it_has() {
    let _rt = rt_lock();
    let worker = WorkerCommand::current_test("sandbox::intruder_worker").unwrap();
    let mut cfg = EngineConfig::new(DspSpec::new::<Intruder>(()).unwrap(), worker);
    cfg.record_in_memory = true;
    let engine = Engine::start(cfg, PacedSink::new(48_000)).unwrap();
    engine.wait_for(Duration::from_secs(5), |s| s.counters.frames_played > 4_800).unwrap();
    let report = engine.stop().unwrap();
    let (breached, tried) = (report.left[1_000] as u32, report.right[1_000] as u32);
    let names = |mask: u32| -> Vec<&str> {
        ROUTES.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, r)| *r).collect()
    };
    assert_eq!(names(breached), Vec::<&str>::new(), "routes that got through");
    // Every route was really tried (the reopen and the supervisor's fd are
    // open to root, who runs CI; a non-root user cannot even open the
    // latter: the supervisor is not dumpable in `chronus play`).
    let all = (1u32 << ROUTES.len()) - 1;
    let untried = names(all & !tried);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(untried, Vec::<&str>::new(), "routes not tried");
    } else {
        eprintln!("not root: routes not tried: {untried:?}");
    }
}

/// A sine that holds, and a command that reads a file while rendering.
struct Snoop {
    sample_rate: f32,
    phase: f32,
    step: f32,
    bytes_read: usize,
}

const TONE: u16 = 0;
const SNOOP: u16 = 1;

impl Dsp for Snoop {
    type Config = ();
    const NAME: &'static str = "test-snoop/1";

    fn addresses(_: &()) -> Vec<AddressSpec> {
        vec![
            AddressSpec::new("/tone", vec![ArgSpec::float("freq_hz", (20.0, 8_000.0), "Hz")], "hold a tone"),
            AddressSpec::new("/snoop", vec![], "read /etc/hostname while rendering (a DSP bug, or worse)"),
        ]
    }

    fn prepare(setup: &Setup, _: &()) -> Result<Self, DspError> {
        Ok(Self { sample_rate: setup.sample_rate as f32, phase: 0.0, step: 0.0, bytes_read: 0 })
    }

    fn snapshot_len(&self) -> usize {
        8
    }

    fn render(&mut self, block: Block<'_>) {
        block.split(|piece| match piece {
            Piece::Event(e) if e.address == TONE => self.step = e.float(0) / self.sample_rate,
            Piece::Event(e) if e.address == SNOOP => {
                // The forbidden call: a sandboxed worker dies of it here.
                self.bytes_read += std::fs::read("/etc/hostname").map_or(0, |b| b.len());
            }
            Piece::Event(_) => {}
            Piece::Audio { left, right, .. } => {
                for (l, r) in left.iter_mut().zip(right.iter_mut()) {
                    self.phase = (self.phase + self.step).fract();
                    let y = (self.phase * std::f32::consts::TAU).sin() * 0.3;
                    (*l, *r) = (y, y);
                }
            }
        });
    }

    fn snapshot(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.phase.to_le_bytes());
        out[4..].copy_from_slice(&self.step.to_le_bytes());
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), DspError> {
        let word = |i: usize| f32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let (phase, step) = (word(0), word(4));
        if !(phase.is_finite() && step.is_finite()) {
            return Err(DspError::BadSnapshot("not finite".into()));
        }
        (self.phase, self.step) = (phase, step);
        Ok(())
    }

    fn reset(&mut self) {
        (self.phase, self.step) = (0.0, 0.0);
    }
}

chronus::worker::worker_test_entry!(snoop_worker, Snoop);

fn snoop_engine(sandbox: SandboxMode) -> Engine {
    let worker = WorkerCommand::current_test("sandbox::snoop_worker").unwrap();
    let mut cfg = EngineConfig::new(DspSpec::new::<Snoop>(()).unwrap(), worker);
    cfg.record_in_memory = true;
    cfg.sandbox = sandbox;
    Engine::start(cfg, PacedSink::new(48_000)).unwrap()
}

fn redundant(s: &chronus::supervisor::Status) -> bool {
    s.standby_pid.is_some() && s.joining_pid.is_none()
}

#[test]
fn a_dsp_that_opens_a_file_on_a_command_dies_of_sigsys_in_every_replica_and_the_command_is_cut() {
    let _rt = rt_lock();
    let engine = snoop_engine(SandboxMode::Enforce);
    engine.wait_for(Duration::from_secs(5), redundant).unwrap();
    assert_eq!(engine.status().sandbox, "on");
    engine.send(Event::new(TONE).with_float(440.0)).unwrap();
    play_for(&engine, Duration::from_millis(300));
    engine.send(Event::new(SNOOP)).unwrap();
    let status = engine.wait_for(Duration::from_secs(5), |s| {
        s.counters.excised_commands == 1 && redundant(s) && s.failovers >= 2
    });
    let status = status.unwrap_or_else(|s| panic!("the snoop was not cut out: {s:?}"));
    assert_eq!(status.sandbox_kills, 2, "both replicas: {status:?}");
    assert_eq!(status.last_forbidden_call.as_deref(), Some("openat"));
    // Cut out for good: the same command again is refused.
    assert!(engine.send(Event::new(SNOOP)).is_err(), "the poison was accepted again");
    let cut = engine.take_cuts();
    play_for(&engine, Duration::from_millis(300));
    engine.fade_out();
    let report = engine.stop().unwrap();
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0].event.address, SNOOP);
    let by_sandbox: Vec<_> = report.failovers.iter().filter(|e| e.exit.by_sandbox()).collect();
    assert_eq!(by_sandbox.len(), 2, "{:#?}", report.failovers);
    for e in &by_sandbox {
        assert_eq!(e.exit.forbidden_call_name().as_deref(), Some("openat"), "{e:?}");
        assert!(e.exit.to_string().contains("killed by SIGSYS (forbidden system call openat)"), "{}", e.exit);
    }
    assert_eq!(report.notes.excised.len(), 1, "the journal names the cut");
    assert!(report.notes.forbidden.iter().all(|(_, call)| call == "openat"), "{:?}", report.notes.forbidden);
    assert_eq!(report.notes.forbidden.len(), 2, "the journal names the call: {:?}", report.notes.forbidden);
    let summary = FailoverSummary::of(&report);
    assert_eq!(summary.lost_frames, 0, "{:#?}", report.failovers);
    assert!(summary.bit_exact, "first difference at {:?}", summary.first_difference);
    // The held tone sounds on after the cut, from the state before it.
    let after = cut[0].frame as usize + 4_800;
    let loudest = report.left[after..after + 9_600].iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(loudest > 0.25, "the tone stopped: {loudest}");
}

#[test]
fn with_the_sandbox_off_the_same_dsp_reads_its_file_and_plays_on() {
    let _rt = rt_lock();
    let engine = snoop_engine(SandboxMode::Off);
    engine.wait_for(Duration::from_secs(5), redundant).unwrap();
    assert_eq!(engine.status().sandbox, "off");
    engine.send(Event::new(TONE).with_float(440.0)).unwrap();
    engine.send(Event::new(SNOOP)).unwrap();
    play_for(&engine, Duration::from_millis(400));
    let status = engine.status();
    let report = engine.stop().unwrap();
    assert_eq!(
        (status.failovers, status.sandbox_kills, status.counters.excised_commands),
        (0, 0, 0),
        "{status:?}"
    );
    assert!(report.failovers.is_empty());
}

#[test]
fn the_check_names_the_forbidden_calls_a_dsp_makes() {
    let _rt = rt_lock();
    let spec = DspSpec::new::<Snoop>(()).unwrap();
    let worker = WorkerCommand::current_test("sandbox::snoop_worker").unwrap();
    let setup = Setup { sample_rate: 48_000, block: 256 };
    let tone = TimedEvent { frame: 0, event: Event::new(TONE).with_float(220.0) };
    let clean = check_determinism(&spec, &worker, setup, &[tone], 24_000).unwrap();
    assert!(clean.passed(), "{clean}");
    assert!(clean.to_string().contains("no system call the sandbox forbids"), "{clean}");
    let snoop = TimedEvent { frame: 5_000, event: Event::new(SNOOP) };
    let report = check_determinism(&spec, &worker, setup, &[tone, snoop], 24_000).unwrap();
    assert_eq!(report.forbidden_calls, ["openat"], "{report}");
    assert!(!report.passed());
    assert!(report.to_string().contains("system calls the sandbox forbids: openat"), "{report}");
}
