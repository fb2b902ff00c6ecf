//! The validate report: per point, the simulator's and the runtime's [`Measures`] side by side
//! and the prediction's error on each; over the grid, the error's median and maximum.

use crate::grid::Point;
use crate::measures::Measures;
use crate::validate::RunFacts;
use serde::Serialize;

/// Schema id of [`ValidateReport`] in JSON.
pub const SCHEMA: &str = "hypura.validate/1";

/// A whole validate run.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    pub schema: &'static str,
    pub hypura_version: &'static str,
    pub model: String,
    pub profile: String,
    pub trace: Option<String>,
    pub prompt_len: usize,
    pub tokens: usize,
    pub warmup: u32,
    /// Runs per point.
    pub repeats: u32,
    pub points: Vec<PointReport>,
    pub summary: ErrorSummary,
}

/// One configuration.
#[derive(Debug, Clone, Serialize)]
pub struct PointReport {
    pub label: String,
    pub ram_bytes: Option<u64>,
    pub gpu_bytes: Option<u64>,
    pub policy: &'static str,
    pub prefetch: &'static str,
    /// The queue depth both sides used (the grid's, else the plan's).
    pub queue_depth: u32,
    /// The plan's mode (resident, streaming, ...) and what the solver predicted for it.
    pub plan_mode: String,
    pub plan_tok_per_s: f64,
    pub expert_cache_bytes: u64,
    pub sim: Measures,
    pub run: Measures,
    pub run_facts: RunFacts,
    /// Decode tok/s of every timed run of the point, in order; `run`'s speeds are the median
    /// one's.
    pub run_decode_tok_per_s: Vec<f64>,
    pub errors: Errors,
}

/// The prediction's error: relative ones are sim / run − 1 (positive: the simulator is
/// optimistic); `None` where a side has no value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Errors {
    pub decode_tok_per_s: Option<f64>,
    pub prefill_tok_per_s: Option<f64>,
    /// Simulated minus measured decode hit rate (0 when the policies agree exactly).
    pub hit_rate: Option<f64>,
    pub bytes_per_token: Option<f64>,
    /// Simulated minus measured share of decode time waiting for storage.
    pub io_wait_share: Option<f64>,
    /// Storage rate while busy, simulated over measured: the device the profile describes
    /// against the one the run met.
    pub storage_gbps: Option<f64>,
    /// Decode hits and uses identical on both sides.
    pub hits_equal: bool,
    /// Decode bytes read identical on both sides.
    pub bytes_equal: bool,
}

impl Errors {
    pub fn between(sim: &Measures, run: &Measures) -> Errors {
        let rel = |s: Option<f64>, r: Option<f64>| match (s, r) {
            (Some(s), Some(r)) if r > 0.0 => Some(s / r - 1.0),
            (Some(s), Some(r)) if r == 0.0 && s == 0.0 => Some(0.0),
            _ => None,
        };
        let diff = |s: Option<f64>, r: Option<f64>| Some(s? - r?);
        Errors {
            decode_tok_per_s: rel(sim.decode_tok_per_s, run.decode_tok_per_s),
            prefill_tok_per_s: rel(sim.prefill_tok_per_s, run.prefill_tok_per_s),
            hit_rate: diff(sim.hit_rate(), run.hit_rate()),
            bytes_per_token: rel(sim.bytes_per_token(), run.bytes_per_token()),
            io_wait_share: diff(sim.io_wait_share, run.io_wait_share),
            storage_gbps: rel(sim.storage_gbps, run.storage_gbps),
            hits_equal: (sim.decode_hits, sim.decode_uses) == (run.decode_hits, run.decode_uses),
            bytes_equal: sim.decode_bytes_read == run.decode_bytes_read,
        }
    }
}

/// Median and largest absolute error over the points that have one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorSummary {
    pub points: usize,
    pub decode_median_abs: Option<f64>,
    pub decode_max_abs: Option<f64>,
    pub prefill_median_abs: Option<f64>,
    pub prefill_max_abs: Option<f64>,
    pub bytes_max_abs: Option<f64>,
    /// Points whose decode hits and uses are identical on both sides.
    pub hits_equal: usize,
}

impl ErrorSummary {
    pub fn of(points: &[PointReport]) -> ErrorSummary {
        let stat = |f: fn(&Errors) -> Option<f64>| {
            let mut v: Vec<f64> = points
                .iter()
                .filter_map(|p| f(&p.errors))
                .map(f64::abs)
                .collect();
            v.sort_by(f64::total_cmp);
            (median(&v), v.last().copied())
        };
        let (decode_median_abs, decode_max_abs) = stat(|e| e.decode_tok_per_s);
        let (prefill_median_abs, prefill_max_abs) = stat(|e| e.prefill_tok_per_s);
        let (_, bytes_max_abs) = stat(|e| e.bytes_per_token);
        ErrorSummary {
            points: points.len(),
            decode_median_abs,
            decode_max_abs,
            prefill_median_abs,
            prefill_max_abs,
            bytes_max_abs,
            hits_equal: points.iter().filter(|p| p.errors.hits_equal).count(),
        }
    }
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

impl PointReport {
    pub fn new(
        point: &Point,
        queue_depth: u32,
        plan: &plan::Plan,
        sim: Measures,
        run: Measures,
        run_facts: RunFacts,
        run_decode_tok_per_s: Vec<f64>,
    ) -> PointReport {
        // With no routed expert on NVMe the runtime has no expert cache and records no
        // accesses; the simulator's all-hit counts are dropped so both sides say "n/a".
        let mut sim = sim;
        if !plan.experts.iter().any(|e| !e.nvme.is_empty()) {
            sim.decode_hits = 0;
            sim.decode_uses = 0;
            sim.prefill_hits = 0;
            sim.prefill_uses = 0;
        }
        PointReport {
            label: point.label(),
            ram_bytes: point.ram_bytes,
            gpu_bytes: point.gpu_bytes,
            policy: point.policy_name(),
            prefetch: point.prefetch.name(),
            queue_depth,
            plan_mode: plan.mode.name().to_string(),
            plan_tok_per_s: plan.prediction.tok_per_s,
            expert_cache_bytes: plan.expert_cache.bytes,
            errors: Errors::between(&sim, &run),
            sim,
            run,
            run_facts,
            run_decode_tok_per_s,
        }
    }
}

/// The report as a fixed-width table, one row per point.
pub fn render(r: &ValidateReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:+.1}%", x * 100.0));
    let num = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
    let rate = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:.2}%", x * 100.0));
    let mb = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:.2}", x / 1e6));
    let share = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:.0}%", x * 100.0));
    let gbps = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}"));
    let _ = writeln!(
        s,
        "{:<44} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>7} | {:>7} {:>7} {:>5} | {:>8} {:>8} {:>7} | {:>5} {:>5} | {:>8} {:>8}",
        "point", "sim tok/s", "run tok/s", "err", "sim pp/s", "run pp/s", "err", "sim hit", "run hit",
        "same", "sim MB/t", "run MB/t", "err", "sim io", "run io", "sim GB/s", "run GB/s"
    );
    for p in &r.points {
        let _ = writeln!(
            s,
            "{:<44} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>7} | {:>7} {:>7} {:>5} | {:>8} {:>8} {:>7} | {:>5} {:>5} | {:>8} {:>8}",
            p.label,
            num(p.sim.decode_tok_per_s),
            num(p.run.decode_tok_per_s),
            pct(p.errors.decode_tok_per_s),
            num(p.sim.prefill_tok_per_s),
            num(p.run.prefill_tok_per_s),
            pct(p.errors.prefill_tok_per_s),
            rate(p.sim.hit_rate()),
            rate(p.run.hit_rate()),
            if p.errors.hits_equal { "yes" } else { "NO" },
            mb(p.sim.bytes_per_token()),
            mb(p.run.bytes_per_token()),
            pct(p.errors.bytes_per_token),
            share(p.sim.io_wait_share),
            share(p.run.io_wait_share),
            gbps(p.sim.storage_gbps),
            gbps(p.run.storage_gbps),
        );
    }
    let e = &r.summary;
    let _ = writeln!(
        s,
        "\n{} points; decode tok/s error: median {}, max {}; prefill: median {}, max {}; \
         bytes/token max {}; hits identical in {} of {}",
        e.points,
        abs_pct(e.decode_median_abs),
        abs_pct(e.decode_max_abs),
        abs_pct(e.prefill_median_abs),
        abs_pct(e.prefill_max_abs),
        abs_pct(e.bytes_max_abs),
        e.hits_equal,
        e.points
    );
    if r.repeats > 1 {
        let _ = writeln!(
            s,
            "each point ran {} times; the run with the median decode speed is compared (every \
             run's speed: run_decode_tok_per_s in report.json)",
            r.repeats
        );
    }
    s
}

fn abs_pct(x: Option<f64>) -> String {
    x.map_or("-".to_string(), |x| format!("{:.1}%", x * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, 2.0, 9.0]), Some(2.0));
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), Some(3.0));
    }
}
