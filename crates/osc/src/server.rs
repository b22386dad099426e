//! The OSC UDP server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chronus_dsp::Files;
use chronus_supervisor::{Engine, EngineError};
use rosc::{OscMessage, OscPacket, OscType, encoder};

use crate::decode::{Item, Target, decode_packet};
use crate::files::Counted;
use crate::status_reply::{ServerSide, StatusReply};

/// Where the server listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:57120";
/// Largest datagram accepted, in bytes; larger ones are refused.
pub const MAX_PACKET: usize = 8_192;
/// `/error` replies a sender may get per second (in bursts of as many);
/// past that they are counted, not sent, and the next one sent says how
/// many were left out. A client flooding garbage then costs one receive per
/// packet, not a receive and a send, and `/status` stays answered.
pub const ERRORS_PER_SECOND: f64 = 50.0;
/// Senders remembered (for rate limits and to tell them of cut commands);
/// past that, the table starts afresh.
const SENDERS: usize = 4_096;
/// Socket receive buffer asked for: a burst of ~8,000 small packets waits
/// there while the server is busy.
const RECEIVE_BUFFER: usize = 4 << 20;
/// Longest between looks for cut commands to tell their senders of.
const CUTS_EVERY: Duration = Duration::from_millis(20);

/// Which senders may control the engine: loopback always (the machine's
/// own users), and the networks added with [`Allow::add`]. A packet from
/// anyone else is dropped unread and counted ([`OscStats::denied`]), so it
/// can neither play, nor `/quit`, nor make the DSP read a file.
#[derive(Clone, Debug, Default)]
pub struct Allow {
    nets: Vec<(IpAddr, u8)>,
}

impl Allow {
    /// Loopback only: what the server accepts unless told more.
    pub fn loopback() -> Self {
        Self::default()
    }

    /// Parses `ADDR/PREFIX` (or a bare address) and adds it. `0.0.0.0/0`
    /// (or `::/0`) admits every host: see [`Allow::admits_everyone`].
    ///
    /// # Errors
    /// A message when `cidr` is not an address with an optional prefix.
    pub fn add(&mut self, cidr: &str) -> Result<(), String> {
        let (addr, prefix) = cidr.split_once('/').map_or((cidr, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr.parse().map_err(|_| format!("'{cidr}' is not an address or CIDR"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("bad prefix in '{cidr}'"))?
            }
        };
        self.nets.push((addr, prefix));
        Ok(())
    }

    /// Whether any network beyond loopback was added.
    pub fn names_networks(&self) -> bool {
        !self.nets.is_empty()
    }

    /// Whether a `/0` was added: every host that can reach the socket may
    /// send.
    pub fn admits_everyone(&self) -> bool {
        self.nets.iter().any(|(_, prefix)| *prefix == 0)
    }

    /// Whether `ip` may send. IPv4 addresses seen through an IPv6 socket
    /// (`::ffff:a.b.c.d`) are judged as IPv4.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_loopback() || self.nets.iter().any(|(net, prefix)| same_prefix(*net, ip, *prefix))
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OscError {
    /// Binding or setting up the socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The socket would listen beyond loopback while only loopback senders
    /// are allowed: name who may send (`--allow CIDR`, or `--allow
    /// 0.0.0.0/0` to admit every host, knowingly).
    #[error(
        "OSC on {0} listens beyond loopback, and nobody beyond it is allowed: name the senders with --allow \
         CIDR (e.g. --allow 192.168.1.0/24), or --allow 0.0.0.0/0 to accept any host (anyone who can reach \
         the port can then play, load patches from the patch directory and /quit)"
    )]
    Exposed(SocketAddr),
}

fn same_prefix(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    let bits = |ip: IpAddr| -> (u128, u8) {
        match ip {
            IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let ((x, wx), (y, wy)) = (bits(a), bits(b));
    if wx != wy {
        return false;
    }
    let keep = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
    (x & keep) == (y & keep)
}

/// Counters of the server.
#[derive(Debug, Default)]
pub struct OscStats {
    /// Datagrams received.
    pub packets: AtomicU64,
    /// Commands passed to the engine.
    pub commands: AtomicU64,
    /// Messages refused (each answered with `/error`, unless rate-limited).
    pub errors: AtomicU64,
    /// `/error` replies left out by the per-sender rate limit.
    pub errors_unsent: AtomicU64,
    /// Senders told their command was cut out as a poison.
    pub cuts_reported: AtomicU64,
    /// Senders told the engine is overloaded.
    pub overload_replies: AtomicU64,
    /// Datagrams dropped because the sender is not allowed.
    pub denied: AtomicU64,
    /// File reads a sender asked for that were refused (a `/patch/load`
    /// outside the patch directory, a link out of it, not a patch file,
    /// too large).
    pub files_refused: AtomicU64,
}

/// A running OSC server.
#[derive(Debug)]
pub struct OscServer {
    addr: SocketAddr,
    stats: Arc<OscStats>,
    stop: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Handler {
    socket: UdpSocket,
    engine: Arc<Engine>,
    allow: Allow,
    files: Box<dyn Files>,
    stats: Arc<OscStats>,
    quit: Arc<AtomicBool>,
    senders: Senders,
}

/// What the server remembers of a sender.
#[derive(Clone, Copy, Debug)]
struct Sender {
    /// Its origin id for the engine (1-based).
    origin: u32,
    /// `/error` tokens left, refilled at [`ERRORS_PER_SECOND`].
    tokens: f64,
    refilled: Instant,
    /// `/error` replies left out since the last one sent.
    unsent: u64,
    /// When it was last told the engine is overloaded.
    told_overload: Option<Instant>,
}

/// The senders seen, by address, with their origin ids.
#[derive(Debug, Default)]
struct Senders {
    by_addr: HashMap<SocketAddr, Sender>,
    by_origin: Vec<SocketAddr>,
}

impl Senders {
    fn get(&mut self, addr: SocketAddr) -> &mut Sender {
        if self.by_addr.len() >= SENDERS && !self.by_addr.contains_key(&addr) {
            self.by_addr.clear();
            self.by_origin.clear();
        }
        let origins = &mut self.by_origin;
        self.by_addr.entry(addr).or_insert_with(|| {
            origins.push(addr);
            Sender {
                origin: origins.len() as u32,
                tokens: ERRORS_PER_SECOND,
                refilled: Instant::now(),
                unsent: 0,
                told_overload: None,
            }
        })
    }

    fn addr_of(&self, origin: u32) -> Option<SocketAddr> {
        origin.checked_sub(1).and_then(|i| self.by_origin.get(i as usize)).copied()
    }
}

impl Sender {
    /// Takes an `/error` token; false when the sender is over its rate.
    fn may_get_error(&mut self, now: Instant) -> bool {
        let dt = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + dt * ERRORS_PER_SECOND).min(ERRORS_PER_SECOND);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.unsent += 1;
            false
        }
    }
}

impl Handler {
    fn reply(&self, to: SocketAddr, addr: &str, args: Vec<OscType>) {
        let packet = OscPacket::Message(OscMessage { addr: addr.into(), args });
        if let Ok(bytes) = encoder::encode(&packet) {
            let _ = self.socket.send_to(&bytes, to);
        }
    }

    /// Refuses a message: counted always, answered within the sender's
    /// rate ([`ERRORS_PER_SECOND`]).
    fn error(&mut self, to: SocketAddr, address: &str, message: &str) {
        self.stats.errors.fetch_add(1, Relaxed);
        tracing::debug!("OSC from {to}: {address}: {message}");
        let sender = self.senders.get(to);
        if !sender.may_get_error(Instant::now()) {
            self.stats.errors_unsent.fetch_add(1, Relaxed);
            return;
        }
        let unsent = std::mem::take(&mut sender.unsent);
        let message = if unsent > 0 {
            format!("{message} (and {unsent} earlier error(s) not replied to: over {ERRORS_PER_SECOND}/s)")
        } else {
            message.to_owned()
        };
        self.reply(to, "/error", vec![OscType::String(message), OscType::String(address.into())]);
    }

    /// Tells the senders of commands the engine cut out as poisons.
    fn report_cuts(&mut self) {
        for cut in self.engine.take_cuts() {
            let Some(to) = self.senders.addr_of(cut.origin) else { continue };
            let what = self
                .engine
                .dsp()
                .table()
                .format(&cut.event)
                .map_or_else(|| format!("event {}", cut.seq), |(path, args)| format!("{path} {args:?}"));
            let message = format!(
                "{what} was cut out as a poison: every replica crashed or hung applying it (frame {}, journal event \
                 {}); identical commands are refused from now on",
                cut.frame, cut.seq
            );
            self.stats.cuts_reported.fetch_add(1, Relaxed);
            self.reply(to, "/error", vec![OscType::String(message), OscType::String(String::new())]);
        }
    }

    /// While the engine is overloaded, a sender of commands hears so, once
    /// a second.
    fn tell_overload(&mut self, to: SocketAddr) {
        if !self.engine.is_overloaded() {
            return;
        }
        let now = Instant::now();
        let sender = self.senders.get(to);
        if sender.told_overload.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        sender.told_overload = Some(now);
        self.stats.overload_replies.fetch_add(1, Relaxed);
        self.reply(to, "/error", vec![
            OscType::String(
                "the engine is overloaded: every replica renders over its real-time budget; commands superseded \
                 within a period are coalesced and audio may break up; send fewer"
                    .into(),
            ),
            OscType::String(String::new()),
        ]);
    }

    fn status(&mut self, to: SocketAddr) {
        let status = self.engine.status();
        let server = ServerSide { osc: &self.stats, dsp: self.engine.dsp().name() };
        self.reply(to, "/status.reply", StatusReply::of(&status, server).encode());
    }

    fn handle(&mut self, bytes: &[u8], from: SocketAddr) {
        self.stats.packets.fetch_add(1, Relaxed);
        if !self.allow.permits(from.ip()) {
            self.stats.denied.fetch_add(1, Relaxed);
            return;
        }
        if bytes.len() > MAX_PACKET {
            return self.error(
                from,
                "",
                &format!("packet of {} bytes is over the {MAX_PACKET}-byte limit", bytes.len()),
            );
        }
        let cfg = self.engine.config();
        let files = Counted { files: &*self.files, refused: &self.stats.files_refused };
        let target =
            Target { spec: &cfg.dsp, setup: cfg.setup(), faults_enabled: cfg.faults_enabled, files: &files };
        for item in decode_packet(bytes, &target).items {
            match item {
                Item::Events(events, at) => {
                    let frame = at.and_then(|t| self.engine.frame_at(t));
                    let origin = self.senders.get(from).origin;
                    match self.engine.send_all_from(&events, frame, origin) {
                        Ok(()) => {
                            self.stats.commands.fetch_add(1, Relaxed);
                            self.tell_overload(from);
                        }
                        Err(e @ EngineError::Refused(_)) => self.error(from, "", &e.to_string()),
                        Err(e) => self.error(from, "", &format!("engine busy: {e}")),
                    }
                }
                Item::Status => self.status(from),
                Item::Quit => {
                    self.quit.store(true, Relaxed);
                    self.reply(from, "/quit.reply", vec![]);
                }
                Item::Error(address, message) => self.error(from, &address, &message),
            }
        }
    }

    fn run(mut self, stop: Arc<AtomicBool>) {
        // One byte more than the limit, so an oversized datagram is seen as such.
        let mut buf = vec![0u8; 65_536];
        let mut cuts_seen = Instant::now();
        while !stop.load(Relaxed) {
            if cuts_seen.elapsed() >= CUTS_EVERY {
                cuts_seen = Instant::now();
                self.report_cuts();
            }
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => self.handle(&buf[..n], from),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => tracing::warn!("OSC socket: {e}"),
            }
        }
    }
}

/// A bound OSC socket and who may use it, not yet serving: bound before
/// the engine starts, so a refused address costs nothing.
pub struct OscListener {
    socket: UdpSocket,
    allow: Allow,
    files: Box<dyn Files>,
}

impl std::fmt::Debug for OscListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OscListener")
            .field("socket", &self.socket)
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

impl OscListener {
    /// Binds `addr` for the senders `allow` permits; what a sender may make
    /// the DSP read (a `/patch/load`) is whatever `files` serves.
    ///
    /// # Errors
    /// [`OscError::Io`]: the bind error (address in use, not permitted);
    /// [`OscError::Exposed`]: `addr` is beyond loopback (a host's address,
    /// or `0.0.0.0`) and `allow` names no network.
    pub fn bind(addr: &str, allow: Allow, files: Box<dyn Files>) -> Result<Self, OscError> {
        let socket = UdpSocket::bind(addr)?;
        let bound = socket.local_addr()?;
        if !bound.ip().to_canonical().is_loopback() && !allow.names_networks() {
            return Err(OscError::Exposed(bound));
        }
        if allow.admits_everyone() {
            tracing::warn!(
                "OSC on {bound} accepts commands from every host that can reach it (an allowed network is a /0): \
                 any of them can play, load patches from the patch directory, and /quit"
            );
        }
        socket.set_read_timeout(Some(CUTS_EVERY))?;
        chronus_sys::net::grow_receive_buffer(&socket, RECEIVE_BUFFER);
        Ok(Self { socket, allow, files })
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Serves `engine` on a thread of its own.
    ///
    /// # Errors
    /// The socket's or the thread's error.
    pub fn serve(self, engine: Arc<Engine>) -> std::io::Result<OscServer> {
        let local = self.socket.local_addr()?;
        let stats = Arc::new(OscStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let quit = Arc::new(AtomicBool::new(false));
        let handler = Handler {
            socket: self.socket,
            engine,
            allow: self.allow,
            files: self.files,
            stats: stats.clone(),
            quit: quit.clone(),
            senders: Senders::default(),
        };
        let stop2 = stop.clone();
        let thread =
            std::thread::Builder::new().name("chronus-osc".into()).spawn(move || handler.run(stop2))?;
        Ok(OscServer { addr: local, stats, stop, quit, thread: Some(thread) })
    }
}

impl OscServer {
    /// Binds `addr` and serves `engine` on a thread of its own: see
    /// [`OscListener::bind`] and [`OscListener::serve`].
    ///
    /// # Errors
    /// As [`OscListener::bind`] and [`OscListener::serve`].
    pub fn start(
        addr: &str,
        engine: Arc<Engine>,
        allow: Allow,
        files: Box<dyn Files>,
    ) -> Result<Self, OscError> {
        Ok(OscListener::bind(addr, allow, files)?.serve(engine)?)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters.
    pub fn stats(&self) -> &OscStats {
        &self.stats
    }

    /// Whether a client sent `/quit`.
    pub fn quit_requested(&self) -> bool {
        self.quit.load(Relaxed)
    }

    /// Stops serving.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for OscServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_admit_loopback_and_the_networks_named() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut a = Allow::loopback();
        assert!(a.permits(ip("127.9.9.9")) && a.permits(ip("::1")) && a.permits(ip("::ffff:127.0.0.1")));
        assert!(!a.permits(ip("10.1.2.3")), "nobody beyond loopback unless named");
        assert!(!a.names_networks() && !a.admits_everyone());
        a.add("192.168.1.0/24").unwrap();
        a.add("10.0.0.7").unwrap();
        assert!(a.permits(ip("192.168.1.200")) && a.permits(ip("10.0.0.7")));
        assert!(a.permits(ip("::ffff:192.168.1.9")), "IPv4 through an IPv6 socket");
        assert!(!a.permits(ip("192.168.2.1")) && !a.permits(ip("10.0.0.8")) && !a.permits(ip("fe80::1")));
        assert!(a.names_networks() && !a.admits_everyone());
        a.add("0.0.0.0/0").unwrap();
        assert!(a.admits_everyone() && a.permits(ip("8.8.8.8")));
        assert!(a.add("300.1.1.1").is_err());
        assert!(a.add("10.0.0.0/33").is_err());
    }

    #[test]
    fn errors_are_rate_limited_per_sender_and_counted() {
        let mut senders = Senders::default();
        let a: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let now = Instant::now();
        let sent = (0..1_000).filter(|_| senders.get(a).may_get_error(now)).count();
        assert_eq!(sent, ERRORS_PER_SECOND as usize, "a burst, then nothing");
        assert_eq!(senders.get(a).unsent, 1_000 - sent as u64);
        assert!(senders.get(b).may_get_error(now), "another sender has its own budget");
        let later = now + Duration::from_millis(100);
        let refilled = (0..1_000).filter(|_| senders.get(a).may_get_error(later)).count();
        assert_eq!(refilled, (ERRORS_PER_SECOND / 10.0) as usize);
        let origin = senders.get(b).origin;
        assert_eq!(senders.addr_of(origin), Some(b));
        assert_eq!(senders.addr_of(0), None);
    }
}
