//! A private JACK server with the dummy backend (it paces a real audio graph
//! with no sound card), stopped on drop. Needs jackd (Debian: jackd2).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How many server names the tests take turns with.
const NAME_POOL: usize = 3;

/// A running private jackd.
pub struct Jack {
    child: Child,
    /// Its name: clients reach it with `JACK_DEFAULT_SERVER=NAME`.
    pub name: String,
}

impl Jack {
    /// Starts one at 48 kHz with `period` frames per cycle and waits until it
    /// answers.
    ///
    /// Its name comes from a small fixed pool, not from this process: JACK
    /// keeps 8 server slots in `/dev/shm/jack-shm-registry` and reclaims a
    /// dead server's slot only when a server of the same name starts, so a
    /// unique name per run (a test killed mid-way, a jackd that had to be
    /// SIGKILLed) would fill the registry within a few runs. A name still in
    /// use by a live server (another suite running) makes jackd exit, and the
    /// next name is tried.
    pub fn start(period: u32) -> Self {
        for slot in 0..NAME_POOL {
            let name = format!("chronus-test-{slot}");
            if let Some(child) = spawn(&name, period) {
                return Self { child, name };
            }
        }
        panic!("jackd did not start under any of {NAME_POOL} names (see /dev/shm/jack-shm-registry)");
    }

    /// Stops it (as a crash or an operator would) and starts it again under
    /// the same name, after `pause`.
    pub fn restart(&mut self, period: u32, pause: Duration) {
        self.stop();
        std::thread::sleep(pause);
        self.child = spawn(&self.name, period).expect("jackd did not start again under its name");
    }

    /// A command run against this server.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("JACK_DEFAULT_SERVER", &self.name);
        c
    }

    /// Runs a JACK tool (`jack_connect A B`, `jack_bufsize N`) to completion.
    pub fn tool(&self, program: &str, args: &[&str]) -> bool {
        self.command(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The server's ports.
    pub fn ports(&self) -> Vec<String> {
        let out = self.command("jack_lsp").output().map(|o| o.stdout).unwrap_or_default();
        String::from_utf8_lossy(&out).lines().map(str::to_owned).collect()
    }
}

/// Starts jackd `name` and waits until it answers; `None` when the name is
/// taken by a live server (jackd exits at once then).
#[allow(
    clippy::zombie_processes,
    reason = "the running server goes to the caller, whose Jack waits for it on drop"
)]
fn spawn(name: &str, period: u32) -> Option<Child> {
    if answers(name) {
        return None;
    }
    let mut child = Command::new("jackd")
        .args(["--no-realtime", "-n", name, "-d", "dummy", "-r", "48000", "-p", &period.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("jackd is needed (Debian: apt-get install jackd2; scripts/test installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().is_ok_and(|s| s.is_some()) {
            return None;
        }
        if answers(name) {
            return Some(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("jackd {name} did not answer within 10 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a server named `name` is running. jack_wait prints "running" or
/// "not running"; its exit status says nothing.
fn answers(name: &str) -> bool {
    let out = Command::new("jack_wait").args(["-s", name, "-c"]).stderr(Stdio::null()).output();
    out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "running")
}

impl Drop for Jack {
    /// SIGTERM, so jackd removes its shared memory (a SIGKILLed jackd leaves
    /// its entries in /dev/shm, and enough of them stop new servers from
    /// starting); SIGKILL only if it does not stop within 2 s.
    fn drop(&mut self) {
        self.stop();
    }
}

impl Jack {
    fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if self.child.try_wait().is_ok_and(|s| s.is_some()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
