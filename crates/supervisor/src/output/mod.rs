//! The output side: the real-time code that plays frame F from the active
//! replica's ring, or from another live replica when the active cannot
//! supply it, and that is also the engine's sequencer (it alone stamps
//! events and moves the render limit, so the two can never race).
//!
//! [`OutputEngine::process`] never allocates, locks or logs, and waits for
//! audio only as long as its caller allows (not at all for a device
//! callback); the other syscalls it makes are futex wakes of sleeping
//! workers.

mod coalesce;
pub(crate) mod sequencer;
pub(crate) mod sink;

use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
use std::time::{Duration, Instant};

use chronus_ipc::AudioReader;

use crate::collector::Note;
use crate::report::FrameSpan;
use crate::shared::{DEAD, LIVE, Shared};
use sequencer::Sequencer;

/// Frames of the engine's fade to silence when it stops (10 ms at 48 kHz).
pub const FADE_FRAMES: u64 = 480;

/// How long a free-running output waits for a frame before giving up.
const FREE_RUN_PATIENCE: Duration = Duration::from_secs(5);

/// The real-time output state.
pub struct OutputEngine {
    shared: Arc<Shared>,
    sequencer: Sequencer,
    record: Option<rtrb::Producer<f32>>,
    /// Frames played as silence (machine stalls and gaps), for the journal.
    notes: rtrb::Producer<Note>,
    /// Until then, missing frames are the machine's doing: a period started
    /// too late, and the workers are catching up with what it released
    /// (see [`OutputEngine::begin_paced_period`]).
    stall_recovery_until: Option<Instant>,
    frame: u64,
    limit: u64,
    /// The engine's fade to silence, once started.
    fade: Option<FrameSpan>,
    /// The next period is due after its frames were to play (a paced
    /// output held off past its device's buffer): it is silence.
    missed: bool,
    /// Frames the workers may render ahead of what is played.
    lead: u64,
    /// The largest number of frames the driver says one call will ask for
    /// (the device's period): the lead covers at least that much.
    period: u64,
    /// The driver calls once per period, a period apart (JACK): only `lead`
    /// beyond each call need be rendered by the next.
    steady: bool,
    block: u64,
    sample_rate: u32,
    /// In-cycle ([`crate::Latency::InCycle`]): the share of a call's frames'
    /// duration it may wait for them.
    in_cycle: Option<f64>,
}

impl std::fmt::Debug for OutputEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputEngine")
            .field("frame", &self.frame)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl OutputEngine {
    pub(crate) fn new(
        shared: Arc<Shared>,
        sequencer: Sequencer,
        record: Option<rtrb::Producer<f32>>,
        notes: rtrb::Producer<Note>,
        cfg: &crate::EngineConfig,
    ) -> Self {
        let block = u64::from(cfg.block);
        let in_cycle = cfg.latency.budget();
        // In-cycle, nothing is rendered ahead: the first call releases the
        // first frames.
        let lead = if in_cycle.is_some() { 0 } else { u64::from(cfg.lead_blocks) * block };
        let mut engine = Self {
            shared,
            sequencer,
            record,
            notes,
            stall_recovery_until: None,
            frame: 0,
            limit: 0,
            fade: None,
            missed: false,
            lead,
            period: 0,
            steady: false,
            block,
            sample_rate: cfg.sample_rate,
            in_cycle,
        };
        engine.limit = engine.aligned(lead);
        engine.publish_limit();
        engine
    }

    /// Frames played so far.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// `frame` rounded up to a whole block (workers render whole blocks).
    fn aligned(&self, frame: u64) -> u64 {
        frame.div_ceil(self.block) * self.block
    }

    fn publish_limit(&self) {
        self.shared.bus.publish_render_limit(self.limit);
        self.shared.limit.store(self.limit, Release);
        for slot in &self.shared.slots {
            if slot.is_attached() {
                slot.region.wake_worker();
            }
        }
    }

    /// The slots whose audio may be played: the live ones, active first,
    /// then the dead ones not yet refilled (what a worker wrote before it
    /// died is still good: after a double fault, it plays until a
    /// replacement takes over).
    fn readable(&self) -> impl Iterator<Item = usize> + '_ {
        let active = self.shared.active();
        let slots = &self.shared.slots;
        let others =
            move |state: u8| (0..slots.len()).filter(move |&i| i != active && slots[i].state() == state);
        std::iter::once(active)
            .filter(|&a| slots[a].state() == LIVE)
            .chain(others(LIVE))
            .chain(std::iter::once(active).filter(|&a| slots[a].state() == DEAD).chain(others(DEAD)))
    }

    /// Copies `[from, from + len)` from the first readable slot (active
    /// first) that holds all of it.
    fn copy_from_live(&self, from: u64, left: &mut [f32], right: &mut [f32]) -> Option<usize> {
        for i in self.readable() {
            let mut reader = AudioReader::new(&self.shared.slots[i].region);
            if reader.copy_frames(from, left, right).is_ok() {
                self.shared.plays.played(i, from, left.len() as u64);
                if reader.corrupt_samples() > 0 {
                    self.shared.corrupt_samples.fetch_add(reader.corrupt_samples(), Relaxed);
                }
                return Some(i);
            }
        }
        None
    }

    /// Waits until a readable slot holds `frame`, or `deadline`: on the
    /// futex of the first readable slot's ring (the active's when it is
    /// live; its worker wakes the output when it publishes), half the time
    /// left at a time and at most 1 ms, so a late or hung active gives way
    /// to the others well before the deadline.
    fn wait_for_any(&self, frame: u64, deadline: Instant) {
        loop {
            let now = Instant::now();
            // Stopping, a pipelined output plays what is there (its frames
            // are rendered ahead; a free-running one would wait seconds for
            // workers that may be gone); an in-cycle one waits out its
            // short budget, as always, so its last period is not lost.
            if now >= deadline || (self.shared.stop.load(Relaxed) && self.in_cycle.is_none()) {
                return;
            }
            if self.readable().any(|i| AudioReader::new(&self.shared.slots[i].region).span().1 > frame) {
                return;
            }
            // Never past the deadline: a late return would start the next
            // period late (see `begin_paced_period`).
            let left = deadline - now;
            let patience = (left / 2).max(Duration::from_micros(50)).min(Duration::from_millis(1)).min(left);
            match self.readable().next() {
                Some(i) => {
                    AudioReader::new(&self.shared.slots[i].region).wait_for(frame + 1, patience);
                }
                // No slot to wait on (all are joining or empty).
                None => std::thread::sleep(patience.min(Duration::from_micros(200))),
            }
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
        let written = |i: usize| s.get(i).map_or(0, |s| s.region.audio_write_frame());
        let state = |i: usize| s.get(i).map_or(0, |s| u64::from(s.state()));
        for (i, v) in [frame, written(0), written(1), state(0) | state(1) << 8, late, since_start]
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
        if std::mem::take(&mut self.missed) {
            // The device played silence in its place while the machine held
            // the output thread off: the machine's, not Chronus's.
            left.fill(0.0);
            right.fill(0.0);
            self.shared.underrun_frames.fetch_add(n, Relaxed);
            self.note_silence(FrameSpan { first: self.frame, frames: n }, true);
            return;
        }
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
        // Missing frames, as spans (a worker may deliver the rest of the
        // period while this loop runs, so the gaps need not be a suffix),
        // each the machine's (a stall) or Chronus's (a gap).
        let recovering = self.stall_recovery_until.is_some_and(|until| Instant::now() < until);
        let mut missing: Option<FrameSpan> = None;
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
                    match &mut missing {
                        Some(span) if span.first + span.frames == f => span.frames += 1,
                        _ => {
                            if let Some(span) = missing.replace(FrameSpan { first: f, frames: 1 }) {
                                self.note_silence(span, recovering);
                            }
                        }
                    }
                }
            }
        }
        if let Some(span) = missing {
            self.note_silence(span, recovering);
        }
        if complete {
            self.stall_recovery_until = None;
        }
    }

    /// Counts frames played as silence and hands their span on: the
    /// machine's (`stall`) or Chronus's (a gap).
    fn note_silence(&mut self, span: FrameSpan, stall: bool) {
        let note = if stall {
            self.shared.machine_stall_frames.fetch_add(span.frames, Relaxed);
            Note::Stall(span)
        } else {
            Note::Gap(span)
        };
        if self.notes.push(note).is_err() {
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
    /// A period due after its frames were to start playing (the output was
    /// held off past the device's whole buffer) is silence outright, as a
    /// real device would have played: counted the same way.
    pub(crate) fn begin_paced_period(&mut self, deadline: Instant, frames: u32, sample_rate: u32) {
        let now = Instant::now();
        // Due after it was to start playing: a real device played silence.
        self.missed = now > deadline;
        let duration =
            |frames: u64| Duration::from_nanos(frames * 1_000_000_000 / u64::from(sample_rate.max(1)));
        let Some(late_from) = deadline.checked_sub(duration(u64::from(frames)) / 2) else { return };
        if now > late_from {
            let until = now + (now - late_from) + duration(self.lead + self.block);
            self.stall_recovery_until = Some(self.stall_recovery_until.map_or(until, |u| u.max(until)));
        }
    }

    /// Tells the output how many frames its driver may ask for in quick
    /// succession from now on: a device's period, or its whole buffer when
    /// it drains that at once (it may change while playing). The workers are
    /// then kept at least that far ahead, so such calls find their frames
    /// rendered; calls larger than announced are served too (and raise the
    /// plan), though the first may find frames missing. The workers may
    /// render that far ahead right away: call it before a device starts, or
    /// restarts, and its first callbacks find their frames.
    pub fn set_period(&mut self, frames: u32) {
        self.period = u64::from(frames);
        if self.in_cycle.is_some() {
            return;
        }
        // Raising the limit without releasing events is always safe: later
        // events are stamped at or after it.
        let ahead = self.aligned(self.frame + self.period);
        if ahead > self.limit {
            self.limit = ahead;
            self.publish_limit();
        }
    }

    /// Tells the output its driver calls exactly once per period of
    /// `frames` frames, a period apart (a JACK client): the frames of the
    /// next call need only be ready by then, so after each call the workers
    /// may render the next call's frames plus `lead`. Commands then sound
    /// about one and a half periods plus the lead after they arrive.
    pub fn set_steady_period(&mut self, frames: u32) {
        self.steady = true;
        self.period = 0;
        if self.in_cycle.is_some() {
            return;
        }
        let ahead = self.aligned(self.frame + 2 * u64::from(frames) + self.lead);
        if ahead > self.limit {
            self.limit = ahead;
            self.publish_limit();
        }
    }

    /// Queues `event` from the driver's own thread (MIDI that arrived with
    /// the next call's buffer): it is stamped at the next call's render
    /// limit plus `offset` frames, so events keep their spacing within the
    /// period. In-cycle, that limit is the next call's first frame: the
    /// event sounds in the period it arrived with, at its offset. Never
    /// allocates or waits; false when the schedule is full (counted as a
    /// dropped command).
    pub fn queue_event(&mut self, event: chronus_dsp::Event, offset: u32) -> bool {
        let frame = self.limit + u64::from(offset);
        let ok = self.sequencer.schedule(event, frame, 0);
        if !ok {
            self.shared.commands_dropped.fetch_add(1, Relaxed);
        }
        ok
    }

    /// Tells the output when the first frame of the next call reaches the
    /// device's output (CLOCK_MONOTONIC ns), for bundles' time tags: they
    /// are then placed on the device's clock, not on the output's start.
    pub fn set_output_time(&mut self, ns: u64) {
        if ns != 0 {
            self.shared.device_clock.store(self.frame, ns);
        }
    }

    /// The device played `frames` frames of silence before the frames of
    /// the next call (an xrun the driver measured): counted as lost audio,
    /// written to the journal (`@xrun`), and inserted into the recording,
    /// which follows what the device played.
    pub fn device_gap(&mut self, frames: u64) {
        if frames == 0 {
            return;
        }
        self.shared.device_xruns.fetch_add(1, Relaxed);
        self.shared.device_xrun_frames.fetch_add(frames, Relaxed);
        if self.notes.push(Note::Xrun(FrameSpan { first: self.frame, frames })).is_err() {
            self.shared.io_overruns.fetch_add(1, Relaxed);
        }
        if let Some(record) = &mut self.record {
            for _ in 0..2 * frames {
                if record.push(0.0).is_err() {
                    self.shared.io_overruns.fetch_add(1, Relaxed);
                    break;
                }
            }
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

    /// Produces the next `left.len()` frames (any number): releases events,
    /// reads the audio (waiting for missing frames until `deadline` at the
    /// most, or indefinitely-but-boundedly when `None`), frees ring space,
    /// moves the render limit. A device callback passes
    /// `Some(Instant::now())`: no waiting at all.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32], deadline: Option<Instant>) {
        let n = left.len().min(right.len());
        let (left, right) = (&mut left[..n], &mut right[..n]);
        if n == 0 {
            return;
        }
        self.shared.busy.store(true, SeqCst);
        self.start_clock();
        // Frames beyond this call the workers may render now: a steady
        // driver's next call (n more frames, a period from now) plus the
        // lead; else the lead, or the most a driver may ask for at once.
        let ahead = if self.in_cycle.is_some() {
            // In-cycle: exactly this call's frames.
            self.period = self.period.max(n as u64);
            0
        } else if self.steady {
            n as u64 + self.lead
        } else {
            self.period = self.period.max(n as u64);
            self.lead.max(self.period)
        };
        let next_limit = self.aligned(self.limit.max(self.frame + n as u64 + ahead));
        if deadline.is_none() {
            // Free-running: faster than real time, so it may outrun the
            // collector that writes the journal; nothing is due, so wait
            // (boundedly) for room rather than drop an entry — stopping
            // too: the collector drains until the output is done.
            let give_up = Instant::now() + FREE_RUN_PATIENCE;
            while !self.sequencer.journal_has_room() && Instant::now() < give_up {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        self.sequencer.release(&self.shared, self.limit, next_limit);
        if self.fade.is_none() && self.shared.fade_requested.load(Relaxed) {
            let fade = FrameSpan { first: self.frame, frames: FADE_FRAMES };
            self.fade = Some(fade);
            if self.notes.push(Note::Fade(fade)).is_err() {
                self.shared.io_overruns.fetch_add(1, Relaxed);
            }
            self.shared.fade_end.store(fade.end(), Release);
        }
        let deadline = match self.in_cycle {
            Some(budget) => {
                // Publish this call's frames now, wake the replicas, and
                // wait for them within the budget (from now: a driver's
                // call starts its cycle). Free-running stays unbounded.
                self.limit = next_limit;
                self.publish_limit();
                // (`as` saturates: no panic, whatever the numbers.)
                let ns = n as f64 * budget * 1e9 / f64::from(self.sample_rate.max(1));
                deadline.map(|_| Instant::now() + Duration::from_nanos(ns as u64))
            }
            None => deadline,
        };
        self.read_audio(left, right, deadline);
        if let Some(fade) = self.fade {
            for (k, (l, r)) in left.iter_mut().zip(right.iter_mut()).enumerate() {
                let g = chronus_journal::fade_gain(fade, self.frame + k as u64);
                *l *= g;
                *r *= g;
            }
        }
        self.frame += n as u64;
        for slot in &self.shared.slots {
            if slot.is_attached() {
                AudioReader::new(&slot.region).consume_to(self.frame);
            }
        }
        if self.in_cycle.is_none() {
            self.limit = next_limit;
            self.publish_limit();
        }
        if let Some(record) = &mut self.record {
            if deadline.is_none() {
                // Free-running: faster than real time, so it may outrun the
                // collector; nothing is due, so wait for room rather than
                // drop what the recording must hold.
                // Stopping too: the collector drains until the output is
                // done (a push dropped while stopping cut a frame in half
                // and left the WAV unfinishable).
                let give_up = Instant::now() + FREE_RUN_PATIENCE;
                while record.slots() < 2 * n && Instant::now() < give_up {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            for (l, r) in left.iter().zip(right.iter()) {
                // A frame goes in whole or not at all: the recording stays
                // stereo.
                if record.slots() < 2 || record.push(*l).is_err() || record.push(*r).is_err() {
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
