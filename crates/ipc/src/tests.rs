//! In-process tests of the rings, the log, snapshots and the attach checks
//! (both ends in one process, over real memfd mappings).

use std::sync::atomic::Ordering::Relaxed;

use chronus_dsp::Event;

use crate::layout::Geometry;
use crate::*;

fn geometry() -> Geometry {
    Geometry {
        sample_rate: 48_000,
        block: 64,
        audio_frames: 256,
        log_slots: 16,
        snapshot_bytes: 1_003,
        checkpoints: 2,
        excise_slots: 4,
        config_bytes: 0,
        _pad: 0,
    }
}

fn bus() -> Bus {
    Bus::create(geometry(), 7, "test-dsp/1", "{\"voices\":8}", true).unwrap()
}

fn event(i: u64) -> Event {
    Event::new((i % 5) as u16).with_int(i as i32).with_float(i as f32 * 0.5)
}

#[test]
fn audio_ring_wraps_around_and_refuses_to_overfill() {
    let region = WorkerRegion::create(geometry(), 7, 1).unwrap();
    let mut w = AudioWriter::new(&region);
    let mut r = AudioReader::new(&region);
    let mut next_expected = 0u64;
    let (mut l, mut rr) = (vec![0.0; 100], vec![0.0; 100]);
    for round in 0..50u64 {
        while w.space() > 0 {
            let n = w.space().min(37) as usize;
            let start = w.write_frame();
            let left: Vec<f32> = (0..n).map(|i| (start + i as u64) as f32).collect();
            let right: Vec<f32> = left.iter().map(|x| -x).collect();
            w.write(&left, &right).unwrap();
        }
        assert_eq!(w.write(&[1.0], &[1.0]), Err(1), "a full ring must refuse, round {round}");
        r.read(&mut l, &mut rr).unwrap();
        for (i, (a, b)) in l.iter().zip(&rr).enumerate() {
            assert_eq!(*a, (next_expected + i as u64) as f32);
            assert_eq!(*b, -*a);
        }
        next_expected += 100;
        let (read, write) = r.span();
        assert!(r.copy_frames(write - 1, &mut [0.0; 2], &mut [0.0; 2]).is_err());
        assert_eq!(r.span(), (read, write));
        // Consumed frames can still be looked at until overwritten.
        let (mut a, mut b) = ([0.0f32; 4], [0.0f32; 4]);
        r.copy_recent(read - 4, &mut a, &mut b).unwrap();
        assert_eq!(a[3], (read - 1) as f32);
        if write > 257 {
            assert!(r.copy_recent(write - 257, &mut a, &mut b).is_err(), "overwritten frames");
        }
    }
    assert!(next_expected > 4 * 256, "the test must wrap several times");
}

#[test]
fn audio_reader_never_hands_out_non_finite_samples() {
    let region = WorkerRegion::create(geometry(), 7, 1).unwrap();
    let mut w = AudioWriter::new(&region);
    w.write(&[f32::NAN, 1.0], &[f32::INFINITY, 2.0]).unwrap();
    let mut r = AudioReader::new(&region);
    let (mut l, mut rr) = ([9.0; 2], [9.0; 2]);
    r.read(&mut l, &mut rr).unwrap();
    assert_eq!((l, rr), ([0.0, 1.0], [0.0, 2.0]));
    assert_eq!(r.corrupt_samples(), 2);
}

#[test]
fn the_log_is_fifo_keeps_what_readers_need_and_wraps() {
    let bus = bus();
    let mut w = LogWriter::new(&bus);
    let mut r = LogReader::new(&bus, 0);
    let (mut sent, mut got) = (0u64, 0u64);
    for _ in 0..20 {
        // The reader's position is what must be kept.
        while w.space(r.seq()) > 0 {
            w.push(sent, event(sent), r.seq()).unwrap();
            sent += 1;
        }
        assert!(matches!(w.push(0, event(0), r.seq()), Err(Full(_))), "a full log hands the event back");
        for _ in 0..7 {
            match r.peek() {
                LogEntry::Event(seq, e) => {
                    assert_eq!((seq, e.frame, e.event), (got, got, event(got)));
                    r.advance();
                    got += 1;
                }
                other => panic!("expected event {got}, got {other:?}"),
            }
        }
    }
    assert!(sent > 3 * 16, "the test must wrap several times");
    // A reader the writer went a whole lap past is told so.
    let behind = LogReader::new(&bus, 0);
    assert_eq!(behind.peek(), LogEntry::Lapped);
    // Past what was written: empty.
    assert_eq!(LogReader::new(&bus, sent).peek(), LogEntry::Empty);
}

#[test]
fn zeroed_stale_foreign_and_corrupt_slots_never_read_as_events() {
    let bus = bus();
    // Nothing written: every slot is zero.
    assert_eq!(LogReader::new(&bus, 0).peek(), LogEntry::Empty);
    // A log of another engine run, with the same layout: its events are
    // not ours (stamps carry the epoch).
    let other = Bus::create(geometry(), 8, "test-dsp/1", "{}", false).unwrap();
    let mut w = LogWriter::new(&other);
    w.push(0, event(0), 0).unwrap();
    for (a, b) in bus.log_slots().iter().zip(other.log_slots()) {
        a.stamp.store(b.stamp.load(Relaxed), Relaxed);
        a.frame.store(b.frame.load(Relaxed), Relaxed);
        a.head.store(b.head.load(Relaxed), Relaxed);
    }
    assert_eq!(LogReader::new(&bus, 0).peek(), LogEntry::Empty);
    // Our own event with its payload changed after the fact: corrupt.
    let mut w = LogWriter::new(&bus);
    w.push(5, event(3), 0).unwrap();
    bus.log_slots()[0].args[1].store(0xdead_beef, Relaxed);
    assert_eq!(LogReader::new(&bus, 0).peek(), LogEntry::Corrupt);
}

#[test]
fn snapshots_go_through_a_checkpoint_bit_for_bit_and_torn_ones_are_refused() {
    let bus = bus();
    let region = WorkerRegion::create(geometry(), 7, 1).unwrap();
    let bytes: Vec<u8> = (0..1_003u32).map(|i| (i * 7 + 3) as u8).collect();
    let info = region.write_snapshot(512, 99, &bytes).unwrap();
    assert_eq!(region.snapshot_info(), Some(info));
    assert_eq!(bus.store_checkpoint(1, &region).unwrap(), info);
    assert_eq!(bus.checkpoint_info(1), Some(info));
    let mut out = vec![0u8; 1_003];
    assert_eq!(bus.read_checkpoint(1, &mut out).unwrap(), info);
    assert_eq!(out, bytes);
    // The wrong length, or a slot never written, is refused.
    assert!(bus.read_checkpoint(1, &mut [0u8; 8]).is_err());
    assert!(bus.read_checkpoint(0, &mut out).is_err());
    // A word changed behind the hash's back: refused.
    bus.checkpoint(1).unwrap().1[3].fetch_xor(1, Relaxed);
    assert_eq!(bus.read_checkpoint(1, &mut out), Err(StartError::TornCheckpoint));
    // A snapshot too large for the area is refused before anything is written.
    assert!(region.write_snapshot(0, 0, &[0u8; 2_000]).is_err());
    bus.invalidate_checkpoint(1);
    assert_eq!(bus.checkpoint_info(1), None);
}

#[test]
fn start_and_snapshot_requests_are_answered_once() {
    let region = WorkerRegion::create(geometry(), 7, 3).unwrap();
    assert_eq!(region.pending_start(), None);
    let id = region.request_start(StartKind::Fresh, 1_024, 17, 0);
    let req = region.pending_start().unwrap();
    assert_eq!((req.id, req.kind, req.frame, req.log_seq), (id, Some(StartKind::Fresh), 1_024, 17));
    assert_eq!(region.audio_write_frame(), 1_024, "the ring starts where the worker starts");
    assert_eq!(region.start_outcome(id), None);
    region.start_finished(id, Some(StartError::Refused));
    assert_eq!(region.start_outcome(id), Some(Err(StartError::Refused as u32)));
    assert_eq!(region.pending_start(), None);
    let snap = region.request_snapshot(300);
    assert_eq!(region.pending_snapshot(), Some((snap, 300)));
    region.snapshot_written(snap);
    assert!(region.snapshot_done(snap) && region.pending_snapshot().is_none());
}

#[test]
fn stop_tokens_belong_to_one_generation() {
    let region = WorkerRegion::create(geometry(), 7, 3).unwrap();
    assert!(!region.stop_requested(), "a zeroed region is not a stop request");
    region.request_stop();
    assert!(region.stop_requested());
    region.reset(4);
    assert!(!region.stop_requested(), "a reset region carries no stop");
    assert_ne!(stop_token(3), stop_token(4));
}

#[test]
fn excisions_are_kept_in_order_and_bounded() {
    let bus = bus();
    assert!(!bus.is_excised(5));
    assert!(bus.excise(5) && bus.excise(9));
    assert!(!bus.excise(7), "excisions come in increasing order");
    assert!(bus.is_excised(5) && bus.is_excised(9) && !bus.is_excised(7));
    assert!(bus.excise(10) && bus.excise(11));
    assert!(!bus.excise(12), "the table is full");
    assert_eq!(bus.excised_count(), 4);
}

#[test]
fn attach_checks_the_header_and_the_bus_is_read_only_for_workers() {
    let bus = bus();
    let fd = bus.read_only_fd().unwrap();
    let dup = |fd: &std::os::fd::OwnedFd| fd.try_clone().unwrap();
    let seen = Bus::attach(dup(&fd), 7).unwrap();
    assert_eq!((seen.dsp_name(), seen.config_json()), ("test-dsp/1", "{\"voices\":8}"));
    assert!(Bus::attach(dup(&fd), 8).is_err(), "another engine run");
    // The read-only fd cannot be mapped writable, whatever a worker tries.
    assert!(memmap2::MmapOptions::new().len(4_096).map_raw(&fd).is_err());
    let region = WorkerRegion::create(geometry(), 7, 5).unwrap();
    let rfd = || chronus_sys::memfd::reopen_read_write(region.fd()).unwrap();
    assert!(matches!(WorkerRegion::attach(rfd(), 7, 6), Err(IpcError::GenerationMismatch { .. })));
    assert!(WorkerRegion::attach(rfd(), 9, 5).is_err());
    assert!(WorkerRegion::attach(rfd(), 7, 5).is_ok());
    assert!(WorkerRegion::attach(dup(&fd), 7, 0).is_err(), "a bus is not a worker region");
}

#[test]
fn the_bus_is_sealed_against_writes_by_any_fd_and_an_unsealed_one_is_refused() {
    let bus = bus();
    let seals = chronus_sys::memfd::seals(bus.fd()).unwrap();
    assert!(seals.shrink && seals.writes, "the bus must be sealed against shrinking and writes");
    // Even a read-write reopening (what a worker could do through /proc)
    // cannot be mapped writable or written; the supervisor's own mapping
    // still writes.
    let rw = chronus_sys::memfd::reopen_read_write(bus.fd()).unwrap();
    assert!(memmap2::MmapOptions::new().len(4_096).map_raw(&rw).is_err());
    assert!(nix::unistd::write(&rw, b"x").is_err());
    bus.publish_render_limit(256);
    assert_eq!(bus.render_limit(), 256);
    // A worker region is read-write for its worker: not write-sealed, so it
    // cannot pass for a region others only read.
    let region = WorkerRegion::create(geometry(), 7, 5).unwrap();
    assert!(!chronus_sys::memfd::seals(region.fd()).unwrap().writes);
    let as_read_only = mapping::Mapping::attach(
        chronus_sys::memfd::reopen_read_write(region.fd()).unwrap(),
        layout::RegionKind::Worker,
        7,
        5,
        false,
    );
    assert!(matches!(as_read_only, Err(IpcError::BufCorrupt(m)) if m.contains("not sealed against writes")));
}
