//! A run's files checked: the recording on disk against the render of the
//! journal on disk, both streamed.

use chronus_dsp::{DspSpec, Setup, TimedEvent};
use chronus_journal::{Annotations, Journal, JournalError, JournalHeader};

/// What [`verify_files`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct FileCheck {
    /// The first frame where the recording differs from the journal's
    /// render (machine stalls and device xruns left out), if any.
    pub first_difference: Option<u64>,
    /// The journal's annotations (gaps, stalls, cuts, resets, the end).
    pub notes: Annotations,
    /// Events in the journal.
    pub events: u64,
    /// The events cut out as poisons (`@excise`), with their frames.
    pub cut: Vec<TimedEvent>,
}

/// Compares a recording on disk with the render of a journal on disk,
/// both streamed (the journal is read once for its annotations, once more
/// for the events cut out if there are any, and once for its events), so a
/// run of any length is checked in constant memory. `spec_for` makes the DSP the journal's header names. With
/// `as_played` the journal's gaps (frames lost) render as the silence that
/// was played, for a caller that accounts for lost frames apart.
///
/// # Errors
/// [`JournalError`] for an unreadable or malformed journal, or a recording
/// that cannot be read (as [`JournalError::Io`]).
pub fn verify_files(
    journal: &std::path::Path,
    recording: &std::path::Path,
    spec_for: impl Fn(&JournalHeader) -> Result<DspSpec, JournalError>,
    as_played: bool,
) -> Result<FileCheck, JournalError> {
    use chronus_journal::{JournalReader, Line, read_header};
    let open = || -> Result<_, JournalError> {
        let mut input = std::io::BufReader::new(std::fs::File::open(journal)?);
        let (header, lines) = read_header(&mut input)?;
        Ok((input, header, lines))
    };
    let (input, header, lines) = open()?;
    let spec = spec_for(&header)?;
    let setup = Setup { sample_rate: header.sample_rate, block: header.block };
    let mut skeleton = Journal { header, events: Vec::new(), notes: Annotations::default() };
    let mut events = 0u64;
    for line in JournalReader::new(input, &spec, lines) {
        match line? {
            Line::Event(_) => events += 1,
            other => skeleton.add(other),
        }
    }
    skeleton.notes.sort();
    let notes = skeleton.notes;
    // The events cut out, from a pass of their own: the comparison stops at
    // the first difference, and cuts after it must still be known (a soak
    // excuses what a hang poison costs by them).
    let mut cut = Vec::with_capacity(notes.excised.len());
    if !notes.excised.is_empty() {
        let (input, _, lines) = open()?;
        let mut seq = 0u64;
        for line in JournalReader::new(input, &spec, lines) {
            if let Line::Event(e) = line? {
                if notes.excised.binary_search(&seq).is_ok() {
                    cut.push(e);
                }
                seq += 1;
            }
        }
    }
    let (input, _, lines) = open()?;
    let stream = JournalReader::new(input, &spec, lines).filter_map(|line| match line {
        Ok(Line::Event(e)) => Some(Ok(e)),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    });
    let (_, frames) = chronus_audio::wav_frames(recording)
        .map_err(|e| JournalError::Io(std::io::Error::other(e.to_string())))?;
    let end = notes.end_frame.unwrap_or(0);
    let first_difference = chronus_journal::compare(&spec, setup, &notes, stream, frames, end, as_played)?;
    Ok(FileCheck { first_difference, notes, events, cut })
}
