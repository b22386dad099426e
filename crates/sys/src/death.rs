//! A process's death word: a futex word in shared memory that the kernel
//! marks and wakes as the thread owning it exits, however it exits.
//!
//! The word is the one entry of the thread's robust futex list
//! (`set_robust_list(2)`). The kernel walks that list in `exit_mm`, at the
//! start of a thread's exit, before it unmaps the process's memory; the
//! pidfd reports the death only after that (~0.45 µs a mapped page on
//! the VM this was measured on: ~0.8 ms for a worker). Waiting on the
//! word sees a death at the kernel's floor, whatever the process's size.
//! The pidfd stays the proof that the process is gone (and its exit
//! status): the word is only the earliest sign.

use std::io;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Release;
use std::time::Duration;

const WAITERS: u32 = 0x8000_0000;
const OWNER_DIED: u32 = 0x4000_0000;
const TID_MASK: u32 = 0x3fff_ffff;
/// `futex_waitv(2)` takes at most this many words.
pub const MAX_WORDS: usize = 8;

/// The value of a death word armed by thread `tid`: its id, and the
/// waiters bit (the kernel wakes waiters only when it is set).
pub fn armed(tid: u32) -> u32 {
    (tid & TID_MASK) | WAITERS
}

/// Whether the kernel marked the word: the thread that armed it exited.
pub fn owner_died(value: u32) -> bool {
    value & OWNER_DIED != 0
}

/// The thread an armed, live word names; `None` if the word is not armed
/// (0, or a value its owner did not write) or its owner died.
pub fn armed_by(value: u32) -> Option<u32> {
    let tid = value & TID_MASK;
    (value & WAITERS != 0 && !owner_died(value) && tid != 0).then_some(tid)
}

#[repr(C)]
struct RobustList {
    next: *const RobustList,
}

#[repr(C)]
struct RobustListHead {
    list: RobustList,
    futex_offset: isize,
    list_op_pending: *const RobustList,
}

/// Arms `word` as the calling thread's death word: writes
/// [`armed`]`(tid)` to it and registers it as the thread's robust list.
/// The word is `'static`: the kernel writes it as the thread exits.
///
/// This replaces the thread's robust futex list, which is glibc's: a
/// robust pthread mutex the thread holds when it dies is then not marked
/// (glibc keeps its own list consistent; only the kernel's marking is
/// lost). Call it in a thread that uses none — a worker's only thread.
///
/// # Errors
/// The OS error of `set_robust_list` (the word is then armed but nobody
/// marks it: waiters fall back to the pidfd).
pub fn arm(word: &'static AtomicU32) -> io::Result<()> {
    let tid = nix::unistd::gettid().as_raw() as u32;
    word.store(armed(tid), Release);
    // Both live as long as the process: the kernel reads them at exit.
    let entry: &'static mut RobustList = Box::leak(Box::new(RobustList { next: std::ptr::null() }));
    let head: &'static mut RobustListHead = Box::leak(Box::new(RobustListHead {
        list: RobustList { next: std::ptr::null() },
        futex_offset: (word.as_ptr() as isize).wrapping_sub(entry as *const RobustList as isize),
        list_op_pending: std::ptr::null(),
    }));
    // A circular list of one entry: head → entry → head.
    entry.next = &head.list;
    head.list.next = entry;
    // SAFETY: `head` and the entry it links are leaked (never freed nor
    // moved) and the entry's futex, at `futex_offset` from it, is `word`,
    // which is 'static; the length is the head's size, as the kernel
    // requires. The kernel reads the list and writes the word only as the
    // thread exits.
    let ret = unsafe {
        libc::syscall(libc::SYS_set_robust_list, head as *const RobustListHead, size_of::<RobustListHead>())
    };
    crate::cvt(ret).map(drop)
}

/// How [`wait_any`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// A word was woken (or a signal interrupted the wait): re-check them.
    Woken,
    /// A word no longer held its expected value when the wait began.
    Changed,
    /// The timeout passed.
    TimedOut,
    /// No words, or the kernel has no `futex_waitv` (before Linux 5.16) or
    /// refused them: wait some other way.
    Unsupported,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// Waits until one of `words` (at most [`MAX_WORDS`]; the rest are not
/// waited on) is woken or does not hold its expected value, at most
/// `timeout`. The futexes are shared (the words live in memory several
/// processes map). Never allocates.
pub fn wait_any(words: &[(&AtomicU32, u32)], timeout: Duration) -> Waited {
    const SIZE_U32: u32 = 0x02;
    let mut waits = [FutexWaitv { val: 0, uaddr: 0, flags: 0, reserved: 0 }; MAX_WORDS];
    let n = words.len().min(MAX_WORDS);
    for (w, (word, expected)) in waits.iter_mut().zip(words) {
        *w = FutexWaitv {
            val: u64::from(*expected),
            uaddr: word.as_ptr() as u64,
            flags: SIZE_U32,
            reserved: 0,
        };
    }
    if n == 0 {
        return Waited::Unsupported;
    }
    let deadline = crate::clock::monotonic_ns().saturating_add(timeout.as_nanos() as u64);
    let ts = libc::timespec {
        tv_sec: (deadline / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `waits[..n]` are valid futex_waitv entries whose addresses
    // are aligned u32s borrowed for the call; `ts` outlives it; the kernel
    // only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            waits.as_ptr(),
            n as libc::c_uint,
            0u32,
            &ts as *const libc::timespec,
            libc::CLOCK_MONOTONIC,
        )
    };
    if ret >= 0 {
        return Waited::Woken;
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Waited::Changed,
        Some(libc::ETIMEDOUT) => Waited::TimedOut,
        Some(libc::EINTR) => Waited::Woken,
        _ => Waited::Unsupported,
    }
}
