//! Architecture hyperparameters → the tensor list (llama.cpp names, ggml dims) and the GGUF metadata
//! llama.cpp's loader reads for that architecture.
//!
//! Names and dims follow llama.cpp's `src/llama-arch.cpp` (tensor name table) and the
//! `create_tensor(...)` calls of `llama_model::load_tensors` (`src/llama-model.cpp`), which are
//! what `convert_hf_to_gguf.py` writes. Tensors come in the order `llama-quantize` writes them
//! (llama.cpp `llama_model_loader::weights_map`, ordered by `weight_name_comparer`): global
//! tensors first by name, then `blk.N.*` by layer number and, within a layer, by name — the order
//! every published quantized GGUF has.

use crate::error::SpecError;
use gguf::{Metadata, Value};

/// The hyperparameters that decide a model's tensors. Fields a given architecture does not use
/// stay at their `Default` (0 / false).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArchSpec {
    /// llama.cpp architecture name: `llama` (also Mixtral), `qwen2`, `qwen2moe`, `qwen3moe`,
    /// `deepseek2`, `gemma3`, `gpt-oss`.
    pub arch: String,
    pub n_layer: u32,
    pub n_embd: u64,
    /// Dense FFN width (`intermediate_size`).
    pub n_ff: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    /// Per-head query/key width. For `deepseek2` this is `qk_nope_head_dim + qk_rope_head_dim`.
    pub head_dim: u64,
    pub n_vocab: u64,
    pub n_ctx_train: u64,
    /// Routed experts per MoE layer (0 = dense model).
    pub n_expert: u32,
    pub n_expert_used: u32,
    /// One routed expert's FFN width (`moe_intermediate_size`; Mixtral: `intermediate_size`).
    pub expert_ff: u64,
    /// Shared experts per MoE layer.
    pub n_shared_expert: u32,
    /// Width of the `*_shexp` tensors: all shared experts together (DeepSeek:
    /// `n_shared_experts * moe_intermediate_size`; Qwen-MoE: `shared_expert_intermediate_size`).
    pub shared_expert_ff: u64,
    /// Leading layers with a dense FFN instead of experts (DeepSeek `first_k_dense_replace`).
    pub n_leading_dense: u32,
    /// No `output.weight`: the output head reuses `token_embd.weight`.
    pub tied_embeddings: bool,

    pub rms_eps: f32,
    pub rope_freq_base: f32,
    /// Rotary dims per head (`rope.dimension_count`); 0 means `head_dim`. DeepSeek: `qk_rope_head_dim`.
    pub rope_dim: u64,
    /// Llama 3.1+ rope scaling: a `rope_freqs.weight` tensor of `rope_dim / 2` factors.
    pub rope_freqs_tensor: bool,
    /// YaRN rope scaling (DeepSeek, gpt-oss): factor (0 = none), original context, log multiplier.
    pub rope_yarn_factor: f32,
    pub rope_yarn_orig_ctx: u64,
    pub rope_yarn_log_mul: f32,
    /// Biases on attn_q / attn_k / attn_v (Qwen2, gpt-oss).
    pub qkv_bias: bool,
    /// Bias on attn_output (gpt-oss).
    pub attn_out_bias: bool,
    /// Per-head RMS norms on q and k (`attn_q_norm`, `attn_k_norm`: Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// Learned attention sinks, one per head (gpt-oss).
    pub attn_sinks: bool,
    /// Sliding-window attention width (Gemma 3, gpt-oss); 0 = none.
    pub sliding_window: u64,
    /// Biases on the router and the merged expert tensors (gpt-oss).
    pub moe_bias: bool,
    /// Sigmoid gate on the shared expert, `ffn_gate_inp_shexp` (Qwen-MoE).
    pub shared_expert_gate: bool,
    /// DeepSeek-V3's router score correction bias, `exp_probs_b`.
    pub expert_probs_bias: bool,
    /// llama.cpp `llama_expert_gating_func_type`: 1 = softmax, 2 = sigmoid; 0 = not written.
    pub expert_gating_func: u32,
    pub expert_weights_scale: f32,
    pub expert_weights_norm: bool,
    /// DeepSeek-V3 grouped routing (`n_group`, `topk_group`); 0 = not written.
    pub n_expert_group: u32,
    pub n_expert_group_used: u32,
    /// MLA (DeepSeek-V2/V3): 0 `q_lora_rank` means a plain `attn_q` (V2-Lite).
    pub q_lora_rank: u64,
    pub kv_lora_rank: u64,
    /// MLA value head width (`v_head_dim`).
    pub v_head_dim: u64,
    /// MLA files converted since llama.cpp PR #12801 split `attn_kv_b` into `attn_k_b` + `attn_v_b`
    /// (3-D, per head); older files keep `attn_kv_b`.
    pub mla_split_kv_b: bool,
}

/// One tensor's name and ggml dims (`ne`: dims[0] is the row length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorShape {
    pub name: String,
    pub dims: Vec<u64>,
}

/// Architectures whose tensor layout this module knows.
pub const KNOWN_ARCHS: &[&str] = &[
    "llama",
    "qwen2",
    "qwen2moe",
    "qwen3moe",
    "deepseek2",
    "gemma3",
    "gpt-oss",
];

impl ArchSpec {
    pub fn is_moe(&self) -> bool {
        self.n_expert > 0
    }

    /// Whether layer `il` has routed experts (rather than a dense FFN).
    pub fn layer_is_moe(&self, il: u32) -> bool {
        self.is_moe() && il >= self.n_leading_dense
    }

    /// Rotary dims per head (`rope.dimension_count`).
    pub fn rope_dims(&self) -> u64 {
        if self.rope_dim == 0 {
            self.head_dim
        } else {
            self.rope_dim
        }
    }

    fn is_mla(&self) -> bool {
        self.kv_lora_rank > 0
    }

    /// Checks that the spec describes a model this module can lay out: a known architecture and
    /// no zero widths where a tensor needs one. The message names the field.
    pub fn check(&self) -> Result<(), SpecError> {
        let arch = || self.arch.clone();
        if !KNOWN_ARCHS.contains(&self.arch.as_str()) {
            return Err(SpecError::UnknownArch { arch: arch() });
        }
        let mut required = vec![
            ("n_layer", self.n_layer as u64),
            ("n_embd", self.n_embd),
            ("n_head", self.n_head),
            ("head_dim", self.head_dim),
            ("n_vocab", self.n_vocab),
        ];
        if !self.is_mla() {
            required.push(("n_head_kv", self.n_head_kv));
        } else {
            required.push(("v_head_dim", self.v_head_dim));
            required.push(("rope_dim", self.rope_dim));
        }
        if self.is_moe() {
            required.push(("expert_ff", self.expert_ff));
            required.push(("n_expert_used", self.n_expert_used as u64));
        }
        if !self.is_moe() || self.n_leading_dense > 0 {
            required.push(("n_ff", self.n_ff));
        }
        if self.n_shared_expert > 0 {
            required.push(("shared_expert_ff", self.shared_expert_ff));
        }
        if let Some(&(field, _)) = required.iter().find(|(_, v)| *v == 0) {
            return Err(SpecError::NotPositive {
                arch: arch(),
                field,
            });
        }
        // llama.cpp reads these as uint32 metadata; larger values cannot be written.
        let written = [
            ("n_ctx_train", self.n_ctx_train),
            ("n_embd", self.n_embd),
            ("n_ff", self.n_ff),
            ("n_head", self.n_head),
            ("n_head_kv", self.n_head_kv),
            ("head_dim", self.head_dim),
            ("n_vocab", self.n_vocab),
            ("expert_ff", self.expert_ff),
            ("shared_expert_ff", self.shared_expert_ff),
            ("q_lora_rank", self.q_lora_rank),
            ("kv_lora_rank", self.kv_lora_rank),
            ("rope_dim", self.rope_dim),
            ("rope_yarn_orig_ctx", self.rope_yarn_orig_ctx),
            ("sliding_window", self.sliding_window),
        ];
        if let Some(&(field, value)) = written.iter().find(|(_, v)| *v > u32::MAX as u64) {
            return Err(SpecError::NotU32 {
                arch: arch(),
                field,
                value,
            });
        }
        if self.n_layer > crate::llama_limits::MAX_LAYERS {
            return Err(SpecError::TooManyLayers {
                arch: arch(),
                n_layer: self.n_layer,
            });
        }
        if self.n_expert > crate::llama_limits::MAX_EXPERTS {
            return Err(SpecError::TooManyExperts {
                arch: arch(),
                n_expert: self.n_expert,
            });
        }
        if self.n_expert_used > self.n_expert {
            return Err(SpecError::MoreUsedThanExperts {
                arch: arch(),
                used: self.n_expert_used,
                n_expert: self.n_expert,
            });
        }
        if self.n_leading_dense > self.n_layer {
            return Err(SpecError::LeadingDenseExceedsLayers {
                arch: arch(),
                leading: self.n_leading_dense,
                n_layer: self.n_layer,
            });
        }
        if self.is_mla() && self.rope_dim >= self.head_dim {
            return Err(SpecError::RopeDimTooLarge {
                rope_dim: self.rope_dim,
                head_dim: self.head_dim,
            });
        }
        Ok(())
    }
}

/// Collects shapes for one scope (global or `blk.N.`).
struct Shapes {
    out: Vec<TensorShape>,
}

impl Shapes {
    fn global(&mut self, stem: &str, dims: &[u64]) {
        self.out.push(TensorShape {
            name: format!("{stem}.weight"),
            dims: dims.to_vec(),
        });
    }

    fn layer(&mut self, il: u32, stem: &str, suffix: &str, dims: &[u64]) {
        self.out.push(TensorShape {
            name: format!("blk.{il}.{stem}.{suffix}"),
            dims: dims.to_vec(),
        });
    }
}

/// Every tensor of the model, named and shaped as llama.cpp expects, in `llama-quantize` order.
/// The spec should pass [`ArchSpec::check`]; an unknown `arch` gets the llama layout.
pub fn tensor_shapes(spec: &ArchSpec) -> Vec<TensorShape> {
    let s = spec;
    let mut t = Shapes { out: Vec::new() };
    t.global("token_embd", &[s.n_embd, s.n_vocab]);
    t.global("output_norm", &[s.n_embd]);
    if !s.tied_embeddings {
        t.global("output", &[s.n_embd, s.n_vocab]);
    }
    if s.rope_freqs_tensor {
        t.global("rope_freqs", &[s.rope_dims() / 2]);
    }
    for il in 0..s.n_layer {
        t.layer(il, "attn_norm", "weight", &[s.n_embd]);
        if s.is_mla() {
            mla_attention(&mut t, s, il);
        } else {
            gqa_attention(&mut t, s, il);
        }
        match s.arch.as_str() {
            "gemma3" => {
                t.layer(il, "post_attention_norm", "weight", &[s.n_embd]);
                t.layer(il, "ffn_norm", "weight", &[s.n_embd]);
                t.layer(il, "post_ffw_norm", "weight", &[s.n_embd]);
            }
            // gpt-oss names its pre-FFN norm LLM_TENSOR_ATTN_POST_NORM.
            "gpt-oss" => t.layer(il, "post_attention_norm", "weight", &[s.n_embd]),
            _ => t.layer(il, "ffn_norm", "weight", &[s.n_embd]),
        }
        if s.layer_is_moe(il) {
            moe_ffn(&mut t, s, il);
        } else {
            t.layer(il, "ffn_gate", "weight", &[s.n_embd, s.n_ff]);
            t.layer(il, "ffn_up", "weight", &[s.n_embd, s.n_ff]);
            t.layer(il, "ffn_down", "weight", &[s.n_ff, s.n_embd]);
        }
    }
    let mut out = t.out;
    out.sort_by(|a, b| quantize_order_key(&a.name).cmp(&quantize_order_key(&b.name)));
    out
}

/// llama.cpp's `weight_name_comparer`: layer number (-1 for globals), then the name bytes.
fn quantize_order_key(name: &str) -> (i64, &str) {
    let layer = name
        .strip_prefix("blk.")
        .and_then(|r| r.split_once('.'))
        .and_then(|(n, _)| n.parse::<i64>().ok())
        .unwrap_or(-1);
    (layer, name)
}

fn gqa_attention(t: &mut Shapes, s: &ArchSpec, il: u32) {
    let q = s.n_head * s.head_dim;
    let kv = s.n_head_kv * s.head_dim;
    t.layer(il, "attn_q", "weight", &[s.n_embd, q]);
    t.layer(il, "attn_k", "weight", &[s.n_embd, kv]);
    t.layer(il, "attn_v", "weight", &[s.n_embd, kv]);
    t.layer(il, "attn_output", "weight", &[q, s.n_embd]);
    if s.qkv_bias {
        t.layer(il, "attn_q", "bias", &[q]);
        t.layer(il, "attn_k", "bias", &[kv]);
        t.layer(il, "attn_v", "bias", &[kv]);
    }
    if s.attn_out_bias {
        t.layer(il, "attn_output", "bias", &[s.n_embd]);
    }
    if s.qk_norm {
        t.layer(il, "attn_q_norm", "weight", &[s.head_dim]);
        t.layer(il, "attn_k_norm", "weight", &[s.head_dim]);
    }
    if s.attn_sinks {
        t.layer(il, "attn_sinks", "weight", &[s.n_head]);
    }
}

/// DeepSeek-V2/V3 multi-head latent attention (llama.cpp `LLM_ARCH_DEEPSEEK2` in load_tensors).
fn mla_attention(t: &mut Shapes, s: &ArchSpec, il: u32) {
    let nope = s.head_dim - s.rope_dim;
    if s.q_lora_rank > 0 {
        t.layer(il, "attn_q_a", "weight", &[s.n_embd, s.q_lora_rank]);
        t.layer(il, "attn_q_a_norm", "weight", &[s.q_lora_rank]);
        t.layer(
            il,
            "attn_q_b",
            "weight",
            &[s.q_lora_rank, s.n_head * s.head_dim],
        );
    } else {
        t.layer(il, "attn_q", "weight", &[s.n_embd, s.n_head * s.head_dim]);
    }
    t.layer(
        il,
        "attn_kv_a_mqa",
        "weight",
        &[s.n_embd, s.kv_lora_rank + s.rope_dim],
    );
    t.layer(il, "attn_kv_a_norm", "weight", &[s.kv_lora_rank]);
    if s.mla_split_kv_b {
        t.layer(il, "attn_k_b", "weight", &[nope, s.kv_lora_rank, s.n_head]);
        t.layer(
            il,
            "attn_v_b",
            "weight",
            &[s.kv_lora_rank, s.v_head_dim, s.n_head],
        );
    } else {
        t.layer(
            il,
            "attn_kv_b",
            "weight",
            &[s.kv_lora_rank, s.n_head * (nope + s.v_head_dim)],
        );
    }
    t.layer(
        il,
        "attn_output",
        "weight",
        &[s.n_head * s.v_head_dim, s.n_embd],
    );
}

/// Router, merged routed experts (3-D, experts last) and shared experts.
fn moe_ffn(t: &mut Shapes, s: &ArchSpec, il: u32) {
    let e = s.n_expert as u64;
    t.layer(il, "ffn_gate_inp", "weight", &[s.n_embd, e]);
    t.layer(il, "ffn_gate_exps", "weight", &[s.n_embd, s.expert_ff, e]);
    t.layer(il, "ffn_up_exps", "weight", &[s.n_embd, s.expert_ff, e]);
    t.layer(il, "ffn_down_exps", "weight", &[s.expert_ff, s.n_embd, e]);
    if s.moe_bias {
        t.layer(il, "ffn_gate_inp", "bias", &[e]);
        t.layer(il, "ffn_gate_exps", "bias", &[s.expert_ff, e]);
        t.layer(il, "ffn_up_exps", "bias", &[s.expert_ff, e]);
        t.layer(il, "ffn_down_exps", "bias", &[s.n_embd, e]);
    }
    if s.expert_probs_bias {
        t.layer(il, "exp_probs_b", "bias", &[e]);
    }
    if s.n_shared_expert > 0 {
        t.layer(
            il,
            "ffn_gate_shexp",
            "weight",
            &[s.n_embd, s.shared_expert_ff],
        );
        t.layer(
            il,
            "ffn_up_shexp",
            "weight",
            &[s.n_embd, s.shared_expert_ff],
        );
        t.layer(
            il,
            "ffn_down_shexp",
            "weight",
            &[s.shared_expert_ff, s.n_embd],
        );
        if s.shared_expert_gate {
            t.layer(il, "ffn_gate_inp_shexp", "weight", &[s.n_embd]);
        }
    }
}

/// Every hyperparameter llama.cpp reads as uint32 is written as GGUF UINT32 by the converter
/// (the loader rejects other integer types for these keys). [`ArchSpec::check`] rejects values
/// that do not fit, so the saturation here only affects unchecked specs.
fn u32_value(v: u64) -> Value {
    Value::U32(u32::try_from(v).unwrap_or(u32::MAX))
}

/// `general.architecture` and the `{arch}.*` hyperparameter keys llama.cpp's `load_hparams`
/// reads for this architecture, with the value types `convert_hf_to_gguf.py` writes (UINT32
/// counts, FLOAT32 scales, BOOL flags). Tokenizer keys are not included.
pub fn arch_metadata(spec: &ArchSpec) -> Metadata {
    let s = spec;
    let a = &s.arch;
    let mut md = Metadata::default();
    let u = |md: &mut Metadata, k: &str, v: u64| md.insert(format!("{a}.{k}"), u32_value(v));
    md.insert("general.architecture", Value::String(a.clone()));
    u(&mut md, "context_length", s.n_ctx_train);
    u(&mut md, "embedding_length", s.n_embd);
    u(&mut md, "block_count", s.n_layer as u64);
    u(
        &mut md,
        "feed_forward_length",
        if s.n_ff > 0 { s.n_ff } else { s.expert_ff },
    );
    u(&mut md, "attention.head_count", s.n_head);
    if s.is_mla() && s.mla_split_kv_b {
        // Split-MLA files describe the absorbed form: one shared KV head of
        // kv_lora_rank + rope dims (convert_hf_to_gguf.py DeepseekV2Model.set_gguf_parameters).
        u(&mut md, "attention.head_count_kv", 1);
        u(&mut md, "attention.key_length", s.kv_lora_rank + s.rope_dim);
        u(&mut md, "attention.value_length", s.kv_lora_rank);
        u(&mut md, "attention.key_length_mla", s.head_dim);
        u(&mut md, "attention.value_length_mla", s.v_head_dim);
    } else if s.is_mla() {
        u(&mut md, "attention.head_count_kv", s.n_head);
        u(&mut md, "attention.key_length", s.head_dim);
        u(&mut md, "attention.value_length", s.v_head_dim);
    } else {
        u(&mut md, "attention.head_count_kv", s.n_head_kv);
        u(&mut md, "attention.key_length", s.head_dim);
        u(&mut md, "attention.value_length", s.head_dim);
    }
    md.insert(
        format!("{a}.attention.layer_norm_rms_epsilon"),
        Value::F32(s.rms_eps),
    );
    if s.rope_freq_base > 0.0 {
        md.insert(format!("{a}.rope.freq_base"), Value::F32(s.rope_freq_base));
    }
    u(&mut md, "rope.dimension_count", s.rope_dims());
    u(&mut md, "vocab_size", s.n_vocab);
    if s.sliding_window > 0 {
        u(&mut md, "attention.sliding_window", s.sliding_window);
    }
    if s.rope_yarn_factor > 0.0 {
        md.insert(
            format!("{a}.rope.scaling.type"),
            Value::String("yarn".into()),
        );
        md.insert(
            format!("{a}.rope.scaling.factor"),
            Value::F32(s.rope_yarn_factor),
        );
        u(
            &mut md,
            "rope.scaling.original_context_length",
            s.rope_yarn_orig_ctx,
        );
        if s.rope_yarn_log_mul > 0.0 {
            md.insert(
                format!("{a}.rope.scaling.yarn_log_multiplier"),
                Value::F32(s.rope_yarn_log_mul),
            );
        }
    }
    if s.is_mla() {
        if s.q_lora_rank > 0 {
            u(&mut md, "attention.q_lora_rank", s.q_lora_rank);
        }
        u(&mut md, "attention.kv_lora_rank", s.kv_lora_rank);
    }
    if s.is_moe() {
        u(&mut md, "expert_count", s.n_expert as u64);
        u(&mut md, "expert_used_count", s.n_expert_used as u64);
        u(&mut md, "expert_feed_forward_length", s.expert_ff);
        if s.n_leading_dense > 0 {
            u(
                &mut md,
                "leading_dense_block_count",
                s.n_leading_dense as u64,
            );
        }
        if s.n_shared_expert > 0 {
            u(&mut md, "expert_shared_count", s.n_shared_expert as u64);
            if s.arch == "qwen2moe" {
                u(
                    &mut md,
                    "expert_shared_feed_forward_length",
                    s.shared_expert_ff,
                );
            }
        }
        if s.expert_weights_scale > 0.0 {
            md.insert(
                format!("{a}.expert_weights_scale"),
                Value::F32(s.expert_weights_scale),
            );
        }
        if s.arch == "deepseek2" {
            md.insert(
                format!("{a}.expert_weights_norm"),
                Value::Bool(s.expert_weights_norm),
            );
        }
        if s.expert_gating_func > 0 {
            u(&mut md, "expert_gating_func", s.expert_gating_func as u64);
        }
        if s.n_expert_group > 0 {
            u(&mut md, "expert_group_count", s.n_expert_group as u64);
            u(
                &mut md,
                "expert_group_used_count",
                s.n_expert_group_used as u64,
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{ArchInfo, PerLayer};

    fn mixtral() -> ArchSpec {
        ArchSpec {
            arch: "llama".into(),
            n_layer: 2,
            n_embd: 64,
            n_ff: 128,
            n_head: 4,
            n_head_kv: 2,
            head_dim: 16,
            n_vocab: 100,
            n_ctx_train: 512,
            n_expert: 8,
            n_expert_used: 2,
            expert_ff: 128,
            rms_eps: 1e-5,
            ..Default::default()
        }
    }

    fn dims<'a>(shapes: &'a [TensorShape], name: &str) -> &'a [u64] {
        &shapes
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
            .dims
    }

    #[test]
    fn mixtral_experts_are_merged_3d() {
        let sh = tensor_shapes(&mixtral());
        assert_eq!(dims(&sh, "blk.1.ffn_gate_exps.weight"), [64, 128, 8]);
        assert_eq!(dims(&sh, "blk.1.ffn_up_exps.weight"), [64, 128, 8]);
        assert_eq!(dims(&sh, "blk.1.ffn_down_exps.weight"), [128, 64, 8]);
        assert_eq!(dims(&sh, "blk.0.ffn_gate_inp.weight"), [64, 8]);
        assert_eq!(dims(&sh, "blk.0.attn_k.weight"), [64, 32]);
        assert_eq!(dims(&sh, "output.weight"), [64, 100]);
        assert!(!sh.iter().any(|t| t.name == "blk.0.ffn_gate.weight"));
        // token_embd, output_norm, output; per layer attn_norm, q, k, v, o, ffn_norm, gate_inp, 3 exps.
        assert_eq!(sh.len(), 3 + 2 * 10);
    }

    #[test]
    fn order_is_llama_quantize_order() {
        let mut spec = mixtral();
        spec.n_layer = 11;
        let names: Vec<_> = tensor_shapes(&spec).into_iter().map(|t| t.name).collect();
        assert_eq!(
            &names[..4],
            [
                "output.weight",
                "output_norm.weight",
                "token_embd.weight",
                "blk.0.attn_k.weight"
            ]
        );
        let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(pos("blk.2.attn_q.weight") < pos("blk.10.attn_k.weight"));
        assert!(pos("blk.9.ffn_up_exps.weight") < pos("blk.10.attn_k.weight"));
    }

    #[test]
    fn deepseek_layouts() {
        let mut s = ArchSpec {
            arch: "deepseek2".into(),
            n_layer: 3,
            n_embd: 64,
            n_ff: 96,
            n_head: 4,
            n_head_kv: 4,
            head_dim: 48,
            rope_dim: 16,
            v_head_dim: 32,
            kv_lora_rank: 24,
            q_lora_rank: 40,
            n_vocab: 100,
            n_ctx_train: 512,
            n_expert: 8,
            n_expert_used: 2,
            expert_ff: 32,
            n_shared_expert: 2,
            shared_expert_ff: 64,
            n_leading_dense: 1,
            expert_probs_bias: true,
            ..Default::default()
        };
        assert_eq!(s.check(), Ok(()));
        let sh = tensor_shapes(&s);
        assert_eq!(dims(&sh, "blk.0.ffn_down.weight"), [96, 64]);
        assert!(!sh.iter().any(|t| t.name == "blk.0.ffn_gate_inp.weight"));
        assert_eq!(dims(&sh, "blk.1.ffn_down_shexp.weight"), [64, 64]);
        assert_eq!(dims(&sh, "blk.1.exp_probs_b.bias"), [8]);
        assert_eq!(dims(&sh, "blk.2.attn_q_b.weight"), [40, 4 * 48]);
        assert_eq!(dims(&sh, "blk.2.attn_kv_a_mqa.weight"), [64, 24 + 16]);
        assert_eq!(dims(&sh, "blk.2.attn_kv_b.weight"), [24, 4 * (32 + 32)]);
        assert_eq!(dims(&sh, "blk.2.attn_output.weight"), [4 * 32, 64]);
        s.mla_split_kv_b = true;
        s.q_lora_rank = 0;
        let sh = tensor_shapes(&s);
        assert_eq!(dims(&sh, "blk.2.attn_k_b.weight"), [32, 24, 4]);
        assert_eq!(dims(&sh, "blk.2.attn_v_b.weight"), [24, 32, 4]);
        assert_eq!(dims(&sh, "blk.2.attn_q.weight"), [64, 4 * 48]);
        assert!(!sh.iter().any(|t| t.name.contains("attn_kv_b")));
    }

    #[test]
    fn metadata_reads_back_through_arch_info() {
        let mut ds = ArchSpec {
            arch: "deepseek2".into(),
            n_layer: 27,
            n_embd: 2048,
            n_ff: 10944,
            n_head: 16,
            n_head_kv: 16,
            head_dim: 192,
            rope_dim: 64,
            v_head_dim: 128,
            kv_lora_rank: 512,
            n_vocab: 102400,
            n_ctx_train: 163840,
            n_expert: 64,
            n_expert_used: 6,
            expert_ff: 1408,
            n_shared_expert: 2,
            shared_expert_ff: 2816,
            n_leading_dense: 1,
            rms_eps: 1e-6,
            ..Default::default()
        };
        for split in [false, true] {
            ds.mla_split_kv_b = split;
            for spec in [mixtral(), ds.clone()] {
                let info = ArchInfo::from_metadata(&arch_metadata(&spec)).unwrap();
                assert_eq!(info.arch, spec.arch);
                assert_eq!(info.n_layer, spec.n_layer);
                assert_eq!(info.n_embd, spec.n_embd);
                assert_eq!(info.n_ff, PerLayer::Uniform(spec.n_ff));
                assert_eq!(info.n_head, PerLayer::Uniform(spec.n_head));
                assert_eq!(info.n_ctx_train, spec.n_ctx_train);
                assert_eq!(info.n_vocab, Some(spec.n_vocab));
                assert_eq!(info.n_expert, spec.n_expert);
                assert_eq!(info.n_expert_used, spec.n_expert_used);
                assert_eq!(info.expert_ff, Some(spec.expert_ff));
                assert_eq!(info.n_leading_dense, spec.n_leading_dense);
                assert_eq!(info.n_shared_expert, spec.n_shared_expert);
                assert_eq!(
                    info.kv_lora_rank,
                    (spec.kv_lora_rank > 0).then_some(spec.kv_lora_rank)
                );
            }
        }
        let info = ArchInfo::from_metadata(&arch_metadata(&mixtral())).unwrap();
        assert_eq!(info.n_head_kv, PerLayer::Uniform(2));
        assert_eq!(info.head_dim_k, Some(16));
    }

    #[test]
    fn check_names_the_bad_field() {
        let mut s = mixtral();
        s.expert_ff = 0;
        assert_eq!(
            s.check(),
            Err(SpecError::NotPositive {
                arch: "llama".into(),
                field: "expert_ff"
            })
        );
        assert!(s.check().unwrap_err().to_string().contains("expert_ff"));
        s.expert_ff = 128;
        s.n_vocab = 1 << 33;
        assert!(s.check().unwrap_err().to_string().contains("n_vocab"));
        s.arch = "mamba".into();
        assert!(s
            .check()
            .unwrap_err()
            .to_string()
            .contains("unknown architecture"));
    }
}
