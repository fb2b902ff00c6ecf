//! What llama.cpp asserts about a model's metadata, checked before the file reaches it.
//!
//! A `GGML_ASSERT` in llama.cpp aborts the whole process, with no error to catch, so a value it
//! would abort on is refused here with the key named. Errors that llama.cpp itself returns are
//! left to it. The limits are those of the pinned llama.cpp (`llama-hparams.h`,
//! `llama_model::load_hparams`, `llama_vocab::impl::load`, ggml's norm kernels).

use crate::arch::ArchInfo;
use crate::error::MetadataError;
use gguf::{Array, Metadata, Value};
use std::collections::HashSet;

/// `LLAMA_MAX_LAYERS`: block_count must be in 1..=this.
pub const MAX_LAYERS: u32 = 512;
/// `LLAMA_MAX_EXPERTS`.
pub const MAX_EXPERTS: u32 = 1024;

/// Checks `md` (whose architecture facts are `info`) against llama.cpp's assertions.
pub fn check(md: &Metadata, info: &ArchInfo) -> Result<(), MetadataError> {
    let key = |k: &str| format!("{}.{k}", info.arch);
    if info.n_layer == 0 || info.n_layer > MAX_LAYERS {
        return Err(MetadataError::LayerCount {
            key: key("block_count"),
            value: info.n_layer,
        });
    }
    if let Some(n) = md.get_u64(&key("nextn_predict_layers")) {
        if n > u64::from(info.n_layer) {
            return Err(MetadataError::NextnLayers {
                key: key("nextn_predict_layers"),
                value: n,
                n_layer: info.n_layer,
            });
        }
    }
    check_experts(md, info, &key)?;
    for k in [
        "attention.layer_norm_rms_epsilon",
        "attention.layer_norm_epsilon",
    ] {
        if let Some(v) = md.get(&key(k)) {
            // llama.cpp reads it as f32; ggml's norm kernels assert eps >= 0.
            let eps = v.as_f64().map(|e| e as f32);
            if !eps.is_some_and(|e| e.is_finite() && e >= 0.0) {
                return Err(MetadataError::BadEpsilon {
                    key: key(k),
                    value: v.clone(),
                });
            }
        }
    }
    check_vocab(md)
}

fn check_experts(
    md: &Metadata,
    info: &ArchInfo,
    key: &dyn Fn(&str) -> String,
) -> Result<(), MetadataError> {
    let (n, used) = (info.n_expert, info.n_expert_used);
    if n > MAX_EXPERTS {
        return Err(MetadataError::TooManyExperts {
            key: key("expert_count"),
            value: n,
        });
    }
    if n > 0 && used == 0 {
        return Err(MetadataError::NoExpertUsed {
            count_key: key("expert_count"),
            count: n,
            used_key: key("expert_used_count"),
        });
    }
    if n == 0 && used > 0 {
        return Err(MetadataError::UsedWithoutExperts {
            used_key: key("expert_used_count"),
            used,
            count_key: key("expert_count"),
        });
    }
    let groups = md.get_u64(&key("expert_group_count")).unwrap_or(0);
    let groups_used = md.get_u64(&key("expert_group_used_count")).unwrap_or(0);
    let n = u64::from(n);
    let bad_groups = if n == 0 {
        groups != 0
    } else {
        groups >= n
            || (groups > 1 && (n % groups != 0 || groups_used == 0 || groups_used >= groups))
    };
    if bad_groups {
        return Err(MetadataError::ExpertGroups {
            groups_key: key("expert_group_count"),
            groups,
            used_key: key("expert_group_used_count"),
            used: groups_used,
            experts: n,
        });
    }
    Ok(())
}

/// llama.cpp maps each token's text to its id and asserts the map has one entry per token, so
/// two tokens with the same text abort it (an empty text stands for `[EMPTY_<id>]`).
fn check_vocab(md: &Metadata) -> Result<(), MetadataError> {
    const TOKENS: &str = "tokenizer.ggml.tokens";
    let Some(Value::Array(Array::String(tokens))) = md.get(TOKENS) else {
        // Absent or ill-typed: llama.cpp returns an error of its own.
        return Ok(());
    };
    let mut seen: HashSet<std::borrow::Cow<'_, str>> = HashSet::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let text = if t.is_empty() {
            std::borrow::Cow::Owned(format!("[EMPTY_{i}]"))
        } else {
            std::borrow::Cow::Borrowed(t.as_str())
        };
        if !seen.insert(text) {
            return Err(MetadataError::DuplicateToken {
                key: TOKENS,
                index: i,
                text: t.clone(),
            });
        }
    }
    if u32::try_from(tokens.len()).is_err() {
        return Err(MetadataError::TooManyTokens {
            key: TOKENS,
            count: tokens.len(),
        });
    }
    Ok(())
}
