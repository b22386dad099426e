//! `chronus play --sink jack`: the engine as a native JACK client, with
//! MIDI in.

use std::time::Instant;

use chronus::audio::{CallbackInfo, DeviceRender, JackConfig, JackConnect, JackServer};
use chronus::supervisor::OutputEngine;
use chronus::synth::MidiMap;

/// JACK flags of `chronus play`.
#[derive(Debug, Default, clap::Args)]
pub struct JackArgs {
    /// JACK client name (its ports: NAME:out_1, NAME:out_2, NAME:midi_in).
    #[arg(long, default_value = "chronus", value_name = "NAME")]
    pub jack_name: String,
    /// Connect out_1 and out_2 to these ports (repeatable; default: the
    /// first two physical playback ports).
    #[arg(long, value_name = "PORT")]
    pub jack_connect: Vec<String>,
    /// Leave the output ports unconnected.
    #[arg(long, conflicts_with = "jack_connect")]
    pub no_jack_connect: bool,
    /// Take MIDI from a JACK MIDI input port NAME:midi_in (notes, sustain,
    /// pitch bend, controllers: see docs/midi.md).
    #[arg(long)]
    pub midi: bool,
}

impl JackArgs {
    /// The client's configuration.
    pub fn config(&self) -> JackConfig {
        let connect = if self.no_jack_connect {
            JackConnect::None
        } else if self.jack_connect.is_empty() {
            JackConnect::System
        } else {
            JackConnect::Ports(self.jack_connect.clone())
        };
        JackConfig { name: self.jack_name.clone(), connect, midi: self.midi }
    }
}

/// The engine's output driven from the JACK process callback: MIDI of the
/// cycle queued at its frames, then the cycle's frames copied out of the
/// workers' rings. It never waits.
pub struct JackDriver {
    output: OutputEngine,
    midi: MidiMap,
}

impl JackDriver {
    /// Drives `output`.
    pub fn new(output: OutputEngine) -> Self {
        Self { output, midi: MidiMap::new() }
    }
}

impl DeviceRender for JackDriver {
    fn prepare(&mut self, period: u32) {
        self.output.set_steady_period(period);
    }

    fn midi(&mut self, offset: u32, bytes: &[u8]) {
        let output = &mut self.output;
        self.midi.translate(bytes, &mut |command| {
            output.queue_event(command.to_event(), offset);
        });
    }

    fn render(&mut self, left: &mut [f32], right: &mut [f32], info: &CallbackInfo) {
        self.output.set_output_time(info.output_time_ns);
        self.output.device_gap(info.xrun_frames);
        self.output.process(left, right, Some(Instant::now()));
    }
}

/// Connects to the running JACK server (never starts one).
pub fn connect(args: &JackArgs) -> Result<JackServer, chronus::audio::JackError> {
    JackServer::connect(&args.jack_name)
}
