//! Shared futexes: a word in memory several processes map.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Waits while `*word == expected`, at most `timeout`. Returns on a wake,
/// a value change, a signal or the timeout; callers re-check their
/// condition. The futex is shared (not private): the word lives in memory
/// mapped by several processes.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call and
    // `ts` outlives it; FUTEX_WAIT only reads them. Errors (EAGAIN when the
    // value already changed, EINTR, ETIMEDOUT) all mean "re-check".
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes up to `n` waiters on `word` (in any process). Never blocks.
pub fn futex_wake(word: &AtomicU32, n: u32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access it
    // beyond using its address as the key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n, 0usize, 0usize, 0u32);
    }
}
