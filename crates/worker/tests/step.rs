//! The worker's per-block step, in-process against a real region.
#![cfg(debug_assertions)]

use assert_no_alloc::{AllocDisabler, assert_no_alloc, violation_count};
use chronus_dsp::{Command, Param, TimedCommand};
use chronus_ipc::{AudioReader, CommandWriter, Geometry, Region};
use chronus_worker::{Step, Worker};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

fn region() -> Region {
    let g = Geometry {
        sample_rate: 48_000,
        channels: 2,
        audio_frames: 2_048,
        command_slots: 256,
        max_block: 128,
        voices: 16,
    };
    Region::create(g, 1).unwrap()
}

#[test]
fn step_renders_up_to_the_limit_on_the_block_grid_and_never_allocates() {
    let region = region();
    let mut worker = Worker::new(&region).unwrap();
    let mut cmds = CommandWriter::new(&region);
    for i in 0..40u32 {
        let frame = u64::from(i) * 37;
        cmds.push(TimedCommand {
            frame,
            command: Command::NoteOn { voice: i % 16, freq: 200.0 + i as f32, amp: 0.3 },
        })
        .unwrap();
        cmds.push(TimedCommand {
            frame: frame + 5,
            command: Command::VoiceSet { voice: i % 16, param: Param::Q, value: f32::NAN },
        })
        .unwrap();
    }
    assert_eq!(worker.step(), Step::Idle, "nothing may be rendered before a limit is published");
    region.publish_render_limit(1_000);
    let mut steps = [Step::Idle; 16];
    let before = violation_count();
    assert_no_alloc(|| {
        for s in &mut steps {
            *s = worker.step();
        }
    });
    assert_eq!(violation_count(), before, "the worker step allocated");
    // 1000 frames on a 128-frame grid: 7 full blocks, then 104, then idle.
    let rendered: Vec<usize> =
        steps.iter().filter_map(|s| if let Step::Rendered(n) = s { Some(*n) } else { None }).collect();
    assert_eq!(rendered, [128, 128, 128, 128, 128, 128, 128, 104]);
    assert_eq!(steps[8], Step::Idle);
    assert_eq!(worker.synth().frame(), 1_000);
    let hb = region.heartbeat();
    assert_eq!(hb.blocks.load(std::sync::atomic::Ordering::Relaxed), 8);
    assert_eq!(
        hb.commands_rejected.load(std::sync::atomic::Ordering::Relaxed),
        27,
        "27 NaN sets before frame 1000"
    );
}

#[test]
fn step_stops_when_asked_and_not_before() {
    let region = region();
    let mut worker = Worker::new(&region).unwrap();
    region.publish_render_limit(10_000);
    let mut reader = AudioReader::new(&region);
    for _ in 0..100 {
        if worker.step() == Step::Idle {
            // Ring full: consume to make room.
            let (_, w) = reader.span();
            reader.consume_to(w);
        }
    }
    region.request_stop();
    assert_eq!(worker.step(), Step::Stop);
}
