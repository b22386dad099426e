//! Notes by ID: the client names a note (`/note/on 17 440 0.5`), the synth
//! finds it a voice.
//!
//! Allocation is deterministic and part of the snapshot, so every replica
//! (and the journal rendered offline) gives the same note the same voice. A
//! note gets, in this order: an idle voice (the one idle longest), else a
//! released voice still sounding its tail (the one released longest ago),
//! else the voice held longest (stolen). A voice that is taken while it
//! sounds is retriggered from its current level with its phase running on:
//! the waveform never jumps, so a steal never clicks.
//!
//! IDs are the client's 32-bit numbers; `-1` asks for an engine-chosen note
//! that cannot be addressed later (it ends by its own release, or when its
//! voice is taken). An ID already sounding is retriggered on its voice.

use bytemuck::{Pod, Zeroable};

/// The ID of a note nobody can address (`/note/on -1 …`), and of a voice
/// with no note.
pub const ANONYMOUS: i32 = -1;

/// What a voice holds, for allocation. Plain data, in the snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct NoteSlot {
    /// The note's ID ([`ANONYMOUS`]: none, or not addressable).
    pub id: i32,
    /// 1 while the note is held (gate open), 0 once released.
    pub held: u32,
    /// When the voice was last given a note or released (a counter).
    pub since: u64,
}

impl NoteSlot {
    const FREE: Self = Self { id: ANONYMOUS, held: 0, since: 0 };
}

/// Which voice each note has.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteTable {
    pub(crate) slots: Vec<NoteSlot>,
    pub(crate) clock: u64,
}

/// Where a new note goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The voice.
    pub voice: u32,
    /// It was sounding another held note (stolen).
    pub stolen: bool,
}

impl NoteTable {
    /// A table for `voices` voices (allocates here only).
    pub fn new(voices: u32) -> Self {
        Self { slots: vec![NoteSlot::FREE; voices as usize], clock: 0 }
    }

    /// Back to no notes. Never allocates.
    pub fn clear(&mut self) {
        self.slots.fill(NoteSlot::FREE);
        self.clock = 0;
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The voice note `id` sounds on, while it is addressable.
    pub fn voice_of(&self, id: i32) -> Option<u32> {
        if id == ANONYMOUS {
            return None;
        }
        self.slots.iter().position(|s| s.id == id).map(|v| v as u32)
    }

    /// Gives note `id` a voice; `idle(v)` says whether voice `v` is silent.
    /// Never allocates.
    pub fn allocate(&mut self, id: i32, idle: impl Fn(u32) -> bool) -> Allocation {
        let now = self.tick();
        if let Some(v) = self.voice_of(id) {
            self.slots[v as usize] = NoteSlot { id, held: 1, since: now };
            return Allocation { voice: v, stolen: false };
        }
        let oldest = |pick: &dyn Fn(u32, &NoteSlot) -> bool| {
            self.slots
                .iter()
                .enumerate()
                .filter(|(v, s)| pick(*v as u32, s))
                .min_by_key(|(v, s)| (s.since, *v))
                .map(|(v, _)| v as u32)
        };
        let (voice, stolen) = if let Some(v) = oldest(&|v, _| idle(v)) {
            (v, false)
        } else if let Some(v) = oldest(&|_, s| s.held == 0) {
            (v, false)
        } else {
            (oldest(&|_, _| true).unwrap_or(0), true)
        };
        self.slots[voice as usize] = NoteSlot { id, held: 1, since: now };
        Allocation { voice, stolen }
    }

    /// Note `id` is released: its voice plays its tail, and may be taken.
    /// Returns the voice, if the note had one.
    pub fn release(&mut self, id: i32) -> Option<u32> {
        let v = self.voice_of(id)?;
        let now = self.tick();
        self.slots[v as usize] = NoteSlot { id: ANONYMOUS, held: 0, since: now };
        Some(v)
    }

    /// Voice `v` fell silent or was addressed directly: it holds no note.
    pub fn forget_voice(&mut self, v: u32) {
        if let Some(s) = self.slots.get_mut(v as usize)
            && s.held == 1
        {
            s.id = ANONYMOUS;
            s.held = 0;
        }
    }

    /// Checks a table read from a snapshot.
    pub(crate) fn valid(slots: &[NoteSlot], clock: u64) -> bool {
        slots.iter().all(|s| s.held <= 1 && s.since <= clock && (s.held == 1 || s.id == ANONYMOUS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_voices_first_then_released_then_the_oldest_held_is_stolen() {
        let mut t = NoteTable::new(3);
        let mut sounding = [false; 3];
        let on = |t: &mut NoteTable, id, s: &mut [bool; 3]| {
            let a = t.allocate(id, |v| !s[v as usize]);
            s[a.voice as usize] = true;
            a
        };
        assert_eq!(on(&mut t, 10, &mut sounding).voice, 0);
        assert_eq!(on(&mut t, 11, &mut sounding).voice, 1);
        assert_eq!(on(&mut t, 12, &mut sounding).voice, 2);
        // Every voice sounds; 11 is released (its tail still sounds).
        assert_eq!(t.release(11), Some(1));
        assert_eq!(on(&mut t, 13, &mut sounding), Allocation { voice: 1, stolen: false });
        // Nothing released: the note held longest (10) loses its voice.
        assert_eq!(on(&mut t, 14, &mut sounding), Allocation { voice: 0, stolen: true });
        assert_eq!(t.voice_of(10), None, "a stolen note is gone");
        assert_eq!(t.release(10), None);
        assert_eq!(t.voice_of(14), Some(0));
    }

    #[test]
    fn an_id_sounding_is_retriggered_and_anonymous_notes_are_not_addressable() {
        let mut t = NoteTable::new(4);
        let a = t.allocate(5, |_| true);
        assert_eq!(t.allocate(5, |_| true).voice, a.voice);
        let anon = t.allocate(ANONYMOUS, |v| v != a.voice);
        assert_ne!(anon.voice, a.voice);
        assert_eq!(t.voice_of(ANONYMOUS), None);
        assert_eq!(t.release(ANONYMOUS), None);
        assert!(NoteTable::valid(&t.slots, t.clock));
    }
}
