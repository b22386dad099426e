//! Notes by ID: the synth allocates voices, steals without a click, and
//! keeps it all in the snapshot.

mod common;
use chronus_synth::{Command, Param};
use common::*;

/// Amplitude of the `freq` component of `x` (Goertzel, windowless: use a
/// whole number of periods).
fn level_at(x: &[f32], freq: f32) -> f32 {
    let w = std::f64::consts::TAU * f64::from(freq) / f64::from(SR);
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    (2.0 * power.sqrt() / x.len() as f64) as f32
}

fn on(id: i32, freq: f32) -> Command {
    Command::NoteOnId { id, freq, amp: 0.3 }
}

#[test]
fn releasing_one_id_leaves_the_others_sounding() {
    let mut s = synth(8);
    s.apply(&Command::Set { param: Param::Release, value: 0.01 }).unwrap();
    s.apply(&Command::Set { param: Param::Cutoff, value: 20_000.0 }).unwrap();
    for (id, f) in [(100, 300.0), (2_000_000, 450.0), (7, 600.0)] {
        s.apply(&on(id, f)).unwrap();
    }
    let (mut l, mut r) = (vec![0.0; 4_800], vec![0.0; 4_800]);
    s.render(&mut l, &mut r);
    assert_eq!(s.voices_in_use(), 3);
    s.apply(&Command::NoteOffId { id: 2_000_000 }).unwrap();
    assert_eq!(s.note_voice(2_000_000), None);
    assert!(s.apply(&Command::NoteOffId { id: 2_000_000 }).is_err(), "released already");
    s.render(&mut l, &mut r);
    s.render(&mut l, &mut r);
    assert_eq!(s.voices_in_use(), 2);
    let (a, b, c) = (level_at(&l, 300.0), level_at(&l, 450.0), level_at(&l, 600.0));
    assert!(a > 0.05 && c > 0.05, "the other notes sound: {a} {c}");
    assert!(b < a * 1.0e-3, "the released one is gone: {b}");
    // Set by ID reaches that note's voice only.
    s.apply(&Command::NoteSet { id: 7, param: Param::Amp, value: 0.0 }).unwrap();
    s.render(&mut l, &mut r);
    s.render(&mut l, &mut r);
    assert!(level_at(&l, 600.0) < 1.0e-3 && level_at(&l, 300.0) > 0.05);
}

#[test]
fn a_steal_clicks_no_more_than_ordinary_playing() {
    let biggest_step = |x: &[f32]| x.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0f32, f32::max);
    // The same music on 3 voices (ordinary playing) and on 2 (the third
    // note steals the first's voice).
    let play = |voices: u32| {
        let mut s = synth(voices);
        s.apply(&Command::Set { param: Param::Attack, value: 0.005 }).unwrap();
        let (mut l, mut r) = (vec![0.0; 2_400], vec![0.0; 2_400]);
        s.apply(&on(1, 220.0)).unwrap();
        s.render(&mut l, &mut r);
        s.apply(&on(2, 330.0)).unwrap();
        // Not a whole number of periods: the steal lands mid-waveform.
        s.render(&mut l[..2_317], &mut r[..2_317]);
        let last = l[2_316];
        s.apply(&on(3, 495.0)).unwrap();
        let stolen = s.note_voice(1).is_none();
        s.render(&mut l, &mut r);
        (biggest_step(&l).max((l[0] - last).abs()), stolen)
    };
    let (ordinary, stolen) = play(3);
    assert!(!stolen);
    let (steal, stolen) = play(2);
    assert!(stolen, "note 1 lost its voice");
    assert!(steal <= ordinary * 1.05, "a steal made a step of {steal}, ordinary playing {ordinary}");
}

#[test]
fn the_allocation_is_in_the_snapshot() {
    let mut a = synth(4);
    for id in 0..6 {
        a.apply(&on(id * 11, 200.0 + id as f32 * 50.0)).unwrap();
    }
    let (mut l, mut r) = (vec![0.0; 1_000], vec![0.0; 1_000]);
    a.render(&mut l, &mut r);
    let mut b = synth(4);
    b.restore(&a.snapshot()).unwrap();
    for s in [&mut a, &mut b] {
        s.apply(&Command::NoteOffId { id: 33 }).unwrap();
        s.apply(&on(99, 880.0)).unwrap();
    }
    let (mut l2, mut r2) = (vec![0.0; 1_000], vec![0.0; 1_000]);
    a.render(&mut l, &mut r);
    b.render(&mut l2, &mut r2);
    assert_eq!(bits(&l), bits(&l2));
    assert_eq!(a.note_voice(99), b.note_voice(99));
}
