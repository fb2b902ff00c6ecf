//! `hypura solve`: place a model's tensors on a machine's GPU, RAM and NVMe and write plan.json.

use crate::choice::KvType;
use crate::range;
use anyhow::{Context, Result};
use place::{self, Headroom, IlpOptions, Method, PlaceError, Short, Shortfall, SolveOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Hardware profile: a TOML file (from `hypura profile`), or a shipped profile's name
    /// (`hypura list profiles`: m1max, m4-16g, h100, h200, ...); default: this machine's
    /// profile, measured once by `hypura profile`.
    #[arg(long, value_name = "FILE|NAME")]
    pub hw: Option<String>,
    /// A GGUF file or a catalog name such as `mixtral-8x7b:q5_k_m`.
    #[arg(long)]
    pub model: String,
    /// Expert-routing trace (*.json or *.htrace) for expert use frequencies; uniform without it.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Context length the KV cache is sized for, 1..=16777216 tokens.
    #[arg(long, default_value_t = 4096, value_parser = range::int::<u64>(1..=range::MAX_TOKENS))]
    pub ctx: u64,
    /// KV cache type.
    #[arg(long, value_enum, ignore_case = true, default_value_t = KvType::F16)]
    pub kv_type: KvType,
    /// RAM the plan may use, after the profile's OS reserve (3GiB, 500MB): a plan for a
    /// machine with less memory free than the profile's, e.g. under `bench --leave-gib`
    /// (default: the profile's).
    #[arg(long, value_name = "SIZE", value_parser = range::bytes(1, range::MAX_BYTES))]
    pub ram_budget: Option<u64>,
    /// GPU memory the plan may use (its working set; default: the profile's).
    #[arg(long, value_name = "SIZE", value_parser = range::bytes(1, range::MAX_BYTES))]
    pub gpu_budget: Option<u64>,
    /// Compute buffer bytes (1GiB, 500MB, 4096), at most 2^50 (default: estimated from the
    /// model and --ctx).
    #[arg(long, value_parser = range::bytes(0, range::MAX_BYTES))]
    pub compute_buffer: Option<u64>,
    /// Prompt tokens per request, 0..=16777216: minimise prefill of this prompt (one batch)
    /// plus one decode step instead of decode time alone, and report predicted prefill speed.
    /// 0: decode only.
    #[arg(long, default_value_t = 0, value_parser = range::int::<u64>(0..=range::MAX_TOKENS))]
    pub prompt_len: u64,
    /// Use only the greedy (frequency / size) baseline instead of the ILP.
    #[arg(long)]
    pub greedy: bool,
    /// ILP time limit, seconds, 0.001..=86400.
    #[arg(long, default_value_t = 10.0, value_parser = range::float(1e-3, 86_400.0))]
    pub time_limit: f64,
    /// Relative MIP gap at which the ILP may stop, 0..=0.99.
    #[arg(long, default_value_t = 5e-3, value_parser = range::float(0.0, 0.99))]
    pub mip_gap: f64,
    /// Where to write the plan (default: print it, unless --explain).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Explain the plan: capacities, what binds, where each group went, the solver's gap.
    #[arg(long)]
    pub explain: bool,
    /// Also print `llama-args`: the `-ngl`/`-ot` arguments that make stock llama.cpp place
    /// tensors as the plan does (stdout), and what llama.cpp cannot express (stderr).
    #[arg(long, value_name = "WHAT", value_parser = ["llama-args"])]
    pub emit: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(out) = &args.output {
        super::refuse_existing(out, args.force, "-o")?;
    }
    let hw = crate::machine::resolve(args.hw.as_deref())?;
    let hw = hw
        .with_budget(args.ram_budget, None)
        .context("--ram-budget")?
        .with_budget(None, args.gpu_budget)
        .context("--gpu-budget")?;
    let inv = model::load_model(&crate::models::locate(&args.model)?)?;
    let trace = match &args.trace {
        Some(p) => Some(traces::load(p)?),
        None => None,
    };
    let rates = trace.as_ref().map(sim::decode::expert_rates);
    let trace_hash = match &args.trace {
        Some(p) => Some(super::file_hash(p)?),
        None => None,
    };
    let opts = SolveOptions {
        headroom: Headroom {
            ctx: args.ctx,
            kv_type: args.kv_type.into(),
            compute_buffer_bytes: args.compute_buffer,
            ..Headroom::default()
        },
        rates,
        trace_hash,
        method: if args.greedy {
            Method::Greedy
        } else {
            Method::Ilp
        },
        ilp: IlpOptions {
            time_limit_s: args.time_limit,
            mip_rel_gap: args.mip_gap,
            ..IlpOptions::default()
        },
        prompt_len: args.prompt_len,
    };
    let solved = crate::progress::spinner(format!("solving {} on {}", args.model, hw.name), || {
        place::solve(&inv, &hw, &opts)
    })
    .map_err(place_advice)
    .with_context(|| format!("cannot place {} on {}", args.model, hw.name))?;
    if let Some(out) = &args.output {
        outfile::write_bytes(out, args.force, solved.plan.to_json().as_bytes())?;
    }
    if args.explain {
        print!("{}", place::explain::render(&solved));
        if let Some(t) = &trace {
            let slots: u32 = solved
                .assignment
                .experts
                .iter()
                .map(|s| s.gpu + s.ram)
                .sum();
            if slots > 0 && solved.plan.expert_cache.bytes > 0 {
                let lru = traces::stats::lru_hit_rate(t, slots as usize);
                println!(
                    "  (an LRU cache of the same {} experts would hit {:.1}% on this trace)",
                    slots,
                    lru.hit_rate * 100.0
                );
            }
        }
    } else if args.output.is_none() && args.emit.is_none() {
        print!("{}", solved.plan.to_json());
    }
    if args.emit.is_some() {
        let l = solved.plan.llama_args();
        let quoted: Vec<String> = l.args.iter().map(|a| shell_quote(a)).collect();
        println!("{}", quoted.join(" "));
        for c in &l.cannot {
            eprintln!("hypura solve: llama.cpp cannot express this: {c}");
        }
    }
    Ok(())
}

/// `arg` as one POSIX shell word: bare when it is plain, else single-quoted.
fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_=.,/:+".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// A placement error with the options that fix it: a context whose KV cache and compute
/// buffer do not fit is this command's --ctx and --kv-type.
fn place_advice(e: PlaceError) -> anyhow::Error {
    match &e {
        PlaceError::Infeasible(Shortfall {
            short: Short::Headroom { .. },
            ..
        }) => anyhow::anyhow!("{e}; lower --ctx or choose a smaller --kv-type"),
        _ => e.into(),
    }
}
