//! Coalescing: within one batch of events stamped at the same frame, an
//! event whose address declares a coalescing key is left out when a later
//! one with the same key follows it with only other coalescible events in
//! between (`/set cutoff 900`, `/set q 2`, `/set cutoff 1200` at one frame
//! is `/set q 2`, `/set cutoff 1200`). The DSP declares that such an
//! earlier event leaves no trace ([`chronus_dsp::AddressSpec::coalesce`]),
//! so the output is the same bits; every replica and the journal get the
//! coalesced stream. It turns a flood of parameter changes into one per key
//! per period. Allocation-free after construction (an open-addressing table
//! with generation tags).

use chronus_dsp::{AddressTable, Event, MAX_ARGS};

#[derive(Clone, Copy, Default)]
struct Entry {
    generation: u32,
    index: u32,
}

/// Finds superseded events in a batch.
pub(crate) struct Coalescer {
    entries: Box<[Entry]>,
    generation: u32,
}

type Key = (u16, [u32; MAX_ARGS]);

fn hash(key: &Key) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ u64::from(key.0);
    for w in key.1 {
        h = (h ^ u64::from(w)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 29)
}

impl Coalescer {
    /// A coalescer for batches of up to `max_batch` events.
    pub fn new(max_batch: usize) -> Self {
        let size = (max_batch * 2).next_power_of_two().max(16);
        Self { entries: vec![Entry::default(); size].into_boxed_slice(), generation: 1 }
    }

    fn next_generation(&mut self) {
        if self.generation == u32::MAX {
            self.entries.fill(Entry::default());
            self.generation = 0;
        }
        self.generation += 1;
    }

    /// Marks `keep[i] = false` for every event of `batch` (all at one frame,
    /// in stamp order) that a later one supersedes; returns how many.
    pub fn run(&mut self, table: &AddressTable, batch: &[Event], keep: &mut [bool]) -> usize {
        let n = batch.len().min(keep.len()).min(self.entries.len() / 2);
        keep[..n].fill(true);
        self.next_generation();
        let mask = self.entries.len() - 1;
        let mut dropped = 0;
        for i in 0..n {
            let Some(key) = table.coalesce_key(&batch[i]) else {
                // Not coalescible: it may depend on what came before it, so a
                // later event must not reach back across it.
                self.next_generation();
                continue;
            };
            let mut at = hash(&key) as usize & mask;
            loop {
                let e = self.entries[at];
                if e.generation != self.generation {
                    self.entries[at] = Entry { generation: self.generation, index: i as u32 };
                    break;
                }
                if table.coalesce_key(&batch[e.index as usize]) == Some(key) {
                    keep[e.index as usize] = false;
                    dropped += 1;
                    self.entries[at].index = i as u32;
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronus_dsp::{AddressSpec, ArgSpec};

    const PARAMS: [&str; 3] = ["cutoff", "q", "amp"];

    fn table() -> AddressTable {
        AddressTable::new(vec![
            AddressSpec::new(
                "/set",
                vec![ArgSpec::choice("param", &PARAMS), ArgSpec::float("value", (0.0, 1.0), "")],
                "",
            )
            .superseded_by_equal(&[0]),
            AddressSpec::new("/note_on", vec![ArgSpec::int("voice", 0, 7)], ""),
        ])
        .unwrap()
    }

    fn set(param: u32, value: f32) -> Event {
        Event::new(0).with_choice(param).with_float(value)
    }

    fn note(voice: i32) -> Event {
        Event::new(1).with_int(voice)
    }

    fn kept(batch: &[Event]) -> Vec<Event> {
        let mut keep = vec![true; batch.len()];
        Coalescer::new(64).run(&table(), batch, &mut keep);
        batch.iter().zip(keep).filter(|(_, k)| *k).map(|(e, _)| *e).collect()
    }

    #[test]
    fn later_equal_keys_supersede_earlier_ones() {
        let batch = [set(0, 0.1), set(1, 0.2), set(0, 0.3), set(0, 0.4)];
        assert_eq!(kept(&batch), [set(1, 0.2), set(0, 0.4)]);
    }

    #[test]
    fn nothing_reaches_back_across_an_event_with_its_own_effect() {
        // The note-on may use the cutoff of its time: both sets stay.
        let batch = [set(0, 0.1), note(3), set(0, 0.3)];
        assert_eq!(kept(&batch), batch);
        let batch = [note(1), note(1)];
        assert_eq!(kept(&batch), batch, "note-ons are never coalesced");
    }

    #[test]
    fn a_flood_collapses_to_one_per_key_and_generations_wrap() {
        let mut c = Coalescer::new(1_024);
        c.generation = u32::MAX - 1;
        let batch: Vec<Event> = (0..1_000).map(|i| set(i % 3, i as f32)).collect();
        let mut keep = vec![true; batch.len()];
        for _ in 0..4 {
            assert_eq!(c.run(&table(), &batch, &mut keep), 997);
            let survivors: Vec<usize> = (0..1_000).filter(|&i| keep[i]).collect();
            assert_eq!(survivors, [997, 998, 999]);
        }
    }
}
