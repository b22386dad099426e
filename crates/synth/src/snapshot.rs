//! The complete synth state as plain `#[repr(C)]` data.
//!
//! A snapshot is a [`SnapshotHeader`] followed by the voice bank's
//! [`VoiceChunk`]s and [`VoiceControl`]s and the note table's
//! [`NoteSlot`]s, exactly as the synth holds them, so it can be copied into
//! shared memory and restored bit for bit. Restoring treats the data as
//! untrusted: every field is checked before any is used.

use bytemuck::{Pod, Zeroable};

use crate::adsr::{ENDLESS, Stage};
use crate::bank::{LANES, VoiceChunk, VoiceControl};
use crate::biquad::FilterKind;
use crate::gain::GainRamp;
use crate::master::BusState;
use crate::notes::{NoteSlot, NoteTable};
use crate::param::VoiceParams;
use crate::patch_change::PatchChange;
use crate::rich::{Patch, RichChunk};
use crate::{Synth, SynthError};

/// "CSNP" in little-endian.
pub const SNAPSHOT_MAGIC: u32 = u32::from_le_bytes(*b"CSNP");
/// Layout version of [`SnapshotHeader`], [`VoiceChunk`], [`VoiceControl`]
/// and [`NoteSlot`].
pub const SNAPSHOT_VERSION: u32 = 5;

/// Synth-wide part of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct SnapshotHeader {
    /// [`SNAPSHOT_MAGIC`].
    pub magic: u32,
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Number of voices.
    pub voices: u32,
    /// Voices per chunk ([`LANES`]).
    pub lanes: u32,
    /// Number of chunks.
    pub chunks: u32,
    /// The next frame to render.
    pub frame: u64,
    /// Parameter ramp length in samples.
    pub ramp: u32,
    /// Master gain and its ramp.
    pub master: GainRamp,
    /// Defaults set by `/set`.
    pub defaults: VoiceParams,
    /// The note table's clock.
    pub notes_clock: u64,
    /// The instrument's settings.
    pub patch: Patch,
    /// Padding (0).
    pub _pad: u32,
    /// A patch change under way: the staged patch and the fade.
    pub change: PatchChange,
}

/// Where a restore takes the master bus's lines from.
#[derive(Clone, Copy)]
enum Lines<'a> {
    /// The snapshot's own vectors.
    Owned,
    /// A snapshot's bytes (little-endian f32).
    Bytes {
        /// The delay lines.
        delay: &'a [u8],
        /// The reverb's lines.
        reverb: &'a [u8],
    },
}

/// An owned snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthSnapshot {
    /// Synth-wide state.
    pub header: SnapshotHeader,
    /// Per-sample voice state.
    pub chunks: Vec<VoiceChunk>,
    /// Voice control state, one per lane (`chunks.len() · LANES`).
    pub controls: Vec<VoiceControl>,
    /// Which note each voice holds, one per voice.
    pub notes: Vec<NoteSlot>,
    /// The master bus's settings and positions.
    pub bus: BusState,
    /// Its delay lines.
    pub delay: Vec<f32>,
    /// Its reverb's lines.
    pub reverb: Vec<f32>,
    /// The instrument's per-voice state, one per chunk.
    pub rich: Vec<RichChunk>,
}

impl Default for SynthSnapshot {
    /// An empty snapshot (no allocation): storage to move in and out.
    fn default() -> Self {
        Self {
            header: SnapshotHeader::zeroed(),
            chunks: Vec::new(),
            controls: Vec::new(),
            notes: Vec::new(),
            bus: BusState::zeroed(),
            delay: Vec::new(),
            reverb: Vec::new(),
            rich: Vec::new(),
        }
    }
}

impl Synth {
    /// Storage of the right shape for [`Synth::snapshot_into`] (allocates).
    pub fn snapshot_storage(&self) -> SynthSnapshot {
        SynthSnapshot {
            header: SnapshotHeader::zeroed(),
            chunks: self.chunks.clone(),
            controls: self.ctls.clone(),
            notes: self.notes.slots.clone(),
            bus: self.bus.state,
            delay: self.bus.delay.clone(),
            reverb: self.bus.reverb.clone(),
            rich: self.rich.clone(),
        }
    }

    fn shape_matches(&self, snap: &SynthSnapshot) -> bool {
        self.shape_matches_but_lines(snap)
            && snap.delay.len() == self.bus.delay.len()
            && snap.reverb.len() == self.bus.reverb.len()
    }

    fn shape_matches_but_lines(&self, snap: &SynthSnapshot) -> bool {
        snap.chunks.len() == self.chunks.len()
            && snap.controls.len() == self.ctls.len()
            && snap.notes.len() == self.notes.slots.len()
            && snap.rich.len() == self.rich.len()
    }

    /// Copies the complete state into caller-provided storage (from
    /// [`Synth::snapshot_storage`]); never allocates.
    ///
    /// # Errors
    /// [`SynthError::BadSnapshot`] if the storage is not of this synth's
    /// shape.
    pub fn snapshot_into(&self, out: &mut SynthSnapshot) -> Result<(), SynthError> {
        if !self.shape_matches(out) {
            return Err(SynthError::BadSnapshot("storage does not match the synth's shape"));
        }
        self.fill_header(&mut out.header);
        out.chunks.copy_from_slice(&self.chunks);
        out.controls.copy_from_slice(&self.ctls);
        out.notes.copy_from_slice(&self.notes.slots);
        out.bus = self.bus.state;
        out.delay.copy_from_slice(&self.bus.delay);
        out.reverb.copy_from_slice(&self.bus.reverb);
        out.rich.copy_from_slice(&self.rich);
        Ok(())
    }

    fn fill_header(&self, header: &mut SnapshotHeader) {
        *header = SnapshotHeader {
            magic: SNAPSHOT_MAGIC,
            version: SNAPSHOT_VERSION,
            sample_rate: self.sample_rate,
            voices: self.voices,
            lanes: LANES as u32,
            chunks: self.chunks.len() as u32,
            frame: self.frame,
            ramp: self.ramp,
            master: self.master,
            defaults: self.defaults,
            notes_clock: self.notes.clock,
            patch: self.patch,
            _pad: 0,
            change: self.change,
        };
    }

    /// The complete state, owned.
    pub fn snapshot(&self) -> SynthSnapshot {
        let mut snap = self.snapshot_storage();
        // Shapes match by construction.
        let _ = self.snapshot_into(&mut snap);
        snap
    }

    /// Replaces the whole state with a snapshot taken from a synth of the
    /// same sample rate and voice count. Nothing changes on error. Never
    /// allocates.
    ///
    /// # Errors
    /// [`SynthError::BadSnapshot`] naming the first check that failed.
    pub fn restore(&mut self, snap: &SynthSnapshot) -> Result<(), SynthError> {
        self.restore_with_lines(snap, Lines::Owned)
    }

    /// [`Synth::restore`], the master bus's lines taken from `snap` or, to
    /// spare a copy of them (the largest part of the state), straight from
    /// a snapshot's bytes.
    fn restore_with_lines(&mut self, snap: &SynthSnapshot, lines: Lines<'_>) -> Result<(), SynthError> {
        self.check_snapshot(snap, lines)?;
        let header = &snap.header;
        self.chunks.copy_from_slice(&snap.chunks);
        self.ctls.copy_from_slice(&snap.controls);
        self.notes.slots.copy_from_slice(&snap.notes);
        self.notes.clock = header.notes_clock;
        self.bus.state = snap.bus;
        match lines {
            Lines::Owned => {
                self.bus.delay.copy_from_slice(&snap.delay);
                self.bus.reverb.copy_from_slice(&snap.reverb);
            }
            Lines::Bytes { delay, reverb } => {
                bytemuck::cast_slice_mut::<f32, u8>(&mut self.bus.delay).copy_from_slice(delay);
                bytemuck::cast_slice_mut::<f32, u8>(&mut self.bus.reverb).copy_from_slice(reverb);
            }
        }
        self.rich.copy_from_slice(&snap.rich);
        self.set_patch(header.patch);
        self.change = header.change;
        self.frame = header.frame;
        self.master = header.master;
        self.defaults = header.defaults;
        for (c, mask) in self.active.iter_mut().enumerate() {
            *mask = (0..LANES).fold(0u8, |m, l| m | (u8::from(!self.ctls[c * LANES + l].is_idle()) << l));
        }
        Ok(())
    }

    /// Bytes of [`Synth::snapshot_to_bytes`]: the header, the chunks and the
    /// controls, back to back.
    pub fn snapshot_bytes_len(&self) -> usize {
        size_of::<SnapshotHeader>()
            + size_of_val(&self.chunks[..])
            + size_of_val(&self.ctls[..])
            + size_of_val(&self.notes.slots[..])
            + self.bus.snapshot_len()
            + size_of_val(&self.rich[..])
    }

    /// Writes the complete state as bytes (`out` must be
    /// [`Synth::snapshot_bytes_len`] long; otherwise nothing is written).
    /// Never allocates.
    pub fn snapshot_to_bytes(&self, out: &mut [u8]) {
        if out.len() != self.snapshot_bytes_len() {
            return;
        }
        let mut header = SnapshotHeader::zeroed();
        self.fill_header(&mut header);
        let (h, rest) = out.split_at_mut(size_of::<SnapshotHeader>());
        h.copy_from_slice(bytemuck::bytes_of(&header));
        let (c, rest) = rest.split_at_mut(size_of_val(&self.chunks[..]));
        let (v, rest) = rest.split_at_mut(size_of_val(&self.ctls[..]));
        let (n, rest) = rest.split_at_mut(size_of_val(&self.notes.slots[..]));
        let (b, rest) = rest.split_at_mut(size_of::<BusState>());
        let (d, rest) = rest.split_at_mut(size_of_val(&self.bus.delay[..]));
        let (r, i) = rest.split_at_mut(size_of_val(&self.bus.reverb[..]));
        i.copy_from_slice(bytemuck::cast_slice(&self.rich));
        c.copy_from_slice(bytemuck::cast_slice(&self.chunks));
        v.copy_from_slice(bytemuck::cast_slice(&self.ctls));
        n.copy_from_slice(bytemuck::cast_slice(&self.notes.slots));
        b.copy_from_slice(bytemuck::bytes_of(&self.bus.state));
        d.copy_from_slice(bytemuck::cast_slice(&self.bus.delay));
        r.copy_from_slice(bytemuck::cast_slice(&self.bus.reverb));
    }

    /// Replaces the whole state with bytes written by
    /// [`Synth::snapshot_to_bytes`], after checking all of them; nothing
    /// changes on error. Never allocates.
    ///
    /// # Errors
    /// [`SynthError::BadSnapshot`] naming the first check that failed.
    pub fn restore_from_bytes(&mut self, bytes: &[u8]) -> Result<(), SynthError> {
        if bytes.len() != self.snapshot_bytes_len() {
            return Err(SynthError::BadSnapshot("wrong length"));
        }
        let (h, rest) = bytes.split_at(size_of::<SnapshotHeader>());
        let (c, rest) = rest.split_at(size_of_val(&self.chunks[..]));
        let (v, rest) = rest.split_at(size_of_val(&self.ctls[..]));
        let (n, rest) = rest.split_at(size_of_val(&self.notes.slots[..]));
        let (b, rest) = rest.split_at(size_of::<BusState>());
        let (d, rest) = rest.split_at(size_of_val(&self.bus.delay[..]));
        let (r, i) = rest.split_at(size_of_val(&self.bus.reverb[..]));
        let mut scratch = std::mem::take(&mut self.scratch);
        bytemuck::cast_slice_mut::<RichChunk, u8>(&mut scratch.rich).copy_from_slice(i);
        scratch.header = bytemuck::pod_read_unaligned(h);
        bytemuck::cast_slice_mut::<VoiceChunk, u8>(&mut scratch.chunks).copy_from_slice(c);
        bytemuck::cast_slice_mut::<VoiceControl, u8>(&mut scratch.controls).copy_from_slice(v);
        bytemuck::cast_slice_mut::<NoteSlot, u8>(&mut scratch.notes).copy_from_slice(n);
        scratch.bus = bytemuck::pod_read_unaligned(b);
        // The lines are checked and copied from the bytes: no scratch copy.
        let result = self.restore_with_lines(&scratch, Lines::Bytes { delay: d, reverb: r });
        self.scratch = scratch;
        result
    }

    fn check_snapshot(&self, snap: &SynthSnapshot, lines: Lines<'_>) -> Result<(), SynthError> {
        let (h, chunks, controls) = (&snap.header, &snap.chunks[..], &snap.controls[..]);
        let bad = SynthError::BadSnapshot;
        let shape = match lines {
            Lines::Owned => self.shape_matches(snap),
            Lines::Bytes { .. } => self.shape_matches_but_lines(snap),
        };
        if !shape || !NoteTable::valid(&snap.notes, h.notes_clock) {
            return Err(bad("wrong shape, or an invalid note table"));
        }
        let bus_ok = match lines {
            Lines::Owned => self.bus.valid(&snap.bus, &snap.delay, &snap.reverb),
            Lines::Bytes { delay, reverb } => {
                self.bus.valid_line_bytes(delay, reverb) && self.bus.valid_state(&snap.bus)
            }
        };
        if !bus_ok {
            return Err(bad("invalid master bus state"));
        }
        if !h.patch.valid(self.sample_rate)
            || !snap.rich.iter().all(RichChunk::valid)
            || !h.change.valid(self.sample_rate)
        {
            return Err(bad("invalid instrument patch or voice state"));
        }
        if h.magic != SNAPSHOT_MAGIC || h.version != SNAPSHOT_VERSION {
            return Err(bad("wrong magic or layout version"));
        }
        if h.sample_rate != self.sample_rate || h.voices != self.voices || h.ramp != self.ramp {
            return Err(bad("taken from a synth with another sample rate, voice count or ramp"));
        }
        if h.lanes != LANES as u32
            || h.chunks as usize != self.chunks.len()
            || chunks.len() != self.chunks.len()
            || controls.len() != self.ctls.len()
        {
            return Err(bad("wrong number of chunks or controls"));
        }
        let m = &h.master;
        let master_finite = [m.value, m.step, m.target].iter().flatten().all(|v| v.is_finite());
        if !master_finite || h.defaults.sanitized(h.sample_rate).is_err() {
            return Err(bad("non-finite master gain or defaults"));
        }
        for chunk in chunks {
            // Everything after the two u32 phase arrays is f32, but the padding.
            let words: &[u32] = bytemuck::cast_slice(std::slice::from_ref(chunk));
            let floats = &words[2 * LANES..words.len() - LANES];
            if !floats.iter().all(|w| f32::from_bits(*w).is_finite()) {
                return Err(bad("non-finite voice state"));
            }
        }
        for (i, ctl) in controls.iter().enumerate() {
            let stage = Stage::from_u32(ctl.env_stage).ok_or(bad("unknown envelope stage"))?;
            let endless = matches!(stage, Stage::Idle | Stage::Sustain);
            if endless != (ctl.env_remaining == ENDLESS) || ctl.env_remaining == 0 {
                return Err(bad("envelope segment length does not fit its stage"));
            }
            if i as u32 >= self.voices && stage != Stage::Idle {
                return Err(bad("a padding lane is sounding"));
            }
            let filter = ctl.params.filter;
            if (FilterKind::from_u32(filter).is_none() && filter != crate::param::SVF_LOWPASS)
                || ctl.params.sanitized(self.sample_rate).is_err()
            {
                return Err(bad("invalid voice parameters"));
            }
            let t = &ctl.coef_target;
            let floats =
                [ctl.env_target, t.b0, t.b1, t.b2, t.a1, t.a2, ctl.gain_target[0], ctl.gain_target[1]];
            if !floats.iter().all(|v| v.is_finite()) {
                return Err(bad("non-finite control state"));
            }
            if ctl.coef_remaining > self.ramp || ctl.gain_remaining > self.ramp {
                return Err(bad("ramp longer than the synth's ramp"));
            }
        }
        Ok(())
    }
}
