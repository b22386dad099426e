//! Chronus's process-level tests, in one binary: real `chronus` processes,
//! real workers (this binary is its own worker for the test DSPs, through
//! `worker_test_entry!`), real UDP, JACK and PipeWire, real SIGKILLs, audio
//! compared bit for bit. Tests that play in real time, start processes or
//! servers take `util::rt_lock()`, so they run one at a time.
//!
//! Helpers: `util` (the binary, temporary directories, renders, kills),
//! `util::play` (a `chronus play` process to talk OSC to), `util::jackd`
//! (a private JACK server), `util::osc` (an OSC client).

mod util;

mod common_mode;
mod device;
mod embedding;
mod examples;
mod failover;
mod in_cycle;
mod jack;
mod memory;
mod osc;
#[cfg(debug_assertions)]
mod output_no_alloc;
mod overload;
mod pipewire;
mod render_cli;
mod sandbox;
mod supervisor;
mod worker_matches_offline;
