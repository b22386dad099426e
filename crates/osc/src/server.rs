//! The OSC UDP server.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

use chronus_supervisor::Engine;
use rosc::{OscMessage, OscPacket, OscType, encoder};

use crate::decode::{Item, Target, decode_packet};

/// Where the server listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:57120";
/// Largest datagram accepted, in bytes; larger ones are refused.
pub const MAX_PACKET: usize = 8_192;

/// Which senders may control the engine.
#[derive(Clone, Debug, Default)]
pub struct Allow {
    nets: Vec<(IpAddr, u8)>,
}

impl Allow {
    /// Everyone (the socket's bind address already limits who can reach it).
    pub fn all() -> Self {
        Self::default()
    }

    /// Parses `ADDR/PREFIX` (or a bare address) and adds it.
    ///
    /// # Errors
    /// A message when `cidr` is not an address with an optional prefix.
    pub fn add(&mut self, cidr: &str) -> Result<(), String> {
        let (addr, prefix) = cidr.split_once('/').map_or((cidr, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr.parse().map_err(|_| format!("'{cidr}' is not an address or CIDR"))?;
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

    /// Whether `ip` may send.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.nets.is_empty() || self.nets.iter().any(|(net, prefix)| same_prefix(*net, ip, *prefix))
    }
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
    /// Messages refused (each answered with `/error`).
    pub errors: AtomicU64,
    /// Datagrams dropped because the sender is not allowed.
    pub denied: AtomicU64,
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
    stats: Arc<OscStats>,
    quit: Arc<AtomicBool>,
}

impl Handler {
    fn reply(&self, to: SocketAddr, addr: &str, args: Vec<OscType>) {
        let packet = OscPacket::Message(OscMessage { addr: addr.into(), args });
        if let Ok(bytes) = encoder::encode(&packet) {
            let _ = self.socket.send_to(&bytes, to);
        }
    }

    fn error(&self, to: SocketAddr, address: &str, message: &str) {
        self.stats.errors.fetch_add(1, Relaxed);
        tracing::debug!("OSC from {to}: {address}: {message}");
        self.reply(to, "/error", vec![OscType::String(message.into()), OscType::String(address.into())]);
    }

    fn status(&self, to: SocketAddr) {
        let s = self.engine.status();
        let pid = |p: Option<u32>| OscType::Int(p.map_or(0, |p| p as i32));
        self.reply(
            to,
            "/status.reply",
            vec![
                OscType::String(s.health.to_string()),
                pid(s.active_pid),
                pid(s.standby_pid),
                OscType::Long(s.failovers as i64),
                OscType::Long(s.underrun_frames as i64),
                OscType::Long(s.frames_played as i64),
                OscType::Int(s.sample_rate as i32),
                OscType::Int(s.block as i32),
                OscType::Int(s.active_voices as i32),
                OscType::Long(s.events_stamped as i64),
                OscType::Long(self.stats.errors.load(Relaxed) as i64),
                OscType::Long(s.machine_stall_frames as i64),
                OscType::Long(s.events_coalesced as i64),
                OscType::String(self.engine.dsp().name().into()),
                OscType::Long(s.device_xruns as i64),
                OscType::Long(s.device_xrun_frames as i64),
            ],
        );
    }

    fn handle(&self, bytes: &[u8], from: SocketAddr) {
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
        let target = Target { spec: &cfg.dsp, setup: cfg.setup(), faults_enabled: cfg.faults_enabled };
        for item in decode_packet(bytes, &target).items {
            match item {
                Item::Events(events, at) => {
                    let frame = at.and_then(|t| self.engine.frame_at(t));
                    match self.engine.send_all(&events, frame) {
                        Ok(()) => {
                            self.stats.commands.fetch_add(1, Relaxed);
                        }
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

    fn run(self, stop: Arc<AtomicBool>) {
        // One byte more than the limit, so an oversized datagram is seen as such.
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Relaxed) {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => self.handle(&buf[..n], from),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => tracing::warn!("OSC socket: {e}"),
            }
        }
    }
}

impl OscServer {
    /// Binds `addr` and serves `engine` on a thread of its own.
    ///
    /// # Errors
    /// The bind error (address in use, not permitted).
    pub fn start(addr: &str, engine: Arc<Engine>, allow: Allow) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let local = socket.local_addr()?;
        let stats = Arc::new(OscStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let quit = Arc::new(AtomicBool::new(false));
        let handler = Handler { socket, engine, allow, stats: stats.clone(), quit: quit.clone() };
        let stop2 = stop.clone();
        let thread =
            std::thread::Builder::new().name("chronus-osc".into()).spawn(move || handler.run(stop2))?;
        Ok(Self { addr: local, stats, stop, quit, thread: Some(thread) })
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
    fn allow_lists_match_prefixes() {
        let mut a = Allow::all();
        assert!(a.permits("10.1.2.3".parse().unwrap()));
        a.add("127.0.0.0/8").unwrap();
        a.add("192.168.1.7").unwrap();
        assert!(a.permits("127.9.9.9".parse().unwrap()));
        assert!(a.permits("192.168.1.7".parse().unwrap()));
        assert!(!a.permits("192.168.1.8".parse().unwrap()));
        assert!(!a.permits("::1".parse().unwrap()));
        assert!(a.add("300.1.1.1").is_err());
        assert!(a.add("10.0.0.0/33").is_err());
    }
}
