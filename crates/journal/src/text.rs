//! The command journal: every stamped event of a run, one per line, and
//! what else the render needs to reproduce what was played.
//!
//! ```text
//! # chronus journal v2
//! @dsp chronus-synth/1
//! @config {"voices":64}
//! @sample_rate 48000
//! @block 256
//! 0 /set release 0.3
//! 24000 /note_on 1 440 0.5
//! 72000 /note_off 1
//! @end 96000
//! ```
//! The header names the DSP and its configuration (JSON), the sample rate
//! and the block grid. Lines are `FRAME ADDRESS ARGS…` in the order the
//! events were stamped (frames never decrease); the address table of the
//! DSP reads and writes them, and floats are written in Rust's shortest
//! round-trip form, so a journal replays bit for bit. The n-th event line
//! (from 0) is event number n. Annotations, anywhere after the header:
//!
//! * `@stall FIRST FRAMES`: frames the machine did not let the output play
//!   in time (a stalled host); silence in the recording;
//! * `@gap FIRST FRAMES`: frames no worker supplied in time (lost by
//!   Chronus); silence in the recording;
//! * `@excise N`: event number N was never applied (cut out as a poison);
//! * `@reset FRAME`: the DSP restarted from silence at FRAME (no state was
//!   left to restore);
//! * `@fade FIRST FRAMES`: the engine faded its output to silence over these
//!   frames (when it stopped), and played silence after them;
//! * `@xrun FRAME FRAMES`: the audio device ran dry before FRAME and played
//!   FRAMES frames of silence there (measured): the recording has them, the
//!   render as played inserts them;
//! * `@wrong FIRST FRAMES`: frames played from a replica later found wrong
//!   (outvoted: it diverged silently, and the vote came after they were
//!   heard); the recording holds its wrong audio there, which no render
//!   reproduces: compared, they are skipped and counted;
//! * `@forbidden FRAME CALL`: a worker rendering the block at FRAME was
//!   killed by its sandbox for system call CALL (`openat`, `socket`, …): a
//!   fault, recorded for whoever reads the journal; the render ignores it;
//! * `@end FRAMES`: frames played; the render's length.
//!
//! `#` starts a comment.

use std::io::{BufRead, Write};

use chronus_dsp::{AddressTable, Arg, DspSpec, Setup, TimedEvent};

use crate::JournalError;

/// First line of every journal.
pub const JOURNAL_MAGIC: &str = "# chronus journal v2";

/// A run of consecutive frames: `[first, first + frames)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FrameSpan {
    /// The first frame.
    pub first: u64,
    /// How many frames.
    pub frames: u64,
}

/// The gain of the engine's fade `fade` at `frame`: 1 before it, falling
/// linearly to 0 across it, 0 after. The output and the offline render both
/// use exactly this, so a faded recording still compares bit for bit.
pub fn fade_gain(fade: FrameSpan, frame: u64) -> f32 {
    if frame < fade.first {
        1.0
    } else if frame >= fade.end() || fade.frames == 0 {
        0.0
    } else {
        (fade.end() - frame) as f32 / fade.frames as f32
    }
}

impl FrameSpan {
    /// One past the last frame.
    pub fn end(&self) -> u64 {
        self.first.saturating_add(self.frames)
    }
}

/// What a journal is about: the DSP, its configuration and the setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalHeader {
    /// [`chronus_dsp::Dsp::NAME`] of the DSP.
    pub dsp: String,
    /// Its configuration, JSON.
    pub config: String,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Frames per block (the render grid).
    pub block: u32,
}

impl JournalHeader {
    /// The header of a run of `spec` at `setup`.
    pub fn of(spec: &DspSpec, setup: &Setup) -> Self {
        Self {
            dsp: spec.name().to_owned(),
            config: spec.config_json().to_owned(),
            sample_rate: setup.sample_rate,
            block: setup.block,
        }
    }

    /// The setup it names.
    pub fn setup(&self) -> Setup {
        Setup { sample_rate: self.sample_rate, block: self.block }
    }
}

/// Everything but the events that the render needs to reproduce a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    /// Frames played, if the run ended cleanly.
    pub end_frame: Option<u64>,
    /// Machine stalls (`@stall`), in order.
    pub stalls: Vec<FrameSpan>,
    /// Frames Chronus did not supply (`@gap`), in order.
    pub gaps: Vec<FrameSpan>,
    /// Event numbers never applied (`@excise`), ascending.
    pub excised: Vec<u64>,
    /// Frames at which the DSP restarted from silence (`@reset`), ascending.
    pub resets: Vec<u64>,
    /// The engine's fade to silence (`@fade`), if it faded out.
    pub fade: Option<FrameSpan>,
    /// Device xruns (`@xrun`): before frame `first`, the device played
    /// `frames` frames of silence. In order.
    pub xruns: Vec<FrameSpan>,
    /// Workers the sandbox killed (`@forbidden`): the block's frame and the
    /// system call's name. In order.
    pub forbidden: Vec<(u64, String)>,
    /// Frames played from a replica later outvoted (`@wrong`), in order.
    pub wrong: Vec<FrameSpan>,
}

impl Annotations {
    /// Frames that are silence in the recording: stalls and gaps, merged
    /// and in order.
    pub fn silences(&self) -> Vec<FrameSpan> {
        let mut all: Vec<FrameSpan> = self.stalls.iter().chain(&self.gaps).copied().collect();
        all.sort_by_key(|s| s.first);
        let mut merged: Vec<FrameSpan> = Vec::with_capacity(all.len());
        for s in all {
            match merged.last_mut() {
                Some(last) if s.first <= last.end() => last.frames = last.end().max(s.end()) - last.first,
                _ => merged.push(s),
            }
        }
        merged
    }

    /// Puts every list in frame (or event-number) order, as renderers
    /// expect; duplicate cuts are merged.
    pub fn sort(&mut self) {
        self.excised.sort_unstable();
        self.excised.dedup();
        self.resets.sort_unstable();
        self.stalls.sort_by_key(|s| s.first);
        self.gaps.sort_by_key(|s| s.first);
        self.xruns.sort_by_key(|s| s.first);
        self.wrong.sort_by_key(|s| s.first);
        self.forbidden.sort();
    }

    /// `left`/`right` (a render of frames `0..`) as the device played them:
    /// each xrun's silence inserted before its frame.
    pub fn insert_xruns(&self, left: &mut Vec<f32>, right: &mut Vec<f32>) {
        for x in self.xruns.iter().rev() {
            let at = (x.first as usize).min(left.len());
            let silence = std::iter::repeat_n(0.0f32, x.frames as usize);
            left.splice(at..at, silence.clone());
            right.splice(at..at, silence);
        }
    }
}

/// One line of a journal's body.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// A stamped event.
    Event(TimedEvent),
    /// `@stall FIRST FRAMES`.
    Stall(FrameSpan),
    /// `@gap FIRST FRAMES`.
    Gap(FrameSpan),
    /// `@excise N`.
    Excise(u64),
    /// `@reset FRAME`.
    Reset(u64),
    /// `@fade FIRST FRAMES`.
    Fade(FrameSpan),
    /// `@xrun FRAME FRAMES`.
    Xrun(FrameSpan),
    /// `@forbidden FRAME CALL`.
    Forbidden(u64, String),
    /// `@wrong FIRST FRAMES`.
    Wrong(FrameSpan),
    /// `@end FRAMES`.
    End(u64),
}

/// Types a token: a whole number is an `Int`, another number a `Float`,
/// the rest a `Str`.
pub(crate) fn typed_arg(token: &str) -> Arg<'_> {
    if let Ok(i) = token.parse::<i64>() {
        Arg::Int(i)
    } else if let Ok(f) = token.parse::<f32>() {
        Arg::Float(f)
    } else {
        Arg::Str(token)
    }
}

/// The tokens of a line with its `#` comment stripped (none for a blank
/// line).
pub(crate) fn tokens(raw: &str) -> Vec<&str> {
    raw.split('#').next().unwrap_or("").split_whitespace().collect()
}

/// Formats one event line (without newline); `None` for an event the table
/// does not know.
pub fn format_event(table: &AddressTable, event: &TimedEvent) -> Option<String> {
    use std::fmt::Write as _;
    let (path, args) = table.format(&event.event)?;
    let mut line = format!("{} {path}", event.frame);
    for arg in args {
        let _ = match arg {
            Arg::Int(i) => write!(line, " {i}"),
            Arg::Float(f) => write!(line, " {f}"),
            Arg::Str(s) => write!(line, " {s}"),
        };
    }
    Some(line)
}

fn whole<T: std::str::FromStr>(line: usize, what: &str, token: &str) -> Result<T, JournalError> {
    token.parse().map_err(|_| JournalError::Syntax {
        line,
        message: format!("{what}: '{token}' is not a whole number"),
    })
}

/// Reads the header lines from `input`; returns the header and how many
/// lines it took.
///
/// # Errors
/// [`JournalError::Header`] if the magic line or a setting is missing or
/// wrong.
pub fn read_header(input: &mut impl BufRead) -> Result<(JournalHeader, usize), JournalError> {
    let mut text = String::new();
    input.read_line(&mut text)?;
    if text.trim() != JOURNAL_MAGIC {
        return Err(JournalError::Header(format!("the first line must be '{JOURNAL_MAGIC}'")));
    }
    let (mut dsp, mut config, mut sample_rate, mut block) = (None, None, None, None);
    let mut lines = 1;
    while dsp.is_none() || config.is_none() || sample_rate.is_none() || block.is_none() {
        text.clear();
        if input.read_line(&mut text)? == 0 {
            break;
        }
        lines += 1;
        let t = text.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (key, value) = t.split_once(char::is_whitespace).map_or((t, ""), |(k, v)| (k, v.trim()));
        match key {
            "@dsp" => dsp = Some(value.to_owned()),
            "@config" => config = Some(value.to_owned()),
            "@sample_rate" => sample_rate = Some(whole(lines, "@sample_rate", value)?),
            "@block" => block = Some(whole(lines, "@block", value)?),
            _ => {
                return Err(JournalError::Header(format!(
                    "line {lines}: expected a header setting, got '{t}'"
                )));
            }
        }
    }
    let missing = |what: &str| JournalError::Header(format!("missing @{what}"));
    let header = JournalHeader {
        dsp: dsp.ok_or_else(|| missing("dsp"))?,
        config: config.ok_or_else(|| missing("config"))?,
        sample_rate: sample_rate.ok_or_else(|| missing("sample_rate"))?,
        block: block.filter(|b| *b > 0).ok_or_else(|| missing("block (a positive frame count)"))?,
    };
    Ok((header, lines))
}

/// Reads a journal's body line by line (after [`read_header`]), so a long
/// journal never has to be in memory.
#[derive(Debug)]
pub struct JournalReader<R: BufRead> {
    input: R,
    table: AddressTable,
    line: usize,
    last_frame: u64,
    text: String,
}

impl<R: BufRead> JournalReader<R> {
    /// Reads the body from `input`, whose header (`header_lines` lines) was
    /// read already, with `spec`'s address table.
    pub fn new(input: R, spec: &DspSpec, header_lines: usize) -> Self {
        Self { input, table: spec.table().clone(), line: header_lines, last_frame: 0, text: String::new() }
    }

    fn parse(&mut self) -> Result<Option<Line>, JournalError> {
        let line = self.line;
        let t = tokens(&self.text);
        let Some(first) = t.first() else { return Ok(None) };
        let syntax = |message: String| JournalError::Syntax { line, message };
        let span = |t: &[&str]| match t {
            [_, a, b] => Ok(FrameSpan { first: whole(line, t[0], a)?, frames: whole(line, t[0], b)? }),
            _ => Err(syntax(format!("{} takes FIRST FRAMES", t[0]))),
        };
        let one = |t: &[&str]| match t {
            [_, a] => whole(line, t[0], a),
            _ => Err(syntax(format!("{} takes one whole number", t[0]))),
        };
        Ok(Some(match *first {
            "@stall" => Line::Stall(span(&t)?),
            "@gap" => Line::Gap(span(&t)?),
            "@excise" => Line::Excise(one(&t)?),
            "@reset" => Line::Reset(one(&t)?),
            "@fade" => Line::Fade(span(&t)?),
            "@xrun" => Line::Xrun(span(&t)?),
            "@wrong" => Line::Wrong(span(&t)?),
            "@forbidden" => match t[..] {
                [_, frame, call]
                    if !call.is_empty() && call.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                {
                    Line::Forbidden(whole(line, "@forbidden", frame)?, call.to_owned())
                }
                _ => return Err(syntax("@forbidden takes FRAME CALL (a system call's name)".into())),
            },
            "@end" => Line::End(one(&t)?),
            s if s.starts_with('@') => return Err(syntax(format!("unknown annotation {s}"))),
            _ => {
                let frame: u64 =
                    first.parse().map_err(|_| syntax(format!("'{first}' is not a frame number")))?;
                if frame < self.last_frame {
                    return Err(syntax("frames must not go backwards".into()));
                }
                let Some((path, args)) = t[1..].split_first() else {
                    return Err(syntax("a frame must be followed by an address".into()));
                };
                let args: Vec<Arg<'_>> = args.iter().map(|a| typed_arg(a)).collect();
                let event =
                    self.table.parse(path, &args).map_err(|source| JournalError::Command { line, source })?;
                self.last_frame = frame;
                Line::Event(TimedEvent { frame, event })
            }
        }))
    }
}

impl<R: BufRead> Iterator for JournalReader<R> {
    type Item = Result<Line, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.text.clear();
            match self.input.read_line(&mut self.text) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e.into())),
            }
            self.line += 1;
            match self.parse() {
                Ok(None) => continue,
                Ok(Some(line)) => return Some(Ok(line)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// A whole journal in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Journal {
    /// The DSP, configuration and setup.
    pub header: JournalHeader,
    /// The stamped events, in stamp order.
    pub events: Vec<TimedEvent>,
    /// Everything else the render needs.
    pub notes: Annotations,
}

impl Journal {
    /// Parses a journal; `spec_for` makes the DSP spec its header names.
    ///
    /// # Errors
    /// [`JournalError`] naming the line, or what `spec_for` returned.
    pub fn parse(
        text: &str,
        spec_for: impl FnOnce(&JournalHeader) -> Result<DspSpec, JournalError>,
    ) -> Result<(Self, DspSpec), JournalError> {
        let mut input = text.as_bytes();
        let (header, lines) = read_header(&mut input)?;
        let spec = spec_for(&header)?;
        let mut journal = Self { header, events: Vec::new(), notes: Annotations::default() };
        for line in JournalReader::new(input, &spec, lines) {
            journal.add(line?);
        }
        journal.notes.sort();
        Ok((journal, spec))
    }

    /// Adds one line's content.
    pub fn add(&mut self, line: Line) {
        match line {
            Line::Event(e) => self.events.push(e),
            Line::Stall(s) => self.notes.stalls.push(s),
            Line::Gap(s) => self.notes.gaps.push(s),
            Line::Excise(n) => self.notes.excised.push(n),
            Line::Reset(f) => self.notes.resets.push(f),
            Line::Fade(s) => self.notes.fade = Some(s),
            Line::Xrun(s) => self.notes.xruns.push(s),
            Line::Forbidden(f, call) => self.notes.forbidden.push((f, call)),
            Line::Wrong(s) => self.notes.wrong.push(s),
            Line::End(f) => self.notes.end_frame = Some(f),
        }
    }

    /// Writes the journal in its text form with `spec`'s table.
    ///
    /// # Errors
    /// Any I/O error of `out`.
    pub fn write_to(&self, spec: &DspSpec, out: &mut impl Write) -> std::io::Result<()> {
        let mut w = JournalWriter::new(out, &self.header, spec)?;
        for e in &self.events {
            w.append(e)?;
        }
        for s in &self.notes.stalls {
            w.stall(*s)?;
        }
        for s in &self.notes.gaps {
            w.gap(*s)?;
        }
        for n in &self.notes.excised {
            w.excise(*n)?;
        }
        for f in &self.notes.resets {
            w.reset(*f)?;
        }
        if let Some(f) = self.notes.fade {
            w.fade(f)?;
        }
        for x in &self.notes.xruns {
            w.xrun(*x)?;
        }
        for (frame, call) in &self.notes.forbidden {
            w.forbidden(*frame, call)?;
        }
        for s in &self.notes.wrong {
            w.wrong(*s)?;
        }
        if let Some(end) = self.notes.end_frame {
            w.finish(end)?;
        }
        Ok(())
    }
}

/// Appends to a journal as a run goes.
#[derive(Debug)]
pub struct JournalWriter<W: Write> {
    out: W,
    table: AddressTable,
}

impl<W: Write> JournalWriter<W> {
    /// Writes the header.
    ///
    /// # Errors
    /// Any I/O error of `out`.
    pub fn new(mut out: W, header: &JournalHeader, spec: &DspSpec) -> std::io::Result<Self> {
        writeln!(
            out,
            "{JOURNAL_MAGIC}\n@dsp {}\n@config {}\n@sample_rate {}\n@block {}",
            header.dsp, header.config, header.sample_rate, header.block
        )?;
        Ok(Self { out, table: spec.table().clone() })
    }

    /// Appends one event.
    ///
    /// # Errors
    /// Any I/O error of the output; `InvalidData` for an event the table
    /// does not know (the engine checks every event before stamping it, so
    /// this means a bug).
    pub fn append(&mut self, event: &TimedEvent) -> std::io::Result<()> {
        match format_event(&self.table, event) {
            Some(line) => writeln!(self.out, "{line}"),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("event address #{} is not in the table", event.event.address),
            )),
        }
    }

    /// `@stall`.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn stall(&mut self, span: FrameSpan) -> std::io::Result<()> {
        writeln!(self.out, "@stall {} {}", span.first, span.frames)
    }

    /// `@gap`.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn gap(&mut self, span: FrameSpan) -> std::io::Result<()> {
        writeln!(self.out, "@gap {} {}", span.first, span.frames)
    }

    /// `@wrong`.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn wrong(&mut self, span: FrameSpan) -> std::io::Result<()> {
        writeln!(self.out, "@wrong {} {}", span.first, span.frames)
    }

    /// `@excise`.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn excise(&mut self, event_number: u64) -> std::io::Result<()> {
        writeln!(self.out, "@excise {event_number}")
    }

    /// `@reset`.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn reset(&mut self, frame: u64) -> std::io::Result<()> {
        writeln!(self.out, "@reset {frame}")
    }

    /// `@fade`.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn fade(&mut self, span: FrameSpan) -> std::io::Result<()> {
        writeln!(self.out, "@fade {} {}", span.first, span.frames)
    }

    /// `@xrun`.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn xrun(&mut self, span: FrameSpan) -> std::io::Result<()> {
        writeln!(self.out, "@xrun {} {}", span.first, span.frames)
    }

    /// `@forbidden`: a worker rendering the block at `frame` was killed
    /// by its sandbox for system call `call`.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn forbidden(&mut self, frame: u64, call: &str) -> std::io::Result<()> {
        writeln!(self.out, "@forbidden {frame} {call}")
    }

    /// Flushes what was written so far.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// `@end` and a flush.
    ///
    /// # Errors
    /// Any I/O error of the output.
    pub fn finish(&mut self, end_frame: u64) -> std::io::Result<()> {
        writeln!(self.out, "@end {end_frame}")?;
        self.out.flush()
    }
}
