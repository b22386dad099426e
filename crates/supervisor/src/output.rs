//! The output side: the real-time code that plays frame F from the active
//! ring, or from the standby when the active cannot supply it, and that is
//! also the engine's sequencer (it alone stamps commands and moves the
//! render limit, so the two can never race).
//!
//! [`OutputEngine::process`] never allocates, locks or logs, and waits for
//! audio only as long as its caller allows (not at all for a device
//! callback); the other syscalls it makes are futex wakes of sleeping
//! workers.

use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
use std::time::{Duration, Instant};

use chronus_dsp::{Command, TimedCommand};
use chronus_ipc::{AudioReader, CommandWriter};

use crate::report::FrameSpan;
use crate::shared::{JOINING, LIVE, Shared};

/// How long a free-running output waits for a frame before giving up.
const FREE_RUN_PATIENCE: Duration = Duration::from_secs(5);
/// Commands scheduled for later frames that the output thread holds.
pub(crate) const SCHEDULE_CAPACITY: usize = 1_024;

/// A command on its way to the output thread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Queued {
    pub command: Command,
    /// Apply at this frame (if not already past), else as soon as possible.
    pub at: Option<u64>,
}

/// The real-time output state.
#[derive(Debug)]
pub struct OutputEngine {
    shared: Arc<Shared>,
    commands: rtrb::Consumer<Queued>,
    journal: rtrb::Producer<TimedCommand>,
    record: Option<rtrb::Producer<f32>>,
    /// Spans of frames lost to machine stalls.
    stalls: rtrb::Producer<FrameSpan>,
    /// Until then, missing frames are the machine's doing: a period started
    /// too late, and the workers are catching up with what it released
    /// (see [`OutputEngine::begin_paced_period`]).
    stall_recovery_until: Option<Instant>,
    /// A stamped command waiting for space in a live worker's ring.
    pending: Option<TimedCommand>,
    /// Commands for later frames, unordered; `scheduled_len` are in use.
    scheduled: Box<[TimedCommand]>,
    scheduled_len: usize,
    frame: u64,
    limit: u64,
    lead: u64,
}

impl OutputEngine {
    pub(crate) fn new(
        shared: Arc<Shared>,
        commands: rtrb::Consumer<Queued>,
        journal: rtrb::Producer<TimedCommand>,
        record: Option<rtrb::Producer<f32>>,
        stalls: rtrb::Producer<FrameSpan>,
        lead: u64,
    ) -> Self {
        let filler = TimedCommand { frame: 0, command: Command::NoteOff { voice: 0 } };
        let engine = Self {
            shared,
            commands,
            journal,
            record,
            stalls,
            stall_recovery_until: None,
            pending: None,
            scheduled: vec![filler; SCHEDULE_CAPACITY].into_boxed_slice(),
            scheduled_len: 0,
            frame: 0,
            limit: lead,
            lead,
        };
        engine.publish_limit();
        engine
    }

    /// Frames played so far.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    fn publish_limit(&self) {
        for slot in &self.shared.slots {
            if slot.is_attached() {
                slot.region.publish_render_limit(self.limit);
            }
        }
        self.shared.limit.store(self.limit, Release);
    }

    /// Pushes a stamped command to every attached worker, all or none for
    /// live workers (false: a live worker's ring is full; try again next
    /// period). A joining worker whose ring overflows is flagged (its join
    /// fails).
    fn push_to_workers(&mut self, stamped: TimedCommand) -> bool {
        let live_full =
            self.shared.slots.iter().any(|s| s.state() == LIVE && CommandWriter::new(&s.region).space() == 0);
        if live_full {
            return false;
        }
        for slot in &self.shared.slots {
            match slot.state() {
                LIVE => {
                    let _ = CommandWriter::new(&slot.region).push(stamped);
                }
                // A joining worker's ring overflowed: flag it; the
                // supervisor sees the flag and restarts the join.
                JOINING if CommandWriter::new(&slot.region).push(stamped).is_err() => {
                    slot.region.control().error.store(1, Release);
                }
                _ => {}
            }
        }
        if self.journal.push(stamped).is_err() {
            self.shared.io_overruns.fetch_add(1, Relaxed);
        }
        true
    }

    /// Releases commands for frames below `next_limit`, stamped at their
    /// frame but never before the current limit (workers have rendered up
    /// to it): first the queued immediate ones, in arrival order, then the
    /// scheduled ones that fall due, in frame order. Stamps are therefore
    /// non-decreasing in every ring and in the journal.
    fn release_commands(&mut self, next_limit: u64) {
        if let Some(stamped) = self.pending.take()
            && !self.push_to_workers(stamped)
        {
            self.pending = Some(stamped);
            return;
        }
        while let Ok(queued) = self.commands.pop() {
            match queued.at {
                Some(frame) if frame >= next_limit && self.scheduled_len < self.scheduled.len() => {
                    self.scheduled[self.scheduled_len] = TimedCommand { frame, command: queued.command };
                    self.scheduled_len += 1;
                }
                at => {
                    // Due now (or the schedule is full: played late, counted).
                    if at.is_some_and(|f| f >= next_limit) {
                        self.shared.commands_late.fetch_add(1, Relaxed);
                    }
                    let stamped = TimedCommand { frame: self.limit, command: queued.command };
                    if !self.push_to_workers(stamped) {
                        self.pending = Some(stamped);
                        return;
                    }
                }
            }
        }
        loop {
            // The earliest scheduled command that falls due (ties: arrival order).
            let due = self.scheduled[..self.scheduled_len]
                .iter()
                .enumerate()
                .filter(|(_, c)| c.frame < next_limit)
                .min_by_key(|(i, c)| (c.frame, *i))
                .map(|(i, _)| i);
            let Some(i) = due else { return };
            let mut stamped = self.scheduled[i];
            stamped.frame = stamped.frame.max(self.limit);
            if !self.push_to_workers(stamped) {
                return;
            }
            // Keep arrival order among the rest: shift down.
            self.scheduled.copy_within(i + 1..self.scheduled_len, i);
            self.scheduled_len -= 1;
        }
    }

    /// Copies `[from, from + len)` from the first live slot (active first)
    /// that holds all of it.
    fn copy_from_live(&self, from: u64, left: &mut [f32], right: &mut [f32]) -> Option<usize> {
        let active = self.shared.active();
        for i in [active, active ^ 1] {
            let slot = &self.shared.slots[i];
            if slot.state() != LIVE {
                continue;
            }
            let mut reader = AudioReader::new(&slot.region);
            if reader.copy_frames(from, left, right).is_ok() {
                if reader.corrupt_samples() > 0 {
                    self.shared.corrupt_samples.fetch_add(reader.corrupt_samples(), Relaxed);
                }
                return Some(i);
            }
        }
        None
    }

    /// Waits until a live worker has rendered `frame`, or `deadline`.
    fn wait_for_any(&self, frame: u64, deadline: Instant) {
        loop {
            let now = Instant::now();
            if now >= deadline || self.shared.stop.load(Relaxed) {
                return;
            }
            // Never past the deadline: a late return would start the next
            // period late (see `begin_paced_period`).
            let patience = (deadline - now).min(Duration::from_millis(1));
            let active = self.shared.active();
            let slot = &self.shared.slots[active];
            if slot.state() == LIVE && AudioReader::new(&slot.region).wait_for(frame + 1, patience) {
                return;
            }
            if self
                .shared
                .slots
                .iter()
                .any(|s| s.state() == LIVE && AudioReader::new(&s.region).span().1 > frame)
            {
                return;
            }
            std::thread::sleep(Duration::from_micros(200).min(deadline.saturating_duration_since(now)));
        }
    }

    /// Records what the rings held at the first underrun (atomics only).
    fn note_underrun(&self, frame: u64, deadline: Instant) {
        let d = &self.shared.first_underrun;
        let s = &self.shared.slots;
        let late = Instant::now().saturating_duration_since(deadline).as_micros() as u64;
        let since_start = {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (now.as_nanos() as u64).saturating_sub(self.shared.start_unix_ns.load(Relaxed)) / 1_000
        };
        for (i, v) in [
            frame,
            s[0].region.audio_write_frame(),
            s[1].region.audio_write_frame(),
            u64::from(s[0].state()) | u64::from(s[1].state()) << 8,
            late,
            since_start,
        ]
        .into_iter()
        .enumerate()
        {
            d[i].store(v, Relaxed);
        }
    }

    /// Fills `left`/`right` with the next frames, waiting for them until
    /// `deadline` at the most.
    fn read_audio(&mut self, left: &mut [f32], right: &mut [f32], deadline: Option<Instant>) {
        let n = left.len() as u64;
        let deadline = deadline.unwrap_or_else(|| Instant::now() + FREE_RUN_PATIENCE);
        self.wait_for_any(self.frame + n - 1, deadline);
        if let Some(i) = self.copy_from_live(self.frame, left, right) {
            if i != self.shared.active() {
                self.shared.fallback_frames.fetch_add(n, Relaxed);
            }
            self.stall_recovery_until = None;
            return;
        }
        // Frame by frame: each from whoever has it, silence if nobody does.
        // Frames a stall cost, as spans: a worker may deliver the rest of
        // the period while this loop runs, so the gaps need not be a suffix.
        let recovering = self.stall_recovery_until.is_some_and(|until| Instant::now() < until);
        let mut stalled: Option<FrameSpan> = None;
        let mut complete = true;
        for k in 0..left.len() {
            let f = self.frame + k as u64;
            self.wait_for_any(f, deadline);
            match self.copy_from_live(f, &mut left[k..=k], &mut right[k..=k]) {
                Some(i) if i == self.shared.active() => {}
                Some(_) => {
                    self.shared.fallback_frames.fetch_add(1, Relaxed);
                }
                None => {
                    left[k] = 0.0;
                    right[k] = 0.0;
                    complete = false;
                    if self.shared.underrun_frames.fetch_add(1, Relaxed) == 0 {
                        self.note_underrun(f, deadline);
                    }
                    if recovering {
                        match &mut stalled {
                            Some(span) if span.first + span.frames == f => span.frames += 1,
                            _ => {
                                if let Some(span) = stalled.replace(FrameSpan { first: f, frames: 1 }) {
                                    self.note_stall(span);
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(span) = stalled {
            self.note_stall(span);
        }
        if complete {
            self.stall_recovery_until = None;
        }
    }

    /// Counts frames lost to a machine stall and hands their span on.
    fn note_stall(&mut self, span: FrameSpan) {
        self.shared.machine_stall_frames.fetch_add(span.frames, Relaxed);
        if self.stalls.push(span).is_err() {
            self.shared.io_overruns.fetch_add(1, Relaxed);
        }
    }

    /// For a paced driver, right after its sink said the next period is
    /// due (`frames` frames at `sample_rate`, to be delivered by
    /// `deadline`): notes whether the machine held the output thread off.
    ///
    /// A period that starts less than half a period before its deadline
    /// started too late for anything missing to be Chronus's doing: the
    /// output's own waiting never makes it that late (a period waits at
    /// most until its deadline, one period before the next one's), only a
    /// machine that did not run the output thread does (a descheduled
    /// virtual CPU, a stalled host). The periods played late release their
    /// frames to the workers all at once, and the workers must render them
    /// all, in order, before the next ones: frames missing while they catch
    /// up (for as long as the output was late, plus the lead, or until a
    /// period is complete again) are the stall's too. All of them are
    /// counted as machine stalls and left out of the bit-exact comparison.
    pub(crate) fn begin_paced_period(&mut self, deadline: Instant, frames: u32, sample_rate: u32) {
        let now = Instant::now();
        let duration =
            |frames: u64| Duration::from_nanos(frames * 1_000_000_000 / u64::from(sample_rate.max(1)));
        let Some(late_from) = deadline.checked_sub(duration(u64::from(frames)) / 2) else { return };
        if now > late_from {
            let until = now + (now - late_from) + duration(self.lead);
            self.stall_recovery_until = Some(self.stall_recovery_until.map_or(until, |u| u.max(until)));
        }
    }

    /// Marks the start of playing: frame 0 plays now.
    fn start_clock(&self) {
        if self.shared.start_unix_ns.load(Relaxed) == 0 {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            self.shared.start_unix_ns.store(now.as_nanos() as u64, Release);
            self.shared.running.store(true, Release);
        }
    }

    /// Produces the next `left.len()` frames: releases commands, reads the
    /// audio (waiting for missing frames until `deadline` at the most, or
    /// indefinitely-but-boundedly when `None`), frees ring space, moves the
    /// render limit. A device callback passes `Some(Instant::now())`: no
    /// waiting at all.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32], deadline: Option<Instant>) {
        let n = left.len().min(right.len());
        let (left, right) = (&mut left[..n], &mut right[..n]);
        self.shared.busy.store(true, SeqCst);
        self.start_clock();
        let next_limit = self.limit.max(self.frame + n as u64 + self.lead);
        self.release_commands(next_limit);
        self.read_audio(left, right, deadline);
        self.frame += n as u64;
        for slot in &self.shared.slots {
            if slot.is_attached() {
                AudioReader::new(&slot.region).consume_to(self.frame);
            }
        }
        self.limit = next_limit;
        self.publish_limit();
        if let Some(record) = &mut self.record {
            if deadline.is_none() {
                // Free-running: faster than real time, so it may outrun the
                // collector; nothing is due, so wait for room rather than
                // drop what the recording must hold.
                let give_up = Instant::now() + FREE_RUN_PATIENCE;
                while record.slots() < 2 * n && Instant::now() < give_up && !self.shared.stop.load(Relaxed) {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            for (l, r) in left.iter().zip(right.iter()) {
                if record.push(*l).is_err() || record.push(*r).is_err() {
                    self.shared.io_overruns.fetch_add(1, Relaxed);
                }
            }
        }
        self.shared.frame.store(self.frame, Release);
        self.shared.cycle.fetch_add(1, Release);
        self.shared.busy.store(false, SeqCst);
    }
}

impl Drop for OutputEngine {
    /// Whoever drives the output (the engine's thread, or a device callback
    /// whose stream was dropped) is done: nothing more will be queued.
    fn drop(&mut self) {
        self.shared.running.store(false, Release);
        self.shared.output_done.store(true, Release);
    }
}
