//! A `chronus play` process to talk to over OSC: the one helper for a
//! playing engine. It records to `played.wav` and journals to `run.journal`
//! in a directory of its own, logs to `stderr.log` there, and is killed if
//! the test fails before it quits.

use std::net::UdpSocket;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chronus::osc::StatusReply;
use rosc::{OscMessage, OscPacket, OscType, encoder};

use super::jackd::Jack;
use super::{KillOnDrop, TempDir, chronus_exe};

/// A UDP port free right now on loopback.
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `addr` with `args`, as a packet.
pub fn msg(addr: &str, args: Vec<OscType>) -> OscPacket {
    OscPacket::Message(OscMessage { addr: addr.into(), args })
}

/// A running `chronus play`.
pub struct Play {
    child: Option<Child>,
    _guard: KillOnDrop,
    /// Its OSC address.
    pub osc: String,
    socket: UdpSocket,
    /// Where its recording, journal and log are (until it quits).
    dir: Option<TempDir>,
}

impl Play {
    /// `chronus play --sink null` with `extra` flags, once it answers
    /// `/status`.
    pub fn null(tag: &str, extra: &[&str]) -> Self {
        Self::start(Command::new(chronus_exe()), tag, &["--sink", "null"], extra, |_| true)
    }

    /// `chronus play --sink jack --no-jack-connect --faults` on `jack` with
    /// `extra` flags, once it has a verified standby.
    pub fn on_jack(jack: &Jack, tag: &str, extra: &[&str]) -> Self {
        let cmd = jack.command(chronus_exe().to_str().unwrap());
        Self::start(cmd, tag, &["--sink", "jack", "--no-jack-connect", "--faults"], extra, |s| {
            s.standby_pid > 0
        })
    }

    fn start(
        mut cmd: Command,
        tag: &str,
        sink: &[&str],
        extra: &[&str],
        up: fn(&StatusReply) -> bool,
    ) -> Self {
        let dir = TempDir::new(tag);
        let osc = format!("127.0.0.1:{}", free_port());
        cmd.arg("play")
            .args(sink)
            .args(["--osc", &osc, "--name", &format!("{tag}-{}", std::process::id())])
            .arg("--record")
            .arg(dir.path("played.wav"))
            .arg("--journal")
            .arg(dir.path("run.journal"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path("stderr.log")).unwrap());
        let child = cmd.spawn().unwrap();
        let _guard = KillOnDrop(child.id());
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let play = Self { child: Some(child), _guard, osc, socket, dir: Some(dir) };
        play.wait_for("chronus play to come up", Duration::from_secs(10), up);
        play
    }

    /// Where its recording, journal and log are.
    pub fn dir(&self) -> &TempDir {
        self.dir.as_ref().unwrap()
    }

    /// What it wrote to stderr so far (its log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().path("stderr.log")).unwrap_or_default()
    }

    /// Sends `packet`.
    pub fn send(&self, packet: &OscPacket) {
        self.send_bytes(&encoder::encode(packet).unwrap());
    }

    /// Sends the message `addr` `args`.
    pub fn send_msg(&self, addr: &str, args: Vec<OscType>) {
        self.send(&msg(addr, args));
    }

    /// Sends raw bytes (malformed packets).
    pub fn send_bytes(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, &self.osc).unwrap();
    }

    /// The next message it sends back, if one comes within 200 ms.
    pub fn reply(&self) -> Option<OscMessage> {
        let mut buf = [0u8; 65_536];
        let (n, _) = self.socket.recv_from(&mut buf).ok()?;
        match rosc::decoder::decode_udp(&buf[..n]).ok()?.1 {
            OscPacket::Message(m) => Some(m),
            OscPacket::Bundle(_) => None,
        }
    }

    /// Its `/status.reply`, asked up to 4 times, as a client would: in a
    /// flood, the kernel drops datagrams (ours too) when the server's
    /// receive buffer is full.
    pub fn try_status(&self) -> Option<StatusReply> {
        for _ in 0..4 {
            self.send_msg("/status", vec![]);
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                if let Some(m) = self.reply().filter(|m| m.addr == "/status.reply") {
                    return Some(StatusReply::decode(&m.args).unwrap());
                }
            }
        }
        None
    }

    /// Its status; it must answer.
    pub fn status(&self) -> StatusReply {
        self.try_status().unwrap_or_else(|| panic!("no /status.reply\n{}", self.log()))
    }

    /// Polls its status until `until` holds, at most `timeout` (then
    /// fails, saying it waited for `what`).
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        until: impl Fn(&StatusReply) -> bool,
    ) -> StatusReply {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status().filter(|s| until(s)) {
                return s;
            }
            assert!(Instant::now() < deadline, "waited {timeout:?} for {what}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets it play `d` of audio: polls its status until that many more
    /// frames were played, rather than sleeping for `d` (a machine that
    /// stalls is waited for, at most 10 s beyond `d`; an engine that stops
    /// playing fails the test).
    pub fn play_for(&self, d: Duration) -> StatusReply {
        let start = self.status();
        let frames = (d.as_secs_f64() * f64::from(start.sample_rate)) as i64;
        let what = format!("{d:?} of audio");
        self.wait_for(&what, d + Duration::from_secs(10), |s| s.frames_played >= start.frames_played + frames)
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Sends `/quit`, waits for it to end (at most 10 s), and returns its
    /// output (stderr: its log) and its directory.
    pub fn quit(mut self) -> (Output, TempDir) {
        self.send_msg("/quit", vec![]);
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "chronus play did not quit\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut out = child.wait_with_output().unwrap();
        out.stderr = self.log().into_bytes();
        (out, self.dir.take().unwrap())
    }
}

impl Drop for Play {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
