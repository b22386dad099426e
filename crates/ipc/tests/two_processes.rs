//! A producer and a consumer in two real processes move millions of frames
//! and events through a worker region and the bus: nothing lost, reordered
//! or altered, and the child only ever has the bus read-only.
//!
//! The child is this same test binary, re-executed with `CHRONUS_IPC_CHILD`
//! set, the worker region inherited as fd 3 and the bus (read-only) as fd 4.

use std::process::Command as Process;
use std::time::Duration;

use chronus_dsp::Event;
use chronus_ipc::{
    AudioReader, AudioWriter, Bus, Geometry, LogEntry, LogReader, LogWriter, WorkerRegion, WorkerState,
};

const FRAMES: u64 = 3_000_000;
const EVENTS: u64 = 1_000_000;
const EPOCH: u64 = 42;
const GENERATION: u64 = 3;

fn sample(frame: u64) -> (f32, f32) {
    let l = (frame % 1_000_003) as f32 * 1.0e-3;
    (l, -l - 0.5)
}

fn event(i: u64) -> Event {
    Event::new((i % 7) as u16).with_int(i as i32).with_float(i as f32).with_choice((i % 3) as u32)
}

/// The child: writes FRAMES frames into the audio ring and reads EVENTS
/// events from the bus, checking each; reports through its state word.
fn child() {
    let region = chronus_sys::fd::adopt_fd(3).expect("inherited region fd");
    let bus = chronus_sys::fd::adopt_fd(4).expect("inherited bus fd");
    let region = WorkerRegion::attach(region, EPOCH, GENERATION).expect("attach the region");
    let bus = Bus::attach(bus, EPOCH).expect("attach the bus");
    assert_eq!(bus.dsp_name(), "two-processes/1");
    region.set_worker_state(WorkerState::Running);
    let mut writer = AudioWriter::new(&region);
    let mut log = LogReader::new(&bus, 0);
    let (mut l, mut r) = (vec![0.0f32; 256], vec![0.0f32; 256]);
    while writer.write_frame() < FRAMES || log.seq() < EVENTS {
        let mut progressed = false;
        while let LogEntry::Event(seq, e) = log.peek() {
            assert_eq!((e.frame, e.event), (seq, event(seq)), "event {seq} altered or reordered");
            log.advance();
            progressed = true;
        }
        assert!(!matches!(log.peek(), LogEntry::Corrupt | LogEntry::Lapped), "{:?}", log.peek());
        region.set_log_read_seq(log.seq());
        let n = (writer.space().min(256) as usize).min((FRAMES - writer.write_frame()) as usize);
        if n > 0 {
            let start = writer.write_frame();
            for i in 0..n {
                (l[i], r[i]) = sample(start + i as u64);
            }
            writer.write(&l[..n], &r[..n]).unwrap();
            progressed = true;
        }
        if !progressed {
            region.worker_sleep(Duration::from_millis(20), || {
                writer.space() > 0 || matches!(log.peek(), LogEntry::Event(..))
            });
        }
    }
    region.set_worker_state(WorkerState::Stopped);
}

#[test]
fn child_role() {
    if std::env::var_os("CHRONUS_IPC_CHILD").is_some() {
        child();
    }
}

#[test]
fn millions_of_frames_and_events_cross_processes_intact() {
    let geometry = Geometry {
        sample_rate: 48_000,
        block: 256,
        audio_frames: 4_096,
        log_slots: 1_024,
        snapshot_bytes: 64,
        checkpoints: 1,
        excise_slots: 1,
        config_bytes: 0,
        _pad: 0,
    };
    let region = WorkerRegion::create(geometry, EPOCH, GENERATION).unwrap();
    let bus = Bus::create(geometry, EPOCH, "two-processes/1", "{}", false).unwrap();
    let bus_ro = bus.read_only_fd().unwrap();
    let mut proc = Process::new(std::env::current_exe().unwrap());
    proc.args(["--exact", "child_role", "--nocapture"])
        .env("CHRONUS_IPC_CHILD", "1")
        .stdout(std::process::Stdio::null());
    chronus_sys::fd::inherit_fds(&mut proc, &[(region.fd(), 3), (std::os::fd::AsFd::as_fd(&bus_ro), 4)]);
    let mut child = proc.spawn().unwrap();
    assert_eq!(region.wait_worker_ready(Duration::from_secs(10)), Some(WorkerState::Running));

    let mut writer = LogWriter::new(&bus);
    let mut reader = AudioReader::new(&region);
    let (mut sent, mut frame) = (0u64, 0u64);
    let (mut l, mut r) = (vec![0.0f32; 512], vec![0.0f32; 512]);
    while frame < FRAMES || sent < EVENTS {
        while sent < EVENTS && writer.push(sent, event(sent), region.log_read_seq()).is_ok() {
            sent += 1;
        }
        region.wake_worker();
        let (_, write) = reader.span();
        let n = ((write - frame) as usize).min(512);
        if n == 0 {
            if frame < FRAMES {
                reader.wait_for(frame + 1, Duration::from_millis(20));
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
            if child.try_wait().unwrap().is_some() {
                // It may have written its last frames and exited since we
                // looked: only a child gone with frames missing died early.
                assert!(reader.span().1 > frame || frame >= FRAMES, "child died early at frame {frame}");
            }
            continue;
        }
        reader.read(&mut l[..n], &mut r[..n]).unwrap();
        for i in 0..n {
            assert_eq!((l[i], r[i]), sample(frame + i as u64), "frame {} altered", frame + i as u64);
        }
        frame += n as u64;
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
    assert_eq!(region.worker_state(), Some(WorkerState::Stopped));
    assert_eq!(reader.corrupt_samples(), 0);
}
