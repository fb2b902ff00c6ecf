//! llama.cpp quantization presets (F16, Q8_0, Q4_0, Q4_K_M, Q5_K_M, MXFP4_MOE): the ggml type
//! each tensor gets.
//!
//! This reproduces llama.cpp `src/llama-quant.cpp` — `tensor_allows_quantization`,
//! `tensor_get_category`, `llama_tensor_get_type_impl` and `tensor_type_fallback` — for the
//! presets the catalog uses, including its per-tensor counters: attention-V tensors are
//! counted in file order (`i_attention_wv` of `n_attention_wv`), `ffn_down*` tensors by the layer
//! parsed from the name when the model has experts and by a running counter otherwise
//! (`i_ffn_down` of `n_layer`), exactly as `layer_info` does.
//!
//! Tensors llama-quantize leaves alone (1-D tensors, norms, biases, the MoE router
//! `ffn_gate_inp`) keep the type `convert_hf_to_gguf.py` wrote, which for all of them is F32.

use super::shapes::{ArchSpec, TensorShape};
use crate::error::RecipeError;
use gguf::ggml_type::GgmlType;
use std::fmt;

/// A llama-quantize file type (`llama_ftype`) the catalog can reproduce.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Preset {
    /// `LLAMA_FTYPE_MOSTLY_F16` (1): every matrix F16, as `convert_hf_to_gguf.py` writes it.
    F16,
    /// `LLAMA_FTYPE_MOSTLY_Q8_0` (7).
    Q8_0,
    /// `LLAMA_FTYPE_MOSTLY_Q4_0` (2): Q4_0, the output head Q6_K.
    Q4_0,
    /// `LLAMA_FTYPE_MOSTLY_Q4_K_M` (15).
    Q4KM,
    /// `LLAMA_FTYPE_MOSTLY_Q5_K_M` (17).
    Q5KM,
    /// `LLAMA_FTYPE_MOSTLY_MXFP4_MOE` (38): 3-D expert tensors MXFP4, every other matrix Q8_0.
    Mxfp4Moe,
}

impl Preset {
    pub const ALL: &'static [Preset] = &[
        Preset::F16,
        Preset::Q8_0,
        Preset::Q4_0,
        Preset::Q4KM,
        Preset::Q5KM,
        Preset::Mxfp4Moe,
    ];

    /// The name users type after the model (`f16`, `q8_0`, `q4_0`, `q4_k_m`, `q5_k_m`, `mxfp4`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::F16 => "f16",
            Preset::Q8_0 => "q8_0",
            Preset::Q4_0 => "q4_0",
            Preset::Q4KM => "q4_k_m",
            Preset::Q5KM => "q5_k_m",
            Preset::Mxfp4Moe => "mxfp4",
        }
    }

    /// Parses a preset name, case-insensitively; `mxfp4_moe` is accepted for `mxfp4`.
    pub fn from_name(s: &str) -> Option<Preset> {
        let s = s.to_ascii_lowercase();
        if s == "mxfp4_moe" {
            return Some(Preset::Mxfp4Moe);
        }
        Preset::ALL.iter().copied().find(|p| p.name() == s)
    }

    /// `general.file_type` llama-quantize writes.
    pub fn ftype(self) -> u32 {
        match self {
            Preset::F16 => 1,
            Preset::Q8_0 => 7,
            Preset::Q4_0 => 2,
            Preset::Q4KM => 15,
            Preset::Q5KM => 17,
            Preset::Mxfp4Moe => 38,
        }
    }

    /// The K-quant mixes, whose `use_more_bits` layers get Q6_K.
    fn is_k_mix(self) -> bool {
        matches!(self, Preset::Q4KM | Preset::Q5KM)
    }

    /// llama.cpp `llama_ftype_get_default_type`.
    fn default_type(self) -> GgmlType {
        match self {
            Preset::F16 => GgmlType::F16,
            Preset::Q8_0 => GgmlType::Q8_0,
            Preset::Q4_0 => GgmlType::Q4_0,
            Preset::Q4KM => GgmlType::Q4_K,
            Preset::Q5KM => GgmlType::Q5_K,
            Preset::Mxfp4Moe => GgmlType::MXFP4,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// llama.cpp `tensor_category`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttnQ,
    /// attn_v, attn_qkv and attn_kv_b: llama.cpp's `category_is_attn_v`.
    AttnVLike,
    AttnK,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

/// llama.cpp `tensor_get_category`: substring tests, in the same order.
fn category(name: &str) -> Category {
    if name == "output.weight" {
        return Category::Output;
    }
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return Category::TokenEmbd;
    }
    let has = |s: &str| name.contains(s);
    if has("attn_qkv.weight") || has("attn_kv_b.weight") || has("attn_v.weight") {
        Category::AttnVLike
    } else if has("attn_k.weight") {
        Category::AttnK
    } else if has("attn_q.weight") {
        Category::AttnQ
    } else if has("attn_output.weight") {
        Category::AttnOutput
    } else if has("ffn_up") {
        Category::FfnUp
    } else if has("ffn_gate") {
        Category::FfnGate
    } else if has("ffn_down") {
        Category::FfnDown
    } else {
        Category::Other
    }
}

/// `ggml_n_dims`: dimensions up to the last one larger than 1.
fn n_dims(dims: &[u64]) -> usize {
    dims.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1)
}

/// llama.cpp `tensor_allows_quantization`, for the names the catalog produces.
fn allows_quantization(name: &str, dims: &[u64]) -> bool {
    n_dims(dims) >= 2
        && name.ends_with("weight")
        && !name.contains("_norm.weight")
        && !name.contains("ffn_gate_inp.weight")
}

/// llama.cpp's `use_more_bits` lambda: the first and last eighth of layers, and every third
/// layer in between, get more bits.
fn use_more_bits(i_layer: i64, n_layers: i64) -> bool {
    i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2
}

/// llama.cpp's `LLM_TYPE_70B` (`load_hparams`): an 80-layer llama with grouped-query attention
/// (equal head counts make it `LLM_TYPE_65B`), or an 80-layer qwen2.
fn is_type_70b(spec: &ArchSpec) -> bool {
    match spec.arch.as_str() {
        "llama" => spec.n_layer == 80 && spec.n_head != spec.n_head_kv,
        "qwen2" => spec.n_layer == 80,
        _ => false,
    }
}

fn layer_of(name: &str) -> Option<i64> {
    name.strip_prefix("blk.")?.split_once('.')?.0.parse().ok()
}

/// Counters llama-quantize keeps while walking the tensors (`quantize_state_impl`).
struct State {
    n_attention_wv: i64,
    i_attention_wv: i64,
    i_ffn_down: i64,
    tied_embeddings: bool,
}

/// The type each tensor of `shapes` (in file order) gets under `preset`.
/// Errors name a tensor whose row length no type of the preset can hold.
pub fn tensor_types(
    spec: &ArchSpec,
    shapes: &[TensorShape],
    preset: Preset,
) -> Result<Vec<GgmlType>, RecipeError> {
    let mut st = State {
        n_attention_wv: shapes
            .iter()
            .filter(|t| category(&t.name) == Category::AttnVLike)
            .count() as i64,
        i_attention_wv: 0,
        i_ffn_down: 0,
        tied_embeddings: !shapes.iter().any(|t| t.name == "output.weight"),
    };
    shapes
        .iter()
        .map(|t| {
            if !allows_quantization(&t.name, &t.dims) {
                return Ok(GgmlType::F32);
            }
            // An unquantized file type: llama-quantize copies the converter's F16 matrices.
            if preset == Preset::F16 {
                return Ok(GgmlType::F16);
            }
            let target = target_type(&mut st, spec, t, preset);
            fallback(t, target)
        })
        .collect()
}

/// llama.cpp `llama_tensor_get_type_impl`, reduced to the branches Q8_0, Q4_0, Q4_K_M, Q5_K_M
/// and MXFP4_MOE reach (without an importance matrix).
fn target_type(st: &mut State, spec: &ArchSpec, t: &TensorShape, preset: Preset) -> GgmlType {
    let default = preset.default_type();
    let cat = category(&t.name);
    let n_layer = spec.n_layer as i64;
    if cat == Category::Output || (st.tied_embeddings && cat == Category::TokenEmbd) {
        return if preset == Preset::Mxfp4Moe
            || t.dims[0] % default.block_size() != 0
            || default == GgmlType::Q8_0
        {
            GgmlType::Q8_0
        } else {
            GgmlType::Q6_K
        };
    }
    if preset == Preset::Mxfp4Moe {
        return if t.dims.get(2).copied().unwrap_or(1) > 1 {
            GgmlType::MXFP4
        } else {
            GgmlType::Q8_0
        };
    }
    match cat {
        Category::AttnVLike => {
            let mut ty = default;
            if preset.is_k_mix() && use_more_bits(st.i_attention_wv, st.n_attention_wv) {
                ty = GgmlType::Q6_K;
            }
            if is_type_70b(spec) && matches!(ty, GgmlType::Q3_K | GgmlType::Q4_K) {
                ty = GgmlType::Q5_K;
            }
            if spec.n_expert == 8 {
                ty = GgmlType::Q8_0;
            }
            st.i_attention_wv += 1;
            ty
        }
        Category::AttnK if spec.n_expert == 8 => GgmlType::Q8_0,
        Category::FfnDown => {
            // With experts, llama.cpp reads the layer from the name ("experts are not
            // consecutive"); otherwise it counts ffn_down tensors. Either way against n_layer.
            let i_layer = if spec.n_expert > 1 {
                layer_of(&t.name).unwrap_or(st.i_ffn_down)
            } else {
                st.i_ffn_down
            };
            st.i_ffn_down += 1;
            if preset.is_k_mix() && use_more_bits(i_layer, n_layer) {
                GgmlType::Q6_K
            } else {
                default
            }
        }
        Category::AttnOutput if spec.n_expert == 8 && preset == Preset::Q4KM => GgmlType::Q5_K,
        _ => default,
    }
}

/// llama.cpp `tensor_type_fallback`: a row length that is not a whole number of blocks gets a
/// 32-element type of similar size, else F16. Q2_K/Q3_K map to IQ4_NL as in the llama.cpp
/// releases that made the published files (current master maps them to Q4_0); the catalog's
/// presets never target them.
fn fallback(t: &TensorShape, target: GgmlType) -> Result<GgmlType, RecipeError> {
    let ncols = t.dims[0];
    if ncols % target.block_size() == 0 {
        return Ok(target);
    }
    let alt = match target {
        GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::IQ4_XS => GgmlType::IQ4_NL,
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        other => {
            return Err(RecipeError::NoFallback {
                tensor: t.name.clone(),
                row: ncols,
                block: other.block_size(),
                ty: other,
            })
        }
    };
    Ok(if ncols % alt.block_size() == 0 {
        alt
    } else {
        GgmlType::F16
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_more_bits_matches_llama_cpp_for_18_layers() {
        // Gemma 3 270M's published Q4_K_M file has Q6_K ffn_down exactly in these layers.
        let more: Vec<i64> = (0..18).filter(|&i| use_more_bits(i, 18)).collect();
        assert_eq!(more, [0, 1, 4, 7, 10, 13, 15, 16, 17]);
    }

    #[test]
    fn fallback_follows_llama_cpp_table() {
        let t = |n| TensorShape {
            name: "blk.0.attn_q.weight".into(),
            dims: vec![n, 8],
        };
        assert_eq!(fallback(&t(640), GgmlType::Q4_K), Ok(GgmlType::Q5_0));
        assert_eq!(fallback(&t(640), GgmlType::Q5_K), Ok(GgmlType::Q5_1));
        assert_eq!(fallback(&t(640), GgmlType::Q6_K), Ok(GgmlType::Q8_0));
        assert_eq!(fallback(&t(640), GgmlType::Q3_K), Ok(GgmlType::IQ4_NL));
        assert_eq!(fallback(&t(1024), GgmlType::Q4_K), Ok(GgmlType::Q4_K));
        assert_eq!(fallback(&t(100), GgmlType::Q4_K), Ok(GgmlType::F16));
        let e = fallback(&t(100), GgmlType::Q8_0).unwrap_err();
        assert!(
            matches!(&e, RecipeError::NoFallback { tensor, row: 100, block: 32, .. } if tensor == "blk.0.attn_q.weight"),
            "{e}"
        );
        assert!(e.to_string().contains("blk.0.attn_q.weight"), "{e}");
    }

    #[test]
    fn categories_and_quantizability() {
        assert_eq!(category("blk.3.attn_kv_b.weight"), Category::AttnVLike);
        assert_eq!(category("blk.3.ffn_down_exps.weight"), Category::FfnDown);
        assert_eq!(category("blk.3.ffn_gate_shexp.weight"), Category::FfnGate);
        assert_eq!(category("blk.3.attn_k_b.weight"), Category::Other);
        assert!(!allows_quantization(
            "blk.0.ffn_gate_inp.weight",
            &[4096, 8]
        ));
        assert!(!allows_quantization("blk.0.attn_q.bias", &[4096]));
        assert!(!allows_quantization("blk.0.ffn_up_exps.bias", &[2880, 32]));
        assert!(!allows_quantization("blk.0.attn_q_a_norm.weight", &[1536]));
        assert!(allows_quantization(
            "blk.0.ffn_up_exps.weight",
            &[2880, 2880, 32]
        ));
        assert_eq!(n_dims(&[640, 1, 1]), 1);
    }

    #[test]
    fn presets_parse() {
        assert_eq!(Preset::from_name("Q5_K_M"), Some(Preset::Q5KM));
        assert_eq!(Preset::from_name("mxfp4_moe"), Some(Preset::Mxfp4Moe));
        assert_eq!(Preset::from_name("q3_k_s"), None);
        for &p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()), Some(p));
        }
    }
}
