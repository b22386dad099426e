//! A minimal OSC client for tests: encode a message, ask for the status.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use chronus::osc::StatusReply;
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

/// Asks the engine at `to` for `/status.reply`, or `None` without an
/// answer within a second.
pub fn status(socket: &UdpSocket, to: &str) -> Option<StatusReply> {
    socket.send_to(&message("/status", vec![]), to).ok()?;
    let mut buf = [0u8; 4_096];
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let Ok((n, _)) = socket.recv_from(&mut buf) else { continue };
        if let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..n])
            && m.addr == "/status.reply"
        {
            return StatusReply::decode(&m.args).ok();
        }
    }
    None
}
