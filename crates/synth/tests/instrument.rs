//! The instrument's voice: band-limited oscillators, the resonant
//! low-pass with its envelope, the LFO — spectra, rates, determinism,
//! snapshots.

mod common;
use chronus_synth::{Command, Param, Synth};
use common::*;

fn set(s: &mut Synth, param: Param, value: f32) {
    s.apply(&Command::Set { param, value }).unwrap();
}

/// Magnitude of DFT bin `k` of `x`.
fn bin(x: &[f32], k: usize) -> f64 {
    let n = x.len() as f64;
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (i, &v) in x.iter().enumerate() {
        let a = std::f64::consts::TAU * (k * i) as f64 / n;
        re += f64::from(v) * a.cos();
        im -= f64::from(v) * a.sin();
    }
    (re * re + im * im).sqrt() * 2.0 / n
}

/// A sustained note of `wave` at `freq`, filters wide open; 960 frames of
/// its sustain.
fn sustained(wave: f32, freq: f32) -> Vec<f32> {
    let mut s = synth(4);
    set(&mut s, Param::Wave, wave);
    set(&mut s, Param::Cutoff, 23_000.0);
    set(&mut s, Param::Attack, 0.0);
    set(&mut s, Param::Sustain, 1.0);
    s.apply(&Command::NoteOn { voice: 0, freq, amp: 0.5 }).unwrap();
    let (mut l, mut r) = (vec![0.0; 9_600], vec![0.0; 9_600]);
    s.render(&mut l, &mut r);
    l.split_off(9_600 - 960)
}

#[test]
fn a_saw_voice_has_harmonics_falling_as_one_over_n_and_no_aliases_to_speak_of() {
    // 2,950 Hz: 59 cycles in 960 frames, every harmonic and alias on a bin.
    let x = sustained(1.0, 2_950.0);
    let f = bin(&x, 59);
    assert!(f > 0.1, "fundamental {f}");
    for n in 2..=6 {
        let ratio = bin(&x, 59 * n) / f;
        assert!((ratio - 1.0 / n as f64).abs() < 0.08 / n as f64 + 0.005, "harmonic {n}: {ratio}");
    }
    let alias = (1..480).filter(|k| k % 59 != 0).map(|k| bin(&x, k)).fold(0.0, f64::max);
    let db = 20.0 * (alias / f).log10();
    // SuperCollider's Saw measures about -52 dB here; a 2-sample PolyBLEP -29.
    assert!(db < -60.0, "strongest alias {db:.1} dB");
}

#[test]
fn every_waveform_sounds_and_a_square_has_odd_harmonics() {
    let square = sustained(2.0, 1_000.0); // 20 cycles in 960
    let f = bin(&square, 20);
    assert!(bin(&square, 40) < f * 0.01, "no second harmonic in a square");
    assert!((bin(&square, 60) / f - 1.0 / 3.0).abs() < 0.05);
    for wave in [0.0, 1.0, 2.0, 3.0, 4.0] {
        let x = sustained(wave, 440.0);
        let rms = (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        assert!(rms > 0.05, "wave {wave} is silent");
    }
}

#[test]
fn the_lfo_runs_at_its_rate() {
    let mut s = synth(2);
    set(&mut s, Param::LfoAmp, 1.0);
    set(&mut s, Param::LfoRate, 5.0);
    set(&mut s, Param::Cutoff, 23_000.0);
    set(&mut s, Param::Attack, 0.0);
    set(&mut s, Param::Sustain, 1.0);
    s.apply(&Command::NoteOn { voice: 0, freq: 1_000.0, amp: 0.5 }).unwrap();
    let (mut l, mut r) = (vec![0.0; 96_000], vec![0.0; 96_000]);
    s.render(&mut l, &mut r);
    // Peak level per 5 ms: a 5 Hz tremolo, 10 periods in 2 s.
    let env: Vec<f32> = l.chunks(240).map(|c| c.iter().fold(0.0f32, |m, x| m.max(x.abs()))).collect();
    let mean = env.iter().sum::<f32>() / env.len() as f32;
    let crossings = env.windows(2).filter(|w| (w[0] < mean) != (w[1] < mean)).count();
    assert!((19..=21).contains(&crossings), "{crossings} crossings: not 5 Hz");
}

#[test]
fn the_resonant_lowpass_sweeps_with_its_envelope() {
    let brightness = |env: f32| {
        let mut s = synth(2);
        set(&mut s, Param::Wave, 1.0);
        set(&mut s, Param::Filter, 4.0);
        set(&mut s, Param::Cutoff, 300.0);
        set(&mut s, Param::Q, 4.0);
        set(&mut s, Param::FilterEnv, env);
        set(&mut s, Param::FilterDecay, 10.0);
        set(&mut s, Param::FilterSustain, 1.0);
        s.apply(&Command::NoteOn { voice: 0, freq: 100.0, amp: 0.5 }).unwrap();
        let (mut l, mut r) = (vec![0.0; 9_600], vec![0.0; 9_600]);
        s.render(&mut l, &mut r);
        // 100 Hz: bin k of 4,800 frames is k·10 Hz; the 30th harmonic (3 kHz).
        let x = &l[4_800..];
        bin(x, 300) / bin(x, 10)
    };
    let (closed, open) = (brightness(0.0), brightness(4.0));
    assert!(open > closed * 10.0, "the envelope opens the filter: {closed} → {open}");
}

/// A patch with every module on, and a score for it.
fn everything(s: &mut Synth) {
    for (p, v) in [
        (Param::Wave, 1.0),
        (Param::Wave2, 2.0),
        (Param::OscMix, 0.4),
        (Param::Detune, 7.0),
        (Param::Noise, 0.05),
        (Param::Filter, 4.0),
        (Param::Q, 3.0),
        (Param::FilterEnv, 3.0),
        (Param::KeyTrack, 0.5),
        (Param::VelCutoff, 1.0),
        (Param::LfoShape, 3.0),
        (Param::LfoRate, 7.0),
        (Param::LfoPitch, 0.3),
        (Param::LfoCutoff, 1.0),
        (Param::LfoAmp, 0.2),
        (Param::LfoPw, 0.2),
        (Param::DelayMix, 0.3),
        (Param::ReverbMix, 0.3),
    ] {
        set(s, p, v);
    }
}

#[test]
fn with_every_module_on_block_splitting_and_snapshots_change_no_bit() {
    let script = busy_script(16);
    let run = |block: usize, restore_at: Option<usize>| {
        let mut s = synth(16);
        everything(&mut s);
        let Some(at) = restore_at else { return render(&mut s, &script, 40_000, block) };
        let split = script.partition_point(|c| c.frame < at as u64);
        let (mut l, mut r) = render(&mut s, &script[..split], at, block);
        let mut fresh = synth(16);
        fresh.restore(&s.snapshot()).unwrap();
        let (l2, r2) = render(&mut fresh, &script[split..], 40_000 - at, block);
        l.extend(l2);
        r.extend(r2);
        (l, r)
    };
    let (want_l, want_r) = run(256, None);
    assert!(want_l.iter().any(|x| x.abs() > 0.01));
    for (block, restore) in [(64, None), (17, None), (1_000, None), (256, Some(12_345)), (100, Some(30_001))]
    {
        let (l, r) = run(block, restore);
        assert_eq!(bits(&l), bits(&want_l), "block {block}, restored at {restore:?}");
        assert_eq!(bits(&r), bits(&want_r));
    }
}
