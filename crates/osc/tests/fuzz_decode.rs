//! Property tests of the OSC decoding and validation path (bounded, so they
//! run in CI): hostile, truncated, oversized and mutated packets never make
//! it panic, and every refusal says why.

use chronus_dsp::{DspSpec, Setup};
use chronus_osc::{Item, Target, decode_packet};
use chronus_synth::{Synth, SynthConfig};
use proptest::prelude::*;
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType, encoder};

fn messages(p: &OscPacket) -> usize {
    match p {
        OscPacket::Message(_) => 1,
        OscPacket::Bundle(b) => b.content.iter().map(messages).sum(),
    }
}

fn check(bytes: &[u8]) {
    let spec = DspSpec::new::<Synth>(SynthConfig::new(64)).unwrap();
    let target = Target {
        spec: &spec,
        setup: Setup { sample_rate: 48_000, block: 256 },
        faults_enabled: true,
        files: &chronus_dsp::NoFiles,
    };
    let decoded = decode_packet(bytes, &target);
    if decoded.items.is_empty() {
        // Only a legal bundle with no message in it may yield nothing.
        let (_, packet) = rosc::decoder::decode_udp(bytes).expect("undecodable bytes must yield an error");
        assert_eq!(messages(&packet), 0, "messages were dropped silently");
    }
    for item in decoded.items {
        if let Item::Error(_, message) = item {
            assert!(!message.is_empty());
        }
    }
}

fn arb_arg() -> impl Strategy<Value = OscType> {
    prop_oneof![
        any::<i32>().prop_map(OscType::Int),
        any::<f32>().prop_map(OscType::Float),
        any::<f64>().prop_map(OscType::Double),
        any::<i64>().prop_map(OscType::Long),
        "[a-z]{0,12}".prop_map(OscType::String),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(OscType::Blob),
        Just(OscType::Nil),
        any::<bool>().prop_map(OscType::Bool),
    ]
}

fn arb_address() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/note_on".to_owned()),
        Just("/note_off".to_owned()),
        Just("/set".to_owned()),
        Just("/voice/set".to_owned()),
        Just("/status".to_owned()),
        "/[a-z/]{0,20}",
    ]
}

fn arb_message() -> impl Strategy<Value = OscPacket> {
    (arb_address(), prop::collection::vec(arb_arg(), 0..5))
        .prop_map(|(addr, args)| OscPacket::Message(OscMessage { addr, args }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2_048)) {
        check(&bytes);
    }

    #[test]
    fn well_formed_messages_with_any_arguments_never_panic(packet in arb_message()) {
        check(&encoder::encode(&packet).unwrap());
    }

    #[test]
    fn mutated_and_truncated_packets_never_panic(
        packets in prop::collection::vec(arb_message(), 1..4),
        secs in any::<u32>(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
    ) {
        let bundle = OscPacket::Bundle(OscBundle { timetag: OscTime::from((secs, 0)), content: packets });
        let mut bytes = encoder::encode(&bundle).unwrap();
        for (at, value) in flips {
            let len = bytes.len();
            bytes[at % len] = value;
        }
        let cut = cut % (bytes.len() + 1);
        check(&bytes[..cut]);
        check(&bytes);
    }
}
