//! The soak report: verdict, REPORT.json, REPORT.md, SVG plots.

use std::path::Path;
use std::time::Duration;

use chronus::supervisor::{FailoverSummary, RunReport};
use serde::Serialize;

use super::resources::Sample;
use super::svg::{Series, line_chart};

/// Largest RSS growth of the supervisor allowed over a soak, KiB.
const RSS_GROWTH_LIMIT_KIB: i64 = 1_024;

/// What the soak observed.
pub struct Inputs<'a> {
    pub run: &'a RunReport,
    pub samples: &'a [Sample],
    pub timeline: &'a [(f64, String)],
    pub faults: usize,
    pub deferred: u64,
    pub fault_errors: &'a [String],
    pub leftovers: &'a [u32],
    pub osc_errors: u64,
    pub duration: Duration,
    pub rate: f64,
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
    resources: &'a [Sample],
    health_timeline: Vec<HealthChange<'a>>,
}

/// Judges the run and writes the report files.
pub fn write(dir: &Path, i: &Inputs<'_>) -> std::io::Result<Verdict> {
    let summary = FailoverSummary::of(i.run);
    // Start: after warm-up (2 s in, before the first fault); end: the last
    // sample, after the last recovery.
    let start = i.samples.iter().find(|s| s.t >= 1.5).or(i.samples.first());
    let end = i.samples.last();
    let rss_growth = match (start, end) {
        (Some(a), Some(b)) => b.rss_kib as i64 - a.rss_kib as i64,
        _ => 0,
    };
    let mut reasons = Vec::new();
    if summary.lost_frames > 0 {
        reasons.push(format!("{} frames lost", summary.lost_frames));
    }
    // A soak passes only with no underrun at all, whoever caused it; frames
    // the machine did not let the output play are named as such.
    if summary.machine_stall_frames > 0 {
        reasons.push(format!(
            "{} underrun frames in {} machine stall(s): the output thread itself was held off past the \
             device buffer (the machine did not keep real time; no worker was at fault)",
            summary.machine_stall_frames, summary.machine_stalls
        ));
    }
    if !summary.bit_exact {
        reasons.push(format!(
            "not bit-exact outside machine stalls (first difference at frame {:?})",
            summary.first_difference
        ));
    }
    if summary.unjoined > 0 {
        reasons.push(format!("{} replacements never joined", summary.unjoined));
    }
    if summary.faults != i.faults {
        reasons.push(format!("{} failovers for {} faults", summary.faults, i.faults));
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
    if summary.supervisor_stalls > 0 {
        reason.push_str(&format!(
            " (the supervisor was held off {} time(s) and excused the workers)",
            summary.supervisor_stalls
        ));
    }
    let verdict = if pass { "PASS" } else { "FAIL" };
    let line = format!(
        "{verdict}: {:.0} s, {} faults, lost frames {}, underruns {}, bit-exact {}, RSS growth {rss_growth} KiB{}",
        summary.seconds_played,
        summary.faults,
        summary.lost_frames,
        summary.underruns,
        if summary.bit_exact { "yes" } else { "NO" },
        if pass && summary.supervisor_stalls == 0 { String::new() } else { format!(" — {reason}") }
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
         | played | {:.0} s |\n| faults | {} ({}) |\n| lost frames | {} |\n| underruns | {} |\n| of which machine stalls | {} |\n\
         | bit-exact with the journal's render (machine stalls left out) | {} |\n| replacements not joined | {} |\n\
         | RSS growth | {rss_growth} KiB |\n| OSC errors | {} |\n| faults deferred (waiting for health) | {} |\n\n\
         ## Failover latencies (µs)\n\n{}\n\
         ## Resources\n\n| | start | end |\n|---|---:|---:|\n",
        summary.seconds_played,
        summary.faults,
        summary.fault_kinds.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
        summary.lost_frames,
        summary.underruns,
        summary.machine_stall_frames,
        if summary.bit_exact { "yes" } else { "no" },
        summary.unjoined,
        i.osc_errors,
        i.deferred,
        summary.markdown_table(),
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
