//! The DSP with its type erased: [`DspSpec`] for the control plane (what a
//! DSP understands and how to make one), [`DynDsp`] for a prepared instance.

use std::sync::Arc;

use crate::address::{AddressTable, Arg};
use crate::contract::{Block, Dsp, DspStats, Setup};
use crate::error::{AddressError, DspError};
use crate::event::Event;
use crate::files::Files;

/// A prepared DSP behind a pointer: what a worker process and the offline
/// renderer hold. Implemented for every [`Dsp`]; the methods are the
/// trait's, with the same contract.
pub trait DynDsp: Send {
    /// [`Dsp::NAME`].
    fn name(&self) -> &'static str;
    /// [`Dsp::snapshot_len`].
    fn snapshot_len(&self) -> usize;
    /// [`Dsp::render`].
    fn render(&mut self, block: Block<'_>);
    /// [`Dsp::snapshot`].
    fn snapshot(&self, out: &mut [u8]);
    /// [`Dsp::restore`].
    ///
    /// # Errors
    /// [`DspError::BadSnapshot`].
    fn restore(&mut self, bytes: &[u8]) -> Result<(), DspError>;
    /// [`Dsp::reset`].
    fn reset(&mut self);
    /// [`Dsp::stats`].
    fn stats(&self) -> DspStats;
}

impl<D: Dsp> DynDsp for D {
    fn name(&self) -> &'static str {
        D::NAME
    }
    fn snapshot_len(&self) -> usize {
        Dsp::snapshot_len(self)
    }
    fn render(&mut self, block: Block<'_>) {
        Dsp::render(self, block)
    }
    fn snapshot(&self, out: &mut [u8]) {
        Dsp::snapshot(self, out)
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), DspError> {
        Dsp::restore(self, bytes)
    }
    fn reset(&mut self) {
        Dsp::reset(self)
    }
    fn stats(&self) -> DspStats {
        Dsp::stats(self)
    }
}

trait ErasedSpec: Send + Sync {
    fn name(&self) -> &'static str;
    fn config_json(&self) -> &str;
    fn table(&self) -> &AddressTable;
    fn validate(&self, setup: &Setup, event: &Event) -> Result<(), String>;
    fn expand(
        &self,
        setup: &Setup,
        path: &str,
        args: &[Arg<'_>],
        files: &dyn Files,
        out: &mut Vec<Event>,
    ) -> Option<Result<(), String>>;
    fn prepare(&self, setup: &Setup) -> Result<Box<dyn DynDsp>, DspError>;
}

struct Typed<D: Dsp> {
    config: D::Config,
    json: String,
    table: AddressTable,
}

impl<D: Dsp> ErasedSpec for Typed<D> {
    fn name(&self) -> &'static str {
        D::NAME
    }
    fn config_json(&self) -> &str {
        &self.json
    }
    fn table(&self) -> &AddressTable {
        &self.table
    }
    fn validate(&self, setup: &Setup, event: &Event) -> Result<(), String> {
        D::validate(&self.config, setup, event)
    }
    fn expand(
        &self,
        setup: &Setup,
        path: &str,
        args: &[Arg<'_>],
        files: &dyn Files,
        out: &mut Vec<Event>,
    ) -> Option<Result<(), String>> {
        D::expand(&self.config, setup, path, args, files, out)
    }
    fn prepare(&self, setup: &Setup) -> Result<Box<dyn DynDsp>, DspError> {
        Ok(Box::new(D::prepare(setup, &self.config)?))
    }
}

/// A DSP type and its configuration, with the type erased: everything the
/// control plane needs (its name, configuration, address table, checks)
/// and a way to prepare instances (for offline rendering).
///
/// ```
/// # use chronus_dsp::*;
/// # #[derive(Default)] struct Silence;
/// # impl Dsp for Silence {
/// #     type Config = ();
/// #     const NAME: &'static str = "silence/1";
/// #     fn addresses(_: &()) -> Vec<AddressSpec> { vec![AddressSpec::new("/nothing", vec![], "")] }
/// #     fn prepare(_: &Setup, _: &()) -> Result<Self, DspError> { Ok(Silence) }
/// #     fn snapshot_len(&self) -> usize { 0 }
/// #     fn render(&mut self, block: Block<'_>) { block.left.fill(0.0); block.right.fill(0.0); }
/// #     fn snapshot(&self, _: &mut [u8]) {}
/// #     fn restore(&mut self, _: &[u8]) -> Result<(), DspError> { Ok(()) }
/// #     fn reset(&mut self) {}
/// # }
/// let spec = DspSpec::new::<Silence>(())?;
/// assert_eq!(spec.name(), "silence/1");
/// let setup = Setup { sample_rate: 48_000, block: 64 };
/// let mut events = Vec::new();
/// spec.parse(&setup, "/nothing", &[], &NoFiles, &mut events)?;
/// assert_eq!(events, [Event::new(0)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct DspSpec {
    inner: Arc<dyn ErasedSpec>,
}

impl std::fmt::Debug for DspSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DspSpec").field("name", &self.name()).field("config", &self.config_json()).finish()
    }
}

impl DspSpec {
    /// The spec of DSP `D` with `config`.
    ///
    /// # Errors
    /// [`DspError::InvalidConfig`] if the configuration does not encode;
    /// [`DspError::Table`] if `D`'s address table is unusable.
    pub fn new<D: Dsp>(config: D::Config) -> Result<Self, DspError> {
        let json = serde_json::to_string(&config)
            .map_err(|e| DspError::InvalidConfig(format!("does not encode as JSON: {e}").into()))?;
        let table = AddressTable::new(D::addresses(&config))?;
        Ok(Self { inner: Arc::new(Typed::<D> { config, json, table }) })
    }

    /// The spec of DSP `D` with the configuration encoded in `json` (as a
    /// worker process or a journal receives it).
    ///
    /// # Errors
    /// [`DspError::InvalidConfig`] if `json` does not decode.
    pub fn from_json<D: Dsp>(json: &str) -> Result<Self, DspError> {
        let config: D::Config = serde_json::from_str(json)
            .map_err(|e| DspError::InvalidConfig(format!("{}: {e}", D::NAME).into()))?;
        Self::new::<D>(config)
    }

    /// [`Dsp::NAME`].
    pub fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// The configuration, as JSON.
    pub fn config_json(&self) -> &str {
        self.inner.config_json()
    }

    /// The address table (the DSP's addresses and the engine's).
    pub fn table(&self) -> &AddressTable {
        self.inner.table()
    }

    /// Turns an address and its arguments into events appended to `out`:
    /// the DSP's expansion if it has one for `path` (reading only what
    /// `files` serves), else the table's event, checked by the DSP's
    /// [`Dsp::validate`].
    ///
    /// # Errors
    /// The [`AddressError`] to send back; nothing is appended.
    pub fn parse(
        &self,
        setup: &Setup,
        path: &str,
        args: &[Arg<'_>],
        files: &dyn Files,
        out: &mut Vec<Event>,
    ) -> Result<(), AddressError> {
        let start = out.len();
        if let Some(expanded) = self.inner.expand(setup, path, args, files, out) {
            let checked = expanded.and_then(|()| {
                out[start..].iter().try_for_each(|e| self.check(setup, e).map_err(|err| err.to_string()))
            });
            return checked.map_err(|message| {
                out.truncate(start);
                AddressError::Refused { address: path.to_owned(), message }
            });
        }
        let event = self.table().parse(path, args)?;
        self.validate(setup, &event)?;
        out.push(event);
        Ok(())
    }

    fn validate(&self, setup: &Setup, event: &Event) -> Result<(), AddressError> {
        if event.is_engine() {
            return Ok(());
        }
        self.inner.validate(setup, event).map_err(|message| AddressError::Refused {
            address: self.table().spec(event.address).map_or("?", |s| s.path).to_owned(),
            message,
        })
    }

    /// Checks an event built in code: the table's checks and the DSP's own.
    ///
    /// # Errors
    /// The [`AddressError`] saying why it is refused.
    pub fn check(&self, setup: &Setup, event: &Event) -> Result<(), AddressError> {
        self.table().check(event)?;
        self.validate(setup, event)
    }

    /// Prepares an instance (everything allocated here).
    ///
    /// # Errors
    /// As [`Dsp::prepare`].
    pub fn prepare(&self, setup: &Setup) -> Result<Box<dyn DynDsp>, DspError> {
        self.inner.prepare(setup)
    }
}
