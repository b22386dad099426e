//! The worker's per-block step, in-process against real regions, with the
//! built-in synth as the DSP.
#![cfg(debug_assertions)]

use assert_no_alloc::{AllocDisabler, assert_no_alloc, violation_count};
use chronus_dsp::{DspSpec, Setup};
use chronus_ipc::{AudioReader, Bus, Geometry, LogWriter, StartKind, WorkerRegion};
use chronus_synth::{Command, Param, Synth, SynthConfig};
use chronus_worker::{Step, Worker};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

const BLOCK: u32 = 128;

fn spec() -> DspSpec {
    DspSpec::new::<Synth>(SynthConfig::new(16)).unwrap()
}

fn regions(generation: u64) -> (WorkerRegion, Bus) {
    let dsp = spec().prepare(&Setup { sample_rate: 48_000, block: BLOCK }).unwrap();
    let g = Geometry {
        sample_rate: 48_000,
        block: BLOCK,
        audio_frames: 2_048,
        log_slots: 256,
        snapshot_bytes: dsp.snapshot_len() as u64,
        checkpoints: 2,
        excise_slots: 8,
        config_bytes: 0,
        _pad: 0,
    };
    let bus = Bus::create(g, 5, "chronus-synth/1", spec().config_json(), false).unwrap();
    (WorkerRegion::create(g, 5, generation).unwrap(), bus)
}

fn worker<'r>(region: &'r WorkerRegion, bus: &'r Bus) -> Worker<'r> {
    let dsp = spec().prepare(&Setup { sample_rate: 48_000, block: BLOCK }).unwrap();
    Worker::new(region, bus, dsp).unwrap()
}

fn push_script(bus: &Bus) {
    let mut log = LogWriter::new(bus);
    for i in 0..40u32 {
        let frame = u64::from(i) * 37;
        let on = Command::NoteOn { voice: i % 16, freq: 200.0 + i as f32, amp: 0.3 };
        log.push(frame, on.to_event(), 0).unwrap();
        let q = Command::VoiceSet { voice: i % 16, param: Param::Q, value: 1.0 + i as f32 };
        log.push(frame + 5, q.to_event(), 0).unwrap();
    }
}

#[test]
fn step_renders_whole_blocks_up_to_the_limit_and_never_allocates() {
    let (region, bus) = regions(1);
    let mut w = worker(&region, &bus);
    push_script(&bus);
    assert_eq!(w.step(), Step::Idle, "a spare renders nothing before it is started");
    region.request_start(StartKind::Fresh, 0, 0, 0);
    assert_eq!(w.step(), Step::Started);
    assert_eq!(w.step(), Step::Idle, "nothing may be rendered before a limit is published");
    bus.publish_render_limit(1_000);
    let mut steps = [Step::Idle; 12];
    let before = violation_count();
    assert_no_alloc(|| {
        for s in &mut steps {
            *s = w.step();
        }
    });
    assert_eq!(violation_count(), before, "the worker step allocated");
    // 1000 frames on a 128-frame grid: 7 whole blocks, then idle (the 8th
    // block is not wholly permitted).
    let rendered = steps.iter().filter(|s| matches!(s, Step::Rendered(128))).count();
    assert_eq!(rendered, 7);
    assert_eq!(steps[7], Step::Idle);
    assert_eq!(w.frame(), 896);
    let hb = region.heartbeat();
    assert_eq!(hb.blocks.load(std::sync::atomic::Ordering::Relaxed), 7);
    assert_eq!(region.log_read_seq(), 50, "events below frame 896 consumed: 25 notes and 25 Q sets");
}

#[test]
fn a_worker_started_from_a_checkpoint_continues_bit_for_bit() {
    // Worker A renders 2,048 frames, snapshotting at 1,024; worker B starts
    // from that snapshot (through a checkpoint of the bus) and must render
    // 1,024..2,048 exactly as A did.
    let (region_a, bus) = regions(1);
    let region_b = {
        let g = *bus.geometry();
        WorkerRegion::create(g, 5, 2).unwrap()
    };
    push_script(&bus);
    let mut a = worker(&region_a, &bus);
    let mut b = worker(&region_b, &bus);
    region_a.request_start(StartKind::Fresh, 0, 0, 0);
    bus.publish_render_limit(2_048);
    let snap = region_a.request_snapshot(1_024);
    let mut reader_a = AudioReader::new(&region_a);
    while a.frame() < 2_048 {
        assert_ne!(a.step(), Step::Stop);
    }
    assert!(region_a.snapshot_done(snap));
    let info = bus.store_checkpoint(0, &region_a).unwrap();
    assert_eq!(info.frame, 1_024);
    region_b.request_start(StartKind::Checkpoint, info.frame, 0, 0);
    while b.frame() < 2_048 {
        assert_ne!(b.step(), Step::Stop);
    }
    let mut reader_b = AudioReader::new(&region_b);
    let (mut la, mut ra) = (vec![0.0f32; 1_024], vec![0.0f32; 1_024]);
    let (mut lb, mut rb) = (vec![0.0f32; 1_024], vec![0.0f32; 1_024]);
    reader_a.copy_frames(1_024, &mut la, &mut ra).unwrap();
    reader_b.copy_frames(1_024, &mut lb, &mut rb).unwrap();
    assert!(la.iter().any(|s| *s != 0.0), "the script must sound");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&la), bits(&lb));
    assert_eq!(bits(&ra), bits(&rb));
    for block in 8..16 {
        assert_eq!(region_a.checksum(block), region_b.checksum(block), "block {block}");
    }
}

#[test]
fn step_stops_when_asked_and_not_before() {
    let (region, bus) = regions(1);
    let mut w = worker(&region, &bus);
    region.request_start(StartKind::Fresh, 0, 0, 0);
    bus.publish_render_limit(10_000);
    let mut reader = AudioReader::new(&region);
    for _ in 0..100 {
        if w.step() == Step::Idle {
            // Ring full: consume to make room.
            let (_, written) = reader.span();
            reader.consume_to(written);
        }
    }
    region.request_stop();
    assert_eq!(w.step(), Step::Stop);
}

#[test]
fn a_worker_for_another_dsp_or_snapshot_size_refuses() {
    let (region, _) = regions(1);
    let g = *region.geometry();
    let other = Bus::create(g, 5, "someone-else/1", "{}", false).unwrap();
    let dsp = spec().prepare(&Setup { sample_rate: 48_000, block: BLOCK }).unwrap();
    let err = Worker::new(&region, &other, dsp).unwrap_err();
    assert!(err.to_string().contains("someone-else/1"), "{err}");
    let small = Geometry { snapshot_bytes: 8, ..g };
    let bus = Bus::create(small, 5, "chronus-synth/1", "{}", false).unwrap();
    let region = WorkerRegion::create(small, 5, 1).unwrap();
    let dsp = spec().prepare(&Setup { sample_rate: 48_000, block: BLOCK }).unwrap();
    assert!(Worker::new(&region, &bus, dsp).unwrap_err().to_string().contains("snapshot"));
}
