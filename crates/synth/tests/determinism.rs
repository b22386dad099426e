//! The output is a pure function of the commands and their frames.

mod common;
use chronus_synth::{Command, Param, Voice, VoiceParams};
use common::*;

#[test]
fn block_size_does_not_change_a_bit() {
    let script = busy_script(24);
    let frames = 30_000;
    let (ref_l, ref_r) = render(&mut synth(24), &script, frames, 256);
    assert!(ref_l.iter().any(|s| s.abs() > 0.01), "the script should make sound");
    for block in [1, 7, 63, 64, 65, 1_000, 4_096] {
        let (l, r) = render(&mut synth(24), &script, frames, block);
        assert_eq!(bits(&l), bits(&ref_l), "left differs at block {block}");
        assert_eq!(bits(&r), bits(&ref_r), "right differs at block {block}");
    }
}

#[test]
fn two_synths_given_the_same_script_agree_bit_for_bit() {
    let script = busy_script(64);
    let a = render(&mut synth(64), &script, 20_000, 128);
    let b = render(&mut synth(64), &script, 20_000, 128);
    assert_eq!(bits(&a.0), bits(&b.0));
    assert_eq!(bits(&a.1), bits(&b.1));
}

#[test]
fn synth_lane_equals_the_scalar_voice_chain() {
    // One voice, panned hard left, master 1: the synth's left channel must be
    // exactly the scalar Voice's left output, ramps and stage changes included.
    let mut synth = synth(8);
    let mut voice = Voice::new(VoiceParams::default(), SR).unwrap();
    let script = [
        (0u64, Command::VoiceSet { voice: 3, param: Param::Pan, value: -1.0 }),
        (10, Command::NoteOn { voice: 3, freq: 330.0, amp: 0.6 }),
        (700, Command::VoiceSet { voice: 3, param: Param::Cutoff, value: 900.0 }),
        (800, Command::VoiceSet { voice: 3, param: Param::Q, value: 5.0 }),
        (1_500, Command::VoiceSet { voice: 3, param: Param::Sustain, value: 0.2 }),
        (9_000, Command::NoteOff { voice: 3 }),
        (9_500, Command::NoteOn { voice: 3, freq: 660.0, amp: 0.3 }),
        (9_600, Command::VoiceSet { voice: 3, param: Param::Amp, value: 0.6 }), // under the limiter's ceiling
        (9_650, Command::VoiceSet { voice: 3, param: Param::Filter, value: 1.0 }),
        (20_000, Command::NoteOff { voice: 3 }),
        (40_000, Command::NoteOn { voice: 3, freq: 220.0, amp: 0.5 }),
    ];
    let mut next = 0;
    let (mut sl, mut sr) = ([0.0f32; 1], [0.0f32; 1]);
    for frame in 0..50_000u64 {
        while next < script.len() && script[next].0 == frame {
            let cmd = script[next].1;
            synth.apply(&cmd).unwrap();
            match cmd {
                Command::NoteOn { freq, amp, .. } => voice.note_on(freq, amp).unwrap(),
                Command::NoteOff { .. } => voice.note_off(),
                Command::VoiceSet { param, value, .. } => {
                    voice.set(param, value).unwrap();
                }
                _ => unreachable!(),
            }
            next += 1;
        }
        synth.render(&mut sl, &mut sr);
        // The mixer sums onto +0.0, which turns a voice's -0.0 into +0.0.
        let (vl, vr) = voice.next_frame();
        let (vl, vr) = (0.0 + vl, 0.0 + vr);
        assert_eq!(sl[0].to_bits(), vl.to_bits(), "left differs at frame {frame}");
        assert_eq!(sr[0].to_bits(), vr.to_bits(), "right differs at frame {frame}");
    }
}
