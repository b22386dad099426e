//! Patches: loading one is a complete, click-free, snapshot-safe change.

mod common;

use chronus_dsp::Arg;
use chronus_synth::patch::{self, Source};
use chronus_synth::{Command, Param, Synth};
use common::synth;

/// Applies preset `name` with fades of `fade` seconds, as `/patch/preset`
/// expands it.
fn load(s: &mut Synth, name: &str, fade: f32) {
    let mut events = Vec::new();
    patch::expand(Source::Preset, &[Arg::Str(name), Arg::Float(fade)], &chronus_dsp::NoFiles, &mut events)
        .unwrap();
    for e in &events {
        s.apply(&Command::from_event(e).unwrap()).unwrap();
    }
}

fn render(s: &mut Synth, frames: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut l, mut r) = (vec![0.0; frames], vec![0.0; frames]);
    s.render(&mut l, &mut r);
    (l, r)
}

fn biggest_step(x: &[f32]) -> f32 {
    x.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max)
}

#[test]
fn a_patch_is_a_whole_sound_not_a_difference_from_the_last() {
    // A synth that went through other patches and stray /sets ends up
    // exactly where a fresh one that loaded only the last patch is.
    let mut fresh = synth(8);
    load(&mut fresh, "pad", 0.0);
    render(&mut fresh, 64);
    let mut used = synth(8);
    used.apply(&Command::Set { param: Param::LfoAmp, value: 0.9 }).unwrap();
    used.apply(&Command::Set { param: Param::DelayMix, value: 0.7 }).unwrap();
    used.apply(&Command::Set { param: Param::Cutoff, value: 123.0 }).unwrap();
    load(&mut used, "lead", 0.0);
    render(&mut used, 64);
    load(&mut used, "pad", 0.0);
    render(&mut used, 64);
    assert_eq!(used.patch(), fresh.patch());
    assert_eq!(used.defaults(), fresh.defaults());
    assert_eq!(used.snapshot().bus.reverb_mix, fresh.snapshot().bus.reverb_mix);
    assert_eq!(used.snapshot().bus.delay_mix, 0.0, "pad has no delay: back to its default");
}

#[test]
fn a_patch_change_with_a_fade_does_not_click_and_without_one_it_can() {
    // A held organ note; the patch changes to the bass where the organ is
    // loudest (an instant swap there jumps: the bass's resonant filter
    // starts from rest).
    let play = |fade: f32| {
        let mut s = synth(8);
        load(&mut s, "organ", 0.0);
        s.apply(&Command::NoteOnId { id: 1, freq: 110.0, amp: 0.8 }).unwrap();
        let (before, _) = render(&mut s, 4_800);
        let loudest = (4_000..4_800).max_by(|&a, &b| before[a].abs().total_cmp(&before[b].abs())).unwrap();
        let mut s = synth(8);
        load(&mut s, "organ", 0.0);
        s.apply(&Command::NoteOnId { id: 1, freq: 110.0, amp: 0.8 }).unwrap();
        let (head, _) = render(&mut s, loudest);
        load(&mut s, "bass", fade);
        let (change, _) = render(&mut s, 4_800);
        let (after, _) = render(&mut s, 4_800);
        let steady = biggest_step(&before).max(biggest_step(&after));
        let mut joined = head[head.len() - 1..].to_vec();
        joined.extend_from_slice(&change);
        (biggest_step(&joined), steady)
    };
    let (faded, steady) = play(0.01);
    // Measured: 1.05× the sounds' own largest step (the bass's filter
    // starting from rest, faded in); an instant swap: 20×.
    assert!(faded <= steady * 1.25, "a faded change stepped {faded}; the sounds themselves {steady}");
    let (instant, steady) = play(0.0);
    assert!(instant > steady * 5.0, "an instant swap should show: {instant} vs {steady}");
}

#[test]
fn sets_during_the_fade_land_in_the_new_patch_and_master_stays_live() {
    let mut s = synth(8);
    load(&mut s, "bass", 0.05);
    // Within the fade: part of the patch being built.
    s.apply(&Command::Set { param: Param::LfoRate, value: 7.0 }).unwrap();
    s.apply(&Command::Set { param: Param::Master, value: 0.5 }).unwrap();
    assert_eq!(s.patch().lfo_rate, 5.0, "not live before the swap");
    render(&mut s, 2_399);
    assert_eq!(s.patch().wave, 0, "the swap is 2,400 frames in");
    render(&mut s, 2);
    assert_eq!(s.patch().wave, 1, "the bass's saw after the swap");
    assert_eq!(s.patch().lfo_rate, 7.0);
    assert_eq!(s.snapshot().header.master.target, [0.5, 0.5], "master was never staged");
}

#[test]
fn a_snapshot_taken_mid_change_continues_bit_for_bit() {
    let mut a = synth(8);
    load(&mut a, "lead", 0.0);
    a.apply(&Command::NoteOnId { id: 5, freq: 330.0, amp: 0.6 }).unwrap();
    render(&mut a, 3_000);
    load(&mut a, "pad", 0.02);
    render(&mut a, 500); // inside the fade out
    let mut b = synth(8);
    b.restore(&a.snapshot()).unwrap();
    let (la, ra) = render(&mut a, 6_000);
    let (lb, rb) = render(&mut b, 6_000);
    assert!(la.iter().zip(&lb).chain(ra.iter().zip(&rb)).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert_eq!(a.patch(), b.patch());
}

#[test]
fn a_bad_fade_is_refused_and_changes_nothing() {
    let mut s = synth(8);
    let before = s.snapshot();
    assert!(s.apply(&Command::PatchBegin { fade: f32::NAN }).is_err());
    assert_eq!(s.snapshot(), before);
}
