//! The collector thread: takes the stamped commands and the played audio
//! off the output thread's queues, keeps them, and writes the journal and
//! the WAV recording.

use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Acquire;
use std::time::Duration;

use chronus_dsp::TimedCommand;
use chronus_journal::JournalWriter;

use crate::report::FrameSpan;
use crate::shared::Shared;

/// What the collector gathered.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub commands: Vec<TimedCommand>,
    pub left: Vec<f32>,
    pub right: Vec<f32>,
    /// Frames lost to machine stalls, adjacent spans merged.
    pub stalls: Vec<FrameSpan>,
    pub errors: Vec<String>,
}

pub(crate) struct Collector {
    pub shared: Arc<Shared>,
    pub journal: rtrb::Consumer<TimedCommand>,
    pub record: Option<rtrb::Consumer<f32>>,
    pub stalls: rtrb::Consumer<FrameSpan>,
    pub keep_audio: bool,
    pub keep_journal: bool,
    pub wav_path: Option<PathBuf>,
    pub journal_path: Option<PathBuf>,
    pub sample_rate: u32,
    pub voices: u32,
}

impl Collector {
    pub fn run(mut self) -> Collected {
        let mut out = Collected::default();
        let mut journal_file = self.journal_path.as_ref().and_then(|p| {
            std::fs::File::create(p)
                .and_then(|f| JournalWriter::new(BufWriter::new(f), self.sample_rate, self.voices))
                .map_err(|e| out.errors.push(format!("{}: {e}", p.display())))
                .ok()
        });
        let mut wav = self.wav_path.as_ref().and_then(|p| {
            chronus_audio::WavFileWriter::create(p, self.sample_rate)
                .map_err(|e| out.errors.push(format!("{}: {e}", p.display())))
                .ok()
        });
        let mut pending_sample: Option<f32> = None;
        loop {
            // Read before draining: once set, nothing more is queued.
            let finished = self.shared.output_done.load(Acquire);
            while let Ok(c) = self.journal.pop() {
                if let Some(j) = &mut journal_file
                    && let Err(e) = j.append(&c)
                {
                    out.errors.push(format!("journal: {e}"));
                    journal_file = None;
                }
                if self.keep_journal {
                    out.commands.push(c);
                }
            }
            while let Ok(span) = self.stalls.pop() {
                if let Some(j) = &mut journal_file
                    && let Err(e) = j.stall(span)
                {
                    out.errors.push(format!("journal: {e}"));
                    journal_file = None;
                }
                match out.stalls.last_mut() {
                    Some(last) if last.first + last.frames == span.first => last.frames += span.frames,
                    _ => out.stalls.push(span),
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
            if finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let frames = self.shared.frame.load(Acquire);
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
