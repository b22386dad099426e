//! Samples of this process's resources (and its worker children) from /proc.

use serde::Serialize;

/// One sample.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// Seconds since the soak started.
    pub t: f64,
    /// Resident memory of the supervisor process, KiB.
    pub rss_kib: u64,
    /// Open fds of the supervisor process.
    pub fds: usize,
    /// Threads of the supervisor process.
    pub threads: usize,
    /// Child processes (workers).
    pub processes: usize,
    /// Children that are zombies (exited, not reaped).
    pub zombies: usize,
    /// CPU of the supervisor process since the last sample, % of one core.
    pub cpu_supervisor_pct: f64,
    /// CPU of the workers alive at both samples, % of one core.
    pub cpu_workers_pct: f64,
    /// Health at the sample.
    pub health: String,
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Pids of this process's children.
pub fn children() -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

/// (state, utime + stime in clock ticks) of a process.
fn stat(pid: &str) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    Some((f.first()?.chars().next()?, f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?))
}

/// Takes samples, keeping what it needs to turn CPU ticks into percentages.
#[derive(Debug, Default)]
pub struct Sampler {
    last: Option<(f64, u64, std::collections::HashMap<u32, u64>)>,
}

impl Sampler {
    /// A sample at `t` seconds with the engine's `health`.
    pub fn sample(&mut self, t: f64, health: String) -> Sample {
        let kids = children();
        let mut zombies = 0;
        let mut ticks = std::collections::HashMap::new();
        for pid in &kids {
            if let Some((state, cpu)) = stat(&pid.to_string()) {
                zombies += usize::from(state == 'Z');
                ticks.insert(*pid, cpu);
            }
        }
        let own = stat("self").map_or(0, |(_, c)| c);
        let hz = 100.0; // USER_HZ on Linux
        let (cpu_supervisor_pct, cpu_workers_pct) = match &self.last {
            Some((t0, own0, kids0)) if t > *t0 => {
                let dt = t - t0;
                let workers: u64 =
                    ticks.iter().filter_map(|(p, c)| kids0.get(p).map(|c0| c.saturating_sub(*c0))).sum();
                (own.saturating_sub(*own0) as f64 / hz / dt * 100.0, workers as f64 / hz / dt * 100.0)
            }
            _ => (0.0, 0.0),
        };
        self.last = Some((t, own, ticks));
        Sample {
            t,
            rss_kib: rss_kib(),
            fds: count("/proc/self/fd"),
            threads: count("/proc/self/task"),
            processes: kids.len(),
            zombies,
            cpu_supervisor_pct,
            cpu_workers_pct,
            health,
        }
    }
}
