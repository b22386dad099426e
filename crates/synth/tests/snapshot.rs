//! A restored snapshot continues bit for bit.

mod common;
use chronus_synth::{SynthError, SynthSnapshot};
use common::*;

#[test]
fn restore_continues_bit_identically() {
    let script = busy_script(32);
    let (n, m) = (11_111usize, 20_000usize);
    let mut original = synth(32);
    let split = script.partition_point(|c| c.frame < n as u64);
    render(&mut original, &script[..split], n, 300);
    let snap: SynthSnapshot = original.snapshot();
    let (want_l, want_r) = render(&mut original, &script[split..], m, 300);

    let mut fresh = synth(32);
    fresh.restore(&snap).unwrap();
    assert_eq!(fresh.frame(), n as u64);
    assert!(fresh.voices_in_use() > 0, "the snapshot should catch notes sounding");
    let (l, r) = render(&mut fresh, &script[split..], m, 300);
    assert_eq!(bits(&l), bits(&want_l));
    assert_eq!(bits(&r), bits(&want_r));
}

#[test]
fn corrupt_snapshots_are_refused_and_change_nothing() {
    let mut s = synth(16);
    render(&mut s, &busy_script(16), 5_000, 512);
    let good = s.snapshot();
    let mut target = synth(16);
    let before = target.snapshot();

    let mut bad = good.clone();
    bad.header.magic ^= 1;
    assert!(matches!(target.restore(&bad), Err(SynthError::BadSnapshot(_))));

    let mut bad = good.clone();
    bad.chunks[0].z1[2] = f32::NAN;
    assert!(target.restore(&bad).is_err());

    let mut bad = good.clone();
    bad.controls[1].env_stage = 9;
    assert!(target.restore(&bad).is_err());

    let mut bad = good.clone();
    bad.controls[1].env_stage = 1; // attack …
    bad.controls[1].env_remaining = 0; // … that could never end
    assert!(target.restore(&bad).is_err());

    let other = synth(24).snapshot();
    assert!(target.restore(&other).is_err());

    assert_eq!(target.snapshot(), before);
}

#[test]
fn the_effects_continue_bit_identically_after_a_restore() {
    use chronus_synth::{Command, Param};
    let mut original = synth(16);
    for (param, value) in [
        (Param::DelayTime, 0.3),
        (Param::DelayFeedback, 0.7),
        (Param::DelayMix, 0.5),
        (Param::ReverbSize, 0.9),
        (Param::ReverbMix, 0.6),
    ] {
        original.apply(&Command::Set { param, value }).unwrap();
    }
    let script = busy_script(16);
    // Mid-tail: the delay line full of echoes, the reverb ringing.
    let split = script.partition_point(|c| c.frame < 60_000);
    render(&mut original, &script[..split], 60_000, 512);
    let snap = original.snapshot();
    let (want_l, want_r) = render(&mut original, &script[split..], 48_000, 512);
    assert!(want_l.iter().any(|x| x.abs() > 1.0e-3));
    let mut fresh = synth(16);
    fresh.restore(&snap).unwrap();
    let (l, r) = render(&mut fresh, &script[split..], 48_000, 300);
    assert_eq!(bits(&l), bits(&want_l));
    assert_eq!(bits(&r), bits(&want_r));
    // A reverb line with a NaN in it is refused.
    let mut bad = snap.clone();
    bad.reverb[17] = f32::NAN;
    assert!(fresh.restore(&bad).is_err());
    // The same through bytes (the lines are checked and copied straight
    // from them): bit-identical, and a NaN in the delay's bytes refused
    // with nothing changed.
    let mut bytes = vec![0u8; snap_len(&original)];
    let mut again = synth(16);
    again.restore(&snap).unwrap();
    again.snapshot_to_bytes(&mut bytes);
    let mut from_bytes = synth(16);
    from_bytes.restore_from_bytes(&bytes).unwrap();
    assert_eq!(from_bytes.snapshot(), snap);
    let (l, r) = render(&mut from_bytes, &script[split..], 48_000, 256);
    assert_eq!(bits(&l), bits(&want_l));
    assert_eq!(bits(&r), bits(&want_r));
    let last_delay = bytes.len() - std::mem::size_of_val(&snap.rich[..]) - 4 * snap.reverb.len() - 4;
    bytes[last_delay..last_delay + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut target = synth(16);
    let before = target.snapshot();
    assert!(target.restore_from_bytes(&bytes).is_err());
    assert_eq!(target.snapshot(), before);
}

fn snap_len(s: &chronus_synth::Synth) -> usize {
    s.snapshot_bytes_len()
}

#[test]
fn the_limiter_holds_a_fortissimo_chord_under_full_scale() {
    use chronus_synth::{Command, Param};
    let mut s = synth(64);
    s.apply(&Command::Set { param: Param::ReverbMix, value: 1.0 }).unwrap();
    s.apply(&Command::Set { param: Param::DelayMix, value: 1.0 }).unwrap();
    s.apply(&Command::Set { param: Param::Master, value: 4.0 }).unwrap();
    for v in 0..64 {
        s.apply(&Command::NoteOn { voice: v, freq: 55.0 * (1.0 + v as f32 / 8.0), amp: 1.0 }).unwrap();
    }
    let (mut l, mut r) = (vec![0.0f32; 96_000], vec![0.0f32; 96_000]);
    s.render(&mut l, &mut r);
    let peak = l.iter().chain(&r).fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(peak <= chronus_synth::master::CEILING, "peak {peak}");
    assert!(peak > 0.9, "and it is loud: {peak}");
}
