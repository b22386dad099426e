//! The cross-process protocols, written once over the words they use, so
//! the same code runs on the shared mapping's atomics in the engine and on
//! loom's in the model checker (`tests/protocols.rs`), which tries every
//! interleaving and every reordering the memory model allows:
//!
//! * [`sleep_unless`] / [`wake_if_sleeping`]: a worker sleeps on a futex
//!   only after announcing it; a waker that published what the worker
//!   waits for wakes it if it announced. A wake-up is never lost.
//! * [`seqlock_write`] / [`seqlock_read`]: a snapshot (a checkpoint) is
//!   read whole or not at all.
//! * [`stamped_publish`] / [`stamped_read`]: an event log slot is read only
//!   under the stamp of the event wanted, never half-overwritten by the
//!   next lap's event (a seqlock whose version is the stamp).

use std::sync::atomic::Ordering::{self, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64};

/// A shared 32-bit word.
pub trait Word32 {
    /// `load`.
    fn load(&self, order: Ordering) -> u32;
    /// `store`.
    fn store(&self, value: u32, order: Ordering);
    /// `fetch_add`.
    fn fetch_add(&self, value: u32, order: Ordering) -> u32;
}

/// A shared 64-bit word.
pub trait Word64 {
    /// `load`.
    fn load(&self, order: Ordering) -> u64;
    /// `store`.
    fn store(&self, value: u64, order: Ordering);
}

/// Memory fences: std's in the engine, loom's in the model.
pub trait Fences {
    /// A fence of `order`.
    fn fence(order: Ordering);
}

/// std's fences.
#[derive(Debug)]
pub struct StdFences;

impl Fences for StdFences {
    fn fence(order: Ordering) {
        std::sync::atomic::fence(order);
    }
}

impl Word32 for AtomicU32 {
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    fn store(&self, value: u32, order: Ordering) {
        AtomicU32::store(self, value, order);
    }
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, value, order)
    }
}

impl Word64 for AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order);
    }
}

/// Worker side of a futex sleep: reads the `wake` count, announces the
/// sleep (`sleeping` = 1), and waits (`wait(seen)`: a futex wait on `wake`
/// while it still holds `seen`) only if `ready()` is still false; then
/// clears the announcement. Returns whether it waited.
///
/// The announcement and `ready()`'s loads are split by a SeqCst fence, as
/// are the waker's publication and its look at `sleeping` (a store, a
/// fence, a load on each side: Dekker's pattern). So either `ready()` sees
/// what was published or the waker sees the announcement and bumps `wake`,
/// which the futex wait then sees changed: a wake-up is never lost.
/// Fences rather than SeqCst accesses because that is what the C++20 model
/// guarantees for mixed orderings, and what loom checks.
pub fn sleep_unless<F: Fences, W: Word32>(
    wake: &W,
    sleeping: &W,
    ready: impl FnOnce() -> bool,
    wait: impl FnOnce(u32),
) -> bool {
    let seen = wake.load(Acquire);
    sleeping.store(1, Relaxed);
    F::fence(SeqCst);
    let waits = !ready();
    if waits {
        wait(seen);
    }
    sleeping.store(0, Relaxed);
    waits
}

/// Waker side, after publishing what the worker waits for (any store): if
/// the worker announced a sleep, bumps `wake` and calls `wake_up` (a futex
/// wake). Returns whether it did; a busy worker costs no system call. See
/// [`sleep_unless`] for why no wake-up is lost.
pub fn wake_if_sleeping<F: Fences, W: Word32>(wake: &W, sleeping: &W, wake_up: impl FnOnce()) -> bool {
    F::fence(SeqCst);
    if sleeping.load(Relaxed) == 0 {
        return false;
    }
    wake.fetch_add(1, Release);
    wake_up();
    true
}

/// Writes under a seqlock: `seq` odd while `write()` runs (the data it
/// writes, all atomics stored Relaxed, may be torn), even again after.
/// Returns what `write()` returns. One writer.
pub fn seqlock_write<F: Fences, W: Word64, R>(seq: &W, write: impl FnOnce() -> R) -> R {
    let s = seq.load(Relaxed);
    seq.store(s | 1, Relaxed);
    F::fence(Release);
    let r = write();
    seq.store((s | 1) + 1, Release);
    r
}

/// Reads under a seqlock: `read()`'s result (all atomics loaded Relaxed)
/// if no write began or ran while it read (`seq` even and unchanged), else
/// `None`. A writer's fence before its data and the reader's after its data
/// pair: a read that saw any of a write's data sees that write's odd `seq`.
pub fn seqlock_read<F: Fences, W: Word64, T>(seq: &W, read: impl FnOnce() -> T) -> Option<T> {
    let s = seq.load(Acquire);
    if s & 1 == 1 {
        return None;
    }
    let value = read();
    F::fence(Acquire);
    (seq.load(Relaxed) == s).then_some(value)
}

/// Publishes a slot under `stamp` (never 0): the old stamp is cleared
/// first, so a reader of the slot's previous event cannot take part of
/// this one for it. One writer per slot.
pub fn stamped_publish<F: Fences, W: Word64>(stamp: &W, value: u64, write: impl FnOnce()) {
    stamp.store(0, Relaxed);
    F::fence(Release);
    write();
    stamp.store(value, Release);
}

/// What [`stamped_read`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamped<T> {
    /// Another stamp (or none): the event wanted is not there.
    Absent,
    /// It was there, but was overwritten while it was read.
    Overwritten,
    /// Read whole, under the stamp wanted.
    Read(T),
}

/// Reads a slot that must hold stamp `want` (payload loaded Relaxed). A
/// reader that saw any of the next publication's payload sees its cleared
/// stamp on the second look (the two fences pair), so it is never handed
/// a mix of two events. Stamps must never repeat.
pub fn stamped_read<F: Fences, W: Word64, T>(stamp: &W, want: u64, read: impl FnOnce() -> T) -> Stamped<T> {
    if stamp.load(Acquire) != want {
        return Stamped::Absent;
    }
    let value = read();
    F::fence(Acquire);
    if stamp.load(Relaxed) == want { Stamped::Read(value) } else { Stamped::Overwritten }
}
