//! OSC packets → events (pure: no I/O, so it can be fuzzed).
//!
//! Messages go through the DSP's address table ([`DspSpec::parse`]), so
//! nothing here knows the DSP; `/status` and `/quit` are the server's own.

use std::time::{Duration, SystemTime};

use chronus_dsp::{Arg, DspSpec, Event, Files, Setup};
use rosc::{OscPacket, OscTime, OscType};

/// What one message asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// Events for the engine (one message may expand to several, e.g. a
    /// patch load), at a wall-clock time (from a bundle) or at once.
    Events(Vec<Event>, Option<SystemTime>),
    /// `/status`: reply with `/status.reply`.
    Status,
    /// `/quit`: stop the engine.
    Quit,
    /// Something to refuse: `(address, message)` for the `/error` reply.
    Error(String, String),
}

/// A decoded packet: every message in it, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The messages.
    pub items: Vec<Item>,
}

/// What decoding needs to know about the engine.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// The DSP (its address table and checks).
    pub spec: &'a DspSpec,
    /// Its setup.
    pub setup: Setup,
    /// Whether the engine takes its test addresses (`/test/poison`).
    pub faults_enabled: bool,
    /// What a sender may make the DSP read (`/patch/load`): the server's
    /// [`crate::PatchDir`] or [`crate::Bundled`], never any file.
    pub files: &'a dyn Files,
}

impl std::fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("spec", self.spec)
            .field("setup", &self.setup)
            .field("faults_enabled", &self.faults_enabled)
            .finish_non_exhaustive()
    }
}

/// Deepest bundle nesting accepted.
const MAX_DEPTH: usize = 8;

fn arg(v: &OscType) -> Option<Arg<'_>> {
    Some(match v {
        OscType::Int(i) => Arg::Int(i64::from(*i)),
        OscType::Long(l) => Arg::Int(*l),
        OscType::Float(f) => Arg::Float(*f),
        OscType::Double(d) => Arg::Float(*d as f32),
        OscType::String(s) => Arg::Str(s),
        _ => return None,
    })
}

fn message(addr: &str, args: &[OscType], at: Option<SystemTime>, target: &Target<'_>, out: &mut Vec<Item>) {
    match addr {
        "/status" => return out.push(Item::Status),
        "/quit" => return out.push(Item::Quit),
        _ => {}
    }
    let typed: Option<Vec<Arg<'_>>> = args.iter().map(arg).collect();
    let Some(typed) = typed else {
        return out.push(Item::Error(addr.into(), "arguments must be ints, floats or strings".into()));
    };
    let mut events = Vec::new();
    let item = match target.spec.parse(&target.setup, addr, &typed, target.files, &mut events) {
        Ok(()) if events.iter().any(Event::is_engine) && !target.faults_enabled => Item::Error(
            addr.into(),
            format!("{addr} is for tests: start the engine with fault injection (chronus play --faults)"),
        ),
        Ok(()) => Item::Events(events, at),
        Err(e) => Item::Error(addr.into(), e.to_string()),
    };
    out.push(item);
}

/// Seconds from the OSC (NTP) epoch, 1900, to the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A time tag as wall-clock time; `None` for one before 1970 (which is in the
/// past anyway). rosc's own conversion panics on such tags.
fn tag_time(tag: OscTime) -> Option<SystemTime> {
    let secs = u64::from(tag.seconds).checked_sub(NTP_UNIX_OFFSET)?;
    let nanos = (u64::from(tag.fractional) * 1_000_000_000) >> 32;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos as u32))
}

fn walk(packet: &OscPacket, at: Option<SystemTime>, depth: usize, target: &Target<'_>, out: &mut Vec<Item>) {
    match packet {
        OscPacket::Message(m) => message(&m.addr, &m.args, at, target, out),
        OscPacket::Bundle(_) if depth >= MAX_DEPTH => {
            out.push(Item::Error("#bundle".into(), format!("bundles nested deeper than {MAX_DEPTH}")));
        }
        OscPacket::Bundle(b) => {
            // Time tag 1 means "immediately" (OSC 1.0).
            let when = (b.timetag.seconds, b.timetag.fractional) != (0, 1);
            let at = if when { tag_time(b.timetag).or(Some(SystemTime::UNIX_EPOCH)) } else { at };
            for p in &b.content {
                walk(p, at, depth + 1, target, out);
            }
        }
    }
}

/// Decodes one UDP datagram for `target`.
pub fn decode_packet(bytes: &[u8], target: &Target<'_>) -> Decoded {
    let mut items = Vec::new();
    match rosc::decoder::decode_udp(bytes) {
        Ok((_, packet)) => walk(&packet, None, 0, target, &mut items),
        Err(e) => items.push(Item::Error(String::new(), format!("malformed OSC packet: {e}"))),
    }
    Decoded { items }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronus_synth::{Command, Synth, SynthConfig};
    use rosc::{OscBundle, OscMessage, encoder};

    fn decode(bytes: &[u8]) -> Decoded {
        let spec = DspSpec::new::<Synth>(SynthConfig::new(8)).unwrap();
        let target = Target {
            spec: &spec,
            setup: Setup { sample_rate: 48_000, block: 256 },
            faults_enabled: false,
            files: &chronus_dsp::NoFiles,
        };
        decode_packet(bytes, &target)
    }

    fn events(c: Command, at: Option<SystemTime>) -> Item {
        Item::Events(vec![c.to_event()], at)
    }

    fn bytes(p: &OscPacket) -> Vec<u8> {
        encoder::encode(p).unwrap()
    }

    fn msg(addr: &str, args: Vec<OscType>) -> OscPacket {
        OscPacket::Message(OscMessage { addr: addr.into(), args })
    }

    #[test]
    fn messages_become_commands_with_ints_and_floats_interchangeable() {
        let d =
            decode(&bytes(&msg("/note_on", vec![OscType::Int(1), OscType::Int(440), OscType::Double(0.5)])));
        assert_eq!(d.items, vec![events(Command::NoteOn { voice: 1, freq: 440.0, amp: 0.5 }, None)]);
        let d = decode(&bytes(&msg("/status", vec![])));
        assert_eq!(d.items, vec![Item::Status]);
    }

    #[test]
    fn bad_input_becomes_errors_not_panics() {
        let cases = [
            msg("/nope", vec![]),
            msg("/note_on", vec![OscType::Int(1)]),
            msg("/note_on", vec![OscType::Int(99), OscType::Float(440.0), OscType::Float(0.5)]),
            msg("/note_on", vec![OscType::Int(1), OscType::Float(f32::NAN), OscType::Float(0.5)]),
            msg("/set", vec![OscType::String("volume".into()), OscType::Float(1.0)]),
            msg("/voice/set", vec![OscType::Int(1), OscType::String("master".into()), OscType::Float(1.0)]),
            msg("/note_off", vec![OscType::Blob(vec![1, 2])]),
        ];
        for p in cases {
            let d = decode(&bytes(&p));
            assert!(matches!(d.items.as_slice(), [Item::Error(..)]), "{p:?} -> {d:?}");
        }
        for garbage in [&b""[..], b"\x00", b"/note_on\x00\x00\x00\x00,ii", b"#bundle\x00", &[0xff; 100]] {
            let d = decode(garbage);
            assert!(matches!(d.items.as_slice(), [Item::Error(..)]), "{garbage:?} -> {d:?}");
        }
    }

    #[test]
    fn test_addresses_are_refused_without_fault_injection() {
        let d = decode(&bytes(&msg("/test/poison", vec![OscType::String("crash".into())])));
        match d.items.as_slice() {
            [Item::Error(_, m)] => assert!(m.contains("--faults"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn regression_a_time_tag_before_1970_does_not_panic() {
        // Found by the fuzzer: rosc's SystemTime::from(OscTime) underflows.
        let b = OscPacket::Bundle(OscBundle {
            timetag: OscTime::from((5, 0)),
            content: vec![msg("/note_off", vec![OscType::Int(2)])],
        });
        let d = decode(&bytes(&b));
        assert_eq!(d.items, vec![events(Command::NoteOff { voice: 2 }, Some(SystemTime::UNIX_EPOCH))]);
    }

    #[test]
    fn bundles_carry_their_time_and_immediate_tags_do_not() {
        let later = SystemTime::now() + std::time::Duration::from_secs(1);
        let tag = OscTime::try_from(later).unwrap();
        let b = OscPacket::Bundle(OscBundle {
            timetag: tag,
            content: vec![msg("/note_off", vec![OscType::Int(2)])],
        });
        match decode(&bytes(&b)).items.as_slice() {
            [Item::Events(e, Some(at))] if e == &[Command::NoteOff { voice: 2 }.to_event()] => {
                let diff = at.duration_since(later).unwrap_or_else(|e| e.duration());
                assert!(diff < std::time::Duration::from_millis(1));
            }
            other => panic!("{other:?}"),
        }
        let now = OscPacket::Bundle(OscBundle {
            timetag: OscTime::from((0, 1)),
            content: vec![msg("/note_off", vec![OscType::Int(2)])],
        });
        assert_eq!(decode(&bytes(&now)).items, vec![events(Command::NoteOff { voice: 2 }, None)]);
    }
}
