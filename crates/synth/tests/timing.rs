//! Commands apply at their exact frame, also inside a block.

mod common;
use chronus_synth::{Command, Param};
use common::*;

#[test]
fn note_on_starts_exactly_at_its_frame_inside_a_block() {
    for (frame, block) in [(0u64, 64usize), (1_000, 512), (1_023, 512), (1_024, 512), (77, 1)] {
        let script = [at(frame, Command::NoteOn { voice: 2, freq: 440.0, amp: 0.5 })];
        let (l, r) = render(&mut synth(4), &script, 4_096, block);
        let first = l.iter().zip(&r).position(|(a, b)| *a != 0.0 || *b != 0.0);
        assert_eq!(first, Some(frame as usize), "block {block}");
    }
}

#[test]
fn note_off_and_release_end_at_the_exact_frame() {
    // 1 ms attack, no decay, full sustain, 2 ms release (96 frames).
    let script = [
        at(0, Command::Set { param: Param::Attack, value: 0.001 }),
        at(0, Command::Set { param: Param::Decay, value: 0.0 }),
        at(0, Command::Set { param: Param::Sustain, value: 1.0 }),
        at(0, Command::Set { param: Param::Release, value: 0.002 }),
        at(100, Command::NoteOn { voice: 0, freq: 1_000.0, amp: 1.0 }),
        at(2_000, Command::NoteOff { voice: 0 }),
    ];
    let (l, _) = render(&mut synth(1), &script, 4_000, 333);
    let last = l.iter().rposition(|s| *s != 0.0).unwrap();
    assert!(last < 2_000 + 96, "sound after the release ended: {last}");
    assert!(l[2_000..2_000 + 96].iter().filter(|s| **s != 0.0).count() > 80);
}

#[test]
fn a_command_at_the_same_frame_as_a_block_boundary_splits_nothing() {
    // Commands exactly at block boundaries and mid-block give identical audio.
    let script = [
        at(512, Command::NoteOn { voice: 0, freq: 220.0, amp: 0.5 }),
        at(700, Command::VoiceSet { voice: 0, param: Param::Cutoff, value: 500.0 }),
        at(1_024, Command::NoteOff { voice: 0 }),
    ];
    let a = render(&mut synth(1), &script, 8_192, 512);
    let b = render(&mut synth(1), &script, 8_192, 100);
    assert_eq!(bits(&a.0), bits(&b.0));
}
