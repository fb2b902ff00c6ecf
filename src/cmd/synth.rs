//! `hypura synth`: writes a llama.cpp-loadable GGUF with random weights for a chosen shape.

use crate::choice::{SynthArch, SynthPreset, WeightType};
use crate::range;
use gguf::GgmlType;
use model::units::human_bytes;
use std::path::PathBuf;
use std::time::Instant;
use synth::presets::{self, Family, Overrides, ShapeError};
use synth::{SynthError, SynthSpec};

#[derive(clap::Args)]
#[command(after_help = preset_help())]
pub struct Args {
    /// File to write (refused if it exists, unless --force).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Starting shape (listed below); the other options override its values.
    #[arg(long, value_enum, ignore_case = true, hide_possible_values = true)]
    pub preset: Option<SynthPreset>,
    /// Architecture. Without --preset, starts from that architecture's tiny preset.
    #[arg(long, value_enum, ignore_case = true)]
    pub arch: Option<SynthArch>,
    /// Weight type of the 2-D/3-D tensors (norms and routers stay f32).
    #[arg(long = "type", value_enum, ignore_case = true, default_value_t = WeightType::Q4_0)]
    pub weight_type: WeightType,
    /// Seed of the random weights: the same arguments and seed give a byte-identical file.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Aim for this file size (e.g. 2GiB, 500MB): picks layers and width (FFN and expert widths
    /// scale with it). Fix one of them with --layers or --embd.
    #[arg(long)]
    pub size: Option<String>,
    /// Transformer layers, 1..=512 (llama.cpp's limit).
    #[arg(long, value_parser = range::int::<u32>(1..=range::MAX_LAYERS))]
    pub layers: Option<u32>,
    /// Model width (n_embd), 1..=2^32-1 (GGUF's uint32; the file's size is checked against
    /// the free space before writing).
    #[arg(long, value_parser = range::int::<u64>(1..=u64::from(u32::MAX)))]
    pub embd: Option<u64>,
    /// Dense FFN width (for Mixtral-style models also the expert width), 1..=2^32-1.
    #[arg(long, value_parser = range::int::<u64>(1..=u64::from(u32::MAX)))]
    pub ff: Option<u64>,
    /// Routed experts per MoE layer, 0..=1024 (0 = dense; llama.cpp's limit).
    #[arg(long, value_parser = range::int::<u32>(0..=u64::from(model::llama_limits::MAX_EXPERTS)))]
    pub experts: Option<u32>,
    /// Experts used per token, 1..=--experts.
    #[arg(long = "top-k", value_parser = range::int::<u32>(1..=u64::from(model::llama_limits::MAX_EXPERTS)))]
    pub top_k: Option<u32>,
    /// FFN width of one routed expert, 1..=2^32-1.
    #[arg(long = "expert-ff", value_parser = range::int::<u64>(1..=u64::from(u32::MAX)))]
    pub expert_ff: Option<u64>,
    /// Shared experts per MoE layer (qwen2moe, deepseek2), 0..=1024.
    #[arg(long = "shared-experts", value_parser = range::int::<u32>(0..=u64::from(model::llama_limits::MAX_EXPERTS)))]
    pub shared_experts: Option<u32>,
    /// FFN width of all shared experts together (qwen2moe; deepseek2 uses experts x expert
    /// ff), 1..=2^32-1.
    #[arg(long = "shared-ff", value_parser = range::int::<u64>(1..=u64::from(u32::MAX)))]
    pub shared_ff: Option<u64>,
    /// Leading layers with a dense FFN (deepseek2), 0..=--layers.
    #[arg(long = "leading-dense", value_parser = range::int::<u32>(0..=range::MAX_LAYERS))]
    pub leading_dense: Option<u32>,
    /// Attention heads, 1..=2^32-1.
    #[arg(long, value_parser = range::int::<u64>(1..=u64::from(u32::MAX)))]
    pub heads: Option<u64>,
    /// Key/value heads (grouped-query attention), 1..=--heads.
    #[arg(long = "kv-heads", value_parser = range::int::<u64>(1..=u64::from(u32::MAX)))]
    pub kv_heads: Option<u64>,
    /// Per-head width, 1..=2^32-1 (default: width / heads for llama and qwen2moe, the preset's
    /// otherwise).
    #[arg(long = "head-dim", value_parser = range::int::<u64>(1..=u64::from(u32::MAX)))]
    pub head_dim: Option<u64>,
    /// Vocabulary size, 259..=1048576 (3 special and 256 byte tokens at least; the token
    /// strings are built in memory).
    #[arg(long, value_parser = range::int::<u64>(259..=1 << 20))]
    pub vocab: Option<u64>,
    /// Training context length written to the metadata, 1..=2^32-1.
    #[arg(long, value_parser = range::int::<u64>(1..=u64::from(u32::MAX)))]
    pub ctx: Option<u64>,
    /// Tie the output head to the token embedding (no output.weight).
    #[arg(long)]
    pub tied: bool,
    /// general.name (default: hypura-synth-<preset or arch>).
    #[arg(long)]
    pub name: Option<String>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

fn preset_help() -> String {
    let mut s = String::from("Presets:\n");
    for p in synth::Preset::ALL {
        s += &format!("  {:<22} {}\n", p.name(), p.about());
    }
    s
}

/// Resolves the arguments to the spec to write.
pub fn spec_from_args(args: &Args) -> anyhow::Result<SynthSpec> {
    let weight_type = GgmlType::from(args.weight_type);
    let preset = args.preset.map(|p| p.0);
    let advice = |e| shape_advice(e, args.arch);
    let (family, base) = presets::base(preset, args.arch.map(synth::Arch::from)).map_err(advice)?;
    let overrides = Overrides {
        n_layer: args.layers,
        n_embd: args.embd,
        n_ff: args.ff,
        n_expert: args.experts,
        n_expert_used: args.top_k,
        expert_ff: args.expert_ff,
        n_shared_expert: args.shared_experts,
        shared_expert_ff: args.shared_ff,
        n_leading_dense: args.leading_dense,
        n_head: args.heads,
        n_head_kv: args.kv_heads,
        head_dim: args.head_dim,
        n_vocab: args.vocab,
        n_ctx_train: args.ctx,
        tied_embeddings: args.tied.then_some(true),
    };
    let mut arch = presets::apply(family, base, &overrides).map_err(advice)?;
    if let Some(size) = &args.size {
        if args.layers.is_some() && args.embd.is_some() {
            anyhow::bail!(
                "--size picks layers and width; give at most one of --layers and --embd with it"
            );
        }
        let target = synth::parse_size(size)?;
        arch = synth::fit_size(family, &arch, weight_type, target, args.layers, args.embd)
            .map_err(advice)?;
    }
    let label = match (preset, args.arch) {
        (Some(p), _) => p.name(),
        (None, Some(a)) => a.name(),
        (None, None) => "",
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("hypura-synth-{label}"));
    Ok(SynthSpec {
        arch,
        weight_type,
        seed: args.seed,
        name,
    })
}

/// A shape error in the words of this command's options: the library names the settings, this
/// names the flags that set them (`arch` as given, `qwen-moe` as well as `qwen2moe`).
fn shape_advice(e: ShapeError, arch: Option<SynthArch>) -> anyhow::Error {
    let msg = match &e {
        ShapeError::ArchConflictsWithPreset { arch: a, preset } => format!(
            "--arch {} conflicts with --preset {preset} (a {} model); give one of them",
            arch.map_or(a.name(), SynthArch::name),
            preset.family().arch()
        ),
        ShapeError::NothingToBuild => {
            "say what to build: --preset NAME or --arch ARCH (see --help)".into()
        }
        ShapeError::HeadsDoNotDivideWidth { width, heads } => format!(
            "width {width} is not divisible by {heads} heads; give --heads that divides it, or --head-dim"
        ),
        ShapeError::FfnWidthsDiffer { ff, expert_ff } => format!(
            "a Mixtral-style llama model has one FFN width: --ff {ff} and --expert-ff {expert_ff} differ"
        ),
        ShapeError::NeedsExperts { family } => format!(
            "{} is a mixture-of-experts architecture: give --experts > 0 and --top-k > 0",
            family.arch()
        ),
        ShapeError::NoTopK { experts } => {
            format!("--top-k must be at least 1 for a model with {experts} experts")
        }
        ShapeError::NoSharedExperts { family } => format!(
            "{} models have no shared experts; use --arch qwen2moe or deepseek2",
            match family {
                Family::Llama => "llama (Mixtral-style)",
                f => f.arch(),
            }
        ),
        ShapeError::NoLeadingDense { family } => format!(
            "{} models have no leading dense layers; use --arch deepseek2",
            family.arch()
        ),
        ShapeError::NeedsSharedExperts {
            family: Family::DeepSeek2,
        } => "deepseek2 models always have shared experts (llama.cpp requires them); give --shared-experts 1 or more".into(),
        ShapeError::NeedsSharedExperts { family } => format!(
            "{} models always have a shared expert (llama.cpp requires it); give --shared-experts 1, or use --arch qwen3moe for none",
            family.arch()
        ),
        _ => return e.into(),
    };
    anyhow::Error::msg(msg)
}

/// A synthesizer error, with the option that fixes it where there is one.
fn synth_advice(e: SynthError) -> anyhow::Error {
    match &e {
        SynthError::PartialBlock {
            tensor,
            row,
            ty,
            block,
        } => anyhow::anyhow!(
            "tensor {tensor} has rows of {row} values, not a multiple of {ty}'s block of {block}; \
             choose widths (embd, ff, expert ff, heads x head dim) that are multiples of {block}, or --type f16"
        ),
        _ => e.into(),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = spec_from_args(&args)?;
    // Refuse an existing file or a full disk before announcing anything.
    super::refuse_existing(&args.output, args.force, "-o")?;
    let file_bytes = spec.file_bytes().map_err(synth_advice)?;
    synth::output::check_target(&args.output, file_bytes, args.force)?;
    let a = &spec.arch;
    let moe = if a.n_expert > 0 {
        let shared = if a.n_shared_expert > 0 {
            format!(" + {} shared", a.n_shared_expert)
        } else {
            String::new()
        };
        format!(
            ", {} experts (ff {}) top-{}{shared}",
            a.n_expert, a.expert_ff, a.n_expert_used
        )
    } else {
        String::new()
    };
    eprintln!(
        "writing {}: {} {} layers, width {}, ff {}, heads {} (kv {}), vocab {}{moe}, {} weights, seed {}",
        args.output.display(),
        a.arch,
        a.n_layer,
        a.n_embd,
        a.n_ff,
        a.n_head,
        a.n_head_kv,
        a.n_vocab,
        spec.weight_type,
        spec.seed
    );
    let bar = crate::progress::bytes(file_bytes, "writing");
    let start = Instant::now();
    let summary = spec
        .write(&args.output, args.force, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .map_err(synth_advice);
    bar.finish_and_clear();
    let summary = summary?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "wrote {}: {} tensors, {} ({} bytes) in {:.2} s ({:.0} MB/s)",
        summary.path.display(),
        summary.tensors,
        human_bytes(summary.file_bytes),
        summary.file_bytes,
        secs,
        summary.file_bytes as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(())
}
