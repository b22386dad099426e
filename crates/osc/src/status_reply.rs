//! `/status.reply`, defined once: one table gives each field its name, its
//! OSC type, its meaning and where it comes from; the encoder (the server),
//! the decoder (`chronus status`, tests, any Rust client) and the field
//! list all come from it.
//!
//! The wire is positional, in table order, and only ever grows at the end:
//! a reply from an older engine decodes with the fields it lacks at their
//! defaults ([`StatusReply::received`] says how many came).

use chronus_supervisor::Status;
use rosc::OscType;

use crate::OscStats;

/// What the server knows besides the engine's [`Status`].
#[derive(Clone, Copy, Debug)]
pub struct ServerSide<'a> {
    /// The server's counters.
    pub osc: &'a OscStats,
    /// The DSP's name.
    pub dsp: &'a str,
}

fn pid(p: Option<u32>) -> i32 {
    p.map_or(0, |p| p as i32)
}

fn long(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn load(c: &std::sync::atomic::AtomicU64) -> i64 {
    long(c.load(std::sync::atomic::Ordering::Relaxed))
}

/// An OSC argument of the reply as the field's Rust type.
trait Wire: Sized + Default {
    fn to_osc(&self) -> OscType;
    fn from_osc(a: &OscType) -> Option<Self>;
}

impl Wire for i32 {
    fn to_osc(&self) -> OscType {
        OscType::Int(*self)
    }
    fn from_osc(a: &OscType) -> Option<Self> {
        match a {
            OscType::Int(i) => Some(*i),
            OscType::Long(l) => i32::try_from(*l).ok(),
            _ => None,
        }
    }
}

impl Wire for i64 {
    fn to_osc(&self) -> OscType {
        OscType::Long(*self)
    }
    fn from_osc(a: &OscType) -> Option<Self> {
        match a {
            OscType::Long(l) => Some(*l),
            OscType::Int(i) => Some(i64::from(*i)),
            _ => None,
        }
    }
}

impl Wire for String {
    fn to_osc(&self) -> OscType {
        OscType::String(self.clone())
    }
    fn from_osc(a: &OscType) -> Option<Self> {
        match a {
            OscType::String(s) => Some(s.clone()),
            _ => None,
        }
    }
}

macro_rules! status_reply {
    ($($(#[doc = $doc:literal])+ $name:ident: $ty:ty = |$st:ident, $srv:ident| $get:expr;)*) => {
        /// A `/status.reply`, by name. See the module for the wire.
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
        pub struct StatusReply {
            $($(#[doc = $doc])+ pub $name: $ty,)*
            /// Fields the reply carried (fewer from an older engine).
            #[serde(skip)]
            pub received: usize,
        }

        /// The fields' names, in wire order.
        pub const STATUS_FIELDS: &[&str] = &[$(stringify!($name)),*];

        impl StatusReply {
            /// The reply for `status`, with what the server adds.
            pub fn of(status: &Status, server: ServerSide<'_>) -> Self {
                Self { $($name: { let ($st, $srv) = (status, server); let _ = (&$st, &$srv); $get },)* received: STATUS_FIELDS.len() }
            }

            /// Its OSC arguments, in wire order.
            pub fn encode(&self) -> Vec<OscType> {
                vec![$(Wire::to_osc(&self.$name)),*]
            }

            /// Reads a reply's arguments.
            ///
            /// # Errors
            /// A message naming the first argument of the wrong type.
            pub fn decode(args: &[OscType]) -> Result<Self, String> {
                let mut reply = Self { received: args.len().min(STATUS_FIELDS.len()), ..Self::default() };
                let mut args = args.iter();
                $(
                    match args.next() {
                        None => return Ok(reply),
                        Some(a) => {
                            reply.$name = Wire::from_osc(a).ok_or_else(|| {
                                format!("/status.reply field {} ({}) has the wrong type: {a:?}", stringify!($name), stringify!($ty))
                            })?;
                        }
                    }
                )*
                Ok(reply)
            }
        }
    };
}

status_reply! {
    /// `HEALTHY`, `DEGRADED`, `OVERLOADED` or `CRITICAL`.
    health: String = |st, _s| st.health.to_string();
    /// The active worker's pid (0: none).
    active_pid: i32 = |st, _s| pid(st.active_pid);
    /// The verified standby's pid (0: none).
    standby_pid: i32 = |st, _s| pid(st.standby_pid);
    /// Failovers so far.
    failovers: i64 = |st, _s| long(st.failovers);
    /// Frames played as silence.
    underrun_frames: i64 = |st, _s| long(st.counters.underrun_frames);
    /// Frames played.
    frames_played: i64 = |st, _s| long(st.counters.frames_played);
    /// Sample rate, Hz.
    sample_rate: i32 = |st, _s| st.sample_rate as i32;
    /// Frames per period.
    block: i32 = |st, _s| st.block as i32;
    /// What the active worker's DSP reports sounding (voices).
    active_voices: i32 = |st, _s| st.active_voices as i32;
    /// Events stamped so far.
    events_stamped: i64 = |st, _s| long(st.counters.events_stamped);
    /// OSC messages refused so far.
    osc_errors: i64 = |_st, s| load(&s.osc.errors);
    /// Of the underrun frames, those the machine did not let the output play
    /// in time; underruns minus these are frames Chronus lost.
    machine_stall_frames: i64 = |st, _s| long(st.counters.machine_stall_frames);
    /// Events coalesced (a later one at the same frame superseded them).
    events_coalesced: i64 = |st, _s| long(st.counters.events_coalesced);
    /// The DSP's name.
    dsp: String = |_st, s| s.dsp.to_owned();
    /// Audio device xruns.
    device_xruns: i64 = |st, _s| long(st.counters.device_xruns);
    /// Frames the device played as silence in those xruns.
    device_xrun_frames: i64 = |st, _s| long(st.counters.device_xrun_frames);
    /// Commands cut out as poisons.
    excised_commands: i64 = |st, _s| long(st.counters.excised_commands);
    /// 1 while overloaded, else 0.
    overloaded: i32 = |st, _s| i32::from(st.overloaded);
    /// Times the engine became overloaded.
    overloads: i64 = |st, _s| long(st.counters.overloads);
    /// `/error` replies left out by the per-sender rate limit.
    osc_errors_unsent: i64 = |_st, s| load(&s.osc.errors_unsent);
    /// Spare workers ready.
    spares_ready: i32 = |st, _s| st.spares_ready as i32;
    /// Commands refused because they equal one cut out as a poison.
    poison_refusals: i64 = |st, _s| long(st.counters.poison_refusals);
    /// Worker processes spawned since the start.
    workers_spawned: i64 = |st, _s| long(st.workers_spawned);
    /// Datagrams dropped because their sender is not allowed.
    osc_denied: i64 = |_st, s| load(&s.osc.denied);
    /// File reads refused (a `/patch/load` outside the patch directory, …).
    files_refused: i64 = |_st, s| load(&s.osc.files_refused);
    /// The workers' sandbox: `on`, `off` or `audit`.
    sandbox: String = |st, _s| st.sandbox.to_owned();
    /// Workers the sandbox killed (SIGSYS).
    sandbox_kills: i64 = |st, _s| long(st.sandbox_kills);
    /// The last system call it refused one, by name (empty: none).
    last_forbidden_call: String = |st, _s| st.last_forbidden_call.clone().unwrap_or_default();
}

impl StatusReply {
    /// Frames Chronus lost: underruns less those the machine did not let
    /// the output play.
    pub fn lost_frames(&self) -> i64 {
        self.underrun_frames - self.machine_stall_frames.min(self.underrun_frames)
    }

    /// Seconds played.
    pub fn seconds_played(&self) -> f64 {
        self.frames_played as f64 / f64::from(self.sample_rate.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_round_trips_by_name_and_an_older_one_decodes_with_defaults() {
        let mut r = StatusReply {
            health: "HEALTHY".into(),
            active_pid: 11,
            standby_pid: 12,
            failovers: 3,
            frames_played: 48_000,
            sample_rate: 48_000,
            dsp: "test/1".into(),
            sandbox: "on".into(),
            last_forbidden_call: "openat".into(),
            received: STATUS_FIELDS.len(),
            ..StatusReply::default()
        };
        r.files_refused = 2;
        let wire = r.encode();
        assert_eq!(wire.len(), STATUS_FIELDS.len());
        assert_eq!(StatusReply::decode(&wire).unwrap(), r);
        let old = StatusReply::decode(&wire[..23]).unwrap();
        assert_eq!((old.received, old.workers_spawned, old.files_refused), (23, 0, 0));
        assert_eq!(old.failovers, 3);
        let mut bad = wire.clone();
        bad[3] = OscType::String("three".into());
        assert!(StatusReply::decode(&bad).unwrap_err().contains("failovers"));
        assert_eq!(STATUS_FIELDS[0], "health");
        assert_eq!(STATUS_FIELDS[24], "files_refused");
    }

    #[test]
    fn docs_osc_lists_the_fields_in_wire_order() {
        let doc = include_str!("../../../docs/osc.md");
        let table: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| ").and_then(|l| l.split(" | ").nth(1)))
            .filter_map(|name| name.strip_prefix('`').and_then(|n| n.strip_suffix('`')))
            .filter(|n| STATUS_FIELDS.contains(n))
            .collect();
        assert_eq!(table, STATUS_FIELDS, "docs/osc.md's /status.reply table");
    }
}
