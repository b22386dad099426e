//! Proves the real-time path does not allocate: this test binary installs an
//! allocator that counts calls made inside `assert_no_alloc`.
#![cfg(debug_assertions)]

mod common;
use assert_no_alloc::{AllocDisabler, assert_no_alloc, violation_count};
use chronus_synth::{Command, Param, SliceSource};
use common::*;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn the_detector_catches_an_allocation() {
    let before = violation_count();
    assert_no_alloc(|| std::hint::black_box(vec![1u8; 16]).len());
    assert!(violation_count() > before, "the allocation detector is not active");
}

#[test]
fn rendering_and_applying_commands_never_allocate() {
    let voices = 1_024;
    let mut s = synth(voices);
    let script = busy_script(voices);
    let snap = s.snapshot();
    let (mut l, mut r) = (vec![0.0f32; 40_000], vec![0.0f32; 40_000]);
    let hostile = [f32::NAN, f32::INFINITY, -1.0, 1.0e9, 0.0];
    let mut storage = snap.clone();
    let before = violation_count();
    assert_no_alloc(|| {
        // Every module on: both oscillators, noise, the resonant low-pass
        // and its envelope, the LFO everywhere, delay and reverb.
        for (param, value) in [
            (Param::Wave, 1.0),
            (Param::Wave2, 2.0),
            (Param::OscMix, 0.5),
            (Param::Noise, 0.1),
            (Param::Filter, 4.0),
            (Param::FilterEnv, 2.0),
            (Param::KeyTrack, 1.0),
            (Param::VelCutoff, 1.0),
            (Param::LfoShape, 3.0),
            (Param::LfoPitch, 1.0),
            (Param::LfoCutoff, 1.0),
            (Param::LfoAmp, 0.5),
            (Param::LfoPw, 0.2),
            (Param::DelayMix, 0.5),
            (Param::ReverbMix, 0.5),
        ] {
            s.apply(&Command::Set { param, value }).unwrap();
        }
        let mut source = SliceSource::new(&script);
        for block in l.chunks_mut(256).zip(r.chunks_mut(256)) {
            s.render_with(block.0, block.1, &mut source);
        }
        for (i, &v) in hostile.iter().enumerate() {
            for param in Param::ALL {
                let _ = s.apply(&Command::Set { param, value: v });
                let _ = s.apply(&Command::VoiceSet { voice: i as u32 * 100, param, value: v });
            }
            let _ = s.apply(&Command::NoteOn { voice: 5_000, freq: v, amp: v });
            let _ = s.apply(&Command::NoteOn { voice: i as u32, freq: v, amp: 0.5 });
        }
        s.render(&mut l[..1_000], &mut r[..1_000]);
        // A patch change: staged, faded out, swapped mid-render, faded in;
        // then an instant one, and hostile fades.
        s.apply(&Command::PatchBegin { fade: 0.005 }).unwrap();
        s.apply(&Command::Set { param: Param::Wave, value: 3.0 }).unwrap();
        s.apply(&Command::Set { param: Param::ReverbMix, value: 0.2 }).unwrap();
        s.render(&mut l[..1_000], &mut r[..1_000]);
        s.apply(&Command::PatchBegin { fade: 0.0 }).unwrap();
        s.render(&mut l[..10], &mut r[..10]);
        for v in hostile {
            let _ = s.apply(&Command::PatchBegin { fade: v });
        }
        s.render(&mut l[..1_000], &mut r[..1_000]);
        s.snapshot_into(&mut storage).unwrap();
        s.restore(&storage).unwrap();
        s.render(&mut l[..1_000], &mut r[..1_000]);
    });
    assert_eq!(violation_count(), before, "the render path allocated");
}
