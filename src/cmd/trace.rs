//! `hypura trace`: convert, import and summarize expert-routing traces (the `traces` crate).

use crate::choice::ImportFrom;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use traces::import::{Options, Source};
use traces::stats::StatsOptions;
use traces::synth::{LayerParams, SynthParams};
use traces::{ModelFacts, Trace};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Convert between JSON (*.json) and binary (*.htrace) traces; the extensions pick the forms.
    Convert {
        input: PathBuf,
        output: PathBuf,
        /// Overwrite OUTPUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Import another tool's routing records as a canonical trace.
    Import {
        /// Source format: deepseek-csv, switch-json, vllm-jsonl or vllm-routed.
        #[arg(long = "from", value_enum)]
        from: ImportFrom,
        /// File or directory to import.
        path: PathBuf,
        /// Output trace (*.json or *.htrace).
        #[arg(short, long)]
        output: PathBuf,
        /// Routed experts per layer (required for vLLM records, which do not state it).
        #[arg(long)]
        n_expert: Option<u32>,
        /// Experts selected per token and layer (default: from the records).
        #[arg(long)]
        top_k: Option<u32>,
        /// MoE layer block indices, e.g. `1-26` or `1,3,5` (default: from the records).
        #[arg(long)]
        layers: Option<String>,
        /// Architecture name to record (e.g. deepseek2, mixtral).
        #[arg(long)]
        arch: Option<String>,
        /// Always-active shared experts per layer to record.
        #[arg(long)]
        shared_experts: Option<u32>,
        /// Overwrite OUTPUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Locality statistics: popularity, reuse distance, co-activation, working set.
    Stats {
        trace: PathBuf,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Co-activation pairs to keep per layer.
        #[arg(long, default_value_t = 5)]
        top_pairs: usize,
        /// Working-set window sizes in tokens, comma-separated.
        #[arg(long, default_value = "1,16,64,256,1024", value_delimiter = ',')]
        windows: Vec<usize>,
        /// LRU cache sizes as fractions of all routed experts, comma-separated.
        #[arg(long, default_value = "0.1,0.25,0.5", value_delimiter = ',')]
        lru: Vec<f64>,
    },
    /// Fit synthesizer parameters to a trace; writes them as JSON for `synth --params`.
    Fit {
        trace: PathBuf,
        /// Output parameters (*.json).
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Overwrite OUTPUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Generate a synthetic trace, from fitted parameters or from a model shape and knobs.
    Synth(SynthArgs),
}

#[derive(clap::Args)]
struct SynthArgs {
    /// Output trace (*.json or *.htrace).
    #[arg(short, long)]
    output: PathBuf,
    /// Parameters written by `hypura trace fit` (the shape and knob flags are then ignored).
    #[arg(long)]
    params: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Routed experts per MoE layer.
    #[arg(long, default_value_t = 8)]
    experts: u32,
    #[arg(long, default_value_t = 2)]
    top_k: u32,
    /// MoE layer block indices, e.g. `0-31`.
    #[arg(long, default_value = "0-31")]
    layers: String,
    #[arg(long, default_value = "mixtral")]
    arch: String,
    /// Sequences to generate (with --params: replaces the fitted sequence lengths).
    #[arg(long)]
    sequences: Option<usize>,
    /// Tokens per sequence (with --params: replaces the fitted sequence lengths).
    #[arg(long)]
    tokens: Option<usize>,
    /// Zipf exponent of expert popularity (0 = uniform).
    #[arg(long, default_value_t = 0.5)]
    skew: f64,
    /// Probability of keeping each of the previous token's experts.
    #[arg(long, default_value_t = 0.3)]
    reuse: f64,
    /// Probability that a slot comes from the token's cluster profile (inter-layer affinity).
    #[arg(long, default_value_t = 0.5)]
    affinity: f64,
    /// Per-sequence drift of expert popularity.
    #[arg(long, default_value_t = 0.5)]
    drift: f64,
    /// Per-sequence drift of the token clusters.
    #[arg(long, default_value_t = 0.5)]
    cluster_drift: f64,
    /// Overwrite OUTPUT if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Convert {
            input,
            output,
            force,
        } => {
            traces::Form::from_extension(&output)?;
            super::refuse_existing(&output, force, "OUTPUT")?;
            let trace = traces::load(&input)?;
            traces::save(&trace, &output, force)?;
            println!("{}", summary(&trace, &output));
        }
        Command::Import {
            from,
            path,
            output,
            n_expert,
            top_k,
            layers,
            arch,
            shared_experts,
            force,
        } => {
            let source = Source::from(from);
            // Fail on a bad output name before a possibly long import.
            traces::Form::from_extension(&output)?;
            super::refuse_existing(&output, force, "-o")?;
            let moe_layers = layers
                .as_deref()
                .map(parse_layers)
                .transpose()
                .context("--layers")?;
            let opts = Options {
                architecture: arch,
                n_expert,
                top_k,
                moe_layers,
                n_shared_expert: shared_experts,
            };
            let trace = traces::import::import(source, &path, &opts)?;
            traces::save(&trace, &output, force)?;
            println!("{}", summary(&trace, &output));
        }
        Command::Stats {
            trace,
            json,
            top_pairs,
            windows,
            lru,
        } => {
            let t = traces::load(&trace)?;
            let stats = traces::stats::compute(
                &t,
                &StatsOptions {
                    top_pairs,
                    windows,
                    lru_fractions: lru,
                },
            );
            if json {
                let v = super::stamped("hypura.trace-stats/1", serde_json::to_value(&stats)?);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", traces::stats::render(&stats));
            }
        }
        Command::Fit {
            trace,
            output,
            seed,
            force,
        } => {
            super::refuse_existing(&output, force, "-o")?;
            let t = traces::load(&trace)?;
            let report = traces::synth::fit(&t, seed).map_err(anyhow::Error::msg)?;
            let json = serde_json::to_string_pretty(&report.params)?;
            outfile::write_bytes(&output, force, (json + "\n").as_bytes())?;
            print_fit(&report);
            println!("wrote {}", output.display());
        }
        Command::Synth(a) => synth(a)?,
    }
    Ok(())
}

fn print_fit(r: &traces::synth::FitReport) {
    println!(
        "{:>5} {:>15} {:>15} {:>15} {:>15}",
        "layer", "entropy", "prev reuse", "first use", "adjacent MI"
    );
    println!(
        "{:>5} {:>15} {:>15} {:>15} {:>15}",
        "", "real / synth", "real / synth", "real / synth", "real / synth"
    );
    for (t, a) in r.target.iter().zip(&r.achieved) {
        println!(
            "{:>5} {:>7.4}/{:<7.4} {:>7.4}/{:<7.4} {:>7.4}/{:<7.4} {:>7.4}/{:<7.4}",
            t.layer,
            t.entropy_norm,
            a.entropy_norm,
            t.prev_token_reuse,
            a.prev_token_reuse,
            t.first_use_share,
            a.first_use_share,
            t.affinity_mi_bits,
            a.affinity_mi_bits
        );
    }
    let (real, syn) = r.working_set;
    println!(
        "working set of {} tokens (share of experts): real {real:.4}, synthetic {syn:.4}",
        traces::synth::WINDOW
    );
}

fn synth(a: SynthArgs) -> Result<()> {
    traces::Form::from_extension(&a.output)?;
    super::refuse_existing(&a.output, a.force, "-o")?;
    let lengths = match (a.sequences, a.tokens) {
        (Some(s), Some(t)) => Some(vec![t; s]),
        (None, None) => None,
        _ => bail!("give --sequences and --tokens together"),
    };
    let params = match &a.params {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
            let mut p: SynthParams = serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column())
            })?;
            if let Some(l) = lengths {
                p.sequence_lengths = l;
            }
            p
        }
        None => {
            let model = ModelFacts {
                architecture: a.arch.clone(),
                moe_layers: parse_layers(&a.layers).context("--layers")?,
                n_expert: a.experts,
                top_k: a.top_k,
                n_shared_expert: 0,
            };
            let layer = LayerParams {
                skew: a.skew,
                reuse: a.reuse,
                affinity: a.affinity,
                drift: a.drift,
            };
            let mut p = SynthParams::uniform(model, lengths.unwrap_or_else(|| vec![256; 8]), layer);
            p.cluster_drift = a.cluster_drift;
            p
        }
    };
    let where_ = a.params.as_ref().map_or_else(
        || "synth arguments".to_string(),
        |p| p.display().to_string(),
    );
    let trace =
        traces::synth::synthesize(&params, a.seed).map_err(|e| anyhow::anyhow!("{where_}: {e}"))?;
    traces::save(&trace, &a.output, a.force)?;
    println!("{}", summary(&trace, &a.output));
    Ok(())
}

fn summary(t: &Trace, out: &std::path::Path) -> String {
    let m = t.model();
    format!(
        "wrote {}: {} sequences, {} tokens, {} MoE layers, {} selections ({} expert ids), {} experts, top-{}",
        out.display(),
        t.n_sequences(),
        t.n_tokens(),
        m.n_layers(),
        t.n_selections(),
        t.n_expert_ids(),
        m.n_expert,
        m.top_k
    )
}

/// Parses `1-26`, `1,3,5` or a mix (`0,2-4`) into block indices.
fn parse_layers(s: &str) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |x: &str| {
            x.trim()
                .parse::<u32>()
                .with_context(|| format!("{x:?} is not a layer index"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    bail!("range {part:?} runs backwards");
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    if out.is_empty() {
        bail!("no layers given");
    }
    Ok(out)
}
