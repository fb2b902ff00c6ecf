//! `hypura bench`: hypura's run of a plan against plain llama.cpp on the same prompt, under the
//! same memory pressure, as llama-bench reports a model (prompt and generation tok/s, median and
//! spread over repetitions) plus what decides a model larger than memory: peak RSS, bytes read
//! from storage per generated token, time to first token, and whether both sides generated the
//! same greedy tokens, the disk's speed measured before each run with the bound it sets, and the
//! simulator's prediction of hypura's runs. The CLI runs the sides; this module holds the
//! samples, the statistics, the memory balloon, the prediction and the report.

use crate::grid::Point;
use crate::measures::Measures;
use crate::validate::{self, Setup, ValidateError};
use serde::Serialize;

/// The report's schema id.
pub const BENCH_SCHEMA: &str = "hypura.bench/1";

/// Memory plain llama.cpp needs besides the weights before its mmap would thrash: the baseline
/// is refused above RAM minus this (unless forced).
pub const BASELINE_MARGIN_BYTES: u64 = 4 << 30;

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub prompt_tok_per_s: f64,
    pub decode_tok_per_s: f64,
    /// Seconds from the prompt's start to the first generated token.
    pub ttft_s: f64,
    pub peak_rss_bytes: Option<u64>,
    /// Bytes the kernel read from storage per decode step.
    pub read_bytes_per_token: Option<f64>,
    pub tokens: Vec<i32>,
    /// The disk's uncached read rate measured just before the run, GB/s (a shared disk drifts
    /// within minutes); `None` when not measured.
    pub disk_gbps: Option<f64>,
}

impl Sample {
    /// The decode tok/s the disk allows at the bytes this run read per token (the disk's rate
    /// over them); `None` without both, or for a run that read nothing.
    pub fn disk_bound_tok_per_s(&self) -> Option<f64> {
        match (self.disk_gbps, self.read_bytes_per_token) {
            (Some(g), Some(b)) if b > 0.0 => Some(g * 1e9 / b),
            _ => None,
        }
    }

    /// A sample from `hypura run --json` output (plain or planned).
    pub fn from_run_json(v: &serde_json::Value) -> Result<Sample, String> {
        let f = |k: &str| {
            v[k].as_f64()
                .ok_or_else(|| format!("the run's JSON has no number {k:?}"))
        };
        let ids = |k: &str| -> Result<Vec<i32>, String> {
            v[k].as_array()
                .ok_or_else(|| format!("the run's JSON has no list {k:?}"))?
                .iter()
                .map(|t| {
                    t.as_i64()
                        .map(|t| t as i32)
                        .ok_or(format!("{k} holds a non-integer"))
                })
                .collect()
        };
        let prompt = ids("prompt_tokens")?;
        let tokens = ids("tokens")?;
        let prompt_s = f("prompt_s")?;
        let rss = [
            "peak_rss_bytes",
            "peak_rss_load_bytes",
            "peak_rss_decode_bytes",
        ]
        .iter()
        .filter_map(|k| v[*k].as_u64())
        .max();
        let steps = tokens.len().saturating_sub(1);
        Ok(Sample {
            prompt_tok_per_s: if prompt_s > 0.0 {
                prompt.len() as f64 / prompt_s
            } else {
                0.0
            },
            decode_tok_per_s: f("decode_tok_per_s")?,
            ttft_s: prompt_s,
            peak_rss_bytes: rss,
            read_bytes_per_token: v["decode_read_bytes"]
                .as_u64()
                .filter(|_| steps > 0)
                .map(|b| b as f64 / steps as f64),
            tokens,
            disk_gbps: None,
        })
    }
}

/// Median and range of a measure over the repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    /// `None` for no values.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// One side's runs and their statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideReport {
    /// `hypura` or `llama.cpp`.
    pub name: String,
    /// The plan's mode, or `plain`.
    pub mode: String,
    pub prompt_tok_per_s: Option<Stat>,
    pub decode_tok_per_s: Option<Stat>,
    pub ttft_s: Option<Stat>,
    /// The largest peak RSS of the runs.
    pub peak_rss_bytes: Option<u64>,
    pub read_bytes_per_token: Option<Stat>,
    /// The disk's rate before each run, and the decode speed it allows each run.
    pub disk_gbps: Option<Stat>,
    pub disk_bound_tok_per_s: Option<Stat>,
    pub runs: Vec<Sample>,
}

impl SideReport {
    pub fn new(name: &str, mode: &str, runs: Vec<Sample>) -> SideReport {
        SideReport {
            name: name.into(),
            mode: mode.into(),
            prompt_tok_per_s: Stat::of(runs.iter().map(|r| r.prompt_tok_per_s)),
            decode_tok_per_s: Stat::of(runs.iter().map(|r| r.decode_tok_per_s)),
            ttft_s: Stat::of(runs.iter().map(|r| r.ttft_s)),
            peak_rss_bytes: runs.iter().filter_map(|r| r.peak_rss_bytes).max(),
            read_bytes_per_token: Stat::of(runs.iter().filter_map(|r| r.read_bytes_per_token)),
            disk_gbps: Stat::of(runs.iter().filter_map(|r| r.disk_gbps)),
            disk_bound_tok_per_s: Stat::of(runs.iter().filter_map(Sample::disk_bound_tok_per_s)),
            runs,
        }
    }
}

/// Which machine and model were measured, and under what memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub host: String,
    pub ram_total_bytes: Option<u64>,
    /// Memory available to the runs (after the balloon, when there is one).
    pub ram_available_bytes: Option<u64>,
    pub balloon_bytes: u64,
    pub model_path: String,
    pub model_file_bytes: u64,
    pub model_header_hash: String,
    pub plan_profile: String,
    pub predicted_tok_per_s: f64,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    pub threads: u32,
    pub reps: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    pub schema: &'static str,
    pub hypura_version: &'static str,
    pub setting: Setting,
    pub sides: Vec<SideReport>,
    /// Whether every run of every side generated the same tokens (greedy); `None` with one side.
    pub same_tokens: Option<bool>,
    /// hypura's median decode tok/s over plain llama.cpp's.
    pub decode_speedup: Option<f64>,
    /// The simulator's prediction of hypura's runs, when asked for.
    pub prediction: Option<Prediction>,
}

/// What the simulator predicts for hypura's runs: the plan, a profile, the replayed routing,
/// the same prompt and token counts, and the runs' cache policy, expert prefetch and queue
/// depth ([`predict`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The profile simulated.
    pub profile: String,
    pub decode_tok_per_s: Option<f64>,
    pub prompt_tok_per_s: Option<f64>,
    /// Bytes read from storage per decoded token.
    pub read_bytes_per_token: Option<f64>,
    /// Expert uses served from memory during decode.
    pub hit_rate: Option<f64>,
}

/// Simulates the request of `setup` (its profile, routing, prompt and tokens) on `plan` with the
/// cache policy, expert prefetch and queue depth of `point` (its memory budgets are not used:
/// the plan is given).
pub fn predict(
    setup: &Setup,
    plan: &plan::Plan,
    point: &Point,
) -> Result<Prediction, ValidateError> {
    setup.check()?;
    let routing = setup.routing()?;
    let records = validate::simulate(setup, &setup.hw, plan, &routing, point)?;
    let m = Measures::from_records(&records, setup.split());
    let decoded = f64::from(m.decode_tokens);
    Ok(Prediction {
        profile: setup.hw.name.clone(),
        decode_tok_per_s: m.decode_tok_per_s,
        prompt_tok_per_s: m.prefill_tok_per_s,
        read_bytes_per_token: (decoded > 0.0).then(|| m.decode_bytes_read as f64 / decoded),
        hit_rate: m.hit_rate(),
    })
}

impl BenchReport {
    pub fn new(setting: Setting, sides: Vec<SideReport>) -> BenchReport {
        let all: Vec<&Vec<i32>> = sides
            .iter()
            .flat_map(|s| s.runs.iter().map(|r| &r.tokens))
            .collect();
        let same_tokens = (sides.len() > 1).then(|| all.windows(2).all(|w| w[0] == w[1]));
        let median = |name: &str| {
            sides
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.decode_tok_per_s)
                .map(|s| s.median)
        };
        let decode_speedup = match (median("hypura"), median("llama.cpp")) {
            (Some(h), Some(p)) if p > 0.0 => Some(h / p),
            _ => None,
        };
        BenchReport {
            schema: BENCH_SCHEMA,
            hypura_version: env!("CARGO_PKG_VERSION"),
            setting,
            sides,
            same_tokens,
            decode_speedup,
            prediction: None,
        }
    }

    /// llama-bench's table (Markdown), one row per side and test, plus hypura's columns.
    pub fn markdown(&self) -> String {
        let s = &self.setting;
        let gib = |b: u64| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64);
        let stat = |x: Option<Stat>, unit: &str| {
            x.map_or("-".into(), |x| {
                format!("{:.2} ± {:.2}{unit}", x.median, (x.max - x.min) / 2.0)
            })
        };
        let mut out = String::new();
        out += "| model | size | side | mode | test | t/s | TTFT | peak RSS | read/token | disk bound t/s |\n";
        out += "| --- | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n";
        let model = std::path::Path::new(&s.model_path)
            .file_name()
            .map_or(s.model_path.clone(), |n| n.to_string_lossy().into_owned());
        for side in &self.sides {
            let rss = side.peak_rss_bytes.map_or("-".into(), gib);
            let read = side.read_bytes_per_token.map_or("-".into(), |r| {
                format!("{:.1} MiB", r.median / (1u64 << 20) as f64)
            });
            let bound = stat(side.disk_bound_tok_per_s, "");
            let ttft = stat(
                side.ttft_s.map(|t| Stat {
                    median: t.median * 1e3,
                    min: t.min * 1e3,
                    max: t.max * 1e3,
                }),
                " ms",
            );
            for (test, x, bound) in [
                (format!("pp{}", s.prompt_tokens), side.prompt_tok_per_s, "-"),
                (
                    format!("tg{}", s.gen_tokens),
                    side.decode_tok_per_s,
                    &bound[..],
                ),
            ] {
                out += &format!(
                    "| {model} | {} | {} | {} | {test} | {} | {ttft} | {rss} | {read} | {bound} |\n",
                    gib(s.model_file_bytes),
                    side.name,
                    side.mode,
                    stat(x, ""),
                );
            }
        }
        out += &format!(
            "\n{} reps, {} threads, {} available to the runs{}; plan for {} predicts {:.2} tok/s",
            s.reps,
            s.threads,
            s.ram_available_bytes.map_or("?".into(), gib),
            if s.balloon_bytes > 0 {
                format!(" (balloon of {})", gib(s.balloon_bytes))
            } else {
                String::new()
            },
            s.plan_profile,
            s.predicted_tok_per_s,
        );
        if let Some(x) = self.decode_speedup {
            out += &format!("; hypura decodes at {x:.2}x plain llama.cpp");
        }
        if let Some(disk) = self.sides.iter().find_map(|s| s.disk_gbps) {
            out += &format!(
                "; the disk read {:.2} GB/s ({:.2}..{:.2}) before the runs",
                disk.median, disk.min, disk.max
            );
        }
        if let Some(p) = &self.prediction {
            let measured = self
                .sides
                .iter()
                .find(|s| s.name == "hypura")
                .and_then(|s| s.decode_tok_per_s)
                .map(|s| s.median);
            match (p.decode_tok_per_s, measured) {
                (Some(sim), Some(run)) if run > 0.0 => {
                    out += &format!(
                        "; the simulator predicts {sim:.2} tok/s on {} ({:+.0}% against hypura's median)",
                        p.profile,
                        (sim / run - 1.0) * 100.0
                    )
                }
                (Some(sim), _) => {
                    out += &format!("; the simulator predicts {sim:.2} tok/s on {}", p.profile)
                }
                _ => {}
            }
        }
        match self.same_tokens {
            Some(true) => out += "; both generated the same tokens\n",
            Some(false) => out += "; THE SIDES GENERATED DIFFERENT TOKENS\n",
            None => out += "\n",
        }
        out
    }
}

/// Why plain llama.cpp is not run on a model this large (`None`: it is run).
pub fn baseline_refusal(file_bytes: u64, ram_total: u64) -> Option<String> {
    let room = ram_total.saturating_sub(BASELINE_MARGIN_BYTES);
    (file_bytes > room).then(|| {
        format!(
            "the model ({:.1} GiB) is larger than this machine's RAM minus 4 GiB ({:.1} GiB): plain \
             llama.cpp would page its weights in and out of memory for every token, and the \
             machine with it; pass --force to run it anyway, or --no-baseline",
            file_bytes as f64 / (1u64 << 30) as f64,
            room as f64 / (1u64 << 30) as f64
        )
    })
}

/// Anonymous memory held, every page written, so that only what is left of RAM serves the runs
/// (cgroup limits are not enforced everywhere; this always is).
pub struct Balloon {
    held: Vec<u8>,
}

impl Balloon {
    pub fn inflate(bytes: usize) -> Result<Balloon, String> {
        let mut held: Vec<u8> = Vec::new();
        held.try_reserve_exact(bytes)
            .map_err(|_| format!("cannot allocate a balloon of {bytes} bytes"))?;
        held.resize(bytes, 0);
        // One non-zero byte a page makes every page private and resident.
        for i in (0..bytes).step_by(4096) {
            held[i] = 1;
        }
        std::hint::black_box(&held);
        Ok(Balloon { held })
    }

    pub fn bytes(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges() {
        assert_eq!(
            Stat::of([3.0, 1.0, 2.0]),
            Some(Stat {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(Stat::of([4.0, 1.0]).unwrap().median, 2.5);
        assert_eq!(Stat::of([]), None);
        assert_eq!(Stat::of([f64::NAN]), None);
    }

    #[test]
    fn the_baseline_is_refused_above_ram_minus_4_gib() {
        let gib = 1u64 << 30;
        assert!(baseline_refusal(27 * gib, 32 * gib).is_none());
        assert!(baseline_refusal(28 * gib, 32 * gib).is_none());
        let why = baseline_refusal(28 * gib + 1, 32 * gib).unwrap();
        assert!(why.contains("--force") && why.contains("28.0 GiB"), "{why}");
        assert!(baseline_refusal(1, 2 * gib).is_some());
    }

    #[test]
    fn samples_read_both_kinds_of_run_json() {
        let plain = serde_json::json!({
            "prompt_tokens": [1, 2, 3, 4], "tokens": [5, 6, 7], "prompt_s": 0.5,
            "decode_tok_per_s": 10.0, "decode_read_bytes": 200, "peak_rss_bytes": 1000,
        });
        let s = Sample::from_run_json(&plain).unwrap();
        assert_eq!(
            (s.prompt_tok_per_s, s.ttft_s, s.peak_rss_bytes),
            (8.0, 0.5, Some(1000))
        );
        assert_eq!(s.read_bytes_per_token, Some(100.0));
        let planned = serde_json::json!({
            "prompt_tokens": [1], "tokens": [5], "prompt_s": 0.0, "decode_tok_per_s": 0.0,
            "peak_rss_load_bytes": 10, "peak_rss_decode_bytes": 30,
        });
        let s = Sample::from_run_json(&planned).unwrap();
        assert_eq!((s.peak_rss_bytes, s.read_bytes_per_token), (Some(30), None));
        assert!(Sample::from_run_json(&serde_json::json!({})).is_err());
    }
}
