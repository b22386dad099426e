//! The AVX2 path gives the baseline's bits: every replica agrees whatever
//! CPU it runs on.

mod common;

use chronus_synth::simd::Simd;
use chronus_synth::{Command, Param, SliceSource, Synth};
use common::{at, busy_script, synth};

fn render(simd: Simd, script: &[chronus_synth::TimedCommand], block: usize) -> (Vec<f32>, Vec<f32>, Synth) {
    let mut s = synth(64);
    s.set_simd(simd);
    let (mut l, mut r) = (vec![0.0; 96_000], vec![0.0; 96_000]);
    let mut source = SliceSource::new(script);
    for (bl, br) in l.chunks_mut(block).zip(r.chunks_mut(block)) {
        s.render_with(bl, br, &mut source);
    }
    (l, r, s)
}

#[test]
fn avx2_and_the_baseline_give_the_same_bits() {
    if Simd::best() != Simd::Avx2 {
        // Nothing to compare on this CPU; say so rather than pass quietly.
        eprintln!("this CPU has no AVX2: only the baseline runs here");
        assert_eq!(Simd::Avx2.or_baseline(), Simd::Baseline);
        return;
    }
    // Ramps (filter sweeps, pans, master), envelopes, retriggers, steals
    // of plain voices; then the same music on the instrument: each
    // waveform in turn on both oscillators, noise, the resonant low-pass on
    // some voices and the biquad on others, the LFO everywhere.
    let mut script = busy_script(64);
    script.push(at(90_000, Command::Set { param: Param::Cutoff, value: 333.0 }));
    let plain = script.clone();
    let mut rich = vec![
        at(0, Command::Set { param: Param::OscMix, value: 0.4 }),
        at(0, Command::Set { param: Param::Noise, value: 0.05 }),
        at(0, Command::Set { param: Param::Detune, value: 7.0 }),
        at(0, Command::Set { param: Param::FilterEnv, value: 2.0 }),
        at(0, Command::Set { param: Param::LfoShape, value: 3.0 }),
        at(0, Command::Set { param: Param::LfoPitch, value: 0.5 }),
        at(0, Command::Set { param: Param::LfoPw, value: 0.2 }),
        at(0, Command::VoiceSet { voice: 3, param: Param::Filter, value: 4.0 }),
        at(0, Command::VoiceSet { voice: 10, param: Param::Filter, value: 4.0 }),
    ];
    for (k, wave) in [1.0, 2.0, 3.0, 4.0, 0.0].into_iter().enumerate() {
        let frame = k as u64 * 18_000;
        rich.push(at(frame, Command::Set { param: Param::Wave, value: wave }));
        rich.push(at(frame, Command::Set { param: Param::Wave2, value: (wave + 1.0) % 5.0 }));
    }
    rich.extend(plain.iter().copied());
    rich.sort_by_key(|c| c.frame);
    for (script, block) in [(&plain, 1), (&plain, 37), (&plain, 256), (&rich, 1), (&rich, 64), (&rich, 256)] {
        let (l1, r1, s1) = render(Simd::Baseline, script, block);
        let (l2, r2, s2) = render(Simd::Avx2, script, block);
        assert_eq!(s1.simd(), Simd::Baseline);
        assert_eq!(s2.simd(), Simd::Avx2);
        assert!(l1.iter().any(|x| x.abs() > 0.01), "it should sound");
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same(&l1, &l2) && same(&r1, &r2), "block {block}: AVX2 differs from the baseline");
        assert_eq!(s1.snapshot(), s2.snapshot(), "block {block}: the states differ");
    }
}
