//! `chronus render` from the command line: scores and journals to WAV.

use crate::util::*;
use chronus::audio::read_wav;

#[test]
fn renders_the_shipped_demo_score() {
    let _rt = crate::util::rt_lock();
    let dir = TempDir::new("render-demo");
    let out = dir.path("demo.wav");
    let run = chronus(&["render", "--score", demo_score().to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("0 events refused"));
    let (sr, l, r) = read_wav(&out).unwrap();
    assert_eq!(sr, 48_000);
    assert!(l.len() > 8 * 48_000);
    let peak = l.iter().chain(&r).fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(peak > 0.1 && peak < 1.0, "peak {peak}");
}

#[test]
fn a_journal_renders_exactly_like_the_score_it_came_from() {
    let _rt = crate::util::rt_lock();
    let dir = TempDir::new("render-journal");
    let spec = synth_spec(16);
    let setup = chronus::dsp::Setup { sample_rate: 44_100, block: 256 };
    let events = demo_events(&spec, &setup);
    // A machine stall recorded during the run: ignored by a plain render,
    // silenced by --as-played.
    let stall = chronus::journal::FrameSpan { first: 100_000, frames: 1_000 };
    let journal = chronus::journal::Journal {
        header: chronus::journal::JournalHeader::of(&spec, &setup),
        events,
        notes: chronus::journal::Annotations {
            end_frame: Some(300_000),
            stalls: vec![stall],
            ..Default::default()
        },
    };
    let mut text = Vec::new();
    journal.write_to(&spec, &mut text).unwrap();
    std::fs::write(dir.path("run.journal"), text).unwrap();

    let a = dir.path("a.wav");
    let b = dir.path("b.wav");
    let run = chronus(&[
        "render",
        "--journal",
        dir.path("run.journal").to_str().unwrap(),
        "-o",
        a.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let demo = demo_score();
    let run = chronus(&[
        "render",
        "--score",
        demo.to_str().unwrap(),
        "--sample-rate",
        "44100",
        "--voices",
        "16",
        "--duration",
        "6.802721088435374",
        "-o",
        b.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let (sr, la, ra) = read_wav(&a).unwrap();
    let (_, lb, rb) = read_wav(&b).unwrap();
    assert_eq!((sr, la.len()), (44_100, 300_000));
    assert_eq!(first_difference(&la, &lb), None);
    assert_eq!(first_difference(&ra, &rb), None);

    let c = dir.path("c.wav");
    let journal = dir.path("run.journal");
    let (lc, rc) = render_as_played(&journal, &c);
    let (from, to) = (stall.first as usize, (stall.first + stall.frames) as usize);
    assert!(la[from..to].iter().any(|s| *s != 0.0), "the demo is silent where the test stalls");
    for (played, rendered) in [(&lc, &la), (&rc, &ra)] {
        assert!(played[from..to].iter().all(|s| *s == 0.0));
        assert_eq!(first_difference(&played[..from], &rendered[..from]), None);
        assert_eq!(first_difference(&played[to..], &rendered[to..]), None);
    }
}

#[test]
fn bad_input_gets_a_one_line_error_and_a_distinct_exit_code() {
    let _rt = crate::util::rt_lock();
    let dir = TempDir::new("render-bad");
    let out = dir.path("x.wav");
    let bad = dir.path("bad.score");
    std::fs::write(&bad, "0.5 /note_on 1 440 0.5\n1.0 /note_on 1 440\n").unwrap();
    let run = chronus(&["render", "--score", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("line 2") && stderr.contains("/note_on takes 3 arguments"), "{stderr}");

    let run =
        chronus(&["render", "--score", dir.path("missing").to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(66));
    let run = chronus(&["render", "--score", demo_score().to_str().unwrap(), "-o", "/nonexistent-dir/x.wav"]);
    assert_eq!(run.status.code(), Some(73));
    let run = chronus(&["render", "-o", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
}
