//! Model checks of the cross-process protocols (`chronus_ipc::protocol`).
//!
//! The engine runs these functions over the shared mapping's atomics; here
//! loom runs the very same functions over its own atomics and fences and
//! tries every interleaving and every reordering the C++20 memory model
//! allows (loom checks fences exactly; it does not model SeqCst loads and
//! stores, which is why the protocols order themselves with fences). Each
//! model asserts the property the engine relies on, and a twin with the
//! fences taken out (or the previous event log protocol) shows the model
//! is able to find the bug the fences prevent: those are `should_panic`.
//!
//! Why loom over an exhaustive hand model: it checks the code that ships,
//! not a transcription of it. Its bounds: two or three threads, a few
//! operations each, which is what each protocol is.

use std::sync::atomic::Ordering::{self, Acquire, Relaxed, Release};

use chronus_ipc::protocol::{
    Fences, Stamped, Word32, Word64, seqlock_read, seqlock_write, sleep_unless, stamped_publish,
    stamped_read, wake_if_sleeping,
};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, AtomicU64};
use loom::thread;

/// A loom 32-bit word.
struct L32(AtomicU32);
/// A loom 64-bit word.
struct L64(AtomicU64);
/// loom's fences.
struct LoomFences;
/// No fences at all: the twin that must fail.
struct NoFences;

impl Word32 for L32 {
    fn load(&self, order: Ordering) -> u32 {
        self.0.load(order)
    }
    fn store(&self, value: u32, order: Ordering) {
        self.0.store(value, order);
    }
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        self.0.fetch_add(value, order)
    }
}

impl Word64 for L64 {
    fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
    fn store(&self, value: u64, order: Ordering) {
        self.0.store(value, order);
    }
}

impl Fences for LoomFences {
    fn fence(order: Ordering) {
        loom::sync::atomic::fence(order);
    }
}

impl Fences for NoFences {
    fn fence(_: Ordering) {}
}

fn w32(v: u32) -> L32 {
    L32(AtomicU32::new(v))
}

fn w64(v: u64) -> L64 {
    L64(AtomicU64::new(v))
}

/// A worker's control word that stops taking the worker's stores once the
/// worker blocks: a worker left waiting never reaches its "awake again"
/// store to `sleeping`, and the model must not let the waker see it.
struct ControlWord {
    word: L32,
    /// Model bookkeeping, touched only by the worker's thread.
    blocked: std::sync::atomic::AtomicBool,
}

impl Word32 for ControlWord {
    fn load(&self, order: Ordering) -> u32 {
        self.word.load(order)
    }
    fn store(&self, value: u32, order: Ordering) {
        if !self.blocked.load(Relaxed) {
            self.word.store(value, order);
        }
    }
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        self.word.fetch_add(value, order)
    }
}

/// A worker's `wake` and `sleeping` words and the render limit it waits
/// for.
struct Sleep {
    wake: ControlWord,
    sleeping: ControlWord,
    limit: L64,
}

/// One worker going to sleep until the render limit reaches 1 while the
/// output thread publishes it and wakes the worker if it sleeps. The futex
/// wait is the kernel's check: the worker blocks if `wake` still holds the
/// value read before the announcement (a wake after that check finds it
/// queued, so it is woken). Property: a worker that blocks is woken.
fn sleep_model<F: Fences>() {
    loom::model(|| {
        let word = || ControlWord { word: w32(0), blocked: false.into() };
        let s = Arc::new(Sleep { wake: word(), sleeping: word(), limit: w64(0) });
        let w = s.clone();
        let worker = thread::spawn(move || {
            sleep_unless::<F, _>(
                &w.wake,
                &w.sleeping,
                || w.limit.load(Acquire) >= 1,
                |seen| {
                    if w.wake.load(Relaxed) == seen {
                        w.sleeping.blocked.store(true, Relaxed);
                    }
                },
            );
            w.sleeping.blocked.load(Relaxed)
        });
        s.limit.store(1, Release);
        let woke = wake_if_sleeping::<F, _>(&s.wake, &s.sleeping, || {});
        let blocked = worker.join().unwrap();
        assert!(!blocked || woke, "lost wake-up: the worker blocks and nobody wakes it");
    });
}

#[test]
fn a_wake_up_is_never_lost() {
    sleep_model::<LoomFences>();
}

#[test]
#[should_panic(expected = "lost wake-up")]
fn without_the_fences_a_wake_up_is_lost() {
    sleep_model::<NoFences>();
}

/// A checkpoint: a sequence word and two data words that a write sets to
/// the same value.
struct Seqlock {
    seq: L64,
    a: L64,
    b: L64,
}

/// The supervisor rewriting a checkpoint twice while a worker reads it: a
/// read that is accepted holds one write's words, never a mix.
fn seqlock_model<F: Fences>() {
    loom::model(|| {
        let s = Arc::new(Seqlock { seq: w64(0), a: w64(1), b: w64(1) });
        let w = s.clone();
        let writer = thread::spawn(move || {
            for v in [2, 3] {
                seqlock_write::<F, _, _>(&w.seq, || {
                    w.a.store(v, Relaxed);
                    w.b.store(v, Relaxed);
                });
            }
        });
        if let Some((a, b)) = seqlock_read::<F, _, _>(&s.seq, || (s.a.load(Relaxed), s.b.load(Relaxed))) {
            assert_eq!(a, b, "torn checkpoint accepted");
        }
        writer.join().unwrap();
    });
}

#[test]
fn an_accepted_checkpoint_is_never_torn() {
    seqlock_model::<LoomFences>();
}

#[test]
#[should_panic(expected = "torn checkpoint accepted")]
fn without_the_fences_a_torn_checkpoint_is_accepted() {
    seqlock_model::<NoFences>();
}

/// One event log slot: its stamp and a two-word payload.
struct Slot {
    stamp: L64,
    a: L64,
    b: L64,
}

/// The stamps of two laps of one slot (any distinct non-zero values).
const LAP1: u64 = 11;
const LAP2: u64 = 22;

/// A slot holding lap 1's event (payload 1, 1) while the writer publishes
/// lap 2's (2, 2) into it and a reader wants lap `want`'s.
fn slot_model(want: u64, publish: fn(&Slot, u64, u64), read: fn(&Slot, u64) -> Stamped<(u64, u64)>) {
    loom::model(move || {
        let s = Arc::new(Slot { stamp: w64(LAP1), a: w64(1), b: w64(1) });
        let w = s.clone();
        let writer = thread::spawn(move || publish(&w, LAP2, 2));
        if let Stamped::Read(got) = read(&s, want) {
            let expected = if want == LAP1 { (1, 1) } else { (2, 2) };
            assert_eq!(got, expected, "wrong or torn event accepted");
        }
        writer.join().unwrap();
    });
}

fn publish(s: &Slot, stamp: u64, v: u64) {
    stamped_publish::<LoomFences, _>(&s.stamp, stamp, || {
        s.a.store(v, Relaxed);
        s.b.store(v, Relaxed);
    });
}

fn read(s: &Slot, want: u64) -> Stamped<(u64, u64)> {
    stamped_read::<LoomFences, _, _>(&s.stamp, want, || (s.a.load(Relaxed), s.b.load(Relaxed)))
}

/// The event log's protocol before it was written once here: the payload
/// overwritten under the old stamp, the stamp set last; the reader checked
/// the stamp before and after with no fence.
fn old_publish(s: &Slot, stamp: u64, v: u64) {
    s.a.store(v, Relaxed);
    s.b.store(v, Relaxed);
    s.stamp.store(stamp, Release);
}

fn old_read(s: &Slot, want: u64) -> Stamped<(u64, u64)> {
    if s.stamp.load(Acquire) != want {
        return Stamped::Absent;
    }
    let got = (s.a.load(Relaxed), s.b.load(Relaxed));
    if s.stamp.load(Acquire) == want { Stamped::Read(got) } else { Stamped::Overwritten }
}

#[test]
fn a_lapped_reader_never_takes_the_next_lap_for_its_event() {
    slot_model(LAP1, publish, read);
}

#[test]
fn a_reader_of_the_new_event_reads_it_whole() {
    slot_model(LAP2, publish, read);
}

#[test]
#[should_panic(expected = "wrong or torn event accepted")]
fn the_previous_log_protocol_accepted_a_torn_event() {
    slot_model(LAP1, old_publish, old_read);
}
