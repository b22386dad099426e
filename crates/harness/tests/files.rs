//! A run's files checked against its journal, on disk.

use chronus_dsp::{DspSpec, Setup, TimedEvent};
use chronus_harness::verify_files;
use chronus_journal::{Annotations, Journal, JournalError, JournalHeader, render_offline};
use chronus_synth::{Command, Synth, SynthConfig};

const SETUP: Setup = Setup { sample_rate: 48_000, block: 256 };

fn spec_for(h: &JournalHeader) -> Result<DspSpec, JournalError> {
    Ok(DspSpec::from_json::<Synth>(&h.config)?)
}

#[test]
fn every_cut_is_known_even_after_the_first_difference() {
    let spec = DspSpec::new::<Synth>(SynthConfig::new(4)).unwrap();
    let at = |frame, c: Command| TimedEvent { frame, event: c.to_event() };
    let events = vec![
        at(0, Command::NoteOn { voice: 0, freq: 440.0, amp: 0.5 }),
        at(1_000, Command::NoteOn { voice: 1, freq: 660.0, amp: 0.25 }),
        at(3_000, Command::NoteOn { voice: 2, freq: 880.0, amp: 0.25 }),
    ];
    // The third note was cut out (as a poison would be); the render skips it.
    let notes = Annotations { end_frame: Some(4_096), excised: vec![2], ..Annotations::default() };
    let journal = Journal { header: JournalHeader::of(&spec, &SETUP), events: events.clone(), notes };
    let rendered = render_offline(&spec, SETUP, &events, &journal.notes, 4_096, true).unwrap();
    // A recording that differs at frame 100, long before the cut.
    let mut left = rendered.left.clone();
    left[100] += 1.0e-3;
    let dir = std::env::temp_dir().join(format!("chronus-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (jpath, wpath) = (dir.join("run.journal"), dir.join("played.wav"));
    let mut text = Vec::new();
    journal.write_to(&spec, &mut text).unwrap();
    std::fs::write(&jpath, text).unwrap();
    chronus_audio::write_wav(&wpath, SETUP.sample_rate, &left, &rendered.right).unwrap();
    let check = verify_files(&jpath, &wpath, spec_for, true).unwrap();
    assert_eq!(check.first_difference, Some(100));
    // Before: the cut events were gathered while comparing, which stops at
    // the first difference, so this one was missing.
    assert_eq!(check.cut, vec![events[2]]);
    assert_eq!(check.events, 3);
    std::fs::remove_dir_all(&dir).unwrap();
}
