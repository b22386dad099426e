//! A native JACK client: output ports `out_1` and `out_2` (and, when asked,
//! a MIDI input port `midi_in`), the server's sample rate and period, its
//! xruns counted, period changes followed, and a server that goes away and
//! comes back reconnected to.
//!
//! The process callback hands the renderer every MIDI message of the cycle,
//! then the cycle's buffers; it never allocates, locks or waits. When the
//! client's callbacks are dropped (the client stops, or its server went
//! away), the renderer comes back through a ring, so a watcher thread can
//! reconnect with it when the server is back.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;
use std::time::Duration;

use jack::{AudioOut, Client, ClientOptions, ClientStatus, Control, MidiIn, Port, PortFlags, ProcessScope};

use crate::render::{CallbackInfo, DeviceCounters, DeviceRender};

/// Where the output ports go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum JackConnect {
    /// The first two physical playback ports (`system:playback_1`, `_2`).
    #[default]
    System,
    /// These ports: `out_1` to the first, `out_2` to the second (or the
    /// first again when only one is named).
    Ports(Vec<String>),
    /// Nowhere: the user patches them.
    None,
}

/// How to open the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JackConfig {
    /// The client's name (`chronus`): its ports are `NAME:out_1`, `NAME:out_2`
    /// and `NAME:midi_in`.
    pub name: String,
    /// Where `out_1` and `out_2` go.
    pub connect: JackConnect,
    /// Register `midi_in`.
    pub midi: bool,
}

/// Why JACK could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JackError {
    /// No server to connect to (or libjack is missing).
    #[error(
        "no JACK server to connect to ({0}); start one (jackd, or PipeWire's JACK) or pick another --sink"
    )]
    NoServer(String),
    /// The server refused something.
    #[error("JACK: {0}")]
    Jack(String),
}

/// A client connected to a running server, not yet playing: its sample
/// rate and period configure the engine before it starts.
pub struct JackServer {
    client: Client,
}

impl std::fmt::Debug for JackServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JackServer").field("name", &self.client.name()).finish_non_exhaustive()
    }
}

fn open(name: &str) -> Result<Client, JackError> {
    let (client, status) = Client::new(name, ClientOptions::NO_START_SERVER | ClientOptions::USE_EXACT_NAME)
        .map_err(|e| JackError::NoServer(e.to_string()))?;
    if status.contains(ClientStatus::SERVER_FAILED) {
        return Err(JackError::NoServer(format!("{status:?}")));
    }
    Ok(client)
}

impl JackServer {
    /// Connects a client named `name` to the running server (never starts
    /// one).
    ///
    /// # Errors
    /// [`JackError::NoServer`] when none runs or libjack is missing.
    pub fn connect(name: &str) -> Result<Self, JackError> {
        Ok(Self { client: open(name)? })
    }

    /// The server's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.client.sample_rate()
    }

    /// The server's period (frames per cycle) now.
    pub fn buffer_size(&self) -> u32 {
        self.client.buffer_size()
    }

    /// Registers the ports, activates the client with `render` in its
    /// process callback and connects the ports as `cfg` says. Reconnects by
    /// itself if the server goes away and comes back with the same rate.
    ///
    /// # Errors
    /// [`JackError::Jack`] if a port cannot be registered or the client
    /// cannot be activated.
    pub fn start<R: DeviceRender>(self, cfg: JackConfig, render: R) -> Result<JackOutput, JackError> {
        let counters = Arc::new(DeviceCounters::default());
        let rate = self.sample_rate();
        let (back_tx, back_rx) = rtrb::RingBuffer::new(1);
        let gone = Arc::new(AtomicBool::new(false));
        let active = activate(self.client, &cfg, render, back_tx, &counters, &gone).map_err(|(e, _)| e)?;
        let stop = Arc::new(AtomicBool::new(false));
        let watcher =
            Watcher { cfg, rate, counters: counters.clone(), gone, stop: stop.clone(), back: back_rx };
        let thread = std::thread::Builder::new()
            .name("chronus-jack".into())
            .spawn(move || watcher.run(active))
            .map_err(|e| JackError::Jack(e.to_string()))?;
        Ok(JackOutput { counters, stop, thread: Some(thread) })
    }
}

/// A playing JACK client. Dropping it stops the client (and with it the
/// renderer, which is dropped).
#[derive(Debug)]
pub struct JackOutput {
    counters: Arc<DeviceCounters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl JackOutput {
    /// Xruns, period, reconnections (`rebuilds`).
    pub fn counters(&self) -> &DeviceCounters {
        &self.counters
    }
}

impl Drop for JackOutput {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Active<R> = jack::AsyncClient<Notify, Process<R>>;

/// Registers the ports and activates `client` with `render`. On failure
/// the renderer is handed back: in the error, or through `back` once the
/// callbacks it went into are dropped.
fn activate<R: DeviceRender>(
    client: Client,
    cfg: &JackConfig,
    mut render: R,
    back: rtrb::Producer<R>,
    counters: &Arc<DeviceCounters>,
    gone: &Arc<AtomicBool>,
) -> Result<Active<R>, (JackError, Option<R>)> {
    let err = |e: jack::Error| JackError::Jack(e.to_string());
    let ports = (|| {
        let left = client.register_port("out_1", AudioOut::default())?;
        let right = client.register_port("out_2", AudioOut::default())?;
        let midi = if cfg.midi { Some(client.register_port("midi_in", MidiIn::default())?) } else { None };
        let names = [left.name()?, right.name()?];
        Ok::<_, jack::Error>((left, right, midi, names))
    })();
    let (left, right, midi, names) = match ports {
        Ok(p) => p,
        Err(e) => return Err((err(e), Some(render))),
    };
    let period = client.buffer_size();
    render.prepare(period);
    counters.period.store(period, Relaxed);
    let process = Process { render: Some(render), back, left, right, midi, expected: None };
    gone.store(false, Relaxed);
    let notify = Notify { counters: counters.clone(), gone: gone.clone() };
    let active = client.activate_async(notify, process).map_err(|e| (err(e), None))?;
    connect(active.as_client(), &cfg.connect, &names);
    Ok(active)
}

/// Connects `ours` (out_1, out_2) as `how` says; a failure is logged, not
/// fatal (the user may patch by hand).
fn connect(client: &Client, how: &JackConnect, ours: &[String; 2]) {
    let targets: Vec<String> = match how {
        JackConnect::None => return,
        JackConnect::Ports(ports) => ports.clone(),
        JackConnect::System => client.ports(
            None,
            Some(jack::jack_sys::FLOAT_MONO_AUDIO),
            PortFlags::IS_INPUT | PortFlags::IS_PHYSICAL,
        ),
    };
    if targets.is_empty() {
        eprintln!(
            "chronus: JACK: no playback ports to connect to; connect {} and {} by hand",
            ours[0], ours[1]
        );
        return;
    }
    for (k, ours) in ours.iter().enumerate() {
        let to = &targets[k.min(targets.len() - 1)];
        if let Err(e) = client.connect_ports_by_name(ours, to) {
            eprintln!("chronus: JACK: cannot connect {ours} to {to}: {e}");
        }
    }
}

/// JACK time `at` (µs) as CLOCK_MONOTONIC ns, given JACK's time `jack_now`.
///
/// JACK's clock is not CLOCK_MONOTONIC: JACK2 on Linux reads
/// CLOCK_MONOTONIC_RAW, which NTP does not slew, and the two drift apart
/// with uptime (a quarter of a second after a few hours on a VM). A time tag
/// placed with JACK's time taken as CLOCK_MONOTONIC sounded that much late.
/// So the age of `at` is read on JACK's clock and dated on CLOCK_MONOTONIC.
/// Two vDSO clock reads: real-time safe.
fn monotonic_from_jack(jack_now: u64, at: u64) -> u64 {
    let now_ns = chronus_sys::clock::monotonic_ns();
    // Signed: JACK's (filtered) cycle start may lie a little after `now`.
    let age_ns = (jack_now as i64).wrapping_sub(at as i64).saturating_mul(1_000);
    (now_ns as i64).saturating_sub(age_ns).max(0) as u64
}

/// The client's process callback.
struct Process<R: DeviceRender> {
    render: Option<R>,
    back: rtrb::Producer<R>,
    left: Port<AudioOut>,
    right: Port<AudioOut>,
    midi: Option<Port<MidiIn>>,
    /// The frame time the next cycle should start at (a later one: the
    /// graph skipped cycles, an xrun).
    expected: Option<u32>,
}

impl<R: DeviceRender> jack::ProcessHandler for Process<R> {
    fn process(&mut self, c: &Client, ps: &ProcessScope) -> Control {
        let Some(render) = self.render.as_mut() else { return Control::Continue };
        let n = ps.n_frames();
        let start = ps.last_frame_time();
        // Cycles the graph skipped: frames the output never got to play.
        let skipped = self.expected.map_or(0, |e| start.wrapping_sub(e));
        let xrun_frames = if skipped < u32::MAX / 2 { u64::from(skipped) } else { 0 };
        self.expected = Some(start.wrapping_add(n));
        if let Some(midi) = &self.midi {
            for m in midi.iter(ps) {
                render.midi(m.time.min(n.saturating_sub(1)), m.bytes);
            }
        }
        // The cycle's first frame reaches the ports read after this client
        // in this very cycle: at the cycle's start, on JACK's clock.
        let output_time_ns = ps.cycle_times().map_or(0, |t| monotonic_from_jack(c.time(), t.current_usecs));
        let info = CallbackInfo { xrun_frames, period: n, buffer: n, steady: true, output_time_ns };
        let (left, right) = (self.left.as_mut_slice(ps), self.right.as_mut_slice(ps));
        render.render(left, right, &info);
        Control::Continue
    }

    fn buffer_size(&mut self, _: &Client, size: jack::Frames) -> Control {
        // Not on the real-time path: JACK calls it between cycles.
        if let Some(render) = self.render.as_mut() {
            render.prepare(size);
        }
        Control::Continue
    }
}

impl<R: DeviceRender> Drop for Process<R> {
    fn drop(&mut self) {
        if let Some(render) = self.render.take() {
            let _ = self.back.push(render);
        }
    }
}

/// The client's notifications: xruns counted, a shutdown flagged.
struct Notify {
    counters: Arc<DeviceCounters>,
    gone: Arc<AtomicBool>,
}

impl jack::NotificationHandler for Notify {
    fn xrun(&mut self, _: &Client) -> Control {
        self.counters.xruns.fetch_add(1, Relaxed);
        Control::Continue
    }

    fn sample_rate(&mut self, c: &Client, _: jack::Frames) -> Control {
        self.counters.period.store(c.buffer_size(), Relaxed);
        Control::Continue
    }

    // The trait marks it unsafe: JACK calls it like a signal handler, so it
    // may only do async-signal-safe things.
    #[allow(unsafe_code)]
    unsafe fn shutdown(&mut self, _: ClientStatus, _: &str) {
        // An atomic store only: async-signal-safe.
        self.gone.store(true, Relaxed);
    }
}

/// Keeps the client alive; when its server goes away, waits for it to come
/// back and reconnects with the renderer.
struct Watcher<R: DeviceRender> {
    cfg: JackConfig,
    rate: u32,
    counters: Arc<DeviceCounters>,
    gone: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    back: rtrb::Consumer<R>,
}

/// How often the watcher looks.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// How often it tries to reconnect to a server that went away.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

impl<R: DeviceRender> Watcher<R> {
    fn run(mut self, active: Active<R>) {
        let mut active = Some(active);
        let mut down_since: Option<std::time::Instant> = None;
        let mut tried = std::time::Instant::now();
        while !self.stop.load(Relaxed) {
            std::thread::sleep(WATCH_EVERY);
            if self.gone.load(Relaxed) && active.is_some() {
                // Dropping the dead client drops its callbacks: the renderer
                // comes back through the ring.
                drop(active.take());
                eprintln!("chronus: the JACK server went away; waiting for it to come back");
                // libjack would print each failed try.
                jack::set_logger(jack::LoggerType::None);
                down_since = Some(std::time::Instant::now());
            }
            if active.is_some() || tried.elapsed() < RECONNECT_EVERY {
                continue;
            }
            tried = std::time::Instant::now();
            let Ok(render) = self.back.pop() else { continue };
            if let Ok(a) = self.reconnect(render) {
                active = Some(a);
                self.counters.rebuilds.fetch_add(1, Relaxed);
                jack::set_logger(jack::LoggerType::Stdio);
                let down = down_since.take().map_or(0.0, |t| t.elapsed().as_secs_f64());
                eprintln!("chronus: reconnected to the JACK server after {down:.1} s");
            }
        }
        drop(active);
    }

    /// Connects a new client with `render`; on failure the renderer is back
    /// in `self.back` for the next try.
    fn reconnect(&mut self, render: R) -> Result<Active<R>, JackError> {
        let (mut tx, rx) = rtrb::RingBuffer::new(1);
        self.back = rx;
        let client = match open(&self.cfg.name) {
            Ok(c) if c.sample_rate() == self.rate => c,
            Ok(c) => {
                let e = JackError::Jack(format!(
                    "the server came back at {} Hz; the engine runs at {} Hz",
                    c.sample_rate(),
                    self.rate
                ));
                eprintln!("chronus: {e}");
                let _ = tx.push(render);
                return Err(e);
            }
            Err(e) => {
                let _ = tx.push(render);
                return Err(e);
            }
        };
        let counters = self.counters.clone();
        activate(client, &self.cfg, render, tx, &counters, &self.gone).map_err(|(e, render)| {
            if let Some(render) = render {
                // Not in the callbacks: the ring's producer went with them.
                let (mut tx, rx) = rtrb::RingBuffer::new(1);
                let _ = tx.push(render);
                self.back = rx;
            }
            e
        })
    }
}
