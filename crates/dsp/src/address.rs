//! Address tables: what a DSP can be told, by name, with typed arguments.
//!
//! A DSP declares one [`AddressSpec`] per address (`/note_on i:voice
//! f:freq_hz f:amp`); the [`AddressTable`] built from them turns an address
//! and loosely typed arguments (from OSC, a score or a journal line) into an
//! [`Event`], checks events built in code the same way, and turns an event
//! back into its address and arguments. Everything that reads or writes
//! commands — OSC, scores, journals, `/error` replies — goes through one
//! table, so none of it needs to know the DSP.
//!
//! Argument rules, the same everywhere:
//! * [`ArgKind::Int`]: a whole number in its range; a float with no
//!   fractional part is accepted;
//! * [`ArgKind::Float`]: any finite number (ints accepted); NaN and
//!   infinities are refused, so they never reach a DSP. The range is the
//!   DSP's to enforce (it clamps and counts); the table documents it;
//! * [`ArgKind::Choice`]: one of a list of names, carried as its index; the
//!   index itself is accepted too.

use crate::error::{AddressError, TableError};
use crate::event::{ENGINE_ADDRESSES, Event, MAX_ARGS, POISON, POISON_KINDS};

/// One argument as it arrived, loosely typed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg<'a> {
    /// A whole number.
    Int(i64),
    /// A float.
    Float(f32),
    /// A string.
    Str(&'a str),
}

/// What an argument is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArgKind {
    /// A whole number in `min..=max` (both within `i32`).
    Int {
        /// Smallest accepted.
        min: i64,
        /// Largest accepted.
        max: i64,
    },
    /// A finite number. `range` and `unit` document it; the DSP clamps.
    Float {
        /// The range the DSP uses (documentation; values outside are
        /// clamped by the DSP, not refused here).
        range: (f32, f32),
        /// The unit (`Hz`, `s`, `linear`, …), for documentation.
        unit: &'static str,
    },
    /// One of these names, carried as its index.
    Choice(&'static [&'static str]),
}

/// One argument of an address.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArgSpec {
    /// Its name (`voice`, `freq_hz`).
    pub name: &'static str,
    /// Its type and range.
    pub kind: ArgKind,
}

impl ArgSpec {
    /// A whole-number argument in `min..=max`.
    pub const fn int(name: &'static str, min: i64, max: i64) -> Self {
        Self { name, kind: ArgKind::Int { min, max } }
    }

    /// A float argument in `range` (clamped by the DSP), in `unit`.
    pub const fn float(name: &'static str, range: (f32, f32), unit: &'static str) -> Self {
        Self { name, kind: ArgKind::Float { range, unit } }
    }

    /// A name from `names`.
    pub const fn choice(name: &'static str, names: &'static [&'static str]) -> Self {
        Self { name, kind: ArgKind::Choice(names) }
    }

    /// `i:voice`, `f:freq_hz`, `s:param` — the OSC-style type letter and name.
    pub fn signature(&self) -> String {
        let letter = match self.kind {
            ArgKind::Int { .. } => 'i',
            ArgKind::Float { .. } => 'f',
            ArgKind::Choice(_) => 's',
        };
        format!("{letter}:{}", self.name)
    }
}

/// One address a DSP understands.
#[derive(Clone, Debug, PartialEq)]
pub struct AddressSpec {
    /// The address, starting with `/` (`/note_on`).
    pub path: &'static str,
    /// Its arguments, in order (at most [`MAX_ARGS`]).
    pub args: Vec<ArgSpec>,
    /// What it does, one line, for documentation and `/error` replies.
    pub doc: &'static str,
    /// Which arguments identify what it sets, if a later event with the same
    /// address and equal values of these arguments, at the same frame,
    /// leaves no trace of an earlier one (a parameter change: `/set cutoff
    /// 900` then `/set cutoff 1200` at one frame is `/set cutoff 1200`).
    /// The engine may then drop the earlier one (coalescing, under load).
    /// `None` for anything with its own effect (a note-on, a trigger).
    pub coalesce: Option<&'static [usize]>,
    /// How many of the last arguments a sender may leave out: the event
    /// then carries fewer (its `argc`), and the DSP reads 0 for those
    /// ([`crate::Event::word`]). 0: every argument is required.
    pub optional: usize,
}

impl AddressSpec {
    /// An address with `args`, documented by `doc`, never coalesced.
    pub fn new(path: &'static str, args: Vec<ArgSpec>, doc: &'static str) -> Self {
        Self { path, args, doc, coalesce: None, optional: 0 }
    }

    /// The same, letting senders leave out the last `n` arguments (see
    /// [`AddressSpec::optional`]).
    pub fn with_optional(mut self, n: usize) -> Self {
        self.optional = n.min(self.args.len());
        self
    }

    /// Whether `n` arguments are acceptable.
    fn takes(&self, n: usize) -> bool {
        (self.args.len() - self.optional.min(self.args.len())..=self.args.len()).contains(&n)
    }

    /// The same, declaring that a later event with equal `key` arguments at
    /// the same frame supersedes an earlier one (see
    /// [`AddressSpec::coalesce`]).
    pub fn superseded_by_equal(mut self, key: &'static [usize]) -> Self {
        self.coalesce = Some(key);
        self
    }

    /// `voice freq_hz amp`: the argument names.
    pub fn usage(&self) -> String {
        self.args.iter().map(|a| a.name).collect::<Vec<_>>().join(" ")
    }

    /// `/note_on i:voice f:freq_hz f:amp` (optional ones in brackets).
    pub fn signature(&self) -> String {
        let mut s = self.path.to_owned();
        let first_optional = self.args.len() - self.optional.min(self.args.len());
        for (i, a) in self.args.iter().enumerate() {
            s.push(' ');
            if i >= first_optional {
                s.push_str(&format!("[{}]", a.signature()));
            } else {
                s.push_str(&a.signature());
            }
        }
        s
    }
}

/// The engine's own addresses that travel as events.
fn engine_specs() -> Vec<(u16, AddressSpec)> {
    vec![(
        POISON,
        AddressSpec::new(
            "/test/poison",
            vec![ArgSpec::choice("kind", &POISON_KINDS), ArgSpec::int("tag", 0, i64::from(i32::MAX))],
            "tests only (play --faults): every worker that applies it crashes or hangs (a tag tells one \
             poison from another: an identical command is refused once one was cut out)",
        )
        .with_optional(1),
    )]
}

/// A DSP's addresses plus the engine's own, indexed for events.
#[derive(Clone, Debug, PartialEq)]
pub struct AddressTable {
    dsp: Vec<AddressSpec>,
    engine: Vec<(u16, AddressSpec)>,
}

impl AddressTable {
    /// Builds the table; event address `i` is `specs[i]`.
    ///
    /// # Errors
    /// [`TableError`] for an unusable table: a path without a leading `/`,
    /// a path given twice (or one of the engine's), more than [`MAX_ARGS`]
    /// arguments, an int range outside `i32`, an empty choice, a coalescing
    /// key naming an argument that does not exist, too many addresses.
    pub fn new(specs: Vec<AddressSpec>) -> Result<Self, TableError> {
        let engine = engine_specs();
        if specs.len() >= usize::from(ENGINE_ADDRESSES) {
            return Err(TableError::TooMany(specs.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for spec in specs.iter().chain(engine.iter().map(|(_, s)| s)) {
            let bad = |why: &str| TableError::Bad { path: spec.path.to_owned(), why: why.to_owned() };
            if !spec.path.starts_with('/') || spec.path.len() < 2 || spec.path.contains(char::is_whitespace) {
                return Err(bad("an address starts with '/' and has no spaces"));
            }
            if !seen.insert(spec.path) {
                return Err(bad("declared twice (or taken by the engine)"));
            }
            if spec.args.len() > MAX_ARGS {
                return Err(bad("more arguments than an event carries"));
            }
            for a in &spec.args {
                match a.kind {
                    ArgKind::Int { min, max }
                        if min > max || min < i64::from(i32::MIN) || max > i64::from(i32::MAX) =>
                    {
                        return Err(bad("an int range must be non-empty and within i32"));
                    }
                    ArgKind::Choice([]) => return Err(bad("a choice needs at least one name")),
                    _ => {}
                }
            }
            if spec.coalesce.is_some_and(|key| key.iter().any(|&i| i >= spec.args.len())) {
                return Err(bad("the coalescing key names an argument it does not have"));
            }
        }
        Ok(Self { dsp: specs, engine })
    }

    /// The DSP's addresses, in event-index order.
    pub fn dsp_entries(&self) -> &[AddressSpec] {
        &self.dsp
    }

    /// Every address with its event index: the DSP's, then the engine's.
    pub fn entries(&self) -> impl Iterator<Item = (u16, &AddressSpec)> {
        self.dsp
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u16, s))
            .chain(self.engine.iter().map(|(i, s)| (*i, s)))
    }

    /// The address with this path.
    pub fn lookup(&self, path: &str) -> Option<(u16, &AddressSpec)> {
        self.entries().find(|(_, s)| s.path == path)
    }

    /// The address with this event index.
    pub fn spec(&self, index: u16) -> Option<&AddressSpec> {
        if index >= ENGINE_ADDRESSES {
            self.engine.iter().find(|(i, _)| *i == index).map(|(_, s)| s)
        } else {
            self.dsp.get(usize::from(index))
        }
    }

    fn known(&self) -> String {
        self.dsp.iter().map(|s| s.path).collect::<Vec<_>>().join(", ")
    }

    /// The event for `path` with `args`.
    ///
    /// # Errors
    /// An [`AddressError`] that says what is wrong, fit to show the sender.
    pub fn parse(&self, path: &str, args: &[Arg<'_>]) -> Result<Event, AddressError> {
        let (index, spec) = self
            .lookup(path)
            .ok_or_else(|| AddressError::UnknownAddress { path: path.to_owned(), known: self.known() })?;
        if !spec.takes(args.len()) {
            return Err(AddressError::WrongArgCount {
                address: spec.path,
                expected: spec.args.len(),
                usage: spec.usage(),
                got: args.len(),
            });
        }
        let mut event = Event::new(index);
        for (i, (arg, a)) in args.iter().zip(&spec.args).enumerate() {
            event = event.with_word(Self::parse_arg(spec.path, i, a, arg)?);
        }
        Ok(event)
    }

    fn parse_arg(
        address: &'static str,
        i: usize,
        spec: &ArgSpec,
        arg: &Arg<'_>,
    ) -> Result<u32, AddressError> {
        let wrong = |expected: String| AddressError::WrongArgType {
            address,
            index: i + 1,
            name: spec.name,
            expected,
        };
        match spec.kind {
            ArgKind::Int { min, max } => {
                let v = match *arg {
                    Arg::Int(v) => v,
                    Arg::Float(f) if f.fract() == 0.0 && f.abs() < 1.0e15 => f as i64,
                    _ => return Err(wrong(format!("a whole number in {min}..={max}"))),
                };
                if !(min..=max).contains(&v) {
                    return Err(AddressError::OutOfRange { address, name: spec.name, value: v, min, max });
                }
                Ok(v as i32 as u32)
            }
            ArgKind::Float { .. } => {
                let v = match *arg {
                    Arg::Int(v) => v as f32,
                    Arg::Float(f) => f,
                    Arg::Str(_) => return Err(wrong("a number".into())),
                };
                if !v.is_finite() {
                    return Err(AddressError::NonFinite { address, name: spec.name });
                }
                Ok(v.to_bits())
            }
            ArgKind::Choice(names) => {
                let found = match *arg {
                    Arg::Str(s) => names.iter().position(|n| *n == s),
                    Arg::Int(v) => usize::try_from(v).ok().filter(|&v| v < names.len()),
                    Arg::Float(f) if f.fract() == 0.0 && f >= 0.0 => {
                        Some(f as usize).filter(|&v| v < names.len())
                    }
                    Arg::Float(_) => None,
                };
                let got = match *arg {
                    Arg::Str(s) => s.to_owned(),
                    Arg::Int(v) => v.to_string(),
                    Arg::Float(f) => f.to_string(),
                };
                found.map(|v| v as u32).ok_or_else(|| AddressError::UnknownName {
                    address,
                    name: spec.name,
                    got,
                    known: names.join(", "),
                })
            }
        }
    }

    /// Checks an event built in code as [`AddressTable::parse`] checks a
    /// parsed one: a known address, the right number of arguments, ints and
    /// names in range, finite floats.
    ///
    /// # Errors
    /// The [`AddressError`] saying what is wrong.
    pub fn check(&self, event: &Event) -> Result<(), AddressError> {
        let spec = self.spec(event.address).ok_or_else(|| AddressError::UnknownAddress {
            path: format!("#{}", event.address),
            known: self.known(),
        })?;
        if !spec.takes(event.argc()) || usize::from(event.argc) > MAX_ARGS {
            return Err(AddressError::WrongArgCount {
                address: spec.path,
                expected: spec.args.len(),
                usage: spec.usage(),
                got: usize::from(event.argc),
            });
        }
        for (i, a) in spec.args.iter().enumerate().take(event.argc()) {
            let arg = match a.kind {
                ArgKind::Int { .. } => Arg::Int(i64::from(event.int(i))),
                ArgKind::Float { .. } => Arg::Float(event.float(i)),
                ArgKind::Choice(_) => Arg::Int(i64::from(event.choice(i))),
            };
            Self::parse_arg(spec.path, i, a, &arg)?;
        }
        Ok(())
    }

    /// The address and arguments of `event` (names for choices), the inverse
    /// of [`AddressTable::parse`]; `None` for an unknown address.
    pub fn format(&self, event: &Event) -> Option<(&'static str, Vec<Arg<'static>>)> {
        let spec = self.spec(event.address)?;
        let args = spec
            .args
            .iter()
            .enumerate()
            .take(event.argc())
            .map(|(i, a)| match a.kind {
                ArgKind::Int { .. } => Arg::Int(i64::from(event.int(i))),
                ArgKind::Float { .. } => Arg::Float(event.float(i)),
                ArgKind::Choice(names) => names
                    .get(event.choice(i) as usize)
                    .map_or(Arg::Int(i64::from(event.choice(i))), |n| Arg::Str(n)),
            })
            .collect();
        Some((spec.path, args))
    }

    /// The key under which a later event at the same frame supersedes this
    /// one, if its address declares one: the address and the key arguments'
    /// words, unused key slots zero.
    pub fn coalesce_key(&self, event: &Event) -> Option<(u16, [u32; MAX_ARGS])> {
        let key = self.spec(event.address)?.coalesce?;
        let mut words = [0u32; MAX_ARGS];
        for (slot, &i) in words.iter_mut().zip(key) {
            *slot = event.word(i);
        }
        Some((event.address, words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [&str; 3] = ["low", "high", "band"];

    fn table() -> AddressTable {
        AddressTable::new(vec![
            AddressSpec::new(
                "/note_on",
                vec![
                    ArgSpec::int("voice", 0, 7),
                    ArgSpec::float("freq_hz", (0.0, 24_000.0), "Hz"),
                    ArgSpec::float("amp", (0.0, 1.0), "linear"),
                ],
                "start a note",
            ),
            AddressSpec::new(
                "/filter",
                vec![ArgSpec::int("voice", 0, 7), ArgSpec::choice("kind", &KINDS)],
                "",
            )
            .superseded_by_equal(&[0]),
        ])
        .unwrap()
    }

    #[test]
    fn parse_types_arguments_and_format_inverts_it() {
        let t = table();
        let e = t.parse("/note_on", &[Arg::Float(2.0), Arg::Int(440), Arg::Float(0.5)]).unwrap();
        assert_eq!(e, Event::new(0).with_int(2).with_float(440.0).with_float(0.5));
        let (path, args) = t.format(&e).unwrap();
        assert_eq!(path, "/note_on");
        assert_eq!(args, vec![Arg::Int(2), Arg::Float(440.0), Arg::Float(0.5)]);
        let f = t.parse("/filter", &[Arg::Int(1), Arg::Str("band")]).unwrap();
        assert_eq!(f.choice(1), 2);
        assert_eq!(t.parse("/filter", &[Arg::Int(1), Arg::Int(2)]).unwrap(), f);
        assert_eq!(t.format(&f).unwrap().1[1], Arg::Str("band"));
        assert!(t.check(&e).is_ok() && t.check(&f).is_ok());
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        let t = table();
        let e = t.parse("/note_on", &[Arg::Int(1)]).unwrap_err();
        assert_eq!(e.to_string(), "/note_on takes 3 arguments (voice freq_hz amp), got 1");
        let e = t.parse("/note_on", &[Arg::Int(9), Arg::Int(1), Arg::Int(1)]).unwrap_err();
        assert_eq!(e.to_string(), "/note_on: voice 9 is out of range 0..=7");
        let e = t.parse("/note_on", &[Arg::Int(1), Arg::Float(f32::NAN), Arg::Int(1)]).unwrap_err();
        assert!(e.to_string().contains("finite"), "{e}");
        let e = t.parse("/note_on", &[Arg::Float(1.5), Arg::Int(1), Arg::Int(1)]).unwrap_err();
        assert!(e.to_string().contains("argument 1 (voice)"), "{e}");
        let e = t.parse("/filter", &[Arg::Int(1), Arg::Str("comb")]).unwrap_err();
        assert_eq!(e.to_string(), "/filter: unknown kind 'comb' (known: low, high, band)");
        let e = t.parse("/nope", &[]).unwrap_err();
        assert_eq!(e.to_string(), "unknown address /nope (known: /note_on, /filter)");
        assert!(t.check(&Event::new(0).with_int(1).with_float(f32::INFINITY).with_float(0.0)).is_err());
        assert!(t.check(&Event::new(0).with_int(1)).is_err());
        assert!(t.check(&Event::new(77)).is_err());
    }

    #[test]
    fn engine_addresses_are_in_every_table() {
        let t = table();
        let e = t.parse("/test/poison", &[Arg::Str("hang")]).unwrap();
        assert_eq!((e.address, e.choice(0)), (POISON, 1));
        assert_eq!(t.format(&e).unwrap(), ("/test/poison", vec![Arg::Str("hang")]));
        // Its tag may be left out, or given: then the events differ.
        let tagged = t.parse("/test/poison", &[Arg::Str("hang"), Arg::Int(7)]).unwrap();
        assert_ne!(tagged, e);
        assert_eq!((tagged.int(1), e.int(1)), (7, 0));
        assert_eq!(t.format(&tagged).unwrap(), ("/test/poison", vec![Arg::Str("hang"), Arg::Int(7)]));
        assert!(t.check(&tagged).is_ok() && t.check(&e).is_ok());
        assert!(t.parse("/test/poison", &[]).is_err(), "the kind is required");
        assert!(t.parse("/test/poison", &[Arg::Str("hang"), Arg::Int(1), Arg::Int(2)]).is_err());
        assert_eq!(t.spec(POISON).unwrap().signature(), "/test/poison s:kind [i:tag]");
    }

    #[test]
    fn coalescing_keys_come_from_the_declared_arguments() {
        let t = table();
        let a = t.parse("/filter", &[Arg::Int(3), Arg::Str("low")]).unwrap();
        let b = t.parse("/filter", &[Arg::Int(3), Arg::Str("high")]).unwrap();
        let c = t.parse("/filter", &[Arg::Int(4), Arg::Str("low")]).unwrap();
        assert_eq!(t.coalesce_key(&a), t.coalesce_key(&b));
        assert_ne!(t.coalesce_key(&a), t.coalesce_key(&c));
        assert_eq!(t.coalesce_key(&Event::new(0).with_int(1).with_float(1.0).with_float(1.0)), None);
    }

    #[test]
    fn unusable_tables_are_refused() {
        let dup = vec![AddressSpec::new("/a", vec![], ""), AddressSpec::new("/a", vec![], "")];
        assert!(AddressTable::new(dup).is_err());
        assert!(AddressTable::new(vec![AddressSpec::new("a", vec![], "")]).is_err());
        assert!(AddressTable::new(vec![AddressSpec::new("/test/poison", vec![], "")]).is_err());
        let wide = vec![AddressSpec::new("/w", vec![ArgSpec::int("x", 0, 1 << 40)], "")];
        assert!(AddressTable::new(wide).is_err());
        let key = vec![AddressSpec::new("/k", vec![], "").superseded_by_equal(&[0])];
        assert!(AddressTable::new(key).is_err());
    }
}
