//! Your own DSP under Chronus's failover: a Karplus–Strong plucked-string
//! instrument (delay lines — long state a snapshot must carry), played for a
//! few seconds through the paced sink while its active worker is SIGKILLed
//! three times. It uses only the public API and not the built-in synth.
//!
//! Run: `cargo run --release --example karplus`
//!
//! The last line is the verdict the run measured: `frames lost: 0,
//! bit-exact: yes` when every frame was played and the recording equals the
//! offline render of the journal; otherwise what differed (exit 1).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chronus::dsp::{
    AddressSpec, ArgSpec, Block, Dsp, DspError, DspSpec, DspStats, Event, Piece, Setup, TimedEvent,
};
use chronus::harness::{FailoverSummary, play_looped};
use chronus::supervisor::{Engine, EngineConfig, PacedSink, Status, Target};
use chronus::worker::WorkerCommand;

/// How many strings, and the lowest note they can play.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct KarplusConfig {
    strings: u32,
    lowest_hz: f32,
}

/// Event index of `/pluck i:string f:freq_hz f:amp`.
const PLUCK: u16 = 0;
/// Event index of `/sustain f:amount` (0 short … 1 long).
const SUSTAIN: u16 = 1;

/// One string: a delay line whose length sets the pitch, averaged (a
/// low-pass) and damped on every pass.
#[derive(Clone)]
struct KString {
    line: Vec<f32>,
    len: usize,
    pos: usize,
}

/// The instrument. Everything that shapes future output is here, and goes
/// into the snapshot: every delay line, its length and position, the
/// damping, and the noise generator's state.
struct Karplus {
    strings: Vec<KString>,
    max_len: usize,
    sample_rate: f32,
    damping: f32,
    noise: u32,
    stats: DspStats,
}

const MAGIC: u32 = u32::from_le_bytes(*b"KPS1");

impl Karplus {
    /// A white-noise sample in [-1, 1) from the generator in the state
    /// (never from anything outside it: that would break determinism).
    fn noise(&mut self) -> f32 {
        self.noise = self.noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.noise >> 8) as f32 / 8_388_608.0 - 1.0
    }

    fn apply(&mut self, e: &Event) {
        match e.address {
            PLUCK => {
                let (s, freq, amp) = (e.int(0) as usize, e.float(1), e.float(2).clamp(0.0, 1.0));
                let Some(len) =
                    self.strings.get(s).map(|_| (self.sample_rate / freq.max(1.0)).round() as usize)
                else {
                    self.stats.rejected += 1;
                    return;
                };
                let len = len.clamp(2, self.max_len);
                for i in 0..len {
                    let x = self.noise() * amp;
                    self.strings[s].line[i] = x;
                }
                let string = &mut self.strings[s];
                string.len = len;
                string.pos = 0;
                self.stats.applied += 1;
            }
            SUSTAIN => {
                self.damping = 0.990 + 0.0099 * e.float(0).clamp(0.0, 1.0);
                self.stats.applied += 1;
            }
            _ => self.stats.rejected += 1,
        }
    }

    fn run(&mut self, left: &mut [f32], right: &mut [f32]) {
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let mut sum = 0.0f32;
            for s in &mut self.strings {
                let a = s.line[s.pos];
                let b = s.line[(s.pos + 1) % s.len];
                let y = self.damping * 0.5 * (a + b);
                // Never let the state become denormal (slow, but the same in
                // every process either way).
                s.line[s.pos] = if y.abs() < 1.0e-20 { 0.0 } else { y };
                s.pos = (s.pos + 1) % s.len;
                sum += a;
            }
            let out = (sum * 0.3).clamp(-1.0, 1.0);
            *l = out;
            *r = out;
        }
    }
}

fn put(out: &mut [u8], at: &mut usize, word: u32) {
    out[*at..*at + 4].copy_from_slice(&word.to_le_bytes());
    *at += 4;
}

fn get(bytes: &[u8], at: &mut usize) -> u32 {
    let w = u32::from_le_bytes([bytes[*at], bytes[*at + 1], bytes[*at + 2], bytes[*at + 3]]);
    *at += 4;
    w
}

impl Dsp for Karplus {
    type Config = KarplusConfig;
    const NAME: &'static str = "example-karplus/1";

    fn addresses(config: &KarplusConfig) -> Vec<AddressSpec> {
        vec![
            AddressSpec::new(
                "/pluck",
                vec![
                    ArgSpec::int("string", 0, i64::from(config.strings) - 1),
                    ArgSpec::float("freq_hz", (config.lowest_hz, 4_000.0), "Hz"),
                    ArgSpec::float("amp", (0.0, 1.0), "linear"),
                ],
                "pluck a string",
            ),
            AddressSpec::new(
                "/sustain",
                vec![ArgSpec::float("amount", (0.0, 1.0), "0 short … 1 long")],
                "how long notes ring",
            )
            .superseded_by_equal(&[]),
        ]
    }

    fn prepare(setup: &Setup, config: &KarplusConfig) -> Result<Self, DspError> {
        if config.strings == 0 || config.strings > 64 || config.lowest_hz.is_nan() || config.lowest_hz < 10.0
        {
            return Err(DspError::InvalidConfig("1..=64 strings, lowest note ≥ 10 Hz".into()));
        }
        let max_len = (setup.sample_rate as f32 / config.lowest_hz).ceil() as usize + 1;
        Ok(Self {
            strings: vec![
                KString { line: vec![0.0; max_len], len: max_len, pos: 0 };
                config.strings as usize
            ],
            max_len,
            sample_rate: setup.sample_rate as f32,
            damping: 0.996,
            noise: 0x1234_5678,
            stats: DspStats::default(),
        })
    }

    fn snapshot_len(&self) -> usize {
        4 * (3 + self.strings.len() * (2 + self.max_len))
    }

    fn render(&mut self, block: Block<'_>) {
        block.split(|piece| match piece {
            Piece::Event(e) => self.apply(e),
            Piece::Audio { left, right, .. } => self.run(left, right),
        });
        self.stats.active = self.strings.iter().filter(|s| s.line[s.pos].abs() > 1.0e-4).count() as u32;
    }

    fn snapshot(&self, out: &mut [u8]) {
        let mut at = 0;
        for w in [MAGIC, self.damping.to_bits(), self.noise] {
            put(out, &mut at, w);
        }
        for s in &self.strings {
            put(out, &mut at, s.len as u32);
            put(out, &mut at, s.pos as u32);
            for x in &s.line {
                put(out, &mut at, x.to_bits());
            }
        }
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), DspError> {
        let bad = |why: &'static str| Err(DspError::BadSnapshot(why.into()));
        if bytes.len() != self.snapshot_len() {
            return bad("wrong length");
        }
        let mut at = 0;
        let (magic, damping, noise) =
            (get(bytes, &mut at), f32::from_bits(get(bytes, &mut at)), get(bytes, &mut at));
        if magic != MAGIC || !(0.98..1.0).contains(&damping) {
            return bad("not a snapshot of this instrument");
        }
        // Check everything before changing anything.
        let mut check = at;
        for _ in 0..self.strings.len() {
            let (len, pos) = (get(bytes, &mut check) as usize, get(bytes, &mut check) as usize);
            if !(2..=self.max_len).contains(&len) || pos >= len {
                return bad("a string's length or position is out of range");
            }
            for _ in 0..self.max_len {
                if !f32::from_bits(get(bytes, &mut check)).is_finite() {
                    return bad("a non-finite sample");
                }
            }
        }
        (self.damping, self.noise) = (damping, noise);
        for s in &mut self.strings {
            (s.len, s.pos) = (get(bytes, &mut at) as usize, get(bytes, &mut at) as usize);
            for x in &mut s.line {
                *x = f32::from_bits(get(bytes, &mut at));
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        for s in &mut self.strings {
            s.line.fill(0.0);
            (s.len, s.pos) = (self.max_len, 0);
        }
        (self.damping, self.noise, self.stats) = (0.996, 0x1234_5678, DspStats::default());
    }

    fn stats(&self) -> DspStats {
        self.stats
    }
}

/// A few bars of plucks: an arpeggio over four chords, looped.
fn tune(spec: &DspSpec, setup: &Setup) -> Result<(Vec<TimedEvent>, u64), Box<dyn std::error::Error>> {
    let chords: [[f32; 4]; 4] = [
        [110.0, 164.81, 220.0, 277.18],
        [98.0, 146.83, 196.0, 246.94],
        [87.31, 130.81, 174.61, 220.0],
        [82.41, 123.47, 164.81, 207.65],
    ];
    let mut events = Vec::new();
    let step = u64::from(setup.sample_rate) / 8;
    let mut frame = 0;
    for chord in chords {
        for (k, freq) in chord.iter().chain(chord.iter().rev()).enumerate() {
            let mut out = Vec::new();
            let args = [
                chronus::dsp::Arg::Int(k as i64 % 6),
                chronus::dsp::Arg::Float(*freq),
                chronus::dsp::Arg::Float(0.8),
            ];
            spec.parse(setup, "/pluck", &args, &chronus::dsp::NoFiles, &mut out)?;
            events.extend(out.into_iter().map(|event| TimedEvent { frame, event }));
            frame += step;
        }
    }
    Ok((events, frame))
}

fn verified_standby(s: &Status) -> bool {
    s.standby_pid.is_some() && s.joining_pid.is_none()
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let spec = DspSpec::new::<Karplus>(KarplusConfig { strings: 6, lowest_hz: 40.0 })?;
    let mut config = EngineConfig::new(spec.clone(), WorkerCommand::current_exe()?);
    config.record_in_memory = true;
    let setup = config.setup();
    let engine = Engine::start(config, PacedSink::new(setup.sample_rate))?;
    let (events, length) = tune(&spec, &setup)?;
    println!("karplus: {} strings playing through the paced sink; SIGKILLing the active worker 3 times", 6);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| -> Result<(), Box<dyn std::error::Error>> {
        s.spawn(|| play_looped(&engine, &events, length, &stop));
        for n in 1..=3 {
            std::thread::sleep(Duration::from_millis(900));
            engine
                .wait_for(Duration::from_secs(5), verified_standby)
                .map_err(|s| format!("no standby: {s:?}"))?;
            let pid = engine.signal(Target::Active, libc::SIGKILL)?;
            engine.wait_for(Duration::from_secs(5), |s| s.failovers >= n).map_err(|s| format!("{s:?}"))?;
            println!("kill {n}: SIGKILLed the active worker (pid {pid}); playing on from the standby");
        }
        engine
            .wait_for(Duration::from_secs(5), verified_standby)
            .map_err(|s| format!("no standby: {s:?}"))?;
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;
    engine.fade_out();
    let report = engine.stop()?;
    let summary = FailoverSummary::of(&report);
    for e in &report.failovers {
        println!(
            "  worker {} {}: detected in {:.0} µs, standby in lockstep again after {:.1} ms",
            e.pid,
            e.exit,
            e.detection_us(),
            e.rejoin_us().unwrap_or(f64::NAN) / 1_000.0
        );
    }
    if let Some(note) = summary.stall_note() {
        println!("note: {note}");
    }
    let ok = summary.lost_frames == 0 && summary.bit_exact && summary.faults == 3;
    if ok {
        println!("frames lost: 0, bit-exact: yes");
    } else {
        println!(
            "frames lost: {}, bit-exact: {} (first difference at frame {:?}), faults handled: {}",
            summary.lost_frames,
            if summary.bit_exact { "yes" } else { "NO" },
            summary.first_difference,
            summary.faults
        );
    }
    Ok(ok)
}

fn main() -> ExitCode {
    // The engine runs this program as its workers: there, this never returns.
    chronus::worker::init::<Karplus>();
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("karplus: {e}");
            ExitCode::from(2)
        }
    }
}
