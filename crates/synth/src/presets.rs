//! Model shapes for `hypura synth`: named presets, command-line overrides, and the rules each
//! architecture's llama.cpp loader imposes.

use model::catalog::ArchSpec;
use model::SpecError;

/// Why a shape cannot be built. The messages name the shape settings in words; the command line
/// adds which of its options set them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("unknown architecture {name:?}; choose {}", arch_names())]
    UnknownArch { name: String },
    #[error("unknown preset {name:?}; presets: {}", preset_names())]
    UnknownPreset { name: String },
    /// The architecture asked for is not the preset's.
    #[error("architecture {arch} conflicts with preset {preset} (a {} model); give one of them", .preset.family().arch())]
    ArchConflictsWithPreset { arch: Arch, preset: Preset },
    #[error("say what to build: a preset or an architecture")]
    NothingToBuild,
    /// The head width is derived from the model width, and the heads do not divide it.
    #[error("width {width} is not divisible by {heads} heads; give a head count that divides it, or a head width")]
    HeadsDoNotDivideWidth { width: u64, heads: u64 },
    #[error(
        "a Mixtral-style llama model has one FFN width: ff {ff} and expert ff {expert_ff} differ"
    )]
    FfnWidthsDiffer { ff: u64, expert_ff: u64 },
    #[error("{} is a mixture-of-experts architecture: it needs experts and a top-k of at least 1", .family.arch())]
    NeedsExperts { family: Family },
    #[error("top-k must be at least 1 for a model with {experts} experts")]
    NoTopK { experts: u32 },
    /// llama (Mixtral-style) or qwen3moe with shared experts.
    #[error("{} models have no shared experts; qwen2moe and deepseek2 have them", family_name(*.family))]
    NoSharedExperts { family: Family },
    #[error("{} models have no leading dense layers; deepseek2 has them", .family.arch())]
    NoLeadingDense { family: Family },
    /// qwen2moe (one shared expert) or deepseek2 (one or more) without shared experts.
    #[error("{}", needs_shared_text(*.family))]
    NeedsSharedExperts { family: Family },
    /// qwen2moe's q bias is width-sized.
    #[error("qwen2moe needs heads x head dim = width (its q bias is width-sized): {heads} x {head_dim} != {width}")]
    QkvWidth {
        heads: u64,
        head_dim: u64,
        width: u64,
    },
    /// No shape within the limits comes near the size asked for.
    #[error("no shape of at most {max_layers} layers and width {max_width} fits {target} bytes")]
    NoFit {
        max_layers: u64,
        max_width: u64,
        target: u64,
    },
    #[error(transparent)]
    Spec(#[from] SpecError),
}

fn preset_names() -> String {
    Preset::ALL.map(Preset::name).join(", ")
}

/// `llama, mixtral, qwen2moe, qwen3moe or deepseek2`.
fn arch_names() -> String {
    let names = Arch::ALL.map(Arch::name);
    let (last, rest) = names.split_last().expect("there are architectures");
    format!("{} or {last}", rest.join(", "))
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Llama => "llama (Mixtral-style)",
        _ => f.arch(),
    }
}

fn needs_shared_text(f: Family) -> String {
    match f {
        Family::DeepSeek2 => {
            "deepseek2 models always have shared experts (llama.cpp requires them)".into()
        }
        _ => format!(
            "{} models always have a shared expert (llama.cpp requires it); qwen3moe has none",
            f.arch()
        ),
    }
}

/// The architecture styles the synthesizer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `llama`: dense, or Mixtral-style when it has experts.
    Llama,
    /// `qwen2moe`: routed experts plus a gated shared expert, q/k/v biases.
    Qwen2Moe,
    /// `qwen3moe`: routed experts, per-head q/k norms, no shared expert.
    Qwen3Moe,
    /// `deepseek2`: multi-head latent attention, leading dense layers, shared experts.
    DeepSeek2,
}

impl Family {
    pub fn arch(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2Moe => "qwen2moe",
            Family::Qwen3Moe => "qwen3moe",
            Family::DeepSeek2 => "deepseek2",
        }
    }
}

/// An architecture to build, as `hypura synth --arch` names it: a [`Family`] and the tiny
/// preset a model of it starts from (`llama` and `mixtral` are one family, dense and MoE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    Llama,
    Mixtral,
    Qwen2Moe,
    Qwen3Moe,
    DeepSeek2,
}

impl Arch {
    pub const ALL: [Arch; 5] = [
        Arch::Llama,
        Arch::Mixtral,
        Arch::Qwen2Moe,
        Arch::Qwen3Moe,
        Arch::DeepSeek2,
    ];

    /// The name [`Arch::from_name`] takes.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Mixtral => "mixtral",
            Arch::Qwen2Moe => "qwen2moe",
            Arch::Qwen3Moe => "qwen3moe",
            Arch::DeepSeek2 => "deepseek2",
        }
    }

    /// The architecture [`Arch::name`] calls `name`, case-insensitively; `qwen-moe` is the old
    /// name of `qwen2moe`.
    pub fn from_name(name: &str) -> Option<Arch> {
        let name = name.to_ascii_lowercase();
        if name == "qwen-moe" {
            return Some(Arch::Qwen2Moe);
        }
        Arch::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn family(self) -> Family {
        self.preset().family()
    }

    /// The tiny preset a model of this architecture starts from.
    pub fn preset(self) -> Preset {
        match self {
            Arch::Llama => Preset::TinyLlama,
            Arch::Mixtral => Preset::TinyMixtral,
            Arch::Qwen2Moe => Preset::TinyQwenMoe,
            Arch::Qwen3Moe => Preset::TinyQwen3Moe,
            Arch::DeepSeek2 => Preset::TinyDeepseekV2Lite,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = ShapeError;

    fn from_str(name: &str) -> Result<Arch, ShapeError> {
        Arch::from_name(name).ok_or_else(|| ShapeError::UnknownArch {
            name: name.to_string(),
        })
    }
}

/// A named starting shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    TinyLlama,
    TinyMixtral,
    TinyQwenMoe,
    TinyQwen3Moe,
    TinyDeepseekV2Lite,
}

impl Preset {
    /// Every preset, in the order help texts list them.
    pub const ALL: [Preset; 5] = [
        Preset::TinyLlama,
        Preset::TinyMixtral,
        Preset::TinyQwenMoe,
        Preset::TinyQwen3Moe,
        Preset::TinyDeepseekV2Lite,
    ];

    /// The name `hypura synth --preset` takes.
    pub fn name(self) -> &'static str {
        match self {
            Preset::TinyLlama => "tiny-llama",
            Preset::TinyMixtral => "tiny-mixtral",
            Preset::TinyQwenMoe => "tiny-qwen-moe",
            Preset::TinyQwen3Moe => "tiny-qwen3-moe",
            Preset::TinyDeepseekV2Lite => "tiny-deepseek-v2-lite",
        }
    }

    /// The preset [`Preset::name`] calls `name`, case-insensitively.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// One line on what the preset is.
    pub fn about(self) -> &'static str {
        match self {
            Preset::TinyLlama => "dense llama: 4 layers, width 256, ff 512, 8 heads (4 kv), vocab 512",
            Preset::TinyMixtral => "Mixtral-style llama MoE: 4 layers, width 256, 8 experts of ff 512, top-2",
            Preset::TinyQwenMoe => "Qwen1.5/2-MoE-style qwen2moe: 4 layers, width 256, 16 experts of ff 128, top-4, gated shared expert of ff 512",
            Preset::TinyQwen3Moe => "Qwen3-MoE-style qwen3moe: 4 layers, width 256, 32 experts of ff 128, top-4, head dim 64, q/k norms",
            Preset::TinyDeepseekV2Lite => "DeepSeek-V2-Lite routing shape on a small width: deepseek2 (MLA), 27 layers (first dense), \
                64 experts of ff 64, top-6, 2 shared experts, width 128",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Preset::TinyLlama | Preset::TinyMixtral => Family::Llama,
            Preset::TinyQwenMoe => Family::Qwen2Moe,
            Preset::TinyQwen3Moe => Family::Qwen3Moe,
            Preset::TinyDeepseekV2Lite => Family::DeepSeek2,
        }
    }

    /// The preset's shape.
    pub fn spec(self) -> ArchSpec {
        match self {
            Preset::TinyLlama => tiny("llama"),
            Preset::TinyMixtral => ArchSpec {
                n_expert: 8,
                n_expert_used: 2,
                expert_ff: 512,
                rope_freq_base: 1e6,
                ..tiny("llama")
            },
            Preset::TinyQwenMoe => ArchSpec {
                n_expert: 16,
                n_expert_used: 4,
                expert_ff: 128,
                n_shared_expert: 1,
                shared_expert_ff: 512,
                rms_eps: 1e-6,
                rope_freq_base: 1e6,
                ..tiny("qwen2moe")
            },
            Preset::TinyQwen3Moe => ArchSpec {
                head_dim: 64,
                n_expert: 32,
                n_expert_used: 4,
                expert_ff: 128,
                rms_eps: 1e-6,
                rope_freq_base: 1e6,
                ..tiny("qwen3moe")
            },
            Preset::TinyDeepseekV2Lite => ArchSpec {
                n_layer: 27,
                n_embd: 128,
                n_ff: 512,
                n_head: 4,
                n_head_kv: 4,
                head_dim: 48,
                rope_dim: 16,
                v_head_dim: 32,
                kv_lora_rank: 64,
                n_expert: 64,
                n_expert_used: 6,
                expert_ff: 64,
                n_shared_expert: 2,
                n_leading_dense: 1,
                expert_weights_scale: 1.0,
                expert_gating_func: 1,
                rms_eps: 1e-6,
                ..tiny("deepseek2")
            },
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Preset {
    type Err = ShapeError;

    fn from_str(name: &str) -> Result<Preset, ShapeError> {
        Preset::from_name(name).ok_or_else(|| ShapeError::UnknownPreset {
            name: name.to_string(),
        })
    }
}

fn tiny(arch: &str) -> ArchSpec {
    ArchSpec {
        arch: arch.into(),
        n_layer: 4,
        n_embd: 256,
        n_ff: 512,
        n_head: 8,
        n_head_kv: 4,
        head_dim: 32,
        n_vocab: 512,
        n_ctx_train: 4096,
        rms_eps: 1e-5,
        rope_freq_base: 10000.0,
        ..Default::default()
    }
}

/// Shape settings given on the command line; `None` keeps the preset's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub n_layer: Option<u32>,
    pub n_embd: Option<u64>,
    pub n_ff: Option<u64>,
    pub n_expert: Option<u32>,
    pub n_expert_used: Option<u32>,
    pub expert_ff: Option<u64>,
    pub n_shared_expert: Option<u32>,
    pub shared_expert_ff: Option<u64>,
    pub n_leading_dense: Option<u32>,
    pub n_head: Option<u64>,
    pub n_head_kv: Option<u64>,
    pub head_dim: Option<u64>,
    pub n_vocab: Option<u64>,
    pub n_ctx_train: Option<u64>,
    pub tied_embeddings: Option<bool>,
}

/// Picks the family and starting shape from a preset and/or an architecture: the preset's, or
/// without one the architecture's tiny preset. Both must be of one family.
pub fn base(preset: Option<Preset>, arch: Option<Arch>) -> Result<(Family, ArchSpec), ShapeError> {
    let chosen = match (preset, arch) {
        (Some(preset), Some(arch)) if arch.family() != preset.family() => {
            return Err(ShapeError::ArchConflictsWithPreset { arch, preset })
        }
        (Some(preset), _) => preset,
        (None, Some(arch)) => arch.preset(),
        (None, None) => return Err(ShapeError::NothingToBuild),
    };
    Ok((chosen.family(), chosen.spec()))
}

/// Applies the overrides to `spec`, deriving what follows from them (head width from the model
/// width, kv heads from the head count, a new MoE's expert width and top-k).
pub fn apply(family: Family, mut spec: ArchSpec, o: &Overrides) -> Result<ArchSpec, ShapeError> {
    let before = spec.clone();
    macro_rules! set {
        ($field:ident) => {
            if let Some(v) = o.$field {
                spec.$field = v;
            }
        };
    }
    set!(n_layer);
    set!(n_embd);
    set!(n_ff);
    set!(n_expert);
    set!(n_expert_used);
    set!(expert_ff);
    set!(n_shared_expert);
    set!(shared_expert_ff);
    set!(n_leading_dense);
    set!(n_head);
    set!(n_head_kv);
    set!(head_dim);
    set!(n_vocab);
    set!(n_ctx_train);
    set!(tied_embeddings);
    if o.n_head.is_some() && o.n_head_kv.is_none() {
        // Keep the preset's grouping (heads per kv head) when it divides the new head count.
        let group = (before.n_head / before.n_head_kv.max(1)).max(1);
        spec.n_head_kv = if spec.n_head % group == 0 {
            spec.n_head / group
        } else {
            spec.n_head
        };
    }
    // llama and qwen2moe tie the head width to the model width; qwen3moe and deepseek2 do not.
    let derived_head = matches!(family, Family::Llama | Family::Qwen2Moe);
    if o.head_dim.is_none() && derived_head && (o.n_embd.is_some() || o.n_head.is_some()) {
        if spec.n_head == 0 || spec.n_embd % spec.n_head != 0 {
            return Err(ShapeError::HeadsDoNotDivideWidth {
                width: spec.n_embd,
                heads: spec.n_head,
            });
        }
        spec.head_dim = spec.n_embd / spec.n_head;
    }
    if spec.n_expert > 0 && before.n_expert == 0 {
        if o.expert_ff.is_none() {
            spec.expert_ff = spec.n_ff;
        }
        if o.n_expert_used.is_none() {
            spec.n_expert_used = spec.n_expert.min(2);
        }
    }
    if spec.n_expert == 0 {
        spec.n_expert_used = 0;
    }
    if family == Family::Llama && spec.n_expert > 0 {
        // llama.cpp sizes a llama model's experts by feed_forward_length: one width for both.
        match (o.n_ff, o.expert_ff) {
            (Some(ff), Some(expert_ff)) if ff != expert_ff => {
                return Err(ShapeError::FfnWidthsDiffer { ff, expert_ff })
            }
            (None, Some(eff)) => spec.n_ff = eff,
            _ => spec.expert_ff = spec.n_ff,
        }
    }
    if spec.n_shared_expert > 0
        && o.shared_expert_ff.is_none()
        && before.n_shared_expert != spec.n_shared_expert
    {
        // Keep each shared expert as wide as before (or as a routed expert, for a new one).
        let each = match before.n_shared_expert {
            0 => spec.expert_ff,
            n => before.shared_expert_ff / n as u64,
        };
        spec.shared_expert_ff = each * spec.n_shared_expert as u64;
    }
    normalize(family, spec)
}

/// Enforces what each architecture's llama.cpp loader requires, filling flags it implies.
pub fn normalize(family: Family, mut s: ArchSpec) -> Result<ArchSpec, ShapeError> {
    s.arch = family.arch().into();
    let need_experts = || ShapeError::NeedsExperts { family };
    let no_shared = || ShapeError::NoSharedExperts { family };
    let no_leading_dense = || ShapeError::NoLeadingDense { family };
    if s.n_expert > 0 && s.n_expert_used == 0 {
        return Err(ShapeError::NoTopK {
            experts: s.n_expert,
        });
    }
    match family {
        Family::Llama => {
            if s.n_shared_expert > 0 {
                return Err(no_shared());
            }
            if s.n_leading_dense > 0 {
                return Err(no_leading_dense());
            }
            if s.n_expert > 0 {
                s.expert_ff = s.n_ff;
            }
        }
        Family::Qwen2Moe => {
            if s.n_expert == 0 {
                return Err(need_experts());
            }
            if s.n_shared_expert == 0 {
                return Err(ShapeError::NeedsSharedExperts { family });
            }
            if s.n_leading_dense > 0 {
                return Err(no_leading_dense());
            }
            if s.n_head * s.head_dim != s.n_embd {
                return Err(ShapeError::QkvWidth {
                    heads: s.n_head,
                    head_dim: s.head_dim,
                    width: s.n_embd,
                });
            }
            s.qkv_bias = true;
            s.shared_expert_gate = true;
        }
        Family::Qwen3Moe => {
            if s.n_expert == 0 {
                return Err(need_experts());
            }
            if s.n_shared_expert > 0 {
                return Err(no_shared());
            }
            if s.n_leading_dense > 0 {
                return Err(no_leading_dense());
            }
            s.qk_norm = true;
        }
        Family::DeepSeek2 => {
            if s.n_expert == 0 {
                return Err(need_experts());
            }
            if s.n_shared_expert == 0 {
                return Err(ShapeError::NeedsSharedExperts { family });
            }
            // llama.cpp sizes deepseek2's shared experts as expert width x count.
            s.shared_expert_ff = s.expert_ff * s.n_shared_expert as u64;
            s.n_head_kv = s.n_head;
            s.mla_split_kv_b = true;
            // llama.cpp treats 26- and 27-layer deepseek2 models as "lite" (plain attn_q, no
            // q_lora_rank key) and every other depth as full (attn_q_a/attn_q_b).
            let lite =
                s.n_layer == 26 || s.n_layer == 27 || (s.n_layer == 48 && s.n_vocab == 128256);
            s.q_lora_rank = if lite {
                0
            } else {
                (s.n_embd / 2).div_ceil(32).max(1) * 32
            };
            if s.expert_weights_scale == 0.0 {
                s.expert_weights_scale = 1.0;
            }
            if s.expert_gating_func == 0 {
                s.expert_gating_func = 1;
            }
        }
    }
    s.check()?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_any_case() {
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()), Some(p));
            assert_eq!(p.name().to_ascii_uppercase().parse(), Ok(p));
        }
        for a in Arch::ALL {
            assert_eq!(Arch::from_name(a.name()), Some(a));
            assert_eq!(a.name().to_ascii_uppercase().parse(), Ok(a));
        }
        assert_eq!(Arch::from_name("qwen-moe"), Some(Arch::Qwen2Moe));
        assert_eq!(Preset::from_name("tiny"), None);
    }
}
