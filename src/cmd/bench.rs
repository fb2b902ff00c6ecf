//! `hypura bench`: each side is a `hypura run --json` child process (so that peak RSS and the
//! page cache are each run's own), alternating, the model's cached pages dropped before each;
//! the statistics and the report are `experiments::bench`.

use super::run::{not_a_file, solve_now, Threads};
use crate::range;
use anyhow::{anyhow, bail, Context as _, Result};
use experiments::bench::{baseline_refusal, Balloon, BenchReport, Sample, Setting, SideReport};
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
            let sample = crate::progress::spinner(
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
    let report = BenchReport::new(setting, sides);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown());
    }
    Ok(())
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
