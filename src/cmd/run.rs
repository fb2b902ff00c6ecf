//! `hypura run`: execute a solved plan on llama.cpp — NVMe-tier tensors streamed from disk within
//! the plan's pool — and print the generated text (or JSON with token ids and streaming counters).

use crate::choice::{
    ExpertStreaming, FlashAttnChoice, KvType, PlainLoad, Prefetch, RunCachePolicy, StreamedMemory,
};
use crate::range;
use anyhow::{bail, Context as _, Result};
use gguf::GgmlType;
use model::units::human_bytes;
use plan::Plan;
use policy::cache::RunPolicy;
use runtime::report::{ExpertReport, RunDetail, RunReport, StreamReport};
use runtime::{Context, ContextParams, Model, ModelParams, PlannedModel, Sampling};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// plan.json from `hypura solve` for this model (default: solve one now for -m on this
    /// machine's profile, which is measured first if it never was).
    #[arg(long, required_unless_present_any = ["plain", "model"])]
    pub plan: Option<PathBuf>,
    /// Run plain llama.cpp on -m instead of a plan: its own defaults (mmap, weight repacking, all
    /// layers on the GPU when there is one), nothing streamed. The reference that a plan's tokens
    /// are compared with.
    #[arg(long, conflicts_with_all = ["plan", "metrics", "record_trace"], requires = "model")]
    pub plain: bool,
    /// With --plain: compute each tensor where and with the kernels a run of this plan does: its
    /// streamed tensors (and, with a GPU backend, its RAM tier) in llama.cpp's CPU buffer type,
    /// op_offload off (prompt batches included) and, when the plan streams, weight repacking off
    /// (a streamed tensor is never repacked): the reference for a streamed run's tokens.
    #[arg(long, requires = "plain")]
    pub plain_like: Option<PathBuf>,
    /// With --plain: no CPU weight repacking (llama.cpp's --no-repack): every weight stays in
    /// the file's mapping instead of an anonymous repacked copy, so memory pressure can evict it.
    #[arg(long, requires = "plain")]
    pub no_repack: bool,
    /// With --plain: llama.cpp's loader, `mmap` (its default) or `direct` (O_DIRECT reads into
    /// anonymous memory, as a plan loads), to tell a loader's share of a speed difference.
    #[arg(long, requires = "plain", value_enum)]
    pub plain_load: Option<PlainLoad>,
    /// The GGUF file (default: the plan's, where it was solved, else by name next to the plan
    /// or in the current directory).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Prompt text (or -f FILE; without either, the prompt is read from standard input).
    #[arg(short = 'p', long, conflicts_with = "file")]
    pub prompt: Option<String>,
    /// Read the prompt from this file.
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A prompt of exactly N tokens, 1..=16777216, cut from a fixed English text (for
    /// benchmarks, as llama-bench's -p).
    #[arg(long, value_name = "N", conflicts_with_all = ["prompt", "file"],
          value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    pub prompt_tokens: Option<usize>,
    /// Tokens to generate, 1..=16777216 (stops early at end of generation, unless
    /// --ignore-eos); the prompt and these must fit the context (--ctx, the plan's context).
    #[arg(short = 'n', long, default_value_t = 32,
          value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    pub n_predict: usize,
    /// Generate all -n tokens, past end-of-generation tokens (for timing a fixed length).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Talk with the model instead (also `-cnv`, `--conversation`): `hypura chat` with these
    /// flags, -p being the system message (as llama-cli's conversation mode).
    #[arg(short = 'i', long, visible_alias = "conversation")]
    pub interactive: bool,
    /// Sampling temperature, 0..=100; 0 is greedy (hypura's default, for reproducible
    /// output; llama-cli's is 0.8).
    #[arg(long, default_value_t = 0.0, value_parser = range::float32(0.0, 100.0))]
    pub temp: f32,
    #[command(flatten)]
    pub sampling: SamplingFlags,
    /// Context size in tokens, 1..=16777216 and at most the plan's context, for which it
    /// reserved the KV cache (default: prompt + n, rounded up to 256).
    #[arg(short = 'c', long = "ctx-size", visible_alias = "ctx",
          value_parser = range::int::<u32>(1..=range::MAX_TOKENS))]
    pub ctx: Option<u32>,
    #[command(flatten)]
    pub threads: Threads,
    /// KV cache type of the keys (`-ctk`; default: the plan's `--kv-type`, else f16).
    #[arg(long, value_enum, ignore_case = true)]
    pub cache_type_k: Option<KvType>,
    /// KV cache type of the values (`-ctv`; default: the plan's, else f16). Quantized values
    /// need flash attention.
    #[arg(long, value_enum, ignore_case = true)]
    pub cache_type_v: Option<KvType>,
    /// Flash attention (`-fa`): on, off or auto (llama.cpp's choice, its default).
    #[arg(long, value_enum, default_value_t = FlashAttnChoice::Auto)]
    pub flash_attn: FlashAttnChoice,
    /// llama.cpp's GPU layer count (`-ngl`), for --plain runs; with a plan it is not used
    /// (the plan places every tensor) and a note says so.
    #[arg(long = "n-gpu-layers", value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-1..))]
    pub n_gpu_layers: Option<i32>,
    /// llama.cpp's tensor buffer overrides (`-ot REGEX=DEVICE`, DEVICE as llama.cpp names it:
    /// CPU, CUDA0, ...), for --plain runs, in order; with a plan, noted and not used.
    #[arg(long = "override-tensor", value_name = "REGEX=DEVICE")]
    pub override_tensor: Vec<String>,
    /// llama.cpp's `--n-cpu-moe N`, for --plain runs: the routed experts of the first N layers
    /// in host memory (after any -ot).
    #[arg(long, value_name = "N", requires = "plain",
          value_parser = range::int::<u32>(0..=range::MAX_LAYERS))]
    pub n_cpu_moe: Option<u32>,
    /// Print JSON (token ids, text, timings, streaming counters) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write per-(token, layer) records (the `hypura sim` metrics schema) to this file; the
    /// extension picks the format: .parquet, .json or .jsonl. Each layer boundary then
    /// synchronises the backend, which costs a little speed.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Write the routing taken (every token, prompt included: the experts each MoE layer's
    /// router selected) to this trace file (.json or .htrace), readable by `hypura sim --trace`.
    #[arg(long)]
    pub record_trace: Option<PathBuf>,
    /// Force each MoE layer's routing from this trace (from token 0 on, across its sequences):
    /// a synthetic-weight model then reproduces the recorded model's expert I/O. The model must
    /// have the trace's MoE layers, expert count and top-k.
    #[arg(long)]
    pub replay_trace: Option<PathBuf>,
    /// How NVMe-tier merged expert tensors stream: `per-expert` (only the selected experts'
    /// slices, through the expert cache) or `whole` (the whole tensor, like a dense one).
    #[arg(long, value_enum, default_value_t = ExpertStreaming::PerExpert)]
    pub expert_streaming: ExpertStreaming,
    /// Expert cache policy: lru, lfu, lfru, arc or pinned-lru (default: the plan's;
    /// `static-frequency` keeps the plan's memory-tier experts and runs LRU over the rest).
    #[arg(long, value_enum)]
    pub cache_policy: Option<RunCachePolicy>,
    /// Expert prefetch for per-expert streaming: `none` (read on demand), `coactivation` (after
    /// each MoE layer routes a decode token, read the next layer's experts that most often
    /// followed this selection, learned online; at most top-k experts beyond the cache) or
    /// `oracle` (same timing, the replayed trace's next selection; needs --replay-trace).
    #[arg(long, value_enum, default_value_t = Prefetch::None)]
    pub expert_prefetch: Prefetch,
    /// Overwrite an existing --metrics or --record-trace file.
    #[arg(long)]
    pub force: bool,
    /// Read requests in flight (I/O threads) for streamed weights (default: the plan's queue
    /// depth, the larger of its dense and expert depths, as `hypura sim` uses), 1..=1024.
    #[arg(long, value_parser = range::int::<u32>(1..=range::MAX_QUEUE_DEPTH))]
    pub queue_depth: Option<u32>,
    /// Layers of streamed dense weights read ahead of compute, 0..=512 (default: the plan's
    /// prefetch depth; 0 reads a layer's weights when it starts).
    #[arg(long, value_parser = range::int::<u32>(0..=range::MAX_LAYERS))]
    pub prefetch_depth: Option<u32>,
    /// What becomes of streamed weights' memory after use: `recycled` (kept in a page pool and
    /// moved to the next fill; Linux) or `released` (given back to the kernel; the next
    /// fill faults in zeroed pages).
    #[arg(long, value_enum, default_value_t = StreamedMemory::Recycled)]
    pub streamed_memory: StreamedMemory,
}

/// The sampling flags `run` and `chat` share (the temperature, whose defaults differ, apart).
#[derive(clap::Args)]
pub struct SamplingFlags {
    /// Sampling seed (with --temp > 0).
    #[arg(short = 's', long, default_value_t = 0)]
    pub seed: u32,
    /// With --temp > 0: keep the K most likely tokens, 0..=1000000 (0: all).
    #[arg(long, default_value_t = 40, value_parser = range::int::<u32>(0..=1_000_000))]
    pub top_k: u32,
    /// With --temp > 0: keep the most likely tokens whose probabilities sum to P, 0..=1 (1: all).
    #[arg(long, default_value_t = 0.95, value_parser = range::float32(0.0, 1.0))]
    pub top_p: f32,
    /// With --temp > 0: drop tokens less likely than P times the most likely, 0..=1 (0: none).
    #[arg(long, default_value_t = 0.05, value_parser = range::float32(0.0, 1.0))]
    pub min_p: f32,
    /// Penalise tokens among the last --repeat-last-n, 0..=10 (1: off); applies when greedy too.
    #[arg(long, default_value_t = 1.0, value_parser = range::float32(0.0, 10.0))]
    pub repeat_penalty: f32,
    /// Tokens --repeat-penalty looks back over, 0..=16777216.
    #[arg(long, default_value_t = 64,
          value_parser = range::int::<u32>(0..=range::MAX_TOKENS))]
    pub repeat_last_n: u32,
}

impl SamplingFlags {
    /// llama.cpp's sampler settings for these flags at temperature `temp`.
    pub fn at(&self, temp: f32, ignore_eos: bool) -> Sampling {
        Sampling {
            temp,
            seed: self.seed,
            ignore_eos,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
        }
    }
}

pub fn run(mut args: Args) -> Result<()> {
    if args.interactive {
        // main turns `run -i` into `chat` before parsing; reaching here means it could not.
        bail!("-i is `hypura chat`: pass the same model and flags to `hypura chat`");
    }
    args.model = args
        .model
        .map(|m| crate::models::locate_path(&m))
        .transpose()?;
    if let Some(m) = args.model.as_deref().filter(|m| !m.exists()) {
        return Err(not_a_file(
            m,
            anyhow::anyhow!("no such file: {}", m.display()),
        ));
    }
    if let Some(path) = &args.metrics {
        // Refuse before the (slow) load and decode, not after.
        metrics::RecordsFormat::from_path(path)?;
        super::refuse_existing(path, args.force, "--metrics path")?;
    }
    if let Some(path) = &args.record_trace {
        traces::Form::from_extension(path)?;
        super::refuse_existing(path, args.force, "--record-trace path")?;
    }
    // clap's `requires = "plain"` is met by --plain's default value, so it is checked here.
    if !args.plain {
        if args.plain_like.is_some() {
            bail!("--plain-like applies to --plain runs only");
        }
        if args.plain_load.is_some() {
            bail!("--plain-load applies to --plain runs only");
        }
    }
    let replay = match &args.replay_trace {
        Some(p) => {
            Some(traces::load(p).with_context(|| format!("--replay-trace {}", p.display()))?)
        }
        None => None,
    };
    if !args.plain {
        if let Some(n) = &args.n_gpu_layers {
            eprintln!(
                "hypura run: -ngl {n} is not used: the plan places every tensor (GPU, RAM or \
                 NVMe; `hypura solve --explain` says why)"
            );
        }
        for o in &args.override_tensor {
            eprintln!("hypura run: -ot {o} is not used: the plan places every tensor");
        }
    }
    let prompt_text = prompt_text(&args)?;
    let (plan, plan_origin) = match (&args.plan, &args.model) {
        (Some(p), _) if !args.plain => (super::load_plan(p)?, p.display().to_string()),
        (_, Some(m)) if args.plain => return run_plain(&args, m, &prompt_text, replay),
        (None, Some(m)) => (solve_now(m, args.ctx)?, "the plan solved now".to_string()),
        _ => bail!("pass -m MODEL (a plan is solved for it), --plan, or --plain with -m"),
    };
    let model_path = match (&args.model, &args.plan) {
        (Some(p), _) => p.clone(),
        (None, Some(plan_path)) => default_model(plan_path, &plan)?,
        (None, None) => unreachable!("no plan is solved without -m"),
    };
    let moe = runtime::MoeOptions {
        whole_expert_tensors: args.expert_streaming == ExpertStreaming::Whole,
        cache_policy: args.cache_policy.map(RunPolicy::from),
        record: args.record_trace.is_some(),
        replay,
        replay_scope: runtime::ReplayScope::AllTokens,
        expert_prefetch: args.expert_prefetch.into(),
    };
    moe.check().map_err(|e| match e {
        runtime::Error::OracleWithoutReplay => anyhow::Error::new(e)
            .context("--expert-prefetch oracle: pass --replay-trace or use coactivation"),
        e => e.into(),
    })?;
    let loaded = crate::progress::spinner(format!("loading {}", model_path.display()), || {
        PlannedModel::load(&model_path, &plan, None)
    });
    let mut planned = loaded.map_err(|e| {
        let advice = match e {
            runtime::Error::Plan(plan::CheckError::Mismatch(_)) => {
                " (re-run `hypura solve` for this model)"
            }
            runtime::Error::Plan(plan::CheckError::Placement(_)) => {
                " (fix the plan file, or re-run `hypura solve`)"
            }
            _ => "",
        };
        anyhow::Error::new(e).context(format!(
            "cannot run {} with {plan_origin}{advice}",
            model_path.display(),
        ))
    })?;
    let prompt = prompt_ids(&planned.model, &args, &prompt_text)?;
    let n_ctx = context_size(
        &args,
        prompt.len(),
        plan.inputs.ctx.min(range::MAX_TOKENS),
        "the context the plan was solved for (`hypura solve --ctx`)",
    )?;
    if let Some(q) = args.queue_depth {
        planned.io.queue_depth = q;
    }
    if let Some(d) = args.prefetch_depth {
        planned.io.prefetch_depth = d;
    }
    planned.io.memory = args.streamed_memory.into();
    if let Some(t) = args.cache_type_k {
        planned.type_k = t.into();
    }
    if let Some(t) = args.cache_type_v {
        planned.type_v = t.into();
    }
    planned.flash_attn = args.flash_attn.into();
    check_replay_length(&args, moe.replay.as_ref(), prompt.len())?;
    let mut ctx = planned
        .context(&moe, n_ctx, args.threads.count(), args.metrics.is_some())
        .map_err(replay_advice)
        .with_context(|| match &args.replay_trace {
            Some(p) => format!("cannot run {} with {}", model_path.display(), p.display()),
            None => format!("cannot run {}", model_path.display()),
        })?;
    // Loading has transients (llama.cpp's O_DIRECT staging buffer): report the decode peak apart.
    let peak_rss_load = runtime::mem::peak_rss_bytes();
    let peak_reset = runtime::mem::reset_peak_rss();
    let sampling = sampling(&args);
    let mut out = TextOut::new(!args.json, &prompt_text);
    let g = ctx
        .generate_with(&prompt, args.n_predict, sampling, |t| {
            out.token(&planned.model.token_piece(t));
            true
        })
        .map_err(generate_advice)?;
    let text = out.finish();
    let decode_tok_s = g.decode_tok_per_s();
    let stats = ctx.streamer().map(|s| s.stats()).unwrap_or_default();
    let io_stats = ctx.streamer().map(|s| s.io_stats()).unwrap_or_default();
    if let (Some(path), Some(s)) = (&args.metrics, ctx.streamer()) {
        metrics::write_records(path, s.records(), args.force)?;
    }
    if let Some(path) = &args.record_trace {
        let routing = ctx.streamer().and_then(|s| s.moe()).map(|m| &m.routing);
        let trace = routing
            .expect("recording implies router interception")
            .recorded_trace("hypura-run")?;
        traces::save(&trace, path, args.force)?;
    }
    let streamed_bytes: u64 = planned
        .model
        .streamed()
        .iter()
        .map(|t| t.bytes as u64)
        .sum();
    if args.json {
        let detail = RunDetail::Planned {
            peak_rss_load_bytes: peak_rss_load,
            peak_rss_decode_bytes: if peak_reset {
                runtime::mem::peak_rss_bytes()
            } else {
                None
            },
            stream: Box::new(StreamReport::new(
                planned.model.streamed().len(),
                streamed_bytes,
                planned.placement.pool_bytes,
                &stats,
                &planned.io,
                &io_stats,
            )),
            experts: Box::new(ExpertReport {
                streaming: args.expert_streaming.name(),
                accesses: stats.expert_accesses,
                hits: stats.expert_hits,
                fills: stats.expert_fills,
                prefetch: moe.expert_prefetch.name(),
                prefetched: stats.expert_prefetches,
                prefetch_hits: stats.expert_prefetch_hits,
                routed_tokens: ctx
                    .streamer()
                    .and_then(|s| s.moe())
                    .map(|m| m.routing.n_tokens()),
            }),
        };
        let report = RunReport::new(
            model_path.display().to_string(),
            plan.mode.name(),
            &g,
            text,
            detail,
        );
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
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
                "  streamed {} tensors ({}) through a {} pool: {} fills ({} read ahead), {} hits, \
                 {} read, {:.2} s waiting for I/O, peak {} resident; queue depth {}, prefetch \
                 depth {}",
                planned.model.streamed().len(),
                human_bytes(streamed_bytes),
                human_bytes(planned.placement.pool_bytes),
                stats.fills,
                stats.prefetches,
                stats.hits,
                human_bytes(stats.bytes_read),
                stats.io_wait_s,
                human_bytes(stats.peak_resident_bytes),
                planned.io.queue_depth,
                planned.io.prefetch_depth
            );
        }
        if stats.expert_accesses > 0 {
            eprintln!(
                "  experts ({}): {} uses, {} from memory ({:.1}%), {} slices read",
                args.expert_streaming.name(),
                stats.expert_accesses,
                stats.expert_hits,
                100.0 * stats.expert_hits as f64 / stats.expert_accesses as f64,
                stats.expert_fills
            );
            if stats.expert_prefetches > 0 {
                eprintln!(
                    "  prefetch ({}): {} experts read ahead, {} chosen by the router",
                    moe.expert_prefetch.name(),
                    stats.expert_prefetches,
                    stats.expert_prefetch_hits
                );
            }
        }
    }
    Ok(())
}

/// --temp, --seed, the filters and --ignore-eos.
fn sampling(args: &Args) -> Sampling {
    args.sampling.at(args.temp, args.ignore_eos)
}

/// `-t/--threads` of the commands that run a model.
#[derive(clap::Args, Clone, Copy)]
pub struct Threads {
    /// Threads, 0..=512 (default 0: the physical cores, as llama.cpp).
    #[arg(short = 't', long = "threads", default_value_t = 0,
          value_parser = range::int::<u32>(0..=range::MAX_THREADS))]
    pub threads: u32,
}

impl Threads {
    /// The count to use: the one given, else the physical cores (llama.cpp's default).
    pub fn count(self) -> u32 {
        match self.threads {
            0 => hw::measure::physical_cores() as u32,
            t => t,
        }
    }
}

/// The prompt: -p, the -f file, or standard input (refused when it is a terminal, where the
/// user would otherwise wait on a silent prompt).
fn prompt_text(args: &Args) -> Result<String> {
    use std::io::{IsTerminal, Read};
    if args.prompt_tokens.is_some() {
        return Ok(String::new());
    }
    if let Some(p) = &args.prompt {
        return Ok(p.clone());
    }
    if let Some(f) = &args.file {
        return infile::read_to_string(f).with_context(|| format!("-f {}", f.display()));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!("no prompt: pass -p TEXT or -f FILE, or pipe it on standard input");
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .context("reading the prompt from standard input")?;
    Ok(text)
}

/// A model to load and its plan, as `chat` and `serve` take them: the model positional or
/// with -m (a file, or a name `hypura pull` downloaded), the plan optional.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The model: a GGUF file, or a catalog or hf.co name that `hypura pull` downloaded (or -m).
    #[arg(value_name = "MODEL", conflicts_with = "model")]
    pub model_arg: Option<PathBuf>,
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// plan.json for the model (default: solve one for this machine, as `hypura run -m`).
    #[arg(long)]
    pub plan: Option<PathBuf>,
}

impl ModelArgs {
    /// The model as given, the file to load, and the plan (solved now for `ctx` when none was
    /// given); `command` names the command in the error for neither.
    pub fn resolve(
        &self,
        ctx: Option<u32>,
        command: &str,
    ) -> Result<(Option<PathBuf>, PathBuf, Plan)> {
        let given = self.model_arg.clone().or_else(|| self.model.clone());
        let located = given
            .as_deref()
            .map(crate::models::locate_path)
            .transpose()?;
        if let Some(m) = located.as_deref().filter(|m| !m.exists()) {
            return Err(not_a_file(
                m,
                anyhow::anyhow!("no such file: {}", m.display()),
            ));
        }
        let plan = match (&self.plan, &located) {
            (Some(p), _) => super::load_plan(p)?,
            (None, Some(m)) => solve_now(m, ctx)?,
            (None, None) => bail!("pass a model (hypura {command} MODEL) or --plan"),
        };
        let path = match (located, &self.plan) {
            (Some(m), _) => m,
            (None, Some(p)) => default_model(p, &plan)?,
            (None, None) => unreachable!("refused above"),
        };
        Ok((given, path, plan))
    }
}

/// The prompt's token ids: --prompt-tokens of filler text, else the text with the model's BOS.
fn prompt_ids(model: &runtime::Model, args: &Args, text: &str) -> Result<Vec<i32>> {
    Ok(match args.prompt_tokens {
        Some(n) => model.filler_prompt(n)?,
        None => model.tokenize(text, true)?,
    })
}

/// A plan for `model` solved now, on this machine's profile (measured quickly first if it never
/// was), for the run's context (-c, else 4096 tokens).
pub fn solve_now(model: &Path, ctx: Option<u32>) -> Result<Plan> {
    // The model first: a missing file fails before the machine is measured.
    let inv = match model::Inventory::from_gguf(model) {
        Ok(inv) => inv,
        Err(e) if !model.exists() => return Err(not_a_file(model, e.into())),
        Err(e) => return Err(e.into()),
    };
    let hw = match crate::machine::cached()? {
        Some(hw) => hw,
        None => {
            let disk = model
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            eprintln!(
                "hypura run: this machine has no profile yet; measuring it quickly (storage in \
                 {}; `hypura profile` makes a full one)",
                disk.display()
            );
            let (_, toml) = super::profile::measure(disk, true, true)?;
            let path = crate::machine::store(&toml)?;
            hw::HwProfile::from_toml_str(&toml, &path.display().to_string())?
        }
    };
    let opts = place::SolveOptions {
        headroom: place::Headroom {
            ctx: ctx.map_or(4096, u64::from),
            ..place::Headroom::default()
        },
        ..place::SolveOptions::default()
    };
    let solved = crate::progress::spinner(format!("solving a plan on {}", hw.name), || {
        place::solve(&inv, &hw, &opts)
    })
    .with_context(|| format!("cannot place {} on {}", model.display(), hw.name))?;
    eprintln!(
        "hypura run: {} on {}: {}, {:.2} tok/s predicted",
        model.display(),
        hw.name,
        solved.plan.mode.name(),
        solved.plan.prediction.tok_per_s
    );
    Ok(solved.plan)
}

/// A model path that is no file: a catalog or hub name gets how to download its GGUF.
pub fn not_a_file(model: &Path, e: anyhow::Error) -> anyhow::Error {
    let name = model.to_string_lossy();
    match crate::models::hub_model(&name) {
        Ok(Some(m)) => anyhow::anyhow!(
            "{} names a GGUF that is not downloaded: `hypura pull {name}` fetches it ({}) into the Hugging Face cache; or pass a GGUF file's path",
            m.name,
            m.page
        ),
        Err(why) => why.context(format!("{name} is a catalog model, not a file here")),
        Ok(None) => e,
    }
}

/// Generated text: echoed to stdout as tokens come (after the prompt) when `show`, and kept.
/// Token pieces are bytes, not always whole characters: a character split across tokens is
/// written once it is complete.
pub struct TextOut {
    show: bool,
    bytes: Vec<u8>,
    /// Bytes of `bytes` already written (or, for a bad sequence, replaced).
    done: usize,
    text: String,
}

impl TextOut {
    pub fn new(show: bool, prompt: &str) -> TextOut {
        if show {
            print!("{prompt}");
            flush();
        }
        TextOut {
            show,
            bytes: Vec::new(),
            done: 0,
            text: String::new(),
        }
    }

    pub fn token(&mut self, piece: &[u8]) {
        self.bytes.extend_from_slice(piece);
        let ready = match std::str::from_utf8(&self.bytes[self.done..]) {
            Ok(s) => s.len(),
            // An incomplete character at the end waits for the next token; an invalid one is
            // passed on (and replaced) as the lossy text would be.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.bytes.len() - self.done,
        };
        self.emit(ready);
    }

    fn emit(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let chunk = String::from_utf8_lossy(&self.bytes[self.done..self.done + n]).into_owned();
        self.done += n;
        if self.show {
            print!("{chunk}");
            flush();
        }
        self.text.push_str(&chunk);
    }

    /// The whole generated text (a trailing incomplete character replaced).
    pub fn finish(mut self) -> String {
        self.emit(self.bytes.len() - self.done);
        if self.show {
            println!();
        }
        self.text
    }

    /// The text so far, without ending the line (a trailing incomplete character replaced).
    pub fn take(mut self) -> String {
        self.emit(self.bytes.len() - self.done);
        self.text
    }
}

fn flush() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// A trace of another routing shape than the model's, with what to do about it.
fn replay_advice(e: runtime::Error) -> anyhow::Error {
    match e {
        runtime::Error::TraceShape { .. } => anyhow::anyhow!(
            "{e}; replay a trace of a model with the same routing shape \
             (or synthesize one: `hypura trace synth`)"
        ),
        e => e.into(),
    }
}

/// A replayed trace must cover every token this run decodes.
fn check_replay_length(
    args: &Args,
    replay: Option<&traces::Trace>,
    prompt_len: usize,
) -> Result<()> {
    let (Some(t), Some(p)) = (replay, &args.replay_trace) else {
        return Ok(());
    };
    // The last sampled token is not decoded.
    let generated = args.n_predict.saturating_sub(1);
    let need = prompt_len + generated;
    if t.n_tokens() < need {
        bail!(
            "{}: the trace has {} tokens, but this run decodes up to {need} ({prompt_len} prompt + \
             {generated} generated); use a shorter prompt, a smaller -n or a longer trace",
            p.display(),
            t.n_tokens(),
        );
    }
    Ok(())
}

/// `--plain`: llama.cpp with its own defaults on `model_path`, no plan, no streaming; with
/// `replay`, the callback only forces routing.
fn run_plain(
    args: &Args,
    model_path: &Path,
    prompt_text: &str,
    replay: Option<traces::Trace>,
) -> Result<()> {
    let inventory = if args.plain_like.is_some() || replay.is_some() {
        Some(model::Inventory::from_gguf(model_path)?)
    } else {
        None
    };
    let mut params = match (&args.plain_like, &inventory) {
        (Some(path), Some(inv)) => {
            let plan = super::load_plan(path)?;
            runtime::placement::reference_params(&plan, inv).with_context(|| {
                format!(
                    "--plain-like {}: not a plan for {}",
                    path.display(),
                    model_path.display()
                )
            })?
        }
        _ => ModelParams::llama_defaults(),
    };
    if args.plain_load == Some(PlainLoad::Direct) {
        params.load_mode = runtime::LoadMode::DirectIo;
    }
    params.n_gpu_layers = args.n_gpu_layers;
    for o in &args.override_tensor {
        let Some((pattern, device)) = o
            .rsplit_once('=')
            .filter(|(p, d)| !p.is_empty() && !d.is_empty())
        else {
            bail!("-ot {o:?}: expected REGEX=DEVICE, e.g. exps=CPU");
        };
        params
            .overrides
            .push((pattern.to_string(), device.to_string()));
    }
    if let Some(n) = args.n_cpu_moe {
        params
            .overrides
            .extend(runtime::model::n_cpu_moe_overrides(n));
    }
    if args.no_repack {
        params.use_extra_bufts = false;
    }
    let model = Model::load(model_path, &params)
        .with_context(|| format!("cannot load {}", model_path.display()))?;
    let prompt = prompt_ids(&model, args, prompt_text)?;
    check_replay_length(args, replay.as_ref(), prompt.len())?;
    let streamer = match (replay, &args.replay_trace, &inventory) {
        (Some(trace), Some(path), Some(inv)) => Some(
            runtime::stream::Streamer::replaying(&inv.arch, trace)
                .map_err(replay_advice)
                .with_context(|| {
                    format!(
                        "cannot replay {} on {}",
                        path.display(),
                        model_path.display()
                    )
                })?,
        ),
        _ => None,
    };
    let (limit, limit_name) = match model.n_ctx_train() {
        0 => (range::MAX_TOKENS, "hypura's limit".to_string()),
        n => (u64::from(n), "the model's training context".to_string()),
    };
    // The reference computes with the KV cache the plan's run uses.
    let plan_kv = match &args.plain_like {
        Some(path) => Some(runtime::planned::kv_type(
            &super::load_plan(path)?.inputs.kv_type,
        )?),
        None => None,
    };
    let kv = |flag: Option<KvType>| {
        flag.map(GgmlType::from)
            .or(plan_kv)
            .unwrap_or(GgmlType::F16)
    };
    let params = ContextParams {
        n_ctx: context_size(args, prompt.len(), limit, &limit_name)?,
        n_threads: args.threads.count(),
        // A plan's host-memory tensors are computed on the CPU (a streaming run turns op_offload
        // off), so the reference keeps them there too.
        op_offload: args.plain_like.is_none(),
        type_k: kv(args.cache_type_k),
        type_v: kv(args.cache_type_v),
        flash_attn: args.flash_attn.into(),
    };
    let mut ctx = Context::new(&model, params, streamer)?;
    let sampling = sampling(args);
    let mut out = TextOut::new(!args.json, prompt_text);
    let g = ctx
        .generate_with(&prompt, args.n_predict, sampling, |t| {
            out.token(&model.token_piece(t));
            true
        })
        .map_err(generate_advice)?;
    let text = out.finish();
    let decode_tok_s = g.decode_tok_per_s();
    if args.json {
        let detail = RunDetail::Plain {
            peak_rss_bytes: runtime::mem::peak_rss_bytes(),
        };
        let report = RunReport::new(model_path.display().to_string(), "plain", &g, text, detail);
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
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

/// A generation error with the option that fixes it.
fn generate_advice(e: runtime::Error) -> anyhow::Error {
    match e {
        runtime::Error::ContextTooSmall { .. } => anyhow::anyhow!("{e}; pass a larger --ctx"),
        e => e.into(),
    }
}

/// The context in tokens: --ctx, or prompt + n rounded up to 256; refused, before llama.cpp
/// allocates its KV cache, beyond `limit` (the context the plan reserved memory for, or the
/// model's training context), which `limit_name` names.
fn context_size(args: &Args, prompt_len: usize, limit: u64, limit_name: &str) -> Result<u32> {
    let needed = (prompt_len as u64).saturating_add(args.n_predict as u64);
    if let Some(c) = args.ctx {
        if u64::from(c) > limit {
            bail!("--ctx {c} is larger than {limit_name} ({limit} tokens)");
        }
        return Ok(c);
    }
    if needed > limit {
        bail!(
            "the prompt ({prompt_len} tokens) and -n {} need {needed} tokens of context, more than \
             {limit_name} ({limit} tokens); lower -n",
            args.n_predict
        );
    }
    // needed <= limit <= MAX_TOKENS, so this fits u32.
    Ok(needed.div_ceil(256).saturating_mul(256).min(limit) as u32)
}

/// The plan's model file name, looked up next to the plan, then in the current directory.
pub fn default_model(plan_path: &Path, plan: &Plan) -> Result<PathBuf> {
    let name = &plan.inputs.model.name;
    if name.is_empty() {
        bail!(
            "{}: the plan names no model file; pass -m",
            plan_path.display()
        );
    }
    if let Some(p) = plan.model_file(plan_path) {
        return Ok(p);
    }
    bail!(
        "{}: model file {name:?} not found where it was solved{}, next to the plan or in the \
         current directory; pass -m",
        plan_path.display(),
        plan.inputs
            .model
            .path
            .as_ref()
            .map_or(String::new(), |p| format!(" ({p})"))
    )
}
