//! Commands the synth applies at exact frames.

use crate::Param;

/// A control command. Voices are numbered from 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Command {
    /// Sets the voice's frequency (Hz) and amplitude (linear) and opens its
    /// gate: attack from silence, or from the current level on a retrigger.
    NoteOn {
        /// Voice id.
        voice: u32,
        /// Frequency in Hz.
        freq: f32,
        /// Amplitude, linear gain.
        amp: f32,
    },
    /// Closes the voice's gate: release from the current level.
    NoteOff {
        /// Voice id.
        voice: u32,
    },
    /// Sets a parameter on every voice (and `master`, which is global).
    Set {
        /// The parameter.
        param: Param,
        /// Its new value, in the parameter's unit.
        value: f32,
    },
    /// Plays note `id` (the client's number; `-1`: engine-chosen, not
    /// addressable) on a voice the synth picks (see [`crate::notes`]).
    NoteOnId {
        /// Note ID.
        id: i32,
        /// Frequency in Hz.
        freq: f32,
        /// Amplitude, linear gain.
        amp: f32,
    },
    /// Releases note `id` (`-1`: every engine-chosen note).
    NoteOffId {
        /// Note ID.
        id: i32,
    },
    /// Sets a parameter of note `id`'s voice.
    NoteSet {
        /// Note ID.
        id: i32,
        /// The parameter.
        param: Param,
        /// Its new value, in the parameter's unit.
        value: f32,
    },
    /// Starts a patch change (see [`crate::patch_change`]): the `Set`
    /// commands that follow build the new patch from the defaults; the
    /// voices fade out over `fade` seconds, the new patch replaces the old,
    /// they fade back in.
    PatchBegin {
        /// Seconds of each fade, `[0, 1]` (0: at once).
        fade: f32,
    },
    /// Sets a parameter on one voice.
    VoiceSet {
        /// Voice id.
        voice: u32,
        /// The parameter.
        param: Param,
        /// Its new value, in the parameter's unit.
        value: f32,
    },
}

/// A command stamped with the absolute frame it applies at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedCommand {
    /// Absolute frame index (0 = the first frame rendered).
    pub frame: u64,
    /// The command.
    pub command: Command,
}

/// Feeds commands to [`crate::Synth::render_with`] in frame order.
pub trait CommandSource {
    /// The next command whose frame is before `end`, if any. Commands must
    /// come in non-decreasing frame order; one whose frame is already past is
    /// applied at once (and counted as late by the synth).
    fn next_before(&mut self, end: u64) -> Option<TimedCommand>;
}

/// A [`CommandSource`] over a slice of commands sorted by frame.
#[derive(Debug)]
pub struct SliceSource<'a> {
    commands: &'a [TimedCommand],
    next: usize,
}

impl<'a> SliceSource<'a> {
    /// A source that yields `commands` (sorted by frame) in order.
    pub fn new(commands: &'a [TimedCommand]) -> Self {
        Self { commands, next: 0 }
    }

    /// How many commands have been handed out.
    pub fn consumed(&self) -> usize {
        self.next
    }
}

impl CommandSource for SliceSource<'_> {
    fn next_before(&mut self, end: u64) -> Option<TimedCommand> {
        let cmd = *self.commands.get(self.next)?;
        if cmd.frame < end {
            self.next += 1;
            Some(cmd)
        } else {
            None
        }
    }
}
