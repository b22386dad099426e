//! A real worker process renders a journal bit-identically to the offline
//! render: the determinism that failover rests on.

mod util;

use std::time::{Duration, Instant};

use chronus::dsp::TimedCommand;
use chronus::ipc::{AudioReader, CommandWriter, Geometry, Region, WorkerState};
use chronus::journal::{default_length, parse_score, render_offline};
use util::*;

const SR: u32 = 48_000;
const VOICES: u32 = 64;
const BLOCK: u32 = 256;

/// Plays `commands` through a worker process the way a supervisor does:
/// push every command for the next frames, then publish the render limit;
/// read the audio ring as it fills. Returns the worker's audio.
fn play_through_worker(commands: &[TimedCommand], frames: u64, generation: u64) -> (Vec<f32>, Vec<f32>) {
    let geometry = Geometry {
        sample_rate: SR,
        channels: 2,
        audio_frames: 4_096,
        command_slots: 64,
        max_block: BLOCK,
        voices: VOICES,
    };
    let region = Region::create(geometry, generation).unwrap();
    let mut child = chronus::worker::spawn_worker(&chronus_exe(), &region, None).unwrap();
    assert_eq!(region.wait_worker_ready(Duration::from_secs(10)), Some(WorkerState::Ready));

    let mut writer = CommandWriter::new(&region);
    let mut reader = AudioReader::new(&region);
    let (mut left, mut right) = (vec![0.0f32; frames as usize], vec![0.0f32; frames as usize]);
    let (mut next, mut limit, mut consumed) = (0usize, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumed < frames {
        assert!(Instant::now() < deadline, "worker stalled at frame {consumed}");
        // Stay at most a few blocks ahead of what was consumed, like a
        // real-time output would.
        if limit < frames && limit < consumed + 4 * u64::from(BLOCK) {
            let want = (limit + u64::from(BLOCK) / 2 + 37).min(frames); // off-grid on purpose
            while next < commands.len() && commands[next].frame < want && writer.push(commands[next]).is_ok()
            {
                next += 1;
            }
            // Never permit a frame whose commands are not all in the ring.
            let allowed = commands.get(next).map_or(want, |c| want.min(c.frame));
            if allowed > limit {
                limit = allowed;
                region.publish_render_limit(limit);
            }
        }
        let (_, written) = reader.span();
        if written <= consumed {
            reader.wait_for(consumed + 1, Duration::from_millis(20));
            assert!(child.try_wait().unwrap().is_none(), "worker died");
            continue;
        }
        let (a, b) = (consumed as usize, written.min(frames) as usize);
        reader.read(&mut left[a..b], &mut right[a..b]).unwrap();
        consumed = b as u64;
    }
    region.request_stop();
    let status = child.wait().unwrap();
    assert!(chronus::worker::WorkerProcess::success(&status), "worker exit: {status:?}");
    assert_eq!(region.worker_state(), Some(WorkerState::Stopped));
    assert_eq!(reader.corrupt_samples(), 0);
    (left, right)
}

#[test]
fn worker_process_render_is_bit_identical_to_offline_render() {
    let score = std::fs::read_to_string(demo_score()).unwrap();
    let commands = parse_score(&score, SR).unwrap();
    let frames = default_length(&commands, SR, 0.5);
    let offline = render_offline(&commands, SR, VOICES, frames).unwrap();
    assert!(offline.left.iter().any(|s| s.abs() > 0.05), "the demo should make sound");

    let (left, right) = play_through_worker(&commands, frames, 1);
    assert_eq!(first_difference(&left, &offline.left), None, "left channel differs");
    assert_eq!(first_difference(&right, &offline.right), None, "right channel differs");
}

#[test]
fn dense_commands_across_block_boundaries_stay_bit_identical() {
    // A machine-made load: a command every few frames, many inside blocks,
    // more commands than the ring holds at once.
    let mut commands = Vec::new();
    for i in 0..3_000u64 {
        let voice = (i * 13 % u64::from(VOICES)) as u32;
        let frame = i * 29;
        let command = match i % 4 {
            0 => chronus::dsp::Command::NoteOn { voice, freq: 80.0 + (i % 50) as f32 * 31.0, amp: 0.1 },
            1 => chronus::dsp::Command::VoiceSet {
                voice,
                param: chronus::dsp::Param::Cutoff,
                value: 200.0 + (i % 40) as f32 * 90.0,
            },
            2 => chronus::dsp::Command::NoteOff { voice: (voice + 7) % VOICES },
            _ => chronus::dsp::Command::Set { param: chronus::dsp::Param::Q, value: 0.5 + (i % 8) as f32 },
        };
        commands.push(TimedCommand { frame, command });
    }
    let frames = 3_000 * 29 + 4_800;
    let offline = render_offline(&commands, SR, VOICES, frames).unwrap();
    let (left, right) = play_through_worker(&commands, frames, 7);
    assert_eq!(first_difference(&left, &offline.left), None);
    assert_eq!(first_difference(&right, &offline.right), None);
}

/// Runs `chronus worker ARGS…` by hand on a fresh region of `generation`.
fn run_worker_by_hand(generation: u64, args: &[&str]) -> (std::process::Output, Region) {
    let geometry = Geometry {
        sample_rate: SR,
        channels: 2,
        audio_frames: 1_024,
        command_slots: 64,
        max_block: BLOCK,
        voices: 8,
    };
    let region = Region::create(geometry, generation).unwrap();
    let mut cmd = std::process::Command::new(chronus_exe());
    cmd.args(["worker", "--fd", "3"]).args(args);
    chronus::ipc::inherit_fd(&mut cmd, region.fd(), 3);
    (cmd.output().unwrap(), region)
}

#[test]
fn worker_refuses_a_region_of_another_generation() {
    let (out, region) = run_worker_by_hand(5, &["--generation", "6"]);
    assert_eq!(out.status.code(), Some(76));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("generation 5") && stderr.contains("generation 6"), "{stderr}");
    assert_eq!(region.worker_state(), Some(WorkerState::New), "a refusing worker must not touch the region");
}

#[test]
fn worker_without_its_parent_refuses_to_run() {
    let (out, _region) = run_worker_by_hand(1, &["--generation", "1", "--parent-pid", "1"]);
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
}
