//! A minimal OSC client for `chronus send` and `chronus status`.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rosc::{OscMessage, OscPacket, OscType, encoder};

use crate::exit::{ExitCodeExt, Failure, OS_ERR, USAGE};

/// Sends `address args` to `to` and waits up to `wait` for a reply.
pub fn request(
    to: &str,
    address: &str,
    args: Vec<OscType>,
    wait: Duration,
) -> Result<Option<OscMessage>, Failure> {
    let to: SocketAddr =
        to.parse().map_err(|_| Failure::new(USAGE, format!("'{to}' is not an ADDR:PORT")))?;
    let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = UdpSocket::bind(bind).or_exit(OS_ERR, "cannot open a UDP socket")?;
    let packet = OscPacket::Message(OscMessage { addr: address.into(), args });
    let bytes = encoder::encode(&packet).or_exit(USAGE, "cannot encode the message")?;
    socket.send_to(&bytes, to).or_exit(OS_ERR, format!("cannot send to {to}"))?;
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65_536];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        socket.set_read_timeout(Some(left)).or_exit(OS_ERR, "socket")?;
        let Ok((n, from)) = socket.recv_from(&mut buf) else { return Ok(None) };
        if from != to {
            continue;
        }
        if let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..n]) {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// Types a command-line token like a score does: int, float, else string.
pub fn typed(token: &str) -> OscType {
    if let Ok(i) = token.parse::<i32>() {
        OscType::Int(i)
    } else if let Ok(f) = token.parse::<f32>() {
        OscType::Float(f)
    } else {
        OscType::String(token.into())
    }
}
