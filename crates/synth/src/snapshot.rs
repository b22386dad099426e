//! The complete synth state as plain `#[repr(C)]` data.
//!
//! A snapshot is a [`SnapshotHeader`] followed by the voice bank's
//! [`VoiceChunk`]s and [`VoiceControl`]s exactly as the synth holds them, so
//! it can be copied into shared memory and restored bit for bit. Restoring
//! treats the data as untrusted: every field is checked before any is used.

use bytemuck::{Pod, Zeroable};

use crate::adsr::{ENDLESS, Stage};
use crate::bank::{LANES, VoiceChunk, VoiceControl};
use crate::biquad::FilterKind;
use crate::gain::GainRamp;
use crate::param::VoiceParams;
use crate::{Synth, SynthError};

/// "CSNP" in little-endian.
pub const SNAPSHOT_MAGIC: u32 = u32::from_le_bytes(*b"CSNP");
/// Layout version of [`SnapshotHeader`], [`VoiceChunk`] and [`VoiceControl`].
pub const SNAPSHOT_VERSION: u32 = 1;

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
}

impl Synth {
    /// Number of chunks and controls a snapshot of this synth holds.
    pub fn snapshot_shape(&self) -> (usize, usize) {
        (self.chunks.len(), self.ctls.len())
    }

    /// Copies the complete state into caller-provided storage (for example
    /// shared memory); never allocates.
    ///
    /// # Errors
    /// [`SynthError::BadSnapshot`] if the slices are not of
    /// [`Synth::snapshot_shape`].
    pub fn snapshot_into(
        &self,
        header: &mut SnapshotHeader,
        chunks: &mut [VoiceChunk],
        controls: &mut [VoiceControl],
    ) -> Result<(), SynthError> {
        if chunks.len() != self.chunks.len() || controls.len() != self.ctls.len() {
            return Err(SynthError::BadSnapshot("storage does not match the synth's shape"));
        }
        self.fill_header(header);
        chunks.copy_from_slice(&self.chunks);
        controls.copy_from_slice(&self.ctls);
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
        };
    }

    /// The complete state, owned.
    pub fn snapshot(&self) -> SynthSnapshot {
        let mut snap = SynthSnapshot {
            header: SnapshotHeader::zeroed(),
            chunks: self.chunks.clone(),
            controls: self.ctls.clone(),
        };
        // Shapes match by construction.
        let _ = self.snapshot_into(&mut snap.header, &mut snap.chunks, &mut snap.controls);
        snap
    }

    /// Replaces the whole state with a snapshot taken from a synth of the
    /// same sample rate and voice count. Nothing changes on error.
    ///
    /// # Errors
    /// [`SynthError::BadSnapshot`] naming the first check that failed.
    pub fn restore(
        &mut self,
        header: &SnapshotHeader,
        chunks: &[VoiceChunk],
        controls: &[VoiceControl],
    ) -> Result<(), SynthError> {
        self.check_snapshot(header, chunks, controls)?;
        self.chunks.copy_from_slice(chunks);
        self.ctls.copy_from_slice(controls);
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
        size_of::<SnapshotHeader>() + size_of_val(&self.chunks[..]) + size_of_val(&self.ctls[..])
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
        let (c, v) = rest.split_at_mut(size_of_val(&self.chunks[..]));
        c.copy_from_slice(bytemuck::cast_slice(&self.chunks));
        v.copy_from_slice(bytemuck::cast_slice(&self.ctls));
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
        let header: SnapshotHeader = bytemuck::pod_read_unaligned(h);
        let (c, v) = rest.split_at(size_of_val(&self.chunks[..]));
        let mut chunks = std::mem::take(&mut self.scratch_chunks);
        let mut controls = std::mem::take(&mut self.scratch_ctls);
        bytemuck::cast_slice_mut::<VoiceChunk, u8>(&mut chunks).copy_from_slice(c);
        bytemuck::cast_slice_mut::<VoiceControl, u8>(&mut controls).copy_from_slice(v);
        let result = self.restore(&header, &chunks, &controls);
        self.scratch_chunks = chunks;
        self.scratch_ctls = controls;
        result
    }

    fn check_snapshot(
        &self,
        h: &SnapshotHeader,
        chunks: &[VoiceChunk],
        controls: &[VoiceControl],
    ) -> Result<(), SynthError> {
        let bad = SynthError::BadSnapshot;
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
            if FilterKind::from_u32(ctl.params.filter).is_none()
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
