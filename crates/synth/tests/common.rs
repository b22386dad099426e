//! Helpers shared by the DSP integration tests.
#![allow(dead_code, missing_docs)]

use chronus_synth::{Command, Param, Synth, SynthConfig, TimedCommand};

pub const SR: u32 = 48_000;

pub fn synth(voices: u32) -> Synth {
    Synth::new(SR, SynthConfig::new(voices)).unwrap()
}

pub fn at(frame: u64, command: Command) -> TimedCommand {
    TimedCommand { frame, command }
}

/// A busy script: overlapping notes, retriggers while releasing, filter
/// sweeps, pan and amp ramps, sustain glides, global sets and a master ramp.
pub fn busy_script(voices: u32) -> Vec<TimedCommand> {
    let mut cmds = vec![
        at(0, Command::Set { param: Param::Attack, value: 0.002 }),
        at(0, Command::Set { param: Param::Release, value: 0.01 }),
        at(0, Command::Set { param: Param::Q, value: 3.0 }),
    ];
    let mut frame = 17u64;
    for i in 0..200u32 {
        let voice = (i * 7) % voices;
        let freq = 110.0 * (1.0 + (i % 24) as f32 / 12.0);
        cmds.push(at(frame, Command::NoteOn { voice, freq, amp: 0.2 + (i % 5) as f32 * 0.1 }));
        cmds.push(at(
            frame + 3,
            Command::VoiceSet { voice, param: Param::Cutoff, value: 300.0 + 40.0 * i as f32 },
        ));
        cmds.push(at(
            frame + 5,
            Command::VoiceSet { voice, param: Param::Pan, value: ((i % 9) as f32 - 4.0) / 4.0 },
        ));
        if i % 3 == 0 {
            cmds.push(at(frame + 200, Command::NoteOff { voice }));
        }
        if i % 11 == 0 {
            cmds.push(at(
                frame + 90,
                Command::Set { param: Param::Sustain, value: 0.3 + (i % 4) as f32 * 0.1 },
            ));
            cmds.push(at(
                frame + 91,
                Command::VoiceSet { voice, param: Param::Filter, value: (i % 4) as f32 },
            ));
        }
        if i % 17 == 0 {
            cmds.push(at(
                frame + 50,
                Command::Set { param: Param::Master, value: 0.5 + (i % 3) as f32 * 0.25 },
            ));
        }
        frame += 97 + u64::from(i % 13) * 5;
    }
    for v in 0..voices {
        cmds.push(at(frame + u64::from(v), Command::NoteOff { voice: v }));
    }
    cmds.sort_by_key(|c| c.frame);
    cmds
}

/// Renders `frames` frames of `script` in blocks of `block` frames.
pub fn render(
    synth: &mut Synth,
    script: &[TimedCommand],
    frames: usize,
    block: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (mut l, mut r) = (vec![0.0; frames], vec![0.0; frames]);
    let mut source = chronus_synth::SliceSource::new(script);
    let mut done = 0;
    while done < frames {
        let n = block.min(frames - done);
        synth.render_with(&mut l[done..done + n], &mut r[done..done + n], &mut source);
        done += n;
    }
    (l, r)
}

pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|s| s.to_bits()).collect()
}
