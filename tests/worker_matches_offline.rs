//! Real worker processes render events bit-identically to each other, to
//! the offline render, and from a snapshot: the determinism that failover
//! rests on. And a worker refuses what is not its own.

use crate::util::*;
use chronus::dsp::{Setup, TimedEvent};
use chronus::harness::check_determinism;
use chronus::ipc::{Bus, Geometry, WorkerRegion, WorkerState};
use chronus::synth::{Command, Param};
use chronus::worker::WorkerCommand;

const SETUP: Setup = Setup { sample_rate: 48_000, block: 256 };

fn check(events: &[TimedEvent], frames: u64) {
    let report =
        check_determinism(&synth_spec(64), &WorkerCommand::new(chronus_exe()), SETUP, events, frames)
            .unwrap();
    assert!(report.passed(), "{report}");
    assert!(report.snapshot_frame > 0 && report.frames >= frames);
}

#[test]
fn worker_processes_render_the_demo_bit_identically_to_each_other_offline_and_from_a_snapshot() {
    let _rt = crate::util::rt_lock();
    let events = demo_events(&synth_spec(64), &SETUP);
    let frames = chronus::journal::default_length(&events, SETUP.sample_rate, 0.5);
    check(&events, frames);
}

#[test]
fn dense_commands_across_block_boundaries_stay_bit_identical() {
    let _rt = crate::util::rt_lock();
    // A machine-made load: a command every few frames, many inside blocks.
    let mut events = Vec::new();
    for i in 0..3_000u64 {
        let voice = (i * 13 % 64) as u32;
        let command = match i % 4 {
            0 => Command::NoteOn { voice, freq: 80.0 + (i % 50) as f32 * 31.0, amp: 0.1 },
            1 => Command::VoiceSet { voice, param: Param::Cutoff, value: 200.0 + (i % 40) as f32 * 90.0 },
            2 => Command::NoteOff { voice: (voice + 7) % 64 },
            _ => Command::Set { param: Param::Q, value: 0.5 + (i % 8) as f32 },
        };
        events.push(TimedEvent { frame: i * 29, event: command.to_event() });
    }
    check(&events, 3_000 * 29 + 4_800);
}

/// Runs `chronus` as a worker by hand, with `env` as its worker variable,
/// on a fresh region of generation 5 and a bus for `dsp`.
fn run_worker_by_hand(dsp: &str, env: &str) -> (std::process::Output, WorkerRegion) {
    let spec = synth_spec(8);
    let snapshot_bytes = spec.prepare(&SETUP).unwrap().snapshot_len() as u64;
    let geometry = Geometry {
        sample_rate: 48_000,
        block: 256,
        audio_frames: 1_024,
        log_slots: 64,
        snapshot_bytes,
        checkpoints: 1,
        excise_slots: 1,
        config_bytes: 0,
        _pad: 0,
    };
    let region = WorkerRegion::create(geometry, 9, 5).unwrap();
    let bus = Bus::create(geometry, 9, dsp, spec.config_json(), false).unwrap();
    let bus_fd = bus.read_only_fd().unwrap();
    let mut cmd = std::process::Command::new(chronus_exe());
    cmd.env(chronus::worker::ENV, env);
    chronus::sys::fd::inherit_fds(&mut cmd, &[(region.fd(), 3), (std::os::fd::AsFd::as_fd(&bus_fd), 4)]);
    (cmd.output().unwrap(), region)
}

#[test]
fn a_worker_refuses_a_region_of_another_generation() {
    let _rt = crate::util::rt_lock();
    let (out, region) =
        run_worker_by_hand("chronus-synth/1", "v3 region=3 bus=4 epoch=9 sandbox=on generation=6");
    assert_eq!(out.status.code(), Some(76));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("generation 5") && stderr.contains("generation 6"), "{stderr}");
    assert_eq!(region.worker_state(), Some(WorkerState::New), "a refusing worker must not touch the region");
}

#[test]
fn a_worker_refuses_a_bus_for_another_dsp() {
    let _rt = crate::util::rt_lock();
    let (out, region) =
        run_worker_by_hand("someone-elses-dsp/1", "v3 region=3 bus=4 epoch=9 sandbox=on generation=5");
    assert_eq!(out.status.code(), Some(76));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("someone-elses-dsp/1") && stderr.contains("chronus-synth/1"), "{stderr}");
    assert_eq!(region.worker_state(), Some(WorkerState::New));
}

#[test]
fn a_worker_without_its_parent_refuses_to_run() {
    let _rt = crate::util::rt_lock();
    let (out, _region) =
        run_worker_by_hand("chronus-synth/1", "v3 region=3 bus=4 epoch=9 sandbox=on generation=5 parent=1");
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_malformed_worker_variable_is_refused_in_one_line() {
    let _rt = crate::util::rt_lock();
    let out =
        std::process::Command::new(chronus_exe()).env(chronus::worker::ENV, "v9 what").output().unwrap();
    assert_eq!(out.status.code(), Some(76));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("CHRONUS_WORKER"), "{stderr}");
}
