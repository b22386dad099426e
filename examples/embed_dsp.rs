//! Embed the Chronus DSP in your own program: no supervisor, no processes.
//!
//! Plays a short arpeggio through a 16-voice synth and writes it to
//! `embed_dsp.wav`. Run: `cargo run --example embed_dsp`.

use chronus::synth::{Command, Param, Synth, SynthConfig, TimedCommand};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sample_rate = 48_000;
    // Everything the synth needs is allocated here.
    let mut synth = Synth::new(sample_rate, SynthConfig::new(16))?;
    synth.apply(&Command::Set { param: Param::Release, value: 0.3 })?;

    // Commands stamped with the frame they apply at (sample-accurate).
    let notes = [261.63, 329.63, 392.0, 523.25];
    let mut script = Vec::new();
    for (i, freq) in notes.iter().enumerate() {
        let frame = i as u64 * 12_000;
        let voice = i as u32;
        script.push(TimedCommand { frame, command: Command::NoteOn { voice, freq: *freq, amp: 0.3 } });
        script.push(TimedCommand { frame: frame + 9_000, command: Command::NoteOff { voice } });
    }

    // Render in blocks, as an audio callback would; render never allocates.
    let frames = 72_000;
    let (mut left, mut right) = (vec![0.0f32; frames], vec![0.0f32; frames]);
    let mut source = chronus::synth::SliceSource::new(&script);
    for (l, r) in left.chunks_mut(256).zip(right.chunks_mut(256)) {
        synth.render_with(l, r, &mut source);
    }
    chronus::audio::write_wav("embed_dsp.wav".as_ref(), sample_rate, &left, &right)?;
    println!("wrote embed_dsp.wav ({} frames, {} commands refused)", frames, synth.stats().rejected);
    Ok(())
}
