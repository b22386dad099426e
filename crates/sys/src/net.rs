//! Sockets.

/// Asks for a receive buffer of `bytes` on `socket`: forced past the
/// system's `rmem_max` when permitted (CAP_NET_ADMIN), else as large as it
/// allows.
pub fn grow_receive_buffer(socket: &std::net::UdpSocket, bytes: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(socket, sockopt::RcvBufForce, &bytes).is_err() {
        let _ = setsockopt(socket, sockopt::RcvBuf, &bytes);
    }
}
