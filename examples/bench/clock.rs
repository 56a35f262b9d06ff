//! The time a measured stretch took: wall-clock, and the CPU time of the thread that ran it.
//!
//! On a machine shared with other work the wall-clock time of a CPU-bound stretch includes the
//! time the thread waited for a core; its CPU time does not. Workloads that are CPU-bound in
//! this process (the in-memory ones, SQLite's, the micro-benchmarks) print both: a `RESULT`
//! line (wall-clock) and a `CPU` line (events per second of the thread's CPU time). With a
//! server backend the server's work is not in the CPU time: read the `RESULT` lines.

use std::time::Duration;

/// When a stretch started, on both clocks.
#[derive(Clone, Copy, Debug)]
pub struct Instant {
    wall: std::time::Instant,
    cpu_ns: Option<u64>,
}

impl Instant {
    /// Now, on both clocks.
    pub fn now() -> Self {
        Instant {
            cpu_ns: thread_cpu_ns(),
            wall: std::time::Instant::now(),
        }
    }

    /// Wall-clock time since then.
    pub fn elapsed(&self) -> Duration {
        self.wall.elapsed()
    }

    /// Seconds of this thread's CPU time since then (`None` where the system does not say).
    pub fn cpu_secs(&self) -> Option<f64> {
        let (then, now) = (self.cpu_ns?, thread_cpu_ns()?);
        Some(now.saturating_sub(then) as f64 / 1e9)
    }
}

/// Nanoseconds the calling thread has run on a CPU (Linux's `/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Prints the `RESULT` line of a stretch of `count` events, and its `CPU` line.
pub fn report(workload: &str, backend: &str, count: usize, started: Instant) {
    let s = started.elapsed().as_secs_f64();
    println!(
        "RESULT {workload} {backend} {count} {s:.6} {:.1}",
        count as f64 / s
    );
    if let Some(c) = started.cpu_secs().filter(|c| *c > 0.0) {
        println!(
            "CPU {workload} {backend} {count} {c:.6} {:.1}",
            count as f64 / c
        );
    }
}
