//! `hypura bench`: each side is a `hypura run --json` child process (so that peak RSS and the
//! page cache are each run's own), alternating, the disk measured and the model's cached pages
//! dropped before each; the statistics, the simulator's prediction and the report are
//! `experiments::bench`.

use super::run::{not_a_file, solve_now, Threads};
use crate::range;
use anyhow::{anyhow, bail, Context as _, Result};
use experiments::bench::{
    baseline_refusal, predict, Balloon, BenchReport, Prediction, Sample, Setting, SideReport,
};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// The model: a GGUF file, or a catalog or hf.co name that `hypura pull` downloaded.
    #[arg(short = 'm', long)]
    pub model: PathBuf,
    /// plan.json for the model (default: solve one for this machine, as `hypura run -m`).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Leave out plain llama.cpp (hypura's runs only).
    #[arg(long)]
    pub no_baseline: bool,
    /// Plain llama.cpp with its CPU weight repacking (off by default: repacked weights are an
    /// anonymous copy of the model, which memory pressure cannot evict, not the mmap).
    #[arg(long)]
    pub repack: bool,
    /// Run plain llama.cpp even on a model larger than RAM minus 4 GiB.
    #[arg(long)]
    pub force: bool,
    /// Hold all but this much available memory in a balloon during the runs (GiB, at least
    /// 0.5): a model larger than what is left must stream.
    #[arg(long, value_name = "GIB", value_parser = range::float(0.5, 1e6))]
    pub leave_gib: Option<f64>,
    /// Prompt tokens, 1..=16777216 (llama-bench's -p).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512,
          value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    pub n_prompt: usize,
    /// Generated tokens, 1..=16777216 (llama-bench's -n).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128,
          value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    pub n_gen: usize,
    /// Repetitions of each side, 1..=1000 (alternating).
    #[arg(long, default_value_t = 3, value_parser = range::int::<usize>(1..=1000))]
    pub reps: usize,
    #[command(flatten)]
    pub threads: Threads,
    /// Force both sides' MoE routing from this trace (a synthesized model's random router
    /// collapses onto a few experts; a recorded or synthesized trace does not).
    #[arg(long, value_name = "TRACE")]
    pub replay_trace: Option<PathBuf>,
    /// Skip measuring the disk before each run (by default: uncached 4 MiB reads of the model
    /// file for a second, --disk-qd in flight; the report gives each side's disk bound, that
    /// rate over the bytes a run read per token).
    #[arg(long)]
    pub no_disk_check: bool,
    /// Reads in flight when measuring the disk, 1..=64 (default 4: `hypura run`'s usual queue
    /// depth; 1 gives a lower bound that mmap's readahead can beat).
    #[arg(long, default_value_t = 4, value_parser = range::int::<u32>(1..=64))]
    pub disk_qd: u32,
    /// Also predict hypura's runs with the simulator: the plan, the profile (--hw, else the one
    /// the plan was solved for), the --replay-trace routing (needed for an MoE model), the same prompt
    /// (at most 512 tokens: one batch) and token counts, and the run flags' --cache-policy,
    /// --expert-prefetch and --queue-depth.
    #[arg(long)]
    pub sim: bool,
    /// The profile --sim simulates: a file or a shipped profile's name (default: the plan's
    /// own, which plan.json carries; else this machine's).
    #[arg(long, value_name = "FILE|NAME", requires = "sim")]
    pub hw: Option<String>,
    /// Flags for hypura's runs only (`hypura run`'s: --queue-depth, --cache-policy, ...).
    #[arg(last = true, value_name = "RUN FLAGS")]
    pub run_flags: Vec<String>,
    /// Print the report as JSON (machine and model identity, every run).
    #[arg(long, conflicts_with = "md")]
    pub json: bool,
    /// Print the Markdown table (the default).
    #[arg(long)]
    pub md: bool,
}

pub fn run(args: Args) -> Result<()> {
    let model = crate::models::locate_path(&args.model)?;
    if !model.exists() {
        return Err(not_a_file(
            &model,
            anyhow!("no such file: {}", model.display()),
        ));
    }
    let ctx = (args.n_prompt + args.n_gen).next_multiple_of(256);
    let ctx = u32::try_from(ctx).context("-p + -n is too large a context")?;
    let scratch = tempfile::tempdir().context("a scratch folder for the solved plan")?;
    let plan_path = match &args.plan {
        Some(p) => p.clone(),
        None => {
            let plan = solve_now(&model, Some(ctx))?;
            let p = scratch.path().join("plan.json");
            std::fs::write(&p, plan.to_json()).with_context(|| p.display().to_string())?;
            p
        }
    };
    let plan = super::load_plan(&plan_path)?;
    let file_bytes = plan.inputs.model.file_bytes;
    // Before any run: a prediction that cannot be made fails in seconds, not after the runs.
    let prediction = if args.sim {
        Some(predict_runs(&args, &model, &plan).context("--sim")?)
    } else {
        None
    };
    let memory = hw::measure::memory();
    if !args.no_baseline && !args.force {
        if let Some(why) = memory.and_then(|m| baseline_refusal(file_bytes, m.total)) {
            bail!("{why}");
        }
    }
    let balloon = match args.leave_gib {
        None => None,
        Some(leave) => {
            let available = memory.map(|m| m.available).ok_or_else(|| {
                anyhow!("--leave-gib: this system does not say how much memory is available")
            })?;
            let leave = (leave * (1u64 << 30) as f64) as u64;
            match available.checked_sub(leave).filter(|&b| b > 0) {
                None => {
                    eprintln!("hypura bench: only {available} bytes available: no balloon needed");
                    None
                }
                Some(bytes) => Some(
                    crate::progress::spinner(
                        format!("inflating a balloon of {bytes} bytes"),
                        || Balloon::inflate(bytes as usize),
                    )
                    .map_err(anyhow::Error::msg)?,
                ),
            }
        }
    };
    let threads = args.threads.count();
    let mut hypura_runs = Vec::new();
    let mut plain_runs = Vec::new();
    for rep in 0..args.reps {
        // Alternating which side goes first spreads a drifting disk over both.
        let order: &[bool] = if rep % 2 == 0 {
            &[false, true]
        } else {
            &[true, false]
        };
        for &plain in order {
            if plain && args.no_baseline {
                continue;
            }
            let side = if plain { "llama.cpp" } else { "hypura" };
            let disk_gbps = if args.no_disk_check {
                None
            } else {
                crate::progress::spinner(
                    format!("measuring the disk before {side}'s run {}", rep + 1),
                    || disk_check(&model, args.disk_qd),
                )
            };
            let mut sample = crate::progress::spinner(
                format!("{side}, run {} of {}", rep + 1, args.reps),
                || {
                    one_run(
                        &model,
                        (!plain).then_some(plan_path.as_path()),
                        &args,
                        ctx,
                        threads,
                    )
                },
            )?;
            sample.disk_gbps = disk_gbps;
            if plain {
                plain_runs.push(sample)
            } else {
                hypura_runs.push(sample)
            }
        }
    }
    let mut sides = vec![SideReport::new("hypura", plan.mode.name(), hypura_runs)];
    if !args.no_baseline {
        sides.push(SideReport::new("llama.cpp", "plain", plain_runs));
    }
    let setting = Setting {
        host: crate::machine::hostname().unwrap_or_else(|| "unknown".into()),
        ram_total_bytes: memory.map(|m| m.total),
        ram_available_bytes: hw::measure::memory().map(|m| m.available),
        balloon_bytes: balloon.as_ref().map_or(0, |b| b.bytes() as u64),
        model_path: model.display().to_string(),
        model_file_bytes: file_bytes,
        model_header_hash: plan.inputs.model.header_hash.clone(),
        plan_profile: plan.inputs.profile_name.clone(),
        predicted_tok_per_s: plan.prediction.tok_per_s,
        prompt_tokens: args.n_prompt,
        gen_tokens: args.n_gen,
        threads,
        reps: args.reps,
    };
    drop(balloon);
    let report = BenchReport {
        prediction,
        ..BenchReport::new(setting, sides)
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown());
    }
    Ok(())
}

/// How long the disk is read before each run.
const DISK_CHECK: std::time::Duration = std::time::Duration::from_secs(1);
/// The request size of the disk check: `hypura run`'s largest reads.
const DISK_BLOCK: u64 = 4 << 20;

/// The disk's uncached read rate over the model file now, GB/s; `None` (said once on stderr)
/// where the file's filesystem has no uncached reads: the runs go on without a disk bound.
fn disk_check(model: &Path, depth: u32) -> Option<f64> {
    match hw::measure::file_read_rate(model, DISK_BLOCK, depth, DISK_CHECK) {
        Ok(gbps) => Some(gbps),
        Err(e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| eprintln!("hypura bench: no disk bound: {e}"));
            None
        }
    }
}

/// `hypura run`'s flags, read as `run` reads them (for what --sim must match).
#[derive(clap::Parser)]
struct RunFlags {
    #[command(flatten)]
    run: super::run::Args,
}

/// The simulator's prediction of hypura's runs (see `Args::sim`).
fn predict_runs(args: &Args, model: &Path, plan: &plan::Plan) -> Result<Prediction> {
    use clap::Parser as _;
    let flags = RunFlags::try_parse_from(
        ["run".as_ref(), "-m".as_ref(), model.as_os_str()]
            .into_iter()
            .chain(args.run_flags.iter().map(|f| f.as_ref())),
    )
    .map_err(|e| anyhow!("reading the run flags: {e}"))?
    .run;
    let policy = match flags.cache_policy {
        Some(p) => p.into(),
        None => policy::cache::RunPolicy::from_name(&plan.expert_cache.policy)
            .unwrap_or(policy::cache::RunPolicy::StaticFrequency),
    };
    let point = experiments::grid::Point {
        ram_bytes: None,
        gpu_bytes: None,
        policy,
        prefetch: flags.expert_prefetch.into(),
        queue_depth: flags.queue_depth,
    };
    let trace = match &args.replay_trace {
        Some(p) => Some(traces::load(p)?),
        None => None,
    };
    let setup = experiments::Setup {
        model_path: model.to_path_buf(),
        inventory: model::Inventory::from_gguf(model)?,
        hw: match (&args.hw, &plan.inputs.profile) {
            (None, Some(own)) => own.clone(),
            (hw, _) => crate::machine::resolve(hw.as_deref())?,
        },
        trace,
        prompt_len: args.n_prompt,
        tokens: args.n_gen,
        warmup: 0,
        threads: args.threads.count(),
        greedy: false,
        repeats: 1,
    };
    Ok(predict(&setup, plan, &point)?)
}

/// One `hypura run --json` child: plain llama.cpp without a plan, else the plan; the model's
/// pages dropped from the page cache first, so that each run starts cold.
fn one_run(
    model: &Path,
    plan: Option<&Path>,
    args: &Args,
    ctx: u32,
    threads: u32,
) -> Result<Sample> {
    let file = std::fs::File::open(model).with_context(|| model.display().to_string())?;
    runtime::page_cache::drop_cached(&file)
        .with_context(|| format!("dropping {} from the page cache", model.display()))?;
    let exe = std::env::current_exe().context("finding the hypura binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("run");
    match plan {
        Some(p) => cmd.arg("--plan").arg(p),
        None => cmd.arg("--plain"),
    };
    if plan.is_none() && !args.repack {
        cmd.arg("--no-repack");
    }
    cmd.arg("-m")
        .arg(model)
        .args(["--prompt-tokens", &args.n_prompt.to_string()])
        .args(["-n", &args.n_gen.to_string(), "--ignore-eos", "--json"])
        .args(["-c", &ctx.to_string(), "-t", &threads.to_string()]);
    if let Some(t) = &args.replay_trace {
        cmd.arg("--replay-trace").arg(t);
    }
    if plan.is_some() {
        cmd.args(&args.run_flags);
    }
    let out = cmd.output().context("starting hypura run")?;
    if !out.status.success() {
        bail!(
            "hypura run ({}) failed: {}",
            if plan.is_some() {
                "the plan"
            } else {
                "plain llama.cpp"
            },
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading hypura run's JSON")?;
    Sample::from_run_json(&v).map_err(anyhow::Error::msg)
}
