//! Journals, scores and offline rendering with the built-in synth as the DSP.

use chronus_dsp::{DspSpec, Setup, TimedEvent};
use chronus_journal::*;
use chronus_synth::{Command, Param, Synth, SynthConfig};

const SETUP: Setup = Setup { sample_rate: 48_000, block: 256 };

fn spec(voices: u32) -> DspSpec {
    DspSpec::new::<Synth>(SynthConfig::new(voices)).unwrap()
}

fn spec_for(h: &JournalHeader) -> Result<DspSpec, JournalError> {
    assert_eq!(h.dsp, "chronus-synth/1");
    Ok(DspSpec::from_json::<Synth>(&h.config)?)
}

fn at(frame: u64, c: Command) -> TimedEvent {
    TimedEvent { frame, event: c.to_event() }
}

fn journal() -> Journal {
    Journal {
        header: JournalHeader::of(&spec(3), &Setup { sample_rate: 44_100, block: 128 }),
        events: vec![
            at(0, Command::Set { param: Param::Release, value: 0.1 + 0.2 }),
            at(10, Command::NoteOn { voice: 2, freq: 440.123_45, amp: f32::MIN_POSITIVE }),
            at(10, Command::VoiceSet { voice: 0, param: Param::Q, value: 1.0e-7 }),
            at(99, Command::NoteOff { voice: 1 }),
        ],
        notes: Annotations {
            end_frame: Some(1_000),
            stalls: vec![FrameSpan { first: 256, frames: 512 }],
            gaps: vec![FrameSpan { first: 900, frames: 3 }],
            excised: vec![1],
            resets: vec![512],
            fade: Some(FrameSpan { first: 700, frames: 240 }),
            xruns: vec![FrameSpan { first: 640, frames: 77 }],
            forbidden: vec![(512, "openat".into())],
            wrong: vec![FrameSpan { first: 300, frames: 64 }],
        },
    }
}

#[test]
fn journals_round_trip_bit_for_bit() {
    let j = journal();
    let mut text = Vec::new();
    j.write_to(&spec(3), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let (back, _) = Journal::parse(&text, spec_for).unwrap();
    assert_eq!(back, j);
    for (a, b) in back.events.iter().zip(&j.events) {
        assert_eq!(a.event.args, b.event.args, "bits differ");
    }
    assert!(
        text.starts_with("# chronus journal v2\n@dsp chronus-synth/1\n@config {\"voices\":3}\n"),
        "{text}"
    );
}

#[test]
fn errors_name_the_line() {
    let head =
        "# chronus journal v2\n@dsp chronus-synth/1\n@config {\"voices\":4}\n@sample_rate 48000\n@block 64\n";
    let e = Journal::parse(&format!("{head}0 /note_on 1 440\n"), spec_for).unwrap_err().full_message();
    assert!(e.starts_with("line 6: /note_on takes 3 arguments"), "{e}");
    let e = Journal::parse(&format!("{head}5 /note_off 1\n4 /note_off 1\n"), spec_for).unwrap_err();
    assert!(e.to_string().contains("backwards"), "{e}");
    let e = Journal::parse(&format!("{head}5 /note_off 9\n"), spec_for).unwrap_err().full_message();
    assert!(e.contains("out of range"), "{e}");
    let e = Journal::parse(&format!("{head}5 /note_on 1 nan 0.5\n"), spec_for).unwrap_err().full_message();
    assert!(e.contains("finite"), "{e}");
    for bad in ["@forbidden 5", "@forbidden x openat", "@forbidden 5 open$at"] {
        let e = Journal::parse(&format!("{head}{bad}\n"), spec_for).unwrap_err().full_message();
        assert!(e.starts_with("line 6: "), "{bad}: {e}");
    }
    assert!(Journal::parse("0 /note_off 1", spec_for).is_err());
    let e = Journal::parse("# chronus journal v2\n@dsp x\n@sample_rate 48000\n@block 64\n", spec_for)
        .unwrap_err();
    assert!(e.to_string().contains("@config"), "{e}");
    assert!(Journal::parse(&format!("{head}@frobnicate 3\n"), spec_for).is_err());
}

#[test]
fn scores_sort_stably_and_name_bad_lines() {
    let score = "# tune\n\n1.5 /note_off 1\n0.5 /note_on 1 440 0.5  # A4\n0.0 /set release 0.3\n0.5 /voice/set 1 cutoff 1200\n";
    let events = parse_score(score, &spec(8), &SETUP).unwrap();
    assert_eq!(
        events,
        vec![
            at(0, Command::Set { param: Param::Release, value: 0.3 }),
            at(24_000, Command::NoteOn { voice: 1, freq: 440.0, amp: 0.5 }),
            at(24_000, Command::VoiceSet { voice: 1, param: Param::Cutoff, value: 1200.0 }),
            at(72_000, Command::NoteOff { voice: 1 }),
        ]
    );
    let e = parse_score("0 /note_on 1 440 0.5\n-1 /note_off 1\n", &spec(8), &SETUP).unwrap_err();
    assert!(e.to_string().starts_with("line 2:"), "{e}");
    let e = parse_score("0.1 /note_on one 440 0.5\n", &spec(8), &SETUP).unwrap_err().full_message();
    assert!(e.starts_with("line 1: /note_on: argument 1 (voice)"), "{e}");
}

#[test]
fn the_render_follows_the_annotations() {
    let events = vec![
        at(0, Command::NoteOn { voice: 0, freq: 440.0, amp: 0.5 }),
        at(1_000, Command::NoteOn { voice: 1, freq: 660.0, amp: 0.5 }),
        at(3_000, Command::NoteOff { voice: 0 }),
    ];
    let s = spec(4);
    let plain = render_offline(&s, SETUP, &events, &Annotations::default(), 8_192, false).unwrap();
    assert!(plain.left.iter().any(|x| *x != 0.0));
    // Excising event 1 (the second note) changes what follows it only.
    let cut = Annotations { excised: vec![1], ..Annotations::default() };
    let excised = render_offline(&s, SETUP, &events, &cut, 8_192, false).unwrap();
    assert_eq!(excised.left[..1_000], plain.left[..1_000]);
    assert_ne!(excised.left[1_000..2_000], plain.left[1_000..2_000]);
    // A reset at 4096 silences what was sounding: the release tail is gone.
    let reset = Annotations { resets: vec![4_096], ..Annotations::default() };
    let r = render_offline(&s, SETUP, &events, &reset, 8_192, false).unwrap();
    assert_eq!(r.left[..4_096], plain.left[..4_096]);
    assert!(r.left[4_096..].iter().all(|x| *x == 0.0));
    assert!(plain.left[4_096..].iter().any(|x| *x != 0.0));
    // As played: stalls and gaps are silence, the rest unchanged.
    let silent = Annotations {
        stalls: vec![FrameSpan { first: 100, frames: 300 }],
        gaps: vec![FrameSpan { first: 5_000, frames: 10 }],
        ..Annotations::default()
    };
    let played = render_offline(&s, SETUP, &events, &silent, 8_192, true).unwrap();
    assert!(played.left[100..400].iter().all(|x| *x == 0.0));
    assert!(played.left[5_000..5_010].iter().all(|x| *x == 0.0));
    assert_eq!(played.left[400..5_000], plain.left[400..5_000]);
    assert_eq!(played.left[5_010..], plain.left[5_010..]);
    // The engine's fade: unchanged before, ramped across, silent after, in
    // both renders.
    let fade = FrameSpan { first: 2_000, frames: 480 };
    for as_played in [false, true] {
        let notes = Annotations { fade: Some(fade), ..Annotations::default() };
        let faded = render_offline(&s, SETUP, &events, &notes, 8_192, as_played).unwrap();
        assert_eq!(faded.left[..2_000], plain.left[..2_000]);
        assert!(faded.left[2_480..].iter().all(|x| *x == 0.0));
        let k = 2_240;
        assert_eq!(faded.left[k], plain.left[k] * fade_gain(fade, k as u64));
    }
}

#[test]
fn frames_played_from_an_outvoted_replica_are_skipped_and_nothing_else() {
    let events = vec![at(0, Command::NoteOn { voice: 0, freq: 440.0, amp: 0.5 })];
    let s = spec(4);
    let plain = render_offline(&s, SETUP, &events, &Annotations::default(), 4_096, false).unwrap();
    // A recording whose frames 1000..1256 are wrong (a diverged active heard
    // before the vote).
    let mut recorded = plain.left.clone();
    for x in &mut recorded[1_000..1_256] {
        *x += 1.0e-3;
    }
    let recording = || recorded.iter().copied().zip(plain.right.iter().copied());
    let stream = || events.iter().copied().map(Ok);
    let differs = first_difference(&s, SETUP, &Annotations::default(), stream(), recording(), 4_096).unwrap();
    assert_eq!(differs, Some(1_000));
    let wrong =
        Annotations { wrong: vec![FrameSpan { first: 1_000, frames: 256 }], ..Annotations::default() };
    assert_eq!(first_difference(&s, SETUP, &wrong, stream(), recording(), 4_096).unwrap(), None);
    // A span one frame short leaves the last wrong frame a difference.
    let short =
        Annotations { wrong: vec![FrameSpan { first: 1_000, frames: 255 }], ..Annotations::default() };
    assert_eq!(first_difference(&s, SETUP, &short, stream(), recording(), 4_096).unwrap(), Some(1_255));
}

#[test]
fn a_streamed_journal_reads_like_a_whole_one() {
    let j = journal();
    let mut text = Vec::new();
    j.write_to(&spec(3), &mut text).unwrap();
    let mut input = &text[..];
    let (header, lines) = read_header(&mut input).unwrap();
    assert_eq!(header, j.header);
    let mut streamed = Journal { header, events: Vec::new(), notes: Annotations::default() };
    for line in JournalReader::new(input, &spec(3), lines) {
        streamed.add(line.unwrap());
    }
    assert_eq!(streamed, j);
}
