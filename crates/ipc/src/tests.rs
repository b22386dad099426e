//! In-process tests of the rings and the attach checks (both ends in one
//! process, over a real memfd mapping).

use std::sync::atomic::Ordering::Relaxed;

use chronus_dsp::{Command, CommandSource, Param, TimedCommand};

use crate::layout::Geometry;
use crate::*;

fn geometry() -> Geometry {
    Geometry {
        sample_rate: 48_000,
        channels: 2,
        audio_frames: 256,
        command_slots: 16,
        max_block: 64,
        voices: 8,
    }
}

fn note(frame: u64, voice: u32) -> TimedCommand {
    TimedCommand { frame, command: Command::NoteOn { voice, freq: 100.0 + frame as f32, amp: 0.5 } }
}

#[test]
fn audio_ring_wraps_around_and_refuses_to_overfill() {
    let region = Region::create(geometry(), 1).unwrap();
    let mut w = AudioWriter::new(&region);
    let mut r = AudioReader::new(&region);
    let mut next_expected = 0u64;
    let (mut l, mut rr) = (vec![0.0; 100], vec![0.0; 100]);
    for round in 0..50u64 {
        // Fill the ring completely (256 frames), in odd-sized writes.
        while w.space() > 0 {
            let n = w.space().min(37) as usize;
            let start = w.write_frame();
            let left: Vec<f32> = (0..n).map(|i| (start + i as u64) as f32).collect();
            let right: Vec<f32> = left.iter().map(|x| -x).collect();
            w.write(&left, &right).unwrap();
        }
        assert_eq!(w.write(&[1.0], &[1.0]), Err(1), "a full ring must refuse, round {round}");
        // Drain 100 frames and check every one.
        r.read(&mut l, &mut rr).unwrap();
        for (i, (a, b)) in l.iter().zip(&rr).enumerate() {
            assert_eq!(*a, (next_expected + i as u64) as f32);
            assert_eq!(*b, -*a);
        }
        next_expected += 100;
        // Reading past what was written is refused and consumes nothing.
        let (read, write) = r.span();
        assert!(r.copy_frames(write - 1, &mut [0.0; 2], &mut [0.0; 2]).is_err());
        assert_eq!(r.span(), (read, write));
    }
    assert!(next_expected > 4 * 256, "the test must wrap several times");
}

#[test]
fn audio_reader_never_hands_out_non_finite_samples() {
    let region = Region::create(geometry(), 1).unwrap();
    let mut w = AudioWriter::new(&region);
    w.write(&[f32::NAN, 1.0], &[f32::INFINITY, 2.0]).unwrap();
    let mut r = AudioReader::new(&region);
    let (mut l, mut rr) = ([9.0; 2], [9.0; 2]);
    r.read(&mut l, &mut rr).unwrap();
    assert_eq!((l, rr), ([0.0, 1.0], [0.0, 2.0]));
    assert_eq!(r.corrupt_samples(), 2);
}

#[test]
fn command_ring_is_fifo_full_hands_back_and_wraps() {
    let region = Region::create(geometry(), 3).unwrap();
    let mut w = CommandWriter::new(&region);
    let mut r = CommandReader::new(&region);
    let mut sent = 0u64;
    let mut got = 0u64;
    for _ in 0..20 {
        while w.space() > 0 {
            w.push(note(sent, (sent % 8) as u32)).unwrap();
            sent += 1;
        }
        let extra = note(sent, 0);
        assert_eq!(w.push(extra), Err(Full(extra)));
        // Only commands before the bound come out; the rest wait.
        let bound = got + 5;
        while let Some(c) = r.next_before(bound) {
            assert_eq!(c, note(got, (got % 8) as u32));
            got += 1;
        }
        assert_eq!(r.peek(), Slot::Command(note(got, (got % 8) as u32)));
    }
    assert!(sent > 16 * 4);
}

#[test]
fn zeroed_garbage_and_stale_slots_never_read_as_commands() {
    // Fresh region: all zero.
    let region = Region::create(geometry(), 7).unwrap();
    let r = CommandReader::new(&region);
    assert_eq!(r.peek(), Slot::Empty);

    // Garbage everywhere, including stamps.
    let mut x = 0x1234_5678_9abc_def0u64;
    for slot in region.command_slots() {
        for word in [&slot.stamp, &slot.frame] {
            x = command_ring::mix(x + 1);
            word.store(x, Relaxed);
        }
        for word in [&slot.op, &slot.voice, &slot.a, &slot.b, &slot.check] {
            x = command_ring::mix(x + 1);
            word.store(x as u32, Relaxed);
        }
    }
    let mut r = CommandReader::new(&region);
    assert_eq!(r.peek(), Slot::Empty);
    assert_eq!(r.next_before(u64::MAX), None);

    // Slots written by the previous generation (a stale region reused).
    let old = Region::create(geometry(), 6).unwrap();
    let mut w = CommandWriter::new(&old);
    for i in 0..16 {
        w.push(note(i, 1)).unwrap();
    }
    for (dst, src) in region.command_slots().iter().zip(old.command_slots()) {
        dst.stamp.store(src.stamp.load(Relaxed), Relaxed);
        dst.frame.store(src.frame.load(Relaxed), Relaxed);
        dst.op.store(src.op.load(Relaxed), Relaxed);
        dst.voice.store(src.voice.load(Relaxed), Relaxed);
        dst.a.store(src.a.load(Relaxed), Relaxed);
        dst.b.store(src.b.load(Relaxed), Relaxed);
        dst.check.store(src.check.load(Relaxed), Relaxed);
    }
    let mut r = CommandReader::new(&region);
    assert_eq!(r.next_before(u64::MAX), None);

    // A right stamp over a torn payload is caught by the checksum.
    let mut w = CommandWriter::new(&region);
    w.push(note(5, 1)).unwrap();
    region.command_slots()[0].voice.store(2, Relaxed);
    assert_eq!(r.peek(), Slot::Corrupt);
    assert_eq!(r.next_before(u64::MAX), None);
    assert_eq!(r.corrupt(), 1);
}

#[test]
fn a_stop_request_is_tied_to_its_generation() {
    let region = Region::create(geometry(), 4).unwrap();
    assert!(!region.stop_requested());
    region.control().stop.store(stop_token(3), Relaxed);
    assert!(!region.stop_requested());
    region.request_stop();
    assert!(region.stop_requested());
    assert_ne!(stop_token(0), 0);
}

#[test]
fn attach_checks_generation_magic_version_and_seal() {
    use std::os::fd::AsFd;
    let region = Region::create(geometry(), 9).unwrap();
    let dup = || region.fd().as_fd().try_clone_to_owned().unwrap();
    assert!(Region::attach(dup(), 9).is_ok());
    assert!(matches!(Region::attach(dup(), 8), Err(IpcError::GenerationMismatch { found: 9, expected: 8 })));

    // An unsealed, zeroed memfd of the right size: refused.
    let raw = nix::sys::memfd::memfd_create("t", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
    nix::unistd::ftruncate(&raw, 1 << 20).unwrap();
    assert!(matches!(Region::attach(raw, 9), Err(IpcError::BufCorrupt(_))));

    // A sealed one full of zeros: bad magic.
    let zeros = sys::sealed_memfd("t", 1 << 20).unwrap();
    assert!(matches!(Region::attach(zeros, 0), Err(IpcError::BadMagic(0))));

    // Too small for a header.
    let tiny = sys::sealed_memfd("t", 16).unwrap();
    assert!(matches!(Region::attach(tiny, 0), Err(IpcError::BufTooSmall { .. })));
    let _ = Param::Q;
}

#[test]
fn reset_makes_a_region_new_for_the_next_generation() {
    use std::os::fd::AsFd;
    let region = Region::create(geometry(), 1).unwrap();
    let mut w = CommandWriter::new(&region);
    w.push(note(3, 1)).unwrap();
    AudioWriter::new(&region).write(&[1.0; 10], &[1.0; 10]).unwrap();
    region.request_stop();
    region.reset(2);
    assert_eq!(region.generation(), 2);
    assert!(!region.stop_requested());
    assert_eq!(AudioReader::new(&region).span(), (0, 0));
    assert_eq!(CommandReader::new(&region).peek(), Slot::Empty);
    let fd = region.fd().as_fd().try_clone_to_owned().unwrap();
    assert!(matches!(Region::attach(fd, 1), Err(IpcError::GenerationMismatch { found: 2, .. })));
    let fd = region.fd().as_fd().try_clone_to_owned().unwrap();
    assert!(Region::attach(fd, 2).is_ok());
}

#[test]
fn snapshots_travel_through_shared_memory() {
    use chronus_dsp::{Synth, SynthConfig};
    let config = SynthConfig::new(48_000, 8);
    let region = Region::create(geometry(), 1).unwrap();
    let mut synth = Synth::new(config).unwrap();
    synth.apply(&Command::NoteOn { voice: 3, freq: 300.0, amp: 0.5 }).unwrap();
    let (mut l, mut r) = (vec![0.0; 500], vec![0.0; 500]);
    synth.render(&mut l, &mut r);
    let mut bufs = SnapshotBuffers::for_config(config).unwrap();
    bufs.store(&synth, &region).unwrap();
    let other = Region::create(geometry(), 2).unwrap();
    copy_snapshot(&region, &other);
    let mut fresh = Synth::new(config).unwrap();
    assert_eq!(bufs.load(&mut fresh, &other).unwrap(), 500);
    let (mut l2, mut r2) = (vec![0.0; 500], vec![0.0; 500]);
    synth.render(&mut l, &mut r);
    fresh.render(&mut l2, &mut r2);
    assert_eq!(l, l2);
    assert_eq!(r, r2);
}

#[test]
fn checksums_are_read_back_only_for_their_block() {
    let region = Region::create(geometry(), 1).unwrap();
    region.publish_checksum(5, 99);
    assert_eq!(region.checksum(5), Some(99));
    assert_eq!(region.checksum(5 + 64), None);
    region.publish_checksum(5 + 64, 7);
    assert_eq!(region.checksum(5), None);
}
