//! What a soak inflicts: one worker fault at a time (every kind, injected
//! or sent from outside), and what hits every replica at once — a double
//! SIGKILL, a poison command (crash or hang), a flood of commands.

use std::net::{SocketAddr, UdpSocket};

use chronus::supervisor::{Engine, FaultKind, Target};
use rosc::{OscMessage, OscPacket, OscType, encoder};

/// Commands in one flood.
const FLOOD: usize = 5_000;

/// One scheduled fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// One worker's fault, injected or (every fifth) sent from outside.
    Worker(FaultKind),
    /// SIGKILL of the active and the standby in one `kill`.
    DoubleKill,
    /// `/test/poison KIND TAG` over OSC: every replica that applies it
    /// crashes (`crash`), hangs (`hang`) or makes a system call its sandbox
    /// forbids (`syscall`); the engine must cut it out.
    Poison(&'static str),
    /// 5,000 `/set` commands as fast as the socket takes them: load on the
    /// control path, not a fault.
    Flood,
}

impl Action {
    /// Every kind, for `--faults mixed`.
    pub fn all() -> Vec<Self> {
        let mut all = Self::single();
        all.extend([
            Self::DoubleKill,
            Self::Poison("crash"),
            Self::Poison("hang"),
            Self::Poison("syscall"),
            Self::Flood,
        ]);
        all
    }

    /// Every fault of one worker (no common-mode fault, no flood), for
    /// `--faults single`: what a mode is promised to survive with 0 frames
    /// lost as long as the other replica renders in time.
    pub fn single() -> Vec<Self> {
        FaultKind::ALL.iter().map(|&k| Self::Worker(k)).collect()
    }

    /// The action named `name` (a fault kind, `double-kill`,
    /// `poison-crash`, `poison-hang`, `poison-syscall` or `flood`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "double-kill" => Some(Self::DoubleKill),
            "poison-crash" => Some(Self::Poison("crash")),
            "poison-hang" => Some(Self::Poison("hang")),
            "poison-syscall" => Some(Self::Poison("syscall")),
            "flood" => Some(Self::Flood),
            other => FaultKind::from_name(other).map(Self::Worker),
        }
    }

    /// Its name in reports.
    pub fn name(&self) -> String {
        match self {
            Self::Worker(k) => k.name().to_owned(),
            Self::DoubleKill => "double-kill".into(),
            Self::Poison(kind) => format!("poison-{kind}"),
            Self::Flood => "flood".into(),
        }
    }

    /// Failover events it must cause: one per worker it takes down.
    pub fn failovers(&self) -> u64 {
        match self {
            Self::Worker(_) => 1,
            Self::DoubleKill | Self::Poison(_) => 2,
            Self::Flood => 0,
        }
    }

    /// Whether the engine must cut a command out for it.
    pub fn cuts(&self) -> bool {
        matches!(self, Self::Poison(_))
    }
}

fn message(addr: &str, args: Vec<OscType>) -> Vec<u8> {
    encoder::encode(&OscPacket::Message(OscMessage { addr: addr.into(), args })).unwrap_or_default()
}

/// Sends `signal` to `pids` in one kill(1), telling the engine first.
fn kill(engine: &Engine, signal: &str, kind: FaultKind, pids: &[u32]) -> Result<(), String> {
    for &pid in pids {
        engine.expect_fault(pid, kind);
    }
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let ok = std::process::Command::new("kill").arg(signal).args(&list).status().is_ok_and(|s| s.success());
    if ok { Ok(()) } else { Err(format!("kill {signal} {} failed", list.join(" "))) }
}

/// Inflicts fault number `n`, `action`, for the `round`-th time (each kind
/// takes the active and the standby in turn, and its every fifth is sent
/// from outside, whatever the number of kinds in the mix). Poisons and
/// floods go over OSC to `osc` from `client` (which hears the `/error`
/// replies).
pub fn inflict(
    engine: &Engine,
    n: usize,
    round: usize,
    action: Action,
    client: &UdpSocket,
    osc: SocketAddr,
) -> Result<(), String> {
    let target = if round.is_multiple_of(2) { Target::Active } else { Target::Standby };
    let status = engine.status();
    match action {
        Action::Worker(kind) if round % 5 == 4 => {
            // From outside, as an operator or the OOM killer would.
            let pid = if target == Target::Active { status.active_pid } else { status.standby_pid };
            let pid = pid.ok_or("no worker to kill")?;
            if kind == FaultKind::Stop {
                kill(engine, "-STOP", kind, &[pid])
            } else {
                kill(engine, "-KILL", FaultKind::Kill, &[pid])
            }
        }
        Action::Worker(kind) => engine.inject(target, kind).map(|_| ()).map_err(|e| e.to_string()),
        Action::DoubleKill => {
            let pids = [status.active_pid, status.standby_pid];
            let [Some(a), Some(b)] = pids else { return Err("no two replicas to kill".into()) };
            kill(engine, "-KILL", FaultKind::Kill, &[a, b])
        }
        Action::Poison(kind) => {
            // Tagged with the fault number: each is a new command (an
            // identical one is refused once the first was cut out).
            let tag = OscType::Int(n as i32);
            let bytes = message("/test/poison", vec![OscType::String(kind.into()), tag]);
            client.send_to(&bytes, osc).map(|_| ()).map_err(|e| format!("sending the poison: {e}"))
        }
        Action::Flood => {
            for k in 0..FLOOD {
                let value = OscType::Float(400.0 + (k % 4_000) as f32);
                let bytes = message("/set", vec![OscType::String("cutoff".into()), value]);
                client.send_to(&bytes, osc).map_err(|e| format!("flooding: {e}"))?;
            }
            Ok(())
        }
    }
}

/// `/error` replies that told `client` a command of its was cut out.
pub fn cut_replies(client: &UdpSocket) -> u64 {
    let mut buf = [0u8; 4_096];
    let mut n = 0;
    while let Ok((len, _)) = client.recv_from(&mut buf) {
        if let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..len])
            && m.addr == "/error"
            && m.args
                .first()
                .is_some_and(|a| matches!(a, OscType::String(s) if s.contains("cut out as a poison")))
        {
            n += 1;
        }
    }
    n
}
