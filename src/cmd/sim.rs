//! `hypura sim`: simulate decoding a routing trace on a plan and a machine, token by token,
//! after prefilling a prompt of its first tokens in batches when `--prompt-len` is given.

use crate::choice::{PartitionArg, Prefetch, SimPolicy};
use crate::range;
use anyhow::{bail, Context, Result};
use model::units::human_bytes;
use place::Units;
use policy::cache::{Partition, Policy};
use sim::decode::{self, DecodePolicy, DecodeReport, ExpertPrefetch, Machine, Options};
use sim::prefill::{self, PrefillReport, Prompt};
use sim::{Planned, SimError};
use std::path::PathBuf;
use traces::Trace;

const DEFAULT_MODEL: &str = "mixtral-8x7b:q5_k_m";
/// The shipped profile `sim` uses without --hw (file name as the notes say it).
const DEFAULT_PROFILE: (&str, &str) = ("profiles/m1max.toml", "m1max");
#[derive(clap::Args)]
pub struct Args {
    /// Expert-routing trace (*.json or *.htrace); default: synthesized for the model (seed 1).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Hardware profile: a TOML file or a shipped profile's name (`hypura list profiles`);
    /// default: the --plan's own profile, else the shipped m1max.
    #[arg(long, value_name = "FILE|NAME")]
    pub hw: Option<String>,
    /// A plan.json from `hypura solve`; without it the plan is solved on the fly.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// A GGUF file or a catalog name (default: the plan's model, else mixtral-8x7b:q5_k_m).
    #[arg(long)]
    pub model: Option<String>,
    /// Expert cache policy: static (the plan's resident experts), lru, lfu, lfru, arc,
    /// pinned-lru (the plan's resident experts pinned, LRU for the rest) or belady (offline
    /// optimum).
    #[arg(long, value_enum, default_value_t = SimPolicy::Static)]
    pub policy: SimPolicy,
    /// Expert cache bytes for the streaming layers (8GiB, 500MB, 4096), at most 2^50 (default:
    /// the plan's expert cache).
    #[arg(long, value_parser = range::bytes(0, range::MAX_BYTES))]
    pub cache_bytes: Option<u64>,
    /// How a cache policy's bytes are shared: global (one cache over every streaming layer,
    /// as the runtime keeps it) or per-layer (each streaming layer an equal byte share). The
    /// Belady bound is computed with the same partitioning.
    #[arg(long, value_enum)]
    pub partition: Option<PartitionArg>,
    /// Tokens to decode, 1..=16777216: the trace's first N (default: all; 1024 when
    /// synthesized); with --prompt-len, the N after the prompt.
    #[arg(long, value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    pub tokens: Option<usize>,
    /// Prefill a prompt of the trace's first P tokens (1..=16777216), in batches, before
    /// decoding the tokens after it: adds time to first token, prefill tok/s, bytes and
    /// per-batch hit rates.
    #[arg(long, value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    pub prompt_len: Option<usize>,
    /// Prompt tokens per prefill batch, 1..=--prompt-len (default: llama.cpp's ubatch, 512,
    /// capped at --prompt-len).
    #[arg(long, requires = "prompt_len", value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    pub batch: Option<usize>,
    /// Layers ahead that streamed dense weights are read, 0..=512 (default: the plan's
    /// prefetch depth; 0 reads them on demand).
    #[arg(long, value_parser = range::int::<u32>(0..=range::MAX_LAYERS))]
    pub prefetch_depth: Option<u32>,
    /// Expert prefetch for the next MoE layer: none, coactivation (predicted from co-activation
    /// counts learned online) or oracle (the actual next selection; an upper bound).
    #[arg(long, value_enum, default_value_t = Prefetch::None)]
    pub expert_prefetch: Prefetch,
    /// Storage requests in flight, 1..=1024 (default: the plan's larger queue depth).
    #[arg(long, value_parser = range::int::<u32>(1..=range::MAX_QUEUE_DEPTH))]
    pub queue_depth: Option<u32>,
    /// Compute RAM- and NVMe-tier weights on a discrete GPU after copying them over the host
    /// link (as llama.cpp does for large batches) instead of on the CPU.
    #[arg(long)]
    pub host_weights_on_gpu: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write one record per (token, layer) — the metrics schema `hypura run --metrics` also
    /// writes — to this file; the extension picks the format: .parquet, .json or .jsonl.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite an existing --out file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(path) = &args.out {
        // Refuse before simulating, not after.
        metrics::RecordsFormat::from_path(path)?;
        super::refuse_existing(path, args.force, "--out path")?;
    }
    let prompt = args.prompt_len.map(|tokens| Prompt {
        tokens,
        batch: args.batch,
    });
    let prompt_tokens = args.prompt_len.unwrap_or(0);
    let expert_prefetch = ExpertPrefetch::from(args.expert_prefetch);

    let mut notes = Vec::new();
    let plan_file = match &args.plan {
        Some(p) => Some(super::load_plan(p)?),
        None => None,
    };
    let plan_profile = plan_file.as_ref().and_then(|p| p.inputs.profile.clone());
    let hw = match (&args.hw, plan_profile) {
        (Some(p), _) => crate::machine::named(p)?,
        (None, Some(p)) => {
            notes.push(format!("hardware: {} (the plan's profile)", p.name));
            p
        }
        (None, None) => {
            notes.push(format!(
                "hardware: {} (default, embedded)",
                DEFAULT_PROFILE.0
            ));
            hw::shipped::find(DEFAULT_PROFILE.1)
                .expect("m1max is shipped")
                .load()?
        }
    };
    if args.host_weights_on_gpu && hw.host_link.is_none() {
        bail!("--host-weights-on-gpu needs a discrete GPU (a profile with [host_link])");
    }
    let model = match (&args.model, &plan_file) {
        (Some(m), _) => m.clone(),
        (None, Some(p)) => {
            // The plan names its model file: where it was solved, next to the plan or in the
            // current directory (as `hypura run` looks), else a catalog name.
            let file = args.plan.as_deref().and_then(|path| p.model_file(path));
            match file {
                Some(f) => f.display().to_string(),
                None => p.inputs.model.name.clone(),
            }
        }
        (None, None) => {
            notes.push(format!("model: {DEFAULT_MODEL} (default, catalog)"));
            DEFAULT_MODEL.to_string()
        }
    };
    let model = crate::models::locate(&model)?;
    let inv = model::load_model(&model).with_context(|| match (&args.model, &args.plan) {
        (None, Some(plan)) => format!(
            "{}: the plan's model {model:?} is neither next to the plan, in the current \
             directory nor in the catalog; pass --model",
            plan.display()
        ),
        (Some(_), _) => format!("--model {model}"),
        (None, None) => format!("the default model {model}"),
    })?;
    let dense = !inv.arch.is_moe();
    let trace = match &args.trace {
        Some(p) if dense => bail!(
            "--trace {}: {model} ({}) has no routed experts, so no routing trace applies; drop --trace (a dense model is simulated without one)",
            p.display(),
            inv.arch.arch
        ),
        None if dense => {
            let n = prompt_tokens + args.tokens.unwrap_or(1024);
            notes.push(format!(
                "trace: none ({model} is dense: {n} tokens, every layer's FFN)"
            ));
            Trace::without_routing(inv.arch.arch.clone(), n)
        }
        Some(p) => {
            let full = traces::load(p)?;
            if let Some(pr) = &prompt {
                pr.batch_for(full.n_tokens())
                    .with_context(|| format!("--prompt-len {}: {}", pr.tokens, p.display()))?;
            }
            let n = args
                .tokens
                .map_or(usize::MAX, |n| n.saturating_add(prompt_tokens));
            decode::first_tokens(&full, n)?
        }
        None => {
            let n = prompt_tokens + args.tokens.unwrap_or(1024);
            let t = synthesize(&inv, n).with_context(|| {
                format!("cannot synthesize a trace of {n} tokens (--prompt-len + --tokens)")
            })?;
            notes.push(format!(
                "trace: synthesized for {model}, {} tokens, seed {} (default; pass --trace for a real one)",
                t.n_tokens(),
                sim::default_trace::SEED
            ));
            t
        }
    };
    let rates = decode::expert_rates(&trace);
    let planned = match plan_file {
        Some(plan) => {
            let origin = args
                .plan
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string());
            let planned =
                Planned::from_plan(plan, &inv, &hw, &rates).map_err(|e| plan_advice(e, &origin))?;
            notes.push(format!(
                "plan: {origin} ({}, {:.3} tok/s predicted with the expert use it was solved for)",
                planned.plan.mode.name(),
                planned.plan.prediction.tok_per_s
            ));
            planned
        }
        None => {
            let planned =
                crate::progress::spinner("solving a plan", || Planned::solve(&inv, &hw, rates))
                    .with_context(|| format!("cannot place {model} on {}", hw.name))?;
            notes.push(format!(
                "plan: solved on the fly with the trace's expert use ({}, {:.3} tok/s predicted)",
                planned.plan.mode.name(),
                planned.plan.prediction.tok_per_s
            ));
            planned
        }
    };
    let plan = &planned.plan;
    let placement = planned.placement();
    let capacity_bytes = args.cache_bytes.unwrap_or(plan.expert_cache.bytes);
    let partition = args.partition.map_or(Partition::Global, Partition::from);
    let policy = decode_policy(args.policy, args.cache_bytes, capacity_bytes, partition)?;
    if policy == DecodePolicy::Static && args.partition.is_some() {
        bail!("--partition does not apply to --policy static (the plan's own cache); pick lru, lfu, lfru, arc, pinned-lru or belady");
    }
    let machine = Machine::from_profile(&hw);
    let opts = Options {
        prefetch_depth: args.prefetch_depth.unwrap_or(plan.prefetch_depth),
        expert_prefetch,
        queue_depth: args.queue_depth,
        host_weights_on_gpu: args.host_weights_on_gpu,
        // Records are kept only to be written: a long run summarises them as it goes.
        keep_records: args.out.is_some(),
    };
    // The simulation, with the prompt's prefill first when there is one.
    let simulate = |policy: &DecodePolicy, keep_records: bool| -> Result<Simulated> {
        let opts = Options {
            keep_records,
            ..opts.clone()
        };
        Ok(match &prompt {
            None => {
                let run = decode::simulate(&placement, &machine, &trace, policy, &opts)?;
                (None, run.report, run.records)
            }
            Some(pr) => {
                let run =
                    prefill::simulate_request(&placement, &machine, &trace, policy, &opts, pr)?;
                (Some(run.prefill), run.decode, run.records)
            }
        })
    };
    let (prefill, report, records) =
        crate::progress::spinner("simulating", || simulate(&policy, opts.keep_records))?;
    if let Some(path) = &args.out {
        metrics::write_records(path, &records, args.force)?;
    }
    let bound = match policy {
        // Without routed experts there is nothing for a cache policy to decide.
        _ if dense => None,
        DecodePolicy::Cache {
            policy: Policy::Belady,
            ..
        } => None,
        _ => Some(crate::progress::spinner(
            "simulating Belady's bound",
            || {
                simulate(
                    &DecodePolicy::Cache {
                        policy: Policy::Belady,
                        capacity_bytes,
                        partition,
                    },
                    false,
                )
            },
        )?),
    };
    let (bound_prefill, bound) = match bound {
        Some((p, r, _)) => (p, Some(r)),
        None => (None, None),
    };
    if args.json {
        let report = sim::SimReport::new(
            model,
            hw.name.clone(),
            plan.prediction.tok_per_s,
            report,
            bound,
            prefill.map(|p| (p, bound_prefill)),
        );
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for n in &notes {
            println!("{n}");
        }
        if let Some(p) = &prefill {
            print!("{}", render_prefill(p, bound_prefill.as_ref()));
        }
        print!(
            "{}",
            render(&report, bound.as_ref(), plan.prediction.tok_per_s, dense)
        );
    }
    Ok(())
}

/// A simulation's prefill summary (with a prompt), decode summary and records.
type Simulated = (
    Option<PrefillReport>,
    DecodeReport,
    Vec<metrics::TokenLayerRecord>,
);

/// The decode policy `--policy` names; `--cache-bytes` applies to cache policies only.
fn decode_policy(
    policy: SimPolicy,
    given: Option<u64>,
    capacity_bytes: u64,
    partition: Partition,
) -> Result<DecodePolicy> {
    let Some(cache) = policy.cache() else {
        if given.is_some() {
            bail!(
                "--cache-bytes does not apply to --policy static (the plan's own cache); pick lru, lfu, arc, pinned-lru or belady"
            );
        }
        return Ok(DecodePolicy::Static);
    };
    Ok(DecodePolicy::Cache {
        policy: cache.policy(),
        capacity_bytes,
        partition,
    })
}

/// A trace of the model's routing shape from the fixed default synthesizer parameters.
fn synthesize(inv: &model::Inventory, tokens: usize) -> Result<Trace> {
    let units = Units::build(inv, None)?;
    Ok(sim::default_trace::synthesize(
        &units,
        &inv.arch.arch,
        tokens,
    )?)
}

/// A plan that does not apply, with the flag that fixes it.
fn plan_advice(e: SimError, origin: &str) -> anyhow::Error {
    use plan::{CheckError, Mismatch};
    let advice = match &e {
        SimError::Plan(CheckError::Mismatch(Mismatch::Profile { .. })) => {
            "pass its profile with --hw or re-run `hypura solve`"
        }
        SimError::Plan(CheckError::Mismatch(_)) => {
            "pass the plan's model with --model or re-run `hypura solve`"
        }
        _ => "fix the plan file or re-run `hypura solve`",
    };
    anyhow::Error::new(e).context(format!("{origin}: {advice}"))
}

fn render_prefill(p: &PrefillReport, bound: Option<&PrefillReport>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nprefill: {} prompt tokens in {} batch(es) of {}",
        p.prompt_tokens, p.batches, p.batch_tokens
    );
    let _ = writeln!(
        s,
        "  ttft      {:.3} ms ({:.1} prompt tok/s)",
        p.ttft_s * 1e3,
        p.tok_per_s
    );
    let _ = writeln!(
        s,
        "  time      compute {:.3} ms + waiting for I/O {:.3} ms + link {:.3} ms; storage busy {:.1}%",
        p.compute_s * 1e3,
        p.io_wait_s * 1e3,
        p.link_s * 1e3,
        p.storage_utilisation * 100.0
    );
    let _ = writeln!(
        s,
        "  experts   hit rate {:.2}% of the distinct experts each batch needs; {} read",
        p.hit_rate * 100.0,
        human_bytes(p.bytes_read)
    );
    if let Some(b) = bound {
        let _ = writeln!(
            s,
            "  bound     belady (same cache bytes): hit rate {:.2}%, ttft {:.3} ms",
            b.hit_rate * 100.0,
            b.ttft_s * 1e3
        );
    }
    let _ = writeln!(s, "  per batch (hit rate):");
    for chunk in p.per_batch.chunks(8) {
        let cells: Vec<String> = chunk
            .iter()
            .map(|b| format!("B{:<3} {:>6.2}%", b.batch, b.hit_rate * 100.0))
            .collect();
        let _ = writeln!(s, "    {}", cells.join("   "));
    }
    s
}

fn render(
    r: &DecodeReport,
    bound: Option<&DecodeReport>,
    solver_tok_per_s: f64,
    dense: bool,
) -> String {
    use std::fmt::Write;
    let size = |b: f64| human_bytes(b.round() as u64);
    let ms = |s: f64| s * 1e3;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\ndecode: {} tokens, policy {}, expert cache {}",
        r.tokens,
        r.policy,
        human_bytes(r.cache_bytes)
    );
    let _ = writeln!(
        s,
        "  speed     {:.3} tok/s (solver predicted {:.3}); per token p50 {:.3} ms, p99 {:.3} ms",
        r.tok_per_s,
        solver_tok_per_s,
        ms(r.token_s_p50),
        ms(r.token_s_p99)
    );
    let _ = writeln!(
        s,
        "  time      compute {:.3} ms + waiting for I/O {:.3} ms + link {:.3} ms per token; storage busy {:.1}%",
        ms(r.compute_s_per_token),
        ms(r.io_wait_s_per_token),
        ms(r.link_s_per_token),
        r.storage_utilisation * 100.0
    );
    if dense {
        let _ = writeln!(
            s,
            "  streaming {} layer(s) prefetched ahead; {} read per token (a dense model: no expert cache)",
            r.prefetch_depth,
            size(r.bytes_read_per_token)
        );
        return s;
    }
    let _ = writeln!(
        s,
        "  prefetch  dense {} layer(s) ahead; experts {}: {:.2}% of accesses prefetched in time, {} wasted per token",
        r.prefetch_depth,
        r.expert_prefetch,
        r.prefetch_hit_rate * 100.0,
        size(r.prefetch_wasted_bytes_per_token)
    );
    let _ = writeln!(
        s,
        "  experts   hit rate {:.2}%; {} read per token",
        r.hit_rate * 100.0,
        size(r.bytes_read_per_token)
    );
    if let Some(b) = bound {
        let _ = writeln!(
            s,
            "  bound     belady (same cache bytes): hit rate {:.2}%, {:.3} tok/s",
            b.hit_rate * 100.0,
            b.tok_per_s
        );
    }
    let _ = writeln!(s, "  per layer (hit rate, expert MiB read per token):");
    for chunk in r.layers.chunks(4) {
        let cells: Vec<String> = chunk
            .iter()
            .map(|l| {
                format!(
                    "L{:<3} {:>6.2}% {:>7.2}",
                    l.layer,
                    l.hit_rate * 100.0,
                    l.bytes_read_per_token / f64::from(1u32 << 20)
                )
            })
            .collect();
        let _ = writeln!(s, "    {}", cells.join("   "));
    }
    s
}
