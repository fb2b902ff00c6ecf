//! `hypura sweep`: simulate every configuration of a grid over one trace, model and machine;
//! one Parquet row per configuration in a results directory, resumable and shardable.

use crate::range;
use anyhow::{bail, Context, Result};
use experiments::sweep::{self, grid, Identity, ResultsDir, Run, Setup, Shard};
use hw::HwProfile;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Expert-routing trace (*.json or *.htrace) every configuration decodes.
    #[arg(long)]
    pub trace: PathBuf,
    /// A GGUF file or a catalog name (default: the plan's model).
    #[arg(long, short = 'm', required_unless_present = "plan")]
    pub model: Option<String>,
    /// Hardware profile: a TOML file (from `hypura profile`), or a shipped profile's name
    /// (`hypura list profiles`: m1max, m4-16g, h100, h200, ...); default: the --plan's own
    /// profile, else this machine's, measured once by `hypura profile`.
    #[arg(long, value_name = "FILE|NAME")]
    pub hw: Option<String>,
    /// Sweep this plan instead of solving one per memory budget (the grid then sets no ram
    /// or gpu).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The grid, `key=values;...`: policy (static, lru, lfu, lfru, arc, pinned-lru, belady),
    /// cache (expert cache bytes; `1GiB..16GiB:8` is 8 sizes on a log scale), partition
    /// (global, per-layer), prefetch (none, coactivation, oracle), depth (dense layers read
    /// ahead; `0..4`), qd (storage requests in flight), ram and gpu (memory for the plan: one
    /// plan per budget). Configurations are the cross product; static takes no cache or
    /// partition.
    #[arg(long, default_value = "")]
    pub grid: String,
    /// Decode the trace's first N tokens, 1..=16777216 (default: all of them).
    #[arg(long, value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    pub tokens: Option<usize>,
    /// Results directory (created if missing). Configurations already there are skipped;
    /// new rows go to new files beside them.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Run shard I of N (0 <= I < N): configuration j of the grid belongs to shard j % N.
    /// Shards may share the directory; together they make the whole grid.
    #[arg(long, default_value = "0/1", value_parser = parse_shard)]
    pub shard: Shard,
    /// Worker threads, 0..=512 (0: all cores).
    #[arg(long, default_value_t = 0, value_parser = range::int::<u32>(0..=range::MAX_THREADS))]
    pub threads: u32,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    Shard::parse(s).ok_or_else(|| format!("{s:?} is not I/N with 0 <= I < N (e.g. 0/4)"))
}

pub fn run(args: Args) -> Result<()> {
    let configs = grid::parse(&args.grid).with_context(|| format!("--grid {:?}", args.grid))?;
    let plan = match &args.plan {
        Some(p) => Some(super::load_plan(p)?),
        None => None,
    };
    let hw = match (
        &args.hw,
        plan.as_ref().and_then(|p| p.inputs.profile.clone()),
    ) {
        (None, Some(p)) => p,
        (hw, _) => crate::machine::resolve(hw.as_deref())?,
    };
    let model = match (&args.model, &plan, &args.plan) {
        (Some(m), _, _) => m.clone(),
        (None, Some(p), Some(path)) => p
            .model_file(path)
            .map_or_else(|| p.inputs.model.name.clone(), |f| f.display().to_string()),
        _ => bail!("--model is required without --plan"),
    };
    let setup = setup(
        &model,
        hw,
        &args.trace,
        args.tokens,
        plan,
        "a sweep over cache policies",
    )?;
    let mut dir = ResultsDir::open(&args.output, args.shard)?;
    let threads = threads(args.threads);
    let run = Run {
        threads,
        shard: args.shard,
        rows_per_file: 4096,
        flush_seconds: 10.0,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "sweep [{bar:30}] {pos}/{len} configurations, {elapsed} elapsed, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let summary = sweep::sweep(&setup, &configs, &mut dir, &run, &mut |p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
    })
    .context("sweep")?;
    bar.finish_and_clear();
    let shard = if args.shard == Shard::ALL {
        String::new()
    } else {
        format!(
            " ({} in shard {}/{})",
            summary.in_shard, args.shard.index, args.shard.count
        )
    };
    println!(
        "{} configurations in the grid{shard}: {} already in {}, {} run now ({} failed; their error is in the row's `error`)",
        summary.grid,
        summary.skipped,
        args.output.display(),
        summary.run,
        summary.failed
    );
    if summary.run > 0 {
        println!(
            "{:.2} s on {threads} thread(s): {:.1} configurations/s, {:.2} M expert accesses/s, {} cache replays shared by them",
            summary.seconds,
            summary.run as f64 / summary.seconds,
            summary.expert_accesses as f64 / summary.seconds / 1e6,
            summary.replays
        );
        for f in &summary.files {
            println!("wrote {}", f.display());
        }
        for b in &summary.resident_budgets {
            println!(
                "note: with {b} the plan keeps every routed expert in memory: nothing is read, and cache policy, prefetch and queue depth change nothing; give the grid a ram= below the model's size to see them at work"
            );
        }
    }
    Ok(())
}

/// What a sweep or a tune shares: the model (a MoE: `why` says what needs one), the profile,
/// the trace's first `tokens`, and where they came from.
pub fn setup(
    model: &str,
    hw: HwProfile,
    trace_path: &Path,
    tokens: Option<usize>,
    plan: Option<plan::Plan>,
    why: &str,
) -> Result<Setup> {
    let model = &crate::models::locate(model)?;
    let inventory = model::load_model(model).with_context(|| format!("model {model}"))?;
    if !inventory.arch.is_moe() {
        bail!(
            "{model} ({}) has no routed experts: {why} needs a MoE model",
            inventory.arch.arch
        );
    }
    let full = traces::load(trace_path)?;
    let trace = match tokens {
        Some(n) => sim::decode::first_tokens(&full, n)?,
        None => full,
    };
    let identity = Identity {
        hypura_version: env!("CARGO_PKG_VERSION").to_string(),
        model: plan::ModelIdentity::of(&inventory),
        profile_name: hw.name.clone(),
        profile_hash: plan::profile_hash(&hw),
        trace_name: trace_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        trace_hash: super::file_hash(trace_path)?,
        tokens: trace.n_tokens() as u64,
    };
    Ok(Setup {
        inventory,
        hw,
        trace,
        identity,
        plan,
    })
}

/// `--threads`: 0 is every core.
pub fn threads(n: u32) -> usize {
    match n {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    }
}
