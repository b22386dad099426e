//! Hostile parameters never make the output non-finite or unbounded.

mod common;
use chronus_synth::{Command, Param, Synth, SynthConfig, SynthError};
use common::*;

const HOSTILE: [f32; 9] =
    [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -1.0, 1.0e6, 1.0e30, -1.0e30, f32::MIN_POSITIVE];

fn assert_sane(l: &[f32], r: &[f32], voices: u32) {
    // Bound: each voice contributes at most amp (1) times the filter's peak
    // gain (Q ≤ 40 at resonance) times master (≤ 4).
    let bound = voices as f32 * 40.0 * 4.0;
    for (i, s) in l.iter().chain(r).enumerate() {
        assert!(s.is_finite() && s.abs() <= bound, "sample {i} is {s}");
    }
}

#[test]
fn hostile_values_are_refused_or_clamped_and_output_stays_finite() {
    let mut s = synth(8);
    let (mut l, mut r) = (vec![0.0; 480], vec![0.0; 480]);
    s.apply(&Command::NoteOn { voice: 0, freq: 440.0, amp: 1.0 }).unwrap();
    for (i, &v) in HOSTILE.iter().enumerate() {
        for param in Param::ALL {
            let _ = s.apply(&Command::Set { param, value: v });
            let _ = s.apply(&Command::VoiceSet { voice: (i % 8) as u32, param, value: v });
        }
        let _ = s.apply(&Command::NoteOn { voice: (i % 8) as u32, freq: v, amp: v });
        let _ = s.apply(&Command::NoteOn { voice: 1, freq: v, amp: 1.0 });
        s.render(&mut l, &mut r);
        assert_sane(&l, &r, 8);
    }
    let stats = s.stats();
    assert!(stats.rejected > 0 && stats.clamped > 0, "{stats:?}");
}

#[test]
fn nan_is_refused_with_a_typed_error_and_leaves_the_voice_alone() {
    let mut s = synth(4);
    let err = s.apply(&Command::NoteOn { voice: 0, freq: f32::NAN, amp: 0.5 }).unwrap_err();
    assert_eq!(err, SynthError::NonFinite { param: Param::Freq });
    assert_eq!(s.voices_in_use(), 0);
    let err = s.apply(&Command::VoiceSet { voice: 9, param: Param::Q, value: 1.0 }).unwrap_err();
    assert_eq!(err, SynthError::VoiceOutOfRange { voice: 9, voices: 4 });
    assert!(s.apply(&Command::VoiceSet { voice: 0, param: Param::Master, value: 1.0 }).is_err());
    assert_eq!(s.stats().rejected, 3);
}

#[test]
fn extreme_but_finite_settings_stay_bounded() {
    // Q at its maximum, cutoff on the oscillator, max master, every voice on.
    let voices = 32;
    let mut s = synth(voices);
    for cmd in [
        Command::Set { param: Param::Q, value: 0.0 },
        Command::Set { param: Param::Q, value: 1.0e9 },
        Command::Set { param: Param::Cutoff, value: 1_000.0 },
        Command::Set { param: Param::Master, value: 100.0 },
        Command::Set { param: Param::Attack, value: -3.0 },
        Command::Set { param: Param::Release, value: -3.0 },
    ] {
        s.apply(&cmd).unwrap();
    }
    for v in 0..voices {
        s.apply(&Command::NoteOn { voice: v, freq: 1_000.0, amp: 1.0 }).unwrap();
    }
    let (mut l, mut r) = (vec![0.0; 48_000], vec![0.0; 48_000]);
    s.render(&mut l, &mut r);
    assert_sane(&l, &r, voices);
    for v in [0u32, 1] {
        s.apply(&Command::NoteOn { voice: v, freq: 0.0, amp: 1.0 }).unwrap();
        s.apply(&Command::NoteOn { voice: v + 2, freq: 1.0e6, amp: 1.0 }).unwrap();
    }
    s.render(&mut l, &mut r);
    assert_sane(&l, &r, voices);
}

#[test]
fn voice_counts_from_1_to_4096_are_accepted_and_others_refused() {
    for voices in [1, 64, 1_024, 4_096] {
        let mut s = Synth::new(48_000, SynthConfig::new(voices)).unwrap();
        s.apply(&Command::NoteOn { voice: voices - 1, freq: 440.0, amp: 0.1 }).unwrap();
        let (mut l, mut r) = (vec![0.0; 64], vec![0.0; 64]);
        s.render(&mut l, &mut r);
        assert!(l.iter().any(|x| *x != 0.0));
    }
    assert!(Synth::new(48_000, SynthConfig::new(0)).is_err());
    assert!(Synth::new(48_000, SynthConfig::new(4_097)).is_err());
    assert!(Synth::new(1_000, SynthConfig::new(8)).is_err());
}
