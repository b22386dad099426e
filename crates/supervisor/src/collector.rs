//! The collector thread: takes the stamped events, the notes (silences,
//! excisions, resets) and the played audio off the real-time queues, keeps
//! what it was asked to keep, and writes the journal and the WAV recording.

use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::Duration;

use chronus_dsp::{DspSpec, TimedEvent};
use chronus_journal::{Annotations, JournalHeader, JournalWriter};

use crate::output::sequencer::Stamped;
use crate::report::FrameSpan;
use crate::shared::Shared;

/// Something the journal records besides events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Note {
    /// Frames the machine did not let the output play in time.
    Stall(FrameSpan),
    /// Frames no worker supplied in time.
    Gap(FrameSpan),
    /// The DSP restarted from silence at this frame.
    Reset(u64),
    /// The engine faded to silence over these frames.
    Fade(FrameSpan),
    /// The device played `frames` frames of silence before frame `first`.
    Xrun(FrameSpan),
    /// Event number N was cut out as a poison: never applied.
    Excise(u64),
    /// A worker rendering the block at this frame was killed by its sandbox
    /// for this system call (its number).
    Forbidden(u64, u32),
    /// Frames played from a replica later outvoted (its wrong audio).
    Wrong(FrameSpan),
}

impl Default for Note {
    fn default() -> Self {
        Self::Reset(0)
    }
}

/// What the collector gathered.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub events: Vec<TimedEvent>,
    pub left: Vec<f32>,
    pub right: Vec<f32>,
    pub notes: Annotations,
    pub errors: Vec<String>,
}

pub(crate) struct Collector {
    pub shared: Arc<Shared>,
    pub spec: DspSpec,
    pub header: JournalHeader,
    pub journal: rtrb::Consumer<Stamped>,
    pub record: Option<rtrb::Consumer<f32>>,
    /// Notes from the output thread, and from the supervisor thread.
    pub notes: [rtrb::Consumer<Note>; 2],
    pub keep_audio: bool,
    pub keep_journal: bool,
    pub wav_path: Option<PathBuf>,
    pub journal_path: Option<PathBuf>,
}

fn merge(spans: &mut Vec<FrameSpan>, span: FrameSpan) {
    match spans.last_mut() {
        Some(last) if last.first + last.frames == span.first => last.frames += span.frames,
        _ => spans.push(span),
    }
}

impl Collector {
    pub fn run(mut self) -> Collected {
        let mut out = Collected::default();
        let mut journal_file = self.journal_path.as_ref().and_then(|p| {
            std::fs::File::create(p)
                .and_then(|f| JournalWriter::new(BufWriter::new(f), &self.header, &self.spec))
                .map_err(|e| out.errors.push(format!("{}: {e}", p.display())))
                .ok()
        });
        let mut wav = self.wav_path.as_ref().and_then(|p| {
            chronus_audio::WavFileWriter::create(p, self.header.sample_rate)
                .map_err(|e| out.errors.push(format!("{}: {e}", p.display())))
                .ok()
        });
        let mut pending_sample: Option<f32> = None;
        let mut next_seq = 0u64;
        loop {
            // Read before draining: once set, nothing more is queued.
            let finished = self.shared.output_done.load(Acquire);
            while let Ok(s) = self.journal.pop() {
                if s.seq != next_seq {
                    // A lost entry would renumber every later one.
                    self.shared.io_overruns.fetch_add(1, Relaxed);
                }
                next_seq = s.seq + 1;
                if let Some(j) = &mut journal_file
                    && let Err(e) = j.append(&s.event)
                {
                    out.errors.push(format!("journal: {e}"));
                    journal_file = None;
                }
                if self.keep_journal {
                    out.events.push(s.event);
                }
            }
            for queue in &mut self.notes {
                while let Ok(note) = queue.pop() {
                    let written = journal_file.as_mut().map(|j| match note {
                        Note::Stall(span) => j.stall(span),
                        Note::Gap(span) => j.gap(span),
                        Note::Reset(f) => j.reset(f),
                        Note::Fade(span) => j.fade(span),
                        Note::Xrun(span) => j.xrun(span),
                        Note::Wrong(span) => j.wrong(span),
                        Note::Excise(n) => j.excise(n),
                        Note::Forbidden(frame, call) => {
                            j.forbidden(frame, &chronus_worker::sandbox::call_name(call))
                        }
                    });
                    if let Some(Err(e)) = written {
                        out.errors.push(format!("journal: {e}"));
                        journal_file = None;
                    }
                    let n = &mut out.notes;
                    match note {
                        Note::Stall(span) => merge(&mut n.stalls, span),
                        Note::Gap(span) => merge(&mut n.gaps, span),
                        Note::Reset(f) => n.resets.push(f),
                        Note::Fade(span) => n.fade = Some(span),
                        Note::Xrun(span) => n.xruns.push(span),
                        Note::Wrong(span) => merge(&mut n.wrong, span),
                        Note::Excise(seq) => n.excised.push(seq),
                        Note::Forbidden(frame, call) => {
                            n.forbidden.push((frame, chronus_worker::sandbox::call_name(call)))
                        }
                    }
                }
            }
            if let Some(rec) = &mut self.record {
                while let Ok(s) = rec.pop() {
                    if let Some(w) = &mut wav
                        && let Err(e) = w.write_sample(s)
                    {
                        out.errors.push(format!("recording: {e}"));
                        wav = None;
                    }
                    if self.keep_audio {
                        match pending_sample.take() {
                            None => pending_sample = Some(s),
                            Some(l) => {
                                out.left.push(l);
                                out.right.push(s);
                            }
                        }
                    }
                }
            }
            if let Some(j) = &mut journal_file
                && let Err(e) = j.flush()
            {
                out.errors.push(format!("journal: {e}"));
                journal_file = None;
            }
            if finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let frames = self.shared.frame.load(Acquire);
        out.notes.end_frame = Some(frames);
        out.notes.excised.sort_unstable();
        out.notes.resets.sort_unstable();
        if let Some(mut j) = journal_file
            && let Err(e) = j.finish(frames)
        {
            out.errors.push(format!("journal: {e}"));
        }
        if let Some(w) = wav
            && let Err(e) = w.finalize()
        {
            out.errors.push(format!("recording: {e}"));
        }
        out
    }
}
