//! `hypura run`: execute a solved plan on llama.cpp — NVMe-tier tensors streamed from disk within
//! the plan's pool — and print the generated text (or JSON with token ids and streaming counters).

use anyhow::{bail, Context as _, Result};
use runtime::{Context, ContextParams, Model, ModelParams, PlannedModel, Sampling};
use solver::place::plan::Plan;
use solver::units::human_bytes;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// plan.json from `hypura solve` for this model.
    #[arg(long, required_unless_present = "plain")]
    pub plan: Option<PathBuf>,
    /// Run plain llama.cpp on -m instead of a plan: its own defaults (mmap, weight repacking, all
    /// layers on the GPU when there is one), nothing streamed. The reference that a plan's tokens
    /// are compared with.
    #[arg(long, conflicts_with_all = ["plan", "metrics"], requires = "model")]
    pub plain: bool,
    /// The GGUF file (default: the file named in the plan, next to the plan or in the current
    /// directory).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Prompt text.
    #[arg(short = 'p', long)]
    pub prompt: String,
    /// Tokens to generate (stops early at end of generation).
    #[arg(short = 'n', long, default_value_t = 32)]
    pub n_predict: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temp: f32,
    /// Sampling seed (with --temp > 0).
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Context size in tokens (default: prompt + n, rounded up to 256).
    #[arg(long)]
    pub ctx: Option<u32>,
    /// Decode threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: u32,
    /// Print JSON (token ids, text, timings, streaming counters) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write per-(token, layer) records (the `hypura sim` metrics schema) to this file; the
    /// extension picks the format: .parquet, .json or .jsonl. Each layer boundary then
    /// synchronises the backend, which costs a little speed.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Overwrite an existing --metrics file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(path) = &args.metrics {
        // Refuse before the (slow) load and decode, not after.
        sim::metrics::RecordsFormat::from_path(path)?;
        if path.exists() && !args.force {
            bail!(
                "{} exists; pass --force to overwrite it or choose another --metrics path",
                path.display()
            );
        }
    }
    if !(args.temp >= 0.0 && args.temp.is_finite()) {
        bail!("--temp must be a finite number >= 0");
    }
    let plan_path = match (&args.plan, &args.model) {
        (Some(p), _) => p,
        (None, Some(m)) => return run_plain(&args, m),
        (None, None) => bail!("pass --plan (or --plain with -m)"),
    };
    let plan = Plan::load(plan_path)?;
    let model_path = match &args.model {
        Some(p) => p.clone(),
        None => default_model(plan_path, &plan)?,
    };
    let planned = PlannedModel::load(&model_path, &plan, None).with_context(|| {
        format!(
            "cannot run {} with {}",
            model_path.display(),
            plan_path.display()
        )
    })?;
    let prompt = planned.model.tokenize(&args.prompt, true)?;
    let n_ctx = context_size(&args, prompt.len())?;
    let mut streamer = planned.streamer()?;
    if args.metrics.is_some() {
        match streamer.as_mut() {
            Some(s) => s.record_layers(true),
            None => streamer = Some(runtime::stream::Streamer::metrics_only()),
        }
    }
    let mut ctx = Context::new(
        &planned.model,
        ContextParams {
            n_ctx,
            n_threads: args.threads,
        },
        streamer,
    )?;
    // Loading has transients (llama.cpp's O_DIRECT staging buffer): report the decode peak apart.
    let peak_rss_load = runtime::mem::peak_rss_bytes();
    let peak_reset = runtime::mem::reset_peak_rss();
    let sampling = Sampling {
        temp: args.temp,
        seed: args.seed,
    };
    let g = ctx.generate(&prompt, args.n_predict, sampling)?;
    let text: String = g
        .tokens
        .iter()
        .map(|&t| planned.model.token_text(t))
        .collect();
    let (decode_s, decode_tok_s) = decode_speed(&g);
    let stats = ctx.streamer().map(|s| s.stats()).unwrap_or_default();
    if let (Some(path), Some(s)) = (&args.metrics, ctx.streamer()) {
        sim::metrics::write_records(path, s.records(), args.force)?;
    }
    let streamed_bytes: u64 = planned
        .model
        .streamed()
        .iter()
        .map(|t| t.bytes as u64)
        .sum();
    if args.json {
        let v = serde_json::json!({
            "model": model_path.display().to_string(),
            "mode": plan.mode.name(),
            "prompt_tokens": g.prompt_tokens,
            "tokens": g.tokens,
            "text": text,
            "prompt_s": g.prompt_s,
            "decode_s": decode_s,
            "decode_tok_per_s": decode_tok_s,
            "peak_rss_load_bytes": peak_rss_load,
            "peak_rss_decode_bytes": if peak_reset { runtime::mem::peak_rss_bytes() } else { None },
            "stream": {
                "tensors": planned.model.streamed().len(),
                "bytes": streamed_bytes,
                "pool_bytes": planned.placement.pool_bytes,
                "fills": stats.fills,
                "hits": stats.hits,
                "evictions": stats.evictions,
                "bytes_read": stats.bytes_read,
                "io_wait_s": stats.io_wait_s,
                "peak_resident_bytes": stats.peak_resident_bytes,
            },
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}{}", args.prompt, text);
        eprintln!(
            "hypura run: {} prompt tokens in {:.2} s, {} generated at {:.2} tok/s ({})",
            g.prompt_tokens.len(),
            g.prompt_s,
            g.tokens.len(),
            decode_tok_s,
            plan.mode.name()
        );
        if !planned.model.streamed().is_empty() {
            eprintln!(
                "  streamed {} tensors ({}) through a {} pool: {} fills, {} hits, {} read, \
                 {:.2} s waiting for I/O, peak {} resident",
                planned.model.streamed().len(),
                human_bytes(streamed_bytes),
                human_bytes(planned.placement.pool_bytes),
                stats.fills,
                stats.hits,
                human_bytes(stats.bytes_read),
                stats.io_wait_s,
                human_bytes(stats.peak_resident_bytes)
            );
        }
    }
    Ok(())
}

/// `--plain`: llama.cpp with its own defaults on `model_path`, no plan, no streaming.
fn run_plain(args: &Args, model_path: &Path) -> Result<()> {
    let model = Model::load(model_path, &ModelParams::llama_defaults())
        .with_context(|| format!("cannot load {}", model_path.display()))?;
    let prompt = model.tokenize(&args.prompt, true)?;
    let params = ContextParams {
        n_ctx: context_size(args, prompt.len())?,
        n_threads: args.threads,
    };
    let mut ctx = Context::new(&model, params, None)?;
    let sampling = Sampling {
        temp: args.temp,
        seed: args.seed,
    };
    let g = ctx.generate(&prompt, args.n_predict, sampling)?;
    let text: String = g.tokens.iter().map(|&t| model.token_text(t)).collect();
    let (decode_s, decode_tok_s) = decode_speed(&g);
    if args.json {
        let v = serde_json::json!({
            "model": model_path.display().to_string(),
            "mode": "plain",
            "prompt_tokens": g.prompt_tokens,
            "tokens": g.tokens,
            "text": text,
            "prompt_s": g.prompt_s,
            "decode_s": decode_s,
            "decode_tok_per_s": decode_tok_s,
            "peak_rss_bytes": runtime::mem::peak_rss_bytes(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}{}", args.prompt, text);
        eprintln!(
            "hypura run: {} prompt tokens in {:.2} s, {} generated at {:.2} tok/s (plain llama.cpp)",
            g.prompt_tokens.len(),
            g.prompt_s,
            g.tokens.len(),
            decode_tok_s
        );
    }
    Ok(())
}

/// --ctx, or prompt + n rounded up to 256.
fn context_size(args: &Args, prompt_len: usize) -> Result<u32> {
    match args.ctx {
        Some(c) if c > 0 => Ok(c),
        Some(_) => bail!("--ctx must be at least 1"),
        None => Ok(((prompt_len + args.n_predict) as u32).div_ceil(256) * 256),
    }
}

/// Seconds spent generating after the first token, and the tokens per second that gives.
fn decode_speed(g: &runtime::Generation) -> (f64, f64) {
    let decode_s: f64 = g.token_s.iter().sum();
    let tok_s = if g.tokens.len() > 1 && decode_s > 0.0 {
        (g.tokens.len() - 1) as f64 / decode_s
    } else {
        0.0
    };
    (decode_s, tok_s)
}

/// The plan's model file name, looked up next to the plan, then in the current directory.
fn default_model(plan_path: &Path, plan: &Plan) -> Result<PathBuf> {
    let name = &plan.inputs.model.name;
    if name.is_empty() {
        bail!(
            "{}: the plan names no model file; pass -m",
            plan_path.display()
        );
    }
    let beside = plan_path.parent().unwrap_or(Path::new(".")).join(name);
    for p in [beside, PathBuf::from(name)] {
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "{}: model file {name:?} not found next to the plan or in the current directory; pass -m",
        plan_path.display()
    )
}
