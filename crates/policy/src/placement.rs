//! Which CPUs each worker may run on, in the in-cycle mode.
//!
//! Inside the cycle the live replicas render at the same real-time priority
//! at the same moment, and SCHED_FIFO does not share a priority level: a
//! replica woken on a CPU where another worker of that priority is running
//! waits until it blocks. Two cases cost a cycle on a 2-core machine when
//! nothing is placed: a slow replica spinning where the other wakes, and a
//! spare catching up from a checkpoint (a burst of blocks at that priority)
//! on the CPU of the one replica left live. So each live replica gets a CPU
//! of its own, and every other worker (spares, a joining replacement, a
//! poison trial) runs on the CPUs no live replica holds, when there are any;
//! when the live replicas hold every CPU, the others run anywhere (they wait
//! idle, and a catch-up then competes as it would unplaced).

/// Where one worker may run: a set of CPU indices into the allowed list the
/// caller passes, as a bit mask (`0`: anywhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Placement(pub u64);

impl Placement {
    /// Anywhere the process may run.
    pub const ANY: Self = Self(0);

    /// Only on CPU `k` of the allowed list.
    pub fn only(k: usize) -> Self {
        Self(1 << k)
    }

    /// Whether this lets the worker run anywhere.
    pub fn is_any(self) -> bool {
        self.0 == 0
    }

    /// The CPU indices (into the allowed list) it names; empty for anywhere.
    pub fn cpus(self) -> impl Iterator<Item = usize> {
        (0..MAX_CPUS).filter(move |k| self.0 & (1 << k) != 0)
    }

    /// Whether it lets the worker run on CPU `k` of the allowed list.
    pub fn allows(self, k: usize) -> bool {
        self.is_any() || (k < MAX_CPUS && self.0 & (1 << k) != 0)
    }
}

/// The most CPUs placement spreads over (the mask's width).
pub const MAX_CPUS: usize = 64;

/// The placement of each worker, given for each slot whether it holds a live
/// replica (`Some(true)`), another worker (`Some(false)`) or no worker
/// (`None`), on a machine with `cpus` allowed CPUs. The k-th live replica
/// gets CPU k (wrapping when there are more replicas than CPUs); the others
/// get every CPU no live replica holds, or anywhere when none is left.
pub fn place(slots: &[Option<bool>], cpus: usize, out: &mut [Placement]) {
    let cpus = cpus.clamp(1, MAX_CPUS);
    let mut held = 0u64;
    let mut rank = 0;
    for (slot, o) in slots.iter().zip(out.iter_mut()) {
        *o = Placement::ANY;
        if *slot == Some(true) {
            *o = Placement::only(rank % cpus);
            held |= o.0;
            rank += 1;
        }
    }
    let all = if cpus == MAX_CPUS { u64::MAX } else { (1u64 << cpus) - 1 };
    let free = all & !held;
    for (slot, o) in slots.iter().zip(out.iter_mut()) {
        if *slot == Some(false) {
            *o = Placement(free);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(slots: &[Option<bool>], cpus: usize) -> Vec<Placement> {
        let mut out = vec![Placement(99); slots.len()];
        place(slots, cpus, &mut out);
        out
    }

    #[test]
    fn live_replicas_get_a_cpu_each_and_spares_run_anywhere_when_none_is_free() {
        let p = placed(&[Some(true), Some(true), Some(false)], 2);
        assert_eq!(p, [Placement::only(0), Placement::only(1), Placement::ANY]);
    }

    #[test]
    fn a_catching_up_spare_keeps_off_the_last_live_replicas_cpu() {
        // The active died: one live replica, a spare joining from a
        // checkpoint, a slot waiting for its worker.
        let p = placed(&[None, Some(true), Some(false)], 2);
        assert_eq!(p, [Placement::ANY, Placement::only(0), Placement::only(1)]);
        assert_eq!(p[2].cpus().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn the_others_share_every_free_cpu() {
        let p = placed(&[Some(true), Some(false), Some(true), Some(false)], 4);
        assert_eq!(p[0], Placement::only(0));
        assert_eq!(p[2], Placement::only(1));
        assert_eq!(p[1], Placement(0b1100));
        assert_eq!(p[3], Placement(0b1100));
    }

    #[test]
    fn more_replicas_than_cpus_wrap_and_one_cpu_places_nothing_apart() {
        let p = placed(&[Some(true), Some(true), Some(true)], 2);
        assert_eq!(p, [Placement::only(0), Placement::only(1), Placement::only(0)]);
        let p = placed(&[Some(true), Some(false)], 1);
        assert_eq!(p, [Placement::only(0), Placement::ANY]);
    }

    #[test]
    fn a_mask_as_wide_as_the_machine_allows() {
        let p = placed(&[Some(true), Some(false)], 200);
        assert_eq!(p[0], Placement::only(0));
        assert_eq!(p[1], Placement(u64::MAX - 1));
        assert!(!p[1].is_any());
    }
}
