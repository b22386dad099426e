//! Events: what a DSP is told to do, as fixed-size plain data.
//!
//! An [`Event`] names an entry of the DSP's address table by index and
//! carries up to [`MAX_ARGS`] 32-bit arguments whose meaning the table gives
//! (a whole number, an `f32`, or the index of a name). No pointers, no
//! strings: the same bytes travel through shared memory, journals replay
//! them, and every replica reads the same ones.

use bytemuck::{Pod, Zeroable};

/// Most arguments one event carries.
pub const MAX_ARGS: usize = 6;

/// First address index reserved for the engine's own addresses (below it:
/// the DSP's table, in its order).
pub const ENGINE_ADDRESSES: u16 = 0xff00;

/// `/test/poison s:kind`: every worker that applies it crashes (`crash`) or
/// hangs (`hang`). Honoured by the worker loop, never passed to the DSP, and
/// accepted only by an engine started with fault injection. It stands for a
/// DSP bug that some input triggers in every replica at once.
pub const POISON: u16 = ENGINE_ADDRESSES + 1;

/// `/test/poison` kinds, in the order of its choice argument: every
/// replica that applies it crashes, hangs, or makes a system call its
/// sandbox forbids.
pub const POISON_KINDS: [&str; 3] = ["crash", "hang", "syscall"];

/// One event: an address of the DSP's table and its arguments.
///
/// ```
/// use chronus_dsp::Event;
/// let e = Event::new(0).with_int(7).with_float(440.0).with_float(0.5);
/// assert_eq!((e.int(0), e.float(1), e.float(2)), (7, 440.0, 0.5));
/// assert_eq!(e.argc(), 3);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
#[repr(C)]
pub struct Event {
    /// Index of the address in the DSP's table (or an engine address at
    /// [`ENGINE_ADDRESSES`] and above).
    pub address: u16,
    /// Arguments in use.
    pub argc: u16,
    /// Arguments as 32-bit words: `i32` bits, `f32` bits or a name's index,
    /// as the table says; unused ones are 0.
    pub args: [u32; MAX_ARGS],
}

impl Event {
    /// An event for table entry `address` with no arguments yet.
    pub const fn new(address: u16) -> Self {
        Self { address, argc: 0, args: [0; MAX_ARGS] }
    }

    /// Appends a raw 32-bit argument (ignored past [`MAX_ARGS`]).
    pub const fn with_word(mut self, word: u32) -> Self {
        if (self.argc as usize) < MAX_ARGS {
            self.args[self.argc as usize] = word;
            self.argc += 1;
        }
        self
    }

    /// Appends a whole-number argument.
    pub const fn with_int(self, value: i32) -> Self {
        self.with_word(value as u32)
    }

    /// Appends a float argument.
    pub fn with_float(self, value: f32) -> Self {
        self.with_word(value.to_bits())
    }

    /// Appends a name argument, by its index in the argument's list.
    pub const fn with_choice(self, index: u32) -> Self {
        self.with_word(index)
    }

    /// Arguments in use.
    pub fn argc(&self) -> usize {
        usize::from(self.argc).min(MAX_ARGS)
    }

    /// Argument `i` as a whole number (0 if absent).
    pub fn int(&self, i: usize) -> i32 {
        self.word(i) as i32
    }

    /// Argument `i` as a float (0.0 if absent).
    pub fn float(&self, i: usize) -> f32 {
        f32::from_bits(self.word(i))
    }

    /// Argument `i` as a name index (0 if absent).
    pub fn choice(&self, i: usize) -> u32 {
        self.word(i)
    }

    /// Argument `i` as its raw word (0 if absent).
    pub fn word(&self, i: usize) -> u32 {
        if i < self.argc() { self.args[i] } else { 0 }
    }

    /// Whether this is one of the engine's own addresses.
    pub fn is_engine(&self) -> bool {
        self.address >= ENGINE_ADDRESSES
    }
}

/// An event inside a block, `offset` frames after the block's first frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockEvent {
    /// Frames after the block's first frame (less than the block's length).
    pub offset: u32,
    /// The event.
    pub event: Event,
}

/// An event stamped with the absolute frame it applies at (frame 0: the
/// first frame rendered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimedEvent {
    /// The frame.
    pub frame: u64,
    /// The event.
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip_and_absent_ones_read_as_zero() {
        let e = Event::new(3).with_int(-1).with_float(f32::MIN_POSITIVE).with_choice(2);
        assert_eq!(e.int(0), -1);
        assert_eq!(e.float(1).to_bits(), f32::MIN_POSITIVE.to_bits());
        assert_eq!(e.choice(2), 2);
        assert_eq!(e.word(3), 0);
        let mut full = Event::new(0);
        for i in 0..10 {
            full = full.with_int(i);
        }
        assert_eq!(full.argc(), MAX_ARGS);
        assert_eq!(full.int(MAX_ARGS - 1), MAX_ARGS as i32 - 1);
        assert!(Event::new(POISON).is_engine() && !e.is_engine());
    }
}
