//! The bus: what every worker of an engine reads — the render limit, the
//! event log, checkpoints to start from, the excision table, the DSP's
//! name and configuration. The supervisor writes it; workers map it
//! read-only, so no worker can change what another one reads.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::IpcError;
use crate::layout::{
    BusControl, BusOffsets, DSP_NAME_BYTES, EventSlot, Geometry, LAYOUT_VERSION, REGION_MAGIC, RegionHeader,
    RegionKind, SnapshotHeader,
};
use crate::mapping::Mapping;

/// The engine's bus.
#[derive(Debug)]
pub struct Bus {
    map: Mapping,
    offsets: BusOffsets,
    config: String,
    name: String,
}

impl Bus {
    /// Creates the bus of engine run `epoch` for DSP `dsp_name` with its
    /// configuration `config_json` (`geometry.config_bytes` is set from
    /// it), workers honouring `/test/poison` only if `faults_enabled`.
    ///
    /// # Errors
    /// [`IpcError::BadGeometry`] (also for a name over 64 bytes) or
    /// [`IpcError::Os`].
    pub fn create(
        mut geometry: Geometry,
        epoch: u64,
        dsp_name: &str,
        config_json: &str,
        faults_enabled: bool,
    ) -> Result<Self, IpcError> {
        geometry.config_bytes = u32::try_from(config_json.len())
            .map_err(|_| IpcError::BadGeometry("configuration larger than 16 MiB"))?;
        geometry.validate()?;
        if dsp_name.len() > DSP_NAME_BYTES || dsp_name.is_empty() {
            return Err(IpcError::BadGeometry("a DSP name is 1..=64 bytes"));
        }
        let mut name = [0u8; DSP_NAME_BYTES];
        name[..dsp_name.len()].copy_from_slice(dsp_name.as_bytes());
        let offsets = geometry.bus_layout();
        let header = RegionHeader {
            magic: REGION_MAGIC,
            version: LAYOUT_VERSION,
            header_size: size_of::<RegionHeader>() as u32,
            kind: RegionKind::Bus as u32,
            _pad: 0,
            epoch,
            generation: 0,
            total_size: offsets.total as u64,
            geometry,
            dsp_name: name,
        };
        let map = Mapping::create("chronus-bus", header, offsets.config, config_json.as_bytes(), true)?;
        let bus = Self { map, offsets, config: config_json.to_owned(), name: dsp_name.to_owned() };
        bus.control().faults_enabled.store(u32::from(faults_enabled), Release);
        Ok(bus)
    }

    /// Maps the bus read-only in a worker and checks it: magic, version,
    /// kind, `epoch`, geometry, size, seal; reads the DSP name and
    /// configuration.
    ///
    /// # Errors
    /// [`IpcError`] naming the first check that failed.
    pub fn attach(fd: OwnedFd, epoch: u64) -> Result<Self, IpcError> {
        let map = Mapping::attach(fd, RegionKind::Bus, epoch, 0, false)?;
        let offsets = map.header.geometry.bus_layout();
        if offsets.total as u64 != map.header.total_size {
            return Err(IpcError::BufCorrupt("bus size does not match its geometry"));
        }
        let raw = map.header.dsp_name;
        let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        let name = String::from_utf8(raw[..end].to_vec()).map_err(|_| IpcError::BufCorrupt("DSP name"))?;
        let bytes = map.read_bytes(offsets.config, map.header.geometry.config_bytes as usize);
        let config = String::from_utf8(bytes).map_err(|_| IpcError::BufCorrupt("DSP configuration"))?;
        // What the render loop reads is mapped now: the control block, the
        // event log and the excisions. The checkpoints are not: a worker
        // reads one when it starts, and every page it maps costs its death
        // time (the kernel unmaps them before the pidfd reports it).
        map.prefault(offsets.control, offsets.checkpoints - offsets.control);
        map.prefault(offsets.excisions, offsets.config - offsets.excisions);
        Ok(Self { map, offsets, config, name })
    }

    /// A new read-only fd of the bus, for a worker to inherit.
    ///
    /// # Errors
    /// [`IpcError::Os`] if `/proc/self/fd` cannot be reopened.
    pub fn read_only_fd(&self) -> Result<OwnedFd, IpcError> {
        chronus_sys::memfd::reopen_read_only(self.map.fd()).map_err(IpcError::os("reopen the bus read-only"))
    }

    /// The memfd (read-write in the supervisor, read-only in a worker).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.map.fd()
    }

    /// The geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.map.header.geometry
    }

    /// The engine run.
    pub fn epoch(&self) -> u64 {
        self.map.header.epoch
    }

    /// The DSP's name.
    pub fn dsp_name(&self) -> &str {
        &self.name
    }

    /// The DSP's configuration, JSON.
    pub fn config_json(&self) -> &str {
        &self.config
    }

    pub(crate) fn control(&self) -> &BusControl {
        self.map.at(self.offsets.control)
    }

    pub(crate) fn log_slots(&self) -> &[EventSlot] {
        self.map.slice(self.offsets.log, self.geometry().log_slots as usize)
    }

    /// Checkpoint slot `k`: its header and data words.
    pub(crate) fn checkpoint(&self, k: usize) -> Option<(&SnapshotHeader, &[AtomicU64])> {
        if k >= self.geometry().checkpoints as usize {
            return None;
        }
        let at = self.offsets.checkpoints + k * self.offsets.checkpoint_stride;
        let data_at = at + crate::layout::align_up(size_of::<SnapshotHeader>());
        Some((self.map.at(at), self.map.slice(data_at, self.geometry().snapshot_words())))
    }

    fn excisions(&self) -> &[AtomicU64] {
        self.map.slice(self.offsets.excisions, self.geometry().excise_slots as usize)
    }

    /// Whether workers honour `/test/poison`.
    pub fn faults_enabled(&self) -> bool {
        self.control().faults_enabled.load(Relaxed) != 0
    }

    /// Lets workers render frames below `frame` (never moves backwards).
    /// Call only after every event for those frames is in the log; then
    /// wake the workers that sleep.
    pub fn publish_render_limit(&self, frame: u64) {
        // Release: a worker that reads the limit (Acquire) sees every event
        // before it. A sleeping worker is not missed: `wake_worker` fences
        // before it looks (`protocol::sleep_unless`).
        debug_assert!(self.map.writable());
        self.control().render_limit.fetch_max(frame, Release);
    }

    /// The render limit (see [`Bus::publish_render_limit`]).
    pub fn render_limit(&self) -> u64 {
        self.control().render_limit.load(Acquire)
    }

    /// Supervisor: event number `seq` must never be applied (a poison).
    /// Event numbers are excised in increasing order. Returns false when
    /// the table is full (or `seq` is not above the last one).
    pub fn excise(&self, seq: u64) -> bool {
        let c = self.control();
        let n = c.excised.load(Acquire) as usize;
        let table = self.excisions();
        if n >= table.len() || (n > 0 && table[n - 1].load(Relaxed) >= seq) {
            return false;
        }
        table[n].store(seq, Relaxed);
        c.excised.store(n as u32 + 1, Release);
        true
    }

    /// Whether event number `seq` is excised.
    pub fn is_excised(&self, seq: u64) -> bool {
        let n = (self.control().excised.load(Acquire) as usize).min(self.excisions().len());
        self.excisions()[..n].iter().rev().any(|x| x.load(Relaxed) == seq)
    }

    /// Event numbers excised so far.
    pub fn excised_count(&self) -> u32 {
        self.control().excised.load(Acquire)
    }
}
