//! `hypura trace`: convert, import and summarize expert-routing traces (the `traces` crate).

use crate::choice::ImportFrom;
use crate::range;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use traces::import::{ImportError, JsonlError, Options, Source};
use traces::stats::StatsOptions;
use traces::synth::{LayerParams, SynthParams};
use traces::{ModelFacts, Trace, TraceError, MAX_BLOCKS, MAX_EXPERTS};

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
        /// Routed experts per layer, 1..=65536 (required for vLLM records, which do not state
        /// it).
        #[arg(long, value_parser = range::int::<u32>(1..=u64::from(MAX_EXPERTS)))]
        n_expert: Option<u32>,
        /// Experts selected per token and layer, 1..=n_expert (default: from the records).
        #[arg(long, value_parser = range::int::<u32>(1..=u64::from(MAX_EXPERTS)))]
        top_k: Option<u32>,
        /// MoE layer block indices below 512, e.g. `1-26` or `1,3,5` (default: from the
        /// records).
        #[arg(long)]
        layers: Option<String>,
        /// Architecture name to record (e.g. deepseek2, mixtral).
        #[arg(long)]
        arch: Option<String>,
        /// Always-active shared experts per layer to record, 0..=65536.
        #[arg(long, value_parser = range::int::<u32>(0..=u64::from(MAX_EXPERTS)))]
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
        /// Co-activation pairs to keep per layer, 0..=10000.
        #[arg(long, default_value_t = 5, value_parser = range::int::<usize>(0..=10_000))]
        top_pairs: usize,
        /// Working-set window sizes in tokens (each 1..=16777216), comma-separated.
        #[arg(long, default_value = "1,16,64,256,1024", value_delimiter = ',',
              value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
        windows: Vec<usize>,
        /// LRU cache sizes as fractions of all routed experts (each in 0..=1), comma-separated.
        #[arg(long, default_value = "0.1,0.25,0.5", value_delimiter = ',',
              value_parser = range::float(0.0, 1.0))]
        lru: Vec<f64>,
    },
    /// Fit synthesizer parameters to a trace; writes them as JSON for `synth --params`.
    Fit {
        trace: PathBuf,
        /// Output parameters (a *.json name).
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
    /// Routed experts per MoE layer, 1..=65536.
    #[arg(long, default_value_t = 8, value_parser = range::int::<u32>(1..=u64::from(MAX_EXPERTS)))]
    experts: u32,
    /// Experts selected per token and layer, 1..=--experts.
    #[arg(long, default_value_t = 2, value_parser = range::int::<u32>(1..=u64::from(MAX_EXPERTS)))]
    top_k: u32,
    /// MoE layer block indices below 512, e.g. `0-31`.
    #[arg(long, default_value = "0-31")]
    layers: String,
    #[arg(long, default_value = "mixtral")]
    arch: String,
    /// Sequences to generate, 1..=1048576 (with --params: replaces the fitted sequence
    /// lengths). The whole trace holds at most 2^30 expert ids.
    #[arg(long, value_parser = range::int::<usize>(1..=1 << 20))]
    sequences: Option<usize>,
    /// Tokens per sequence, 1..=16777216 (with --params: replaces the fitted sequence lengths).
    #[arg(long, value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    tokens: Option<usize>,
    /// Zipf exponent of expert popularity, 0..=100 (0 = uniform).
    #[arg(long, default_value_t = 0.5, value_parser = range::float(0.0, 100.0))]
    skew: f64,
    /// Probability of keeping each of the previous token's experts, 0..=1.
    #[arg(long, default_value_t = 0.3, value_parser = range::float(0.0, 1.0))]
    reuse: f64,
    /// Probability that a slot comes from the token's cluster profile (inter-layer affinity),
    /// 0..=1.
    #[arg(long, default_value_t = 0.5, value_parser = range::float(0.0, 1.0))]
    affinity: f64,
    /// Per-sequence drift of expert popularity, 0..=10.
    #[arg(long, default_value_t = 0.5, value_parser = range::float(0.0, 10.0))]
    drift: f64,
    /// Per-sequence drift of the token clusters, 0..=10.
    #[arg(long, default_value_t = 0.5, value_parser = range::float(0.0, 10.0))]
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
            let trace = crate::progress::spinner(format!("importing {}", path.display()), || {
                traces::import::import(source, &path, &opts)
            })
            .map_err(import_advice)?;
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
            if output.extension().and_then(|e| e.to_str()) != Some("json") {
                bail!(
                    "-o {}: fitted parameters are JSON; name the file *.json",
                    output.display()
                );
            }
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
    let mut t = crate::table::Table::new([
        "layer",
        "entropy real/synth",
        "prev reuse real/synth",
        "first use real/synth",
        "adjacent MI real/synth",
    ]);
    let pair = |real: f64, synth: f64| format!("{real:.4}/{synth:.4}");
    for (want, got) in r.target.iter().zip(&r.achieved) {
        t.row([
            want.layer.to_string(),
            pair(want.entropy_norm, got.entropy_norm),
            pair(want.prev_token_reuse, got.prev_token_reuse),
            pair(want.first_use_share, got.first_use_share),
            pair(want.affinity_mi_bits, got.affinity_mi_bits),
        ]);
    }
    print!("{}", t.render());
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
                infile::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
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

/// An import error in the words of this command: the library speaks of the facts the user
/// gave, this names the options that gave them.
fn import_advice(e: TraceError) -> anyhow::Error {
    let TraceError::Import { at, problem } = &e else {
        return e.into();
    };
    let msg = match &**problem {
        ImportError::NeedsExpertCount { .. } => format!("{at}: {problem}; pass --n-expert N"),
        ImportError::LayerCount {
            given,
            found,
            found_in,
        } => format!("{at}: --layers names {given} layers but {found_in} {found}"),
        ImportError::Jsonl(JsonlError::UnknownLayer { layer, given }) => {
            format!("{at}: unknown layer {layer}; --layers lists {given:?}")
        }
        _ => return e.into(),
    };
    anyhow::Error::msg(msg)
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
        // Bounded before a range is expanded: `0-4294967295` must not allocate 16 GiB.
        let num = |x: &str| {
            let i = x
                .trim()
                .parse::<u32>()
                .with_context(|| format!("{x:?} is not a layer index"))?;
            if i >= MAX_BLOCKS {
                bail!(
                    "layer index {i} is too large: llama.cpp models have at most {MAX_BLOCKS} blocks (0..={})",
                    MAX_BLOCKS - 1
                );
            }
            Ok(i)
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
