//! The shipped examples run and say what they must: `karplus` (a DSP of
//! one's own, killed three times) ends with the verdict it measured,
//! `nondeterministic` is caught and exits non-zero, and `sandboxed` (a DSP
//! that reads a file inside a render) loses both replicas to SIGSYS, has the
//! command cut out, plays on, and is named by the check. The test builds them
//! (a no-op when `cargo test` already has).

use crate::util::rt_lock;
use std::path::PathBuf;
use std::process::Command;

/// Builds example `name` (debug, like the tests) and returns its path.
fn example(name: &str) -> PathBuf {
    let built = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(built.success(), "cargo build --example {name}");
    let deps = std::env::current_exe().unwrap();
    let profile = deps.parent().and_then(|p| p.parent()).unwrap();
    profile.join("examples").join(name)
}

#[test]
fn karplus_survives_three_kills_and_says_so_on_its_last_line() {
    let _rt = rt_lock();
    let out = Command::new(example("karplus")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("kill ")).count(), 3, "{stdout}");
    assert_eq!(stdout.lines().last(), Some("frames lost: 0, bit-exact: yes"), "{stdout}");
}

#[test]
fn nondeterministic_is_caught_and_exits_non_zero() {
    let _rt = rt_lock();
    let out = Command::new(example("nondeterministic")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("not deterministic"), "{stdout}");
    assert!(stdout.contains("two worker processes differ from frame 0"), "{stdout}");
}

#[test]
fn sandboxed_dies_of_sigsys_in_both_replicas_and_plays_on() {
    let _rt = rt_lock();
    let out = Command::new(example("sandboxed")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let killed =
        stdout.lines().filter(|l| l.contains("killed by SIGSYS (forbidden system call openat)")).count();
    assert_eq!(killed, 2, "{stdout}");
    assert!(stdout.contains("the check: openat"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("frames lost: 0, bit-exact: yes, the tone plays on: yes"),
        "{stdout}"
    );
}
