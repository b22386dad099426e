//! The audio ring: worker → supervisor, indexed by absolute frame number.
//!
//! Frame `F` lives in slot `F mod capacity`. The writer may fill frames
//! below `read_frame + capacity`; the reader may read frames in
//! `[read_frame, write_frame)`. Positions only grow; each side publishes its
//! own with Release and reads the other's with Acquire. Samples are stored
//! as `f32` bits in atomics, so a misbehaving peer can give wrong audio but
//! never undefined behaviour; non-finite samples are replaced by silence on
//! read and counted.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::Duration;

use crate::WorkerRegion;
use crate::protocol::{self, StdFences};

/// The frames asked for are not (or no longer) in the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAvailable {
    /// First frame the ring can supply now.
    pub from: u64,
    /// One past the last frame the ring can supply now.
    pub to: u64,
}

/// Worker side of the audio ring.
#[derive(Debug)]
pub struct AudioWriter<'r> {
    region: &'r WorkerRegion,
    write_frame: u64,
    mask: u64,
}

impl<'r> AudioWriter<'r> {
    /// The writer, continuing at the ring's published write position.
    pub fn new(region: &'r WorkerRegion) -> Self {
        let write_frame = region.audio_header().write_frame.load(Acquire);
        Self { region, write_frame, mask: u64::from(region.geometry().audio_frames) - 1 }
    }

    /// The writer of a worker told to start at `frame`: the ring starts
    /// there, even behind where it was (a trial run told to start again
    /// from a checkpoint). The one exception to positions only growing: the
    /// output reads no ring of a worker being started.
    pub fn starting_at(region: &'r WorkerRegion, frame: u64) -> Self {
        region.audio_header().write_frame.store(frame, Release);
        Self { region, write_frame: frame, mask: u64::from(region.geometry().audio_frames) - 1 }
    }

    /// The next frame to write.
    pub fn write_frame(&self) -> u64 {
        self.write_frame
    }

    /// Frames that can be written now without overtaking the reader.
    pub fn space(&self) -> u64 {
        let read = self.region.audio_header().read_frame.load(Acquire);
        (read + self.mask + 1).saturating_sub(self.write_frame)
    }

    /// Writes `left.len()` frames (must equal `right.len()`) at the write
    /// position and publishes them. Returns the frames not written when the
    /// ring lacks space (then nothing is written).
    pub fn write(&mut self, left: &[f32], right: &[f32]) -> Result<(), usize> {
        let n = left.len().min(right.len());
        if (n as u64) > self.space() {
            return Err(n);
        }
        let data = self.region.audio_data();
        for (i, (l, r)) in left.iter().zip(right).enumerate() {
            let slot = ((self.write_frame + i as u64) & self.mask) as usize * 2;
            data[slot].store(l.to_bits(), Relaxed);
            data[slot + 1].store(r.to_bits(), Relaxed);
        }
        self.write_frame += n as u64;
        let h = self.region.audio_header();
        h.write_frame.store(self.write_frame, Release);
        // A reader that announced it waits is woken (`protocol::sleep_unless`).
        protocol::wake_if_sleeping::<StdFences, _>(&h.data_seq, &h.reader_waiting, || {
            chronus_sys::futex::futex_wake(&h.data_seq, u32::MAX);
        });
        Ok(())
    }
}

/// Supervisor side of the audio ring.
#[derive(Debug)]
pub struct AudioReader<'r> {
    region: &'r WorkerRegion,
    mask: u64,
    corrupt_samples: u64,
}

impl<'r> AudioReader<'r> {
    /// The reader of `region`'s ring.
    pub fn new(region: &'r WorkerRegion) -> Self {
        Self { region, mask: u64::from(region.geometry().audio_frames) - 1, corrupt_samples: 0 }
    }

    /// The frames the ring holds now: `[read_frame, write_frame)`, clamped
    /// so a garbage write position can never claim more than the capacity.
    pub fn span(&self) -> (u64, u64) {
        let h = self.region.audio_header();
        let read = h.read_frame.load(Acquire);
        let write = h.write_frame.load(Acquire);
        (read, write.clamp(read, read + self.mask + 1))
    }

    /// Copies frames `[from, from + left.len())` out of the ring, if it holds
    /// all of them. Does not consume.
    pub fn copy_frames(
        &mut self,
        from: u64,
        left: &mut [f32],
        right: &mut [f32],
    ) -> Result<(), NotAvailable> {
        let n = left.len().min(right.len()) as u64;
        let (read, write) = self.span();
        if from < read || from + n > write {
            return Err(NotAvailable { from: read, to: write });
        }
        let data = self.region.audio_data();
        for (i, (l, r)) in left.iter_mut().zip(right.iter_mut()).enumerate() {
            let slot = ((from + i as u64) & self.mask) as usize * 2;
            *l = self.sanitize(data[slot].load(Relaxed));
            *r = self.sanitize(data[slot + 1].load(Relaxed));
        }
        Ok(())
    }

    fn sanitize(&mut self, bits: u32) -> f32 {
        let s = f32::from_bits(bits);
        if s.is_finite() {
            s
        } else {
            self.corrupt_samples += 1;
            0.0
        }
    }

    /// Copies frames `[from, from + left.len())` whether or not they were
    /// consumed, as long as the writer has not overwritten them yet (for
    /// comparing two workers' audio after the fact). Non-finite samples are
    /// returned as they are.
    pub fn copy_recent(&self, from: u64, left: &mut [f32], right: &mut [f32]) -> Result<(), NotAvailable> {
        let n = left.len().min(right.len()) as u64;
        let write = self.region.audio_header().write_frame.load(Acquire);
        let oldest = write.saturating_sub(self.mask + 1);
        if from < oldest || from + n > write {
            return Err(NotAvailable { from: oldest, to: write });
        }
        let data = self.region.audio_data();
        for (i, (l, r)) in left.iter_mut().zip(right.iter_mut()).enumerate() {
            let slot = ((from + i as u64) & self.mask) as usize * 2;
            *l = f32::from_bits(data[slot].load(Relaxed));
            *r = f32::from_bits(data[slot + 1].load(Relaxed));
        }
        // The writer may have lapped the frames while they were copied.
        let write = self.region.audio_header().write_frame.load(Acquire);
        if from < write.saturating_sub(self.mask + 1) {
            return Err(NotAvailable { from: write.saturating_sub(self.mask + 1), to: write });
        }
        Ok(())
    }

    /// Non-finite samples replaced by silence so far.
    pub fn corrupt_samples(&self) -> u64 {
        self.corrupt_samples
    }

    /// Marks frames below `frame` consumed, freeing their slots for the
    /// writer (whom it wakes if it sleeps). Never moves backwards.
    pub fn consume_to(&mut self, frame: u64) {
        // Release; a sleeping worker is not missed: `wake_worker` fences
        // before it looks (`protocol::sleep_unless`).
        self.region.audio_header().read_frame.fetch_max(frame, Release);
        self.region.wake_worker();
    }

    /// Reads and consumes the next `left.len()` frames.
    pub fn read(&mut self, left: &mut [f32], right: &mut [f32]) -> Result<(), NotAvailable> {
        let from = self.span().0;
        self.copy_frames(from, left, right)?;
        self.consume_to(from + left.len().min(right.len()) as u64);
        Ok(())
    }

    /// Waits until the ring holds frames below `frame`, or `timeout` passes.
    /// Returns whether they are there.
    pub fn wait_for(&self, frame: u64, timeout: Duration) -> bool {
        let h = self.region.audio_header();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if h.write_frame.load(Acquire) >= frame {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            let patience = (deadline - now).min(Duration::from_millis(50));
            protocol::sleep_unless::<StdFences, _>(
                &h.data_seq,
                &h.reader_waiting,
                || h.write_frame.load(Acquire) >= frame,
                |seen| chronus_sys::futex::futex_wait(&h.data_seq, seen, patience),
            );
        }
    }
}

impl WorkerRegion {
    /// Frames the worker has written so far (its ring's write position).
    pub fn audio_write_frame(&self) -> u64 {
        self.audio_header().write_frame.load(Acquire)
    }

    /// Frames the worker could write now without overtaking the reader.
    pub fn audio_space(&self) -> u64 {
        let h = self.audio_header();
        let cap = u64::from(self.geometry().audio_frames);
        (h.read_frame.load(Acquire) + cap).saturating_sub(h.write_frame.load(Acquire))
    }
}
