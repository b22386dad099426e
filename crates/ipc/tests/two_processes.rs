//! A producer and a consumer in two real processes move millions of frames
//! and commands through a region: nothing lost, reordered or altered.
//!
//! The child is this same test binary, re-executed with `CHRONUS_IPC_CHILD`
//! set and the region's memfd inherited as fd 3.

use std::process::Command as Process;
use std::time::Duration;

use chronus_dsp::{Command, CommandSource, TimedCommand};
use chronus_ipc::{AudioReader, AudioWriter, CommandReader, CommandWriter, Geometry, Region, WorkerState};

const FRAMES: u64 = 3_000_000;
const COMMANDS: u64 = 1_000_000;
const GENERATION: u64 = 42;
const CHILD_FD: i32 = 3;

fn sample(frame: u64) -> (f32, f32) {
    let l = (frame % 1_000_003) as f32 * 1.0e-3;
    (l, -l - 0.5)
}

fn command(i: u64) -> TimedCommand {
    TimedCommand {
        frame: i,
        command: Command::NoteOn { voice: (i % 4_096) as u32, freq: i as f32, amp: 0.25 },
    }
}

/// The child: writes FRAMES frames into the audio ring and reads COMMANDS
/// commands, checking each; reports through its state word.
fn child(fd: i32) {
    let owned = chronus_ipc::adopt_fd(fd).expect("inherited fd");
    let region = Region::attach(owned, GENERATION).expect("attach");
    region.set_worker_state(WorkerState::Ready);
    let mut writer = AudioWriter::new(&region);
    let mut reader = CommandReader::new(&region);
    let mut next_cmd = 0u64;
    let (mut l, mut r) = (vec![0.0f32; 256], vec![0.0f32; 256]);
    while writer.write_frame() < FRAMES || next_cmd < COMMANDS {
        let mut progressed = false;
        while let Some(c) = reader.next_before(u64::MAX) {
            assert_eq!(c, command(next_cmd), "command {next_cmd} altered or reordered");
            next_cmd += 1;
            progressed = true;
        }
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
                writer.space() > 0 || reader.peek() != chronus_ipc::Slot::Empty
            });
        }
    }
    assert_eq!(reader.corrupt(), 0);
    region.set_worker_state(WorkerState::Stopped);
}

#[test]
fn child_role() {
    if let Ok(fd) = std::env::var("CHRONUS_IPC_CHILD") {
        child(fd.parse().unwrap());
    }
}

#[test]
fn millions_of_frames_and_commands_cross_processes_intact() {
    let geometry = Geometry {
        sample_rate: 48_000,
        channels: 2,
        audio_frames: 4_096,
        command_slots: 1_024,
        max_block: 256,
        voices: 8,
    };
    let region = Region::create(geometry, GENERATION).unwrap();
    let mut proc = Process::new(std::env::current_exe().unwrap());
    proc.args(["--exact", "child_role", "--nocapture"])
        .env("CHRONUS_IPC_CHILD", CHILD_FD.to_string())
        .stdout(std::process::Stdio::null());
    chronus_ipc::inherit_fd(&mut proc, region.fd(), CHILD_FD);
    let mut child = proc.spawn().unwrap();
    assert_eq!(region.wait_worker_ready(Duration::from_secs(10)), Some(WorkerState::Ready));

    let mut writer = CommandWriter::new(&region);
    let mut reader = AudioReader::new(&region);
    let (mut sent, mut frame) = (0u64, 0u64);
    let (mut l, mut r) = (vec![0.0f32; 512], vec![0.0f32; 512]);
    while frame < FRAMES || sent < COMMANDS {
        while sent < COMMANDS && writer.push(command(sent)).is_ok() {
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
