//! The soak report: verdict, REPORT.json, REPORT.md, SVG plots.

use std::path::Path;
use std::time::Duration;

use chronus::harness::FailoverSummary;
use chronus::supervisor::RunReport;
use serde::Serialize;

use super::actions::Action;
use super::noise::Noise;
use super::resources::Sample;
use super::svg::{Series, line_chart};

/// Largest RSS growth of the supervisor allowed over a soak, KiB.
const RSS_GROWTH_LIMIT_KIB: i64 = 1_024;
/// Most frames of machine stalls a soak may excuse, as a share of the
/// frames played (0.2%: 1.2 s in 10 minutes), each stall evidenced by the
/// noise probe.
const STALL_EXCUSE_SHARE: f64 = 0.002;
/// A machine stall is evidenced when the noise probe was at least this
/// late (ms) within [`STALL_EVIDENCE_WINDOW_S`] of it.
const STALL_EVIDENCE_MS: f64 = 4.0;
/// See [`STALL_EVIDENCE_MS`].
const STALL_EVIDENCE_WINDOW_S: f64 = 0.5;

/// What was inflicted, by kind, and what the engine did about it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    /// Faults inflicted, by kind.
    pub by_kind: std::collections::BTreeMap<String, u64>,
    /// Failover events they must cause.
    pub expected_failovers: u64,
    /// Poisons sent.
    pub poisons: u64,
    /// Commands the engine cut out.
    pub cuts: u64,
    /// `/error` replies telling the soak's client of a cut.
    pub cut_replies: u64,
    /// Times the engine reported overload.
    pub overloads: u64,
}

impl Tally {
    /// Counts one inflicted action.
    pub fn add(&mut self, action: Action) {
        *self.by_kind.entry(action.name()).or_insert(0) += 1;
        self.expected_failovers += action.failovers();
        self.poisons += u64::from(action.cuts());
    }
}

/// What the soak observed.
pub struct Inputs<'a> {
    pub run: &'a RunReport,
    /// The streamed bit-exact check's outcome (`verify_files`, as played:
    /// lost frames are accounted for apart).
    pub first_difference: Option<u64>,
    /// Frames of the hang poisons that were cut out.
    pub hang_poisons: &'a [u64],
    /// Frames a hang poison may cost: its detection time.
    pub hang_detection: u64,
    pub samples: &'a [Sample],
    pub timeline: &'a [(f64, String)],
    pub faults: usize,
    pub deferred: u64,
    pub fault_errors: &'a [String],
    pub leftovers: &'a [u32],
    pub osc_errors: u64,
    pub duration: Duration,
    pub rate: f64,
    pub tally: &'a Tally,
    pub noise: &'a Noise,
    /// The kernel's floor for crash detection (kill → pidfd of an idle
    /// process), sampled before each fault, µs.
    pub kill_floor_us: Option<chronus::supervisor::Percentiles>,
    /// In the cycle (`--latency low`): a block is heard as soon as it is
    /// rendered, before any vote can come.
    pub in_cycle: bool,
}

/// PASS or FAIL, and a one-line account.
pub struct Verdict {
    pub pass: bool,
    pub line: String,
}

#[derive(Serialize)]
struct HealthChange<'a> {
    t: f64,
    health: &'a str,
}

#[derive(Serialize)]
struct Json<'a> {
    verdict: &'a str,
    reason: String,
    duration_s: f64,
    rate_per_s: f64,
    #[serde(flatten)]
    summary: &'a FailoverSummary,
    /// Times a due fault waited for a verified standby.
    faults_deferred_waiting_for_health: u64,
    fault_errors: &'a [String],
    osc_errors: u64,
    rss_growth_kib: i64,
    resources_start: Option<&'a Sample>,
    resources_end: Option<&'a Sample>,
    leftover_workers: &'a [u32],
    inflicted: &'a Tally,
    machine_noise: &'a Noise,
    machine_stalls_evidenced: usize,
    /// Frames lost to hang poisons (within their detection time each).
    frames_lost_to_hang_poisons: u64,
    resources: &'a [Sample],
    health_timeline: Vec<HealthChange<'a>>,
}

/// Adds `what` to the excuses already made.
fn reasons_excused(excused: &mut Option<String>, what: String) {
    *excused = Some(match excused.take() {
        Some(e) => format!("{e}; {what}"),
        None => what,
    });
}

/// Judges the run and writes the report files.
pub fn write(dir: &Path, i: &Inputs<'_>) -> std::io::Result<Verdict> {
    let mut summary = FailoverSummary::with_first_difference(i.run, i.first_difference);
    summary.kill_floor_us = i.kill_floor_us;
    // Start: after warm-up (2 s in, before the first fault); end: the last
    // sample, after the last recovery.
    let start = i.samples.iter().find(|s| s.t >= 1.5).or(i.samples.first());
    let end = i.samples.last();
    let rss_growth = match (start, end) {
        (Some(a), Some(b)) => b.rss_kib as i64 - a.rss_kib as i64,
        _ => 0,
    };
    let mut reasons = Vec::new();
    // Frames lost are Chronus's fault, but for what a hang poison costs
    // (up to its detection time, right after it).
    let mut excused_by = vec![0u64; i.hang_poisons.len()];
    for gap in &i.run.notes.gaps {
        let hang = i.hang_poisons.iter().position(|&h| (h..h + i.hang_detection).contains(&gap.first));
        if let Some(k) = hang {
            excused_by[k] += gap.frames;
        }
    }
    let hang_losses: u64 = excused_by.iter().map(|&f| f.min(i.hang_detection)).sum();
    let lost = summary.lost_frames.saturating_sub(hang_losses);
    if lost > 0 {
        reasons.push(format!("{lost} frames lost"));
    }
    // Frames the machine did not let the output play are excused only with
    // evidence (the noise probe, at the output's priority, was late at that
    // moment too) and within a bound; the rest fail the soak.
    let sr = f64::from(i.run.setup.sample_rate.max(1));
    let stalls = &i.run.notes.stalls;
    let evidenced = stalls
        .iter()
        .filter(|st| i.noise.late_near(st.first as f64 / sr, STALL_EVIDENCE_WINDOW_S, STALL_EVIDENCE_MS))
        .count();
    let bound = (summary.seconds_played * sr * STALL_EXCUSE_SHARE) as u64;
    let mut excused = None;
    if summary.machine_stall_frames > 0 {
        let what = format!(
            "{} underrun frames in {} machine stall(s) (the output thread itself was held off past the device \
             buffer; the noise probe was late by ≥ {STALL_EVIDENCE_MS} ms at {evidenced} of them, up to {:.1} ms)",
            summary.machine_stall_frames,
            stalls.len(),
            i.noise.max_ms
        );
        if evidenced == stalls.len() && summary.machine_stall_frames <= bound {
            excused = Some(format!("excused: {what}"));
        } else {
            reasons
                .push(format!("{what}; excusable only if every one is evidenced and at most {bound} frames"));
        }
    }
    // A diverged active's wrong audio heard: pipelined, the vote has the
    // lead to come first, and a wrong frame heard is a failure unless the
    // machine stalled right then (evidenced as above). In the cycle it is
    // heard before any vote can come: counted and journaled, not a failure.
    let wrong = &i.run.notes.wrong;
    if !i.in_cycle && !wrong.is_empty() {
        let evidenced = wrong
            .iter()
            .filter(|w| i.noise.late_near(w.first as f64 / sr, STALL_EVIDENCE_WINDOW_S, STALL_EVIDENCE_MS))
            .count();
        let frames: u64 = wrong.iter().map(|w| w.frames).sum();
        let what = format!(
            "{frames} frames of an outvoted active's wrong audio played in {} span(s) (journaled as @wrong)",
            wrong.len()
        );
        if evidenced == wrong.len() {
            reasons_excused(&mut excused, format!("excused: {what}, each in a machine stall the probe saw"));
        } else {
            reasons.push(format!("{what}; the vote had the lead to come first"));
        }
    }
    if i.tally.cuts != i.tally.poisons {
        reasons.push(format!("{} poison(s) sent, {} command(s) cut out", i.tally.poisons, i.tally.cuts));
    }
    if i.tally.cut_replies != i.tally.poisons {
        reasons.push(format!(
            "{} poison(s) sent, {} sender(s) told of a cut",
            i.tally.poisons, i.tally.cut_replies
        ));
    }
    if !summary.bit_exact {
        reasons.push(format!(
            "the recording is not the journal's render as played (first difference at frame {:?})",
            summary.first_difference
        ));
    }
    if summary.unjoined > 0 {
        reasons.push(format!("{} replacements never joined", summary.unjoined));
    }
    if summary.faults as u64 != i.tally.expected_failovers {
        reasons.push(format!(
            "{} failovers for {} faults (which take down {} workers)",
            summary.faults, i.faults, i.tally.expected_failovers
        ));
    }
    if let (Some(a), Some(b)) = (start, end) {
        if (a.fds, a.threads, a.processes) != (b.fds, b.threads, b.processes) {
            reasons.push(format!(
                "resources not back to start: fds {}→{}, threads {}→{}, processes {}→{}",
                a.fds, b.fds, a.threads, b.threads, a.processes, b.processes
            ));
        }
        if b.zombies > 0 {
            reasons.push(format!("{} zombie workers", b.zombies));
        }
    }
    if rss_growth >= RSS_GROWTH_LIMIT_KIB {
        reasons.push(format!("RSS grew {rss_growth} KiB (limit {RSS_GROWTH_LIMIT_KIB})"));
    }
    if !i.leftovers.is_empty() {
        reasons.push(format!("workers left after shutdown: {:?}", i.leftovers));
    }
    if !i.fault_errors.is_empty() {
        reasons.push(format!(
            "{} fault(s) not inflicted or not noticed: {}",
            i.fault_errors.len(),
            i.fault_errors.join("; ")
        ));
    }
    if i.faults == 0 {
        reasons.push("no fault was inflicted".into());
    }
    let pass = reasons.is_empty();
    let mut reason = if pass { "all checks passed".to_owned() } else { reasons.join("; ") };
    if let Some(excused) = &excused {
        reason.push_str(&format!(" ({excused})"));
    }
    if summary.supervisor_stalls > 0 {
        reason.push_str(&format!(
            " (the supervisor was held off {} time(s) and excused the workers)",
            summary.supervisor_stalls
        ));
    }
    if summary.starved_workers > 0 {
        reason.push_str(&format!(
            " (the watchdog found {} stalled worker(s) starved of CPU, not hung, and spared them)",
            summary.starved_workers
        ));
    }
    let verdict = if pass { "PASS" } else { "FAIL" };
    let line = format!(
        "{verdict}: {:.0} s, {} faults, lost frames {lost}{}, underruns {}, bit-exact {}, RSS growth {rss_growth} KiB{}",
        summary.seconds_played,
        i.faults,
        if hang_losses > 0 {
            format!(" (+{hang_losses} to hang poisons, within their detection)")
        } else {
            String::new()
        },
        summary.underruns,
        if summary.bit_exact { "yes" } else { "NO" },
        if pass && summary.supervisor_stalls == 0 && summary.starved_workers == 0 && excused.is_none() {
            String::new()
        } else {
            format!(" — {reason}")
        }
    );
    let json = Json {
        verdict,
        reason: reason.clone(),
        duration_s: i.duration.as_secs_f64(),
        rate_per_s: i.rate,
        summary: &summary,
        faults_deferred_waiting_for_health: i.deferred,
        fault_errors: i.fault_errors,
        osc_errors: i.osc_errors,
        rss_growth_kib: rss_growth,
        resources_start: start,
        resources_end: end,
        leftover_workers: i.leftovers,
        inflicted: i.tally,
        machine_noise: i.noise,
        machine_stalls_evidenced: evidenced,
        frames_lost_to_hang_poisons: hang_losses,
        resources: i.samples,
        health_timeline: i.timeline.iter().map(|(t, h)| HealthChange { t: *t, health: h }).collect(),
    };
    std::fs::write(
        dir.join("REPORT.json"),
        serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?,
    )?;

    let mut md = format!(
        "# Chronus soak: {verdict}\n\n{reason}\n\n\
         | | |\n|---|---|\n\
         | played | {:.0} s |\n| faults inflicted | {} |\n| failovers | {} ({}) |\n| lost frames | {} (of which {hang_losses} to hang poisons, each within its detection time) |\n| underruns | {} |\n| of which machine stalls | {} |\n\
         | recording = the journal's render as played | {} |\n| replacements not joined | {} |\n\
         | RSS growth | {rss_growth} KiB |\n| OSC errors | {} |\n| faults deferred (waiting for health) | {} |\n\
         | commands cut out as poisons (senders told) | {} ({}) |\n| overloads | {} |\n\
         | supervisor held off (workers excused) | {} |\n| stalled workers found starved of CPU (spared) | {} |\n\
         | workers the sandbox killed, by forbidden call | {} |\n\n\
         ## The machine's own noise\n\n\
         A probe thread at the output's priority{} woke every millisecond: {} wake-ups, {} of them at least {STALL_EVIDENCE_MS} ms late, the latest {:.2} ms late.\n\n\
         | lateness | wake-ups |\n|---|---:|\n{}\n\
         ## Failover latencies (µs)\n\n{}\n\
         ## Resources\n\n| | start | end |\n|---|---:|---:|\n",
        summary.seconds_played,
        i.tally.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
        summary.faults,
        summary.fault_kinds.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
        summary.lost_frames,
        summary.underruns,
        summary.machine_stall_frames,
        if summary.bit_exact { "yes" } else { "no" },
        summary.unjoined,
        i.osc_errors,
        i.deferred,
        i.tally.cuts,
        i.tally.cut_replies,
        i.tally.overloads,
        summary.supervisor_stalls,
        summary.starved_workers,
        if summary.sandbox_kills.is_empty() {
            "none".to_owned()
        } else {
            summary.sandbox_kills.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
        },
        if i.noise.realtime { " (SCHED_FIFO)" } else { " (no real-time priority)" },
        i.noise.wakeups,
        i.noise.late_count(STALL_EVIDENCE_MS),
        i.noise.max_ms,
        Noise::labels()
            .iter()
            .zip(i.noise.histogram)
            .map(|(l, n)| format!("| {l} | {n} |\n"))
            .collect::<String>(),
        {
            let mut t = summary.markdown_table();
            if let Some(r) = summary.detection_over_floor() {
                t.push_str(&format!(
                    "\nCrash detection p50 = {r:.2} × the kernel's floor (kill → pidfd of an idle process, sampled \
                     before each fault).\n"
                ));
            }
            if let Some(n) = summary.divergence_note() {
                t.push_str(&format!("\n{n}.\n"));
            }
            t
        },
    );
    if let (Some(a), Some(b)) = (start, end) {
        for (name, x, y) in [
            ("RSS (KiB)", a.rss_kib as f64, b.rss_kib as f64),
            ("fds", a.fds as f64, b.fds as f64),
            ("threads", a.threads as f64, b.threads as f64),
            ("worker processes", a.processes as f64, b.processes as f64),
            ("zombies", a.zombies as f64, b.zombies as f64),
        ] {
            md.push_str(&format!("| {name} | {x} | {y} |\n"));
        }
    }
    md.push_str("\n![failover latencies](failover.svg)\n\n![resources](resources.svg)\n");
    std::fs::write(dir.join("REPORT.md"), md)?;

    let ms = |f: fn(&chronus::supervisor::FailoverEvent) -> Option<f64>| -> Vec<(f64, f64)> {
        i.run
            .failovers
            .iter()
            .enumerate()
            .filter_map(|(n, e)| f(e).map(|v| (n as f64, v / 1_000.0)))
            .collect()
    };
    let failover = line_chart(
        "Failover latency per fault",
        "fault #",
        "ms after the fault",
        &[
            Series { name: "detection", color: "#d62728", points: ms(|e| Some(e.detection_us())) },
            Series { name: "switch", color: "#ff7f0e", points: ms(|e| Some(e.switch_us())) },
            Series { name: "respawn", color: "#2ca02c", points: ms(|e| e.respawn_us()) },
            Series { name: "rejoin", color: "#1f77b4", points: ms(|e| e.rejoin_us()) },
        ],
    );
    std::fs::write(dir.join("failover.svg"), failover)?;
    let series =
        |f: fn(&Sample) -> f64| -> Vec<(f64, f64)> { i.samples.iter().map(|s| (s.t, f(s))).collect() };
    let resources = line_chart(
        "Supervisor resources over time",
        "seconds",
        "RSS (MiB) / fds / threads",
        &[
            Series { name: "RSS (MiB)", color: "#1f77b4", points: series(|s| s.rss_kib as f64 / 1024.0) },
            Series { name: "fds", color: "#2ca02c", points: series(|s| s.fds as f64) },
            Series { name: "threads", color: "#ff7f0e", points: series(|s| s.threads as f64) },
        ],
    );
    std::fs::write(dir.join("resources.svg"), resources)?;
    Ok(Verdict { pass, line })
}
