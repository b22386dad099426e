//! The output callback path never allocates: `OutputEngine::process`,
//! driven the way a device callback drives it, through commands, scheduled
//! commands and a failover, under a counting allocator.

use std::time::{Duration, Instant};

use crate::util::*;
use assert_no_alloc::{AllocDisabler, assert_no_alloc, violation_count};
use chronus::supervisor::{Engine, EngineConfig, Health, Latency, Target};
use chronus::synth::Command;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn the_output_callback_never_allocates_even_through_a_failover() {
    let _rt = crate::util::rt_lock();
    // Tests run debug builds of the workers: keep the load light (8 voices),
    // or the slowness watchdog (rightly) replaces workers that cannot keep up.
    let mut cfg = EngineConfig::new(synth_spec(8), chronus::worker::WorkerCommand::new(chronus_exe()));
    cfg.realtime = false;
    let (engine, mut output) = Engine::start_external(cfg).unwrap();
    let (mut left, mut right) = (vec![0.0f32; 256], vec![0.0f32; 256]);
    let period = Duration::from_micros(5_333);
    let mut next = Instant::now();
    let before = violation_count();
    for n in 0..600u32 {
        // What the API threads do (they may allocate; they are not the callback).
        if n % 10 == 0 {
            engine.send(Command::NoteOn { voice: n % 8, freq: 200.0 + n as f32, amp: 0.2 }.into()).unwrap();
            engine.send_at(Command::NoteOff { voice: n % 8 }.into(), u64::from(n) * 256 + 10_000).unwrap();
        }
        if n == 200 {
            engine.signal(Target::Active, libc::SIGKILL).unwrap();
        }
        // What the device callback does (a device's buffer changing, and
        // xruns, now and then):
        assert_no_alloc(|| {
            if n % 100 == 50 {
                output.set_period(if n % 200 == 50 { 512 } else { 256 });
            }
            if n % 150 == 75 {
                output.device_gap(300);
            }
            output.process(&mut left, &mut right, Some(Instant::now()))
        });
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    assert_eq!(violation_count(), before, "the output callback allocated");
    let status = engine.status();
    assert_eq!(status.failovers, 1, "{status:?}");
    // A verified standby again. (Health may read DEGRADED: this loop is a
    // non-real-time thread driving debug-build workers with no slack, so a
    // late block is an underrun, as it would be on a device.)
    assert!(status.standby_pid.is_some() && status.joining_pid.is_none(), "{status:?}");
    assert_ne!(status.health, Health::Critical, "{status:?}");
    drop(output);
    let report = engine.stop().unwrap();
    assert_eq!(report.failovers.len(), 1, "{:#?}", report.failovers);
    assert_eq!(report.counters.device_xruns, 4, "device gaps are counted");
}

#[test]
fn the_jack_callback_path_never_allocates_through_midi_a_period_change_and_a_failover() {
    jack_callback_path(Latency::Pipelined);
}

#[test]
fn the_in_cycle_jack_callback_path_never_allocates_either() {
    // In-cycle, the callback also publishes the period's frames, wakes the
    // replicas and waits on their rings' futexes.
    jack_callback_path(Latency::in_cycle());
}

fn jack_callback_path(latency: Latency) {
    let _rt = crate::util::rt_lock();
    // What `chronus play --sink jack --midi` does in JACK's process callback:
    // MIDI translated and queued at its offsets, the device clock and any
    // skipped cycles noted, the frames copied; a period change in between.
    let mut cfg = EngineConfig::new(synth_spec(8), chronus::worker::WorkerCommand::new(chronus_exe()));
    cfg.realtime = false;
    cfg.lead_blocks = 0;
    cfg.latency = latency;
    let (engine, mut output) = Engine::start_external(cfg).unwrap();
    let mut midi = chronus::synth::MidiMap::new();
    output.set_steady_period(256);
    let (mut left, mut right) = (vec![0.0f32; 1_024], vec![0.0f32; 1_024]);
    let mut period = 256usize;
    let mut next = Instant::now();
    let before = violation_count();
    for n in 0..600u32 {
        if n == 200 {
            engine.signal(Target::Active, libc::SIGKILL).unwrap();
        }
        if n == 300 || n == 400 {
            // JACK's buffer-size callback (not the real-time path, but it
            // must not allocate either).
            period = if n == 300 { 512 } else { 256 };
            assert_no_alloc(|| output.set_steady_period(period as u32));
        }
        let key = 48 + (n % 24) as u8;
        assert_no_alloc(|| {
            let mut queue = |bytes: &[u8], offset: u32| {
                midi.translate(bytes, &mut |c| {
                    output.queue_event(c.to_event(), offset);
                })
            };
            if n % 4 == 0 {
                queue(&[0x90, key, 100], 17);
            }
            if n % 4 == 2 {
                queue(&[0x80, key.wrapping_sub(2), 0], 200);
                queue(&[0xe0, 0, (n % 128) as u8], 3);
                queue(&[0xb0, 74, (n % 128) as u8], 5);
            }
            output.set_output_time(chronus::sys::clock::monotonic_ns());
            output.device_gap(u64::from(n % 250 == 249) * 256);
            output.process(&mut left[..period], &mut right[..period], Some(Instant::now()));
        });
        next += Duration::from_micros(period as u64 * 1_000_000 / 48_000);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    assert_eq!(violation_count(), before, "the JACK callback path allocated");
    let status = engine.status();
    assert_eq!(status.failovers, 1, "{status:?}");
    assert!(status.counters.events_stamped > 400, "the MIDI became events: {status:?}");
    drop(output);
    engine.stop().unwrap();
}
