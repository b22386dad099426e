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
