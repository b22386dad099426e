//! A minimal OSC client for tests: encode a message, ask for the status.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use rosc::{OscMessage, OscPacket, OscType, encoder};

/// `addr` with `args`, encoded.
pub fn message(addr: &str, args: Vec<OscType>) -> Vec<u8> {
    encoder::encode(&OscPacket::Message(OscMessage { addr: addr.into(), args })).unwrap()
}

/// A socket for talking to an engine (replies within 50 ms reads).
pub fn client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    socket
}

/// Asks the engine at `to` for `/status.reply`; its arguments (see
/// docs/osc.md), or `None` without an answer within a second.
pub fn status(socket: &UdpSocket, to: &str) -> Option<Vec<OscType>> {
    socket.send_to(&message("/status", vec![]), to).ok()?;
    let mut buf = [0u8; 4_096];
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let Ok((n, _)) = socket.recv_from(&mut buf) else { continue };
        if let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..n])
            && m.addr == "/status.reply"
        {
            return Some(m.args);
        }
    }
    None
}

/// Field `i` (0-based) of a status reply as a number.
pub fn field(status: &[OscType], i: usize) -> i64 {
    match status.get(i) {
        Some(OscType::Int(v)) => i64::from(*v),
        Some(OscType::Long(v)) => *v,
        _ => -1,
    }
}
