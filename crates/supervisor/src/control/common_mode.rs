//! Carrying out the common-mode policy (`policy::common_mode`): telling it
//! what a lost worker was doing, what the workers have rendered since, and
//! doing what it decides (hold replacements, run a trial, cut commands out).

use std::sync::atomic::Ordering::{Acquire, Relaxed};

use chronus_ipc::{LogEntry, LogReader, Recorder};

use super::slot::JoinIo;
use super::{Fate, Supervisor, TrialRun};
use crate::collector::Note;
use crate::events::Cut;
use crate::events::{DetectedBy, ExitStatus};
use crate::policy::Nanos;
use crate::policy::common_mode::{Cause, Decision, Loss, Sight};
use crate::policy::join::Phase;
use crate::shared::{JOINING, LIVE};

/// A trial may use this many times the time its worker last took for a
/// block inside the suspect block before it counts as spinning there.
const TRIAL_CPU_MARGIN: u64 = 8;
/// ... and at least this much CPU time (ns).
const TRIAL_CPU_FLOOR: Nanos = 1_000_000;

impl Supervisor {
    /// What slot `i`'s worker, just lost, tells about its input. Called
    /// before anything of the slot is reset.
    pub(crate) fn loss_of(&self, i: usize, generation: u64, exit: ExitStatus, fate: &Fate) -> Loss {
        let region = &self.shared.slots[i].region;
        let hb = region.heartbeat();
        let rendering = hb.rendering.load(Acquire);
        let injected = region.requested_fault().is_some() || fate.sent_fault.is_some();
        let cause = match fate.killing {
            Some((DetectedBy::Watchdog, _)) => Cause::Hang,
            Some(_) => Cause::Other,
            // Faults made on purpose, and SIGKILL from outside (no DSP
            // sends itself one), are no evidence against the input.
            None if injected || exit.signal == Some(libc::SIGKILL) => Cause::Other,
            None => Cause::Crash,
        };
        Loss {
            worker: generation,
            cause,
            block: rendering.checked_sub(1),
            events: (hb.block_events_from.load(Relaxed), hb.block_events_to.load(Relaxed)),
            trial: self.trial_slot() == Some(i),
        }
    }

    /// Feeds a loss to the policy and does what it decides.
    pub(crate) fn on_loss(&mut self, i: usize, loss: &Loss, now: Nanos) {
        if loss.trial {
            self.trial = None;
        }
        if let (Cause::Crash | Cause::Hang, Some(block), false) = (loss.cause, loss.block, loss.trial) {
            tracing::warn!(
                "slot {i}: lost inside the block at frame {block} (events {}..{}): watching that block",
                loss.events.0,
                loss.events.1
            );
        }
        let decision = self.common.lost(now, loss);
        self.carry_out_common(decision);
    }

    /// What the workers show of the suspect block.
    pub(crate) fn sight(&self) -> Sight {
        let Some(block) = self.common.block() else { return Sight::default() };
        let end = block + u64::from(self.cfg.block);
        let mut sight = Sight::default();
        for (i, slot) in self.shared.slots.iter().enumerate() {
            let state = slot.state();
            if self.slots[i].proc.is_none() || !matches!(state, LIVE | JOINING) {
                continue;
            }
            let past = slot.region.audio_write_frame() >= end;
            if self.slots[i].fate.killing.is_some() {
                // Being killed (the watchdog ends every replica stuck in a
                // shared hang, one exit at a time): its exit will tell.
                sight.pending |= state == LIVE && !past;
            } else if self.trial_slot() == Some(i) {
                if !matches!(self.slots[i].phase(), Phase::Verify { .. }) {
                    // Not started yet: what its ring shows may be a
                    // previous trial's (a reused worker).
                    continue;
                }
                let hb = slot.region.heartbeat();
                sight.trial_passed = past;
                sight.trial_inside = hb.rendering.load(Acquire) == block + 1;
                // The fork running it, else the worker itself.
                let pid = Some(slot.region.control().trial_pid.load(Acquire)).filter(|&p| p != 0);
                sight.trial_cpu_ns = pid.or(self.pid(i)).and_then(chronus_sys::clock::process_cpu_ns);
                // What a block takes, as the worker measured it last
                // (bringing its DSP to the block, or a trial's last block;
                // wall time: an overestimate), with room; never less than
                // a millisecond, never more than a block period.
                let period = self.cfg.block_duration().as_nanos() as Nanos;
                let block_ns = hb.render_ns_last.load(Relaxed);
                sight.trial_cpu_budget = TRIAL_CPU_MARGIN
                    .saturating_mul(block_ns)
                    .clamp(TRIAL_CPU_FLOOR, period.max(TRIAL_CPU_FLOOR));
            } else if past {
                sight.passed = true;
            } else if state == LIVE {
                sight.pending = true;
            }
        }
        sight
    }

    /// One pass of the common-mode policy.
    pub(crate) fn step_common_mode(&mut self, now: Nanos) {
        if self.common.block().is_none() {
            return;
        }
        let sight = self.sight();
        let decision = self.common.poll(now, &sight);
        self.carry_out_common(decision);
    }

    fn carry_out_common(&mut self, decision: Decision) {
        match decision {
            Decision::Wait => {}
            Decision::EndTrial => self.end_trial(),
            Decision::TrialHung => {
                if let Some(run) = &mut self.trial {
                    let t = run.slot;
                    if self.shared.slots[t].region.control().trial_pid.load(Acquire) != 0 {
                        // A fork runs it: its worker ends it, and lives on.
                        run.hung = true;
                        self.shared.slots[t].region.request_trial_end();
                    } else {
                        self.kill(t, DetectedBy::Watchdog);
                    }
                }
            }
            Decision::Reset { block } => {
                tracing::error!(
                    "every replica died in the block at frame {block}, which has no commands: the DSP fails there by \
                     itself; replacements start from a reset DSP after it (its state is lost)"
                );
                self.reset_next = true;
            }
            Decision::Cut { block, from, to, trials } => {
                self.cut(block, from, to, trials);
                self.end_trial();
            }
        }
    }

    /// The running trial passed the suspect block: it is ended (its fork
    /// killed by its worker), and its worker is a spare again. A worker
    /// that ran it in itself (it could not fork) is one too: its next start
    /// restores a checkpoint over whatever it rendered.
    fn end_trial(&mut self) {
        let Some(TrialRun { slot: t, .. }) = self.trial.take() else { return };
        self.shared.slots[t].region.request_trial_end();
        self.trial_to_spare(t);
        tracing::info!("slot {t}: the poison trial passed the block; its worker is a spare again");
    }

    fn trial_to_spare(&mut self, t: usize) {
        if let Some(k) = self.slots[t].io.reading.take() {
            self.checkpoints.done_reading(k);
        }
        self.slots[t].io = JoinIo::default();
        self.watchdog.unwatch(t);
        self.slots[t].trial_ended();
    }

    /// The fork running the trial is gone by itself (it applied the
    /// poison), or ended as hung: a loss inside the suspect block, evidence
    /// like a worker's death; its worker is a spare again at once.
    pub(crate) fn collect_trial_end(&mut self, now: Nanos) {
        let Some(TrialRun { slot: t, hung }) = self.trial else { return };
        let region = &self.shared.slots[t].region;
        let Some(end) = region.trial_end().filter(|e| Some(e.start_id) == self.slots[t].io.start_req())
        else {
            return;
        };
        let hb = region.heartbeat();
        let forbidden_call =
            (end.signal == Some(libc::SIGSYS)).then(|| region.forbidden_call(Recorder::Trial)).flatten();
        let exit = ExitStatus { code: end.code, signal: end.signal, forbidden_call };
        let cause = match exit {
            _ if hung => Cause::Hang,
            // Ended by its worker, as asked: it passed, or was stopped.
            _ if end.on_request => Cause::Other,
            ExitStatus { signal: Some(libc::SIGKILL), .. } | ExitStatus { code: Some(0), .. } => Cause::Other,
            _ => Cause::Crash,
        };
        let loss = Loss {
            worker: self.slots[t].proc.as_ref().map_or(0, |p| p.generation),
            cause,
            block: hb.rendering.load(Acquire).checked_sub(1),
            events: (hb.block_events_from.load(Relaxed), hb.block_events_to.load(Relaxed)),
            trial: true,
        };
        tracing::info!("slot {t}: the poison trial {exit} ({cause:?}); its worker is a spare again");
        self.trial_to_spare(t);
        self.on_loss(t, &loss, now);
    }

    /// Cuts event numbers `from..to` out of every replica and replacement
    /// from now on, journals it, remembers the commands to refuse them, and
    /// tells their senders.
    fn cut(&mut self, block: u64, from: u64, to: u64, trials: u32) {
        let s = self.shared.clone();
        let mut log = LogReader::new(&s.bus, from);
        for seq in from..to {
            log.seek(seq);
            let entry = log.peek();
            if !s.bus.excise(seq) {
                tracing::error!(
                    "cannot cut event {seq}: the excision table is full; replacements will keep dying on it"
                );
                continue;
            }
            if self.notes.push(Note::Excise(seq)).is_err() {
                s.io_overruns.fetch_add(1, Relaxed);
            }
            s.excised_commands.fetch_add(1, Relaxed);
            let LogEntry::Event(_, e) = entry else { continue };
            s.poisons.add(&e.event);
            let origin = s.origin(seq);
            let _ = self.cuts.push(Cut { seq, frame: e.frame, event: e.event, origin });
            let what = self.cfg.dsp.table().format(&e.event).map_or_else(
                || format!("address {}", e.event.address),
                |(path, args)| format!("{path} {args:?}"),
            );
            tracing::error!(
                "cut out event {seq} ({what}, frame {}): every replica crashed or hung applying it in the block at \
                 frame {block} ({} suspect(s), {trials} trial(s)); identical commands are refused from now on",
                e.frame,
                to - from
            );
        }
    }
}
