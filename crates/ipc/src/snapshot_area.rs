//! Copying a synth snapshot into and out of a region's snapshot area.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use bytemuck::Zeroable;
use chronus_dsp::{DspError, SnapshotHeader, Synth, SynthConfig, VoiceChunk, VoiceControl};

use crate::{IpcError, Region};

/// Preallocated storage for one snapshot, so taking and restoring snapshots
/// never allocates.
#[derive(Debug)]
pub struct SnapshotBuffers {
    header: SnapshotHeader,
    chunks: Vec<VoiceChunk>,
    controls: Vec<VoiceControl>,
}

impl SnapshotBuffers {
    /// Buffers shaped for a synth with this configuration.
    ///
    /// # Errors
    /// [`DspError::InvalidConfig`] for an unusable configuration.
    pub fn for_config(config: SynthConfig) -> Result<Self, DspError> {
        let (chunks, controls) = Synth::new(config)?.snapshot_shape();
        Ok(Self {
            header: SnapshotHeader::zeroed(),
            chunks: vec![VoiceChunk::zeroed(); chunks],
            controls: vec![VoiceControl::zeroed(); controls],
        })
    }

    fn words(&self) -> impl Iterator<Item = &u32> {
        let h: &[u32] = bytemuck::cast_slice(std::slice::from_ref(&self.header));
        let c: &[u32] = bytemuck::cast_slice(&self.chunks);
        let v: &[u32] = bytemuck::cast_slice(&self.controls);
        h.iter().chain(c).chain(v)
    }

    fn len_words(&self) -> usize {
        (size_of::<SnapshotHeader>() + size_of_val(&self.chunks[..]) + size_of_val(&self.controls[..])) / 4
    }

    /// Takes `synth`'s snapshot and stores it in `region`'s snapshot area.
    /// Never allocates.
    ///
    /// # Errors
    /// [`IpcError::BufTooSmall`] if the area cannot hold it.
    pub fn store(&mut self, synth: &Synth, region: &Region) -> Result<(), IpcError> {
        synth
            .snapshot_into(&mut self.header, &mut self.chunks, &mut self.controls)
            .map_err(|_| IpcError::BufCorrupt("snapshot buffers do not fit the synth"))?;
        let area = self.area(region)?;
        for (dst, src) in area.iter().zip(self.words()) {
            dst.store(*src, Relaxed);
        }
        std::sync::atomic::fence(Release);
        Ok(())
    }

    /// Loads the snapshot in `region`'s area into `synth`. Never allocates.
    ///
    /// # Errors
    /// [`IpcError::BufTooSmall`] if the area is too small, or
    /// [`IpcError::BufCorrupt`] if the synth refuses the snapshot.
    pub fn load(&mut self, synth: &mut Synth, region: &Region) -> Result<u64, IpcError> {
        std::sync::atomic::fence(Acquire);
        let area = self.area(region)?;
        let header: &mut [u32] = bytemuck::cast_slice_mut(std::slice::from_mut(&mut self.header));
        let chunks: &mut [u32] = bytemuck::cast_slice_mut(&mut self.chunks);
        let controls: &mut [u32] = bytemuck::cast_slice_mut(&mut self.controls);
        for (dst, src) in header.iter_mut().chain(chunks).chain(controls).zip(area) {
            *dst = src.load(Relaxed);
        }
        synth
            .restore(&self.header, &self.chunks, &self.controls)
            .map_err(|_| IpcError::BufCorrupt("the snapshot in shared memory was refused by the synth"))?;
        Ok(self.header.frame)
    }

    /// Stores the snapshot of a fresh (silent) synth of `config`, positioned
    /// at `frame`: the starting point when no worker is left to copy from.
    ///
    /// # Errors
    /// As [`SnapshotBuffers::store`]; [`IpcError::BufCorrupt`] for an
    /// unusable configuration.
    pub fn store_fresh(&mut self, config: SynthConfig, frame: u64, region: &Region) -> Result<(), IpcError> {
        let synth = Synth::new(config).map_err(|_| IpcError::BufCorrupt("unusable synth configuration"))?;
        synth
            .snapshot_into(&mut self.header, &mut self.chunks, &mut self.controls)
            .map_err(|_| IpcError::BufCorrupt("snapshot buffers do not fit the synth"))?;
        self.header.frame = frame;
        let area = self.area(region)?;
        for (dst, src) in area.iter().zip(self.words()) {
            dst.store(*src, Relaxed);
        }
        std::sync::atomic::fence(Release);
        Ok(())
    }

    fn area<'r>(&self, region: &'r Region) -> Result<&'r [AtomicU32], IpcError> {
        let area = region.snapshot_words();
        let need = self.len_words();
        if area.len() < need {
            return Err(IpcError::BufTooSmall { needed: need as u64 * 4, actual: area.len() as u64 * 4 });
        }
        Ok(&area[..need])
    }
}

/// Copies the snapshot area of `from` into `to` (same geometry).
pub fn copy_snapshot(from: &Region, to: &Region) {
    std::sync::atomic::fence(Acquire);
    for (dst, src) in to.snapshot_words().iter().zip(from.snapshot_words()) {
        dst.store(src.load(Relaxed), Relaxed);
    }
    std::sync::atomic::fence(Release);
}

/// The frame of the snapshot in `region`'s area.
pub fn snapshot_frame(region: &Region) -> u64 {
    const AT: usize = std::mem::offset_of!(SnapshotHeader, frame) / 4;
    let w = region.snapshot_words();
    u64::from(w[AT].load(Acquire)) | u64::from(w[AT + 1].load(Acquire)) << 32
}
