//! DSP throughput: the full voice chain (sine → ADSR → 2-pole low-pass →
//! gain/pan) at 48 kHz, for 1, 64 and 256 voices, Chronus and fundsp side by
//! side in one group. Throughput is in voice-samples, so criterion's
//! `Melem/s` converts to ns per voice-sample as `1000 / Melem/s`.
//!
//! Run: `cargo bench --bench dsp`

use chronus_synth::{Command, Param, Synth, SynthConfig};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fundsp::prelude32::*;
use std::hint::black_box;

const SR: u32 = 48_000;
const BLOCK: usize = 512;

fn freq(v: u32) -> f32 {
    110.0 * (1.0 + (v % 36) as f32 / 12.0)
}

fn chronus_synth(voices: u32) -> Synth {
    let mut synth = Synth::new(SR, SynthConfig::new(voices)).expect("valid config");
    for (param, value) in [
        (Param::Attack, 0.01),
        (Param::Decay, 0.1),
        (Param::Sustain, 0.7),
        (Param::Release, 0.2),
        (Param::Cutoff, 2_000.0),
        (Param::Q, 0.707),
    ] {
        synth.apply(&Command::Set { param, value }).expect("valid");
    }
    for v in 0..voices {
        synth.apply(&Command::NoteOn { voice: v, freq: freq(v), amp: 0.5 }).expect("valid");
    }
    synth
}

fn fundsp_voices(voices: u32) -> Vec<Box<dyn AudioUnit>> {
    (0..voices)
        .map(|v| {
            let voice = (sine_hz(freq(v)) * (dc(1.0) >> adsr_live(0.01, 0.1, 0.7, 0.2)))
                >> lowpass_hz(2_000.0, 0.707)
                >> mul(0.5);
            let mut unit: Box<dyn AudioUnit> = Box::new(voice);
            unit.set_sample_rate(f64::from(SR));
            unit.allocate();
            unit
        })
        .collect()
}

fn voice_chain(c: &mut Criterion) {
    let mut group = c.benchmark_group("voice_chain_48k");
    for voices in [1u32, 64, 256] {
        group.throughput(Throughput::Elements(u64::from(voices) * BLOCK as u64));

        let mut synth = chronus_synth(voices);
        let (mut l, mut r) = (vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]);
        group.bench_with_input(BenchmarkId::new("chronus", voices), &voices, |b, _| {
            b.iter(|| {
                synth.render(&mut l, &mut r);
                black_box((&l, &r));
            })
        });

        let mut units = fundsp_voices(voices);
        let mut buf = BufferVec::new(1);
        let mut mix = vec![0.0f32; BLOCK];
        group.bench_with_input(BenchmarkId::new("fundsp", voices), &voices, |b, _| {
            b.iter(|| {
                mix.fill(0.0);
                for unit in &mut units {
                    for (start, chunk) in mix.chunks_mut(MAX_BUFFER_SIZE).enumerate() {
                        let _ = start;
                        unit.process(chunk.len(), &BufferRef::empty(), &mut buf.buffer_mut());
                        for (m, s) in chunk.iter_mut().zip(buf.channel_f32(0)) {
                            *m += *s;
                        }
                    }
                }
                black_box(&mix);
            })
        });
    }
    group.finish();
}

/// The instrument's voice: two band-limited oscillators (saw and a detuned
/// pulse) → the resonant low-pass with its envelope → the amp envelope,
/// the LFO on pitch; no effects. What `scripts/bench-scsynth` builds as a
/// SynthDef (Saw + Pulse → RLPF with EnvGen → EnvGen, SinOsc vibrato).
fn rich_synth(voices: u32) -> Synth {
    let mut synth = chronus_synth(voices);
    for (param, value) in [
        (Param::Wave, 1.0),
        (Param::Wave2, 2.0),
        (Param::OscMix, 0.5),
        (Param::Detune, 7.0),
        (Param::Filter, 4.0),
        (Param::Q, 2.0),
        (Param::FilterEnv, 2.0),
        (Param::FilterDecay, 0.5),
        (Param::FilterSustain, 0.3),
        (Param::LfoRate, 5.0),
        (Param::LfoPitch, 0.2),
    ] {
        synth.apply(&Command::Set { param, value }).expect("valid");
    }
    for v in 0..voices {
        synth.apply(&Command::NoteOn { voice: v, freq: freq(v), amp: 0.5 }).expect("valid");
    }
    synth
}

fn rich_voice(c: &mut Criterion) {
    let mut group = c.benchmark_group("rich_voice_48k");
    for voices in [64u32, 256] {
        group.throughput(Throughput::Elements(u64::from(voices) * BLOCK as u64));
        let mut synth = rich_synth(voices);
        let (mut l, mut r) = (vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]);
        group.bench_with_input(BenchmarkId::new("chronus", voices), &voices, |b, _| {
            b.iter(|| {
                synth.render(&mut l, &mut r);
                black_box((&l, &r));
            })
        });
    }
    group.finish();
}

/// The master bus's cost per 512-frame block: delay, reverb, limiter.
fn master_effects(c: &mut Criterion) {
    let mut group = c.benchmark_group("master_bus_48k");
    let (mut l, mut r) = (vec![0.1f32; BLOCK], vec![-0.1f32; BLOCK]);
    let mut synth = Synth::new(SR, SynthConfig::new(1)).expect("valid config");
    for (param, value) in [(Param::DelayMix, 0.3), (Param::ReverbMix, 0.3)] {
        synth.apply(&Command::Set { param, value }).expect("valid");
    }
    group.throughput(Throughput::Elements(BLOCK as u64));
    group.bench_function("delay+reverb+limiter, one silent voice", |b| {
        b.iter(|| {
            synth.render(&mut l, &mut r);
            black_box((&l, &r));
        })
    });
    group.finish();
}

criterion_group!(benches, voice_chain, rich_voice, master_effects);
criterion_main!(benches);
