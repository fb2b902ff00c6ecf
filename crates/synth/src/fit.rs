//! Fitting a shape to a target file size (`hypura synth --size`): width and depth chosen so the
//! file lands near the target, in proportions like real models'.

use super::presets::{normalize, Family, ShapeError};
use super::tensor_type;
use gguf::ggml_type::GgmlType;
use model::catalog::{tensor_shapes, ArchSpec};

/// Data bytes of a spec's tensors (each padded to 32 bytes), without the header.
pub fn data_bytes(spec: &ArchSpec, weight_type: GgmlType) -> Option<u64> {
    tensor_shapes(spec).iter().try_fold(0u64, |acc, t| {
        let bytes = tensor_type(&t.name, &t.dims, weight_type).tensor_bytes(&t.dims)?;
        acc.checked_add(bytes.div_ceil(32) * 32)
    })
}

/// The width/depth ratio the fitter aims for: roughly that of Llama-2-7B and Mixtral-8x7B.
const TARGET_WIDTH_PER_LAYER: f64 = 128.0;
const MAX_WIDTH: u64 = 32768;
const MAX_LAYERS: u64 = 512;

/// Scales `base`'s width to `w`: FFN, expert and MLA widths in proportion (multiples of 32);
/// head width grows toward 128 as real models' do (about width / 16), heads fill the width, and
/// the heads-per-kv-head grouping is kept. MLA models keep their head shape and scale the head
/// count. `None` when `w` cannot be split into whole heads and kv groups.
fn scale_width(family: Family, base: &ArchSpec, w: u64) -> Option<ArchSpec> {
    let r = w as f64 / base.n_embd as f64;
    let scale = |v: u64| {
        if v == 0 {
            0
        } else {
            ((v as f64 * r / 32.0).round() as u64).max(1) * 32
        }
    };
    let group = (base.n_head / base.n_head_kv.max(1)).max(1);
    let mut s = base.clone();
    s.n_embd = w;
    s.n_ff = scale(base.n_ff);
    s.expert_ff = scale(base.expert_ff);
    s.shared_expert_ff = scale(base.shared_expert_ff);
    s.kv_lora_rank = scale(base.kv_lora_rank);
    if family == Family::DeepSeek2 {
        s.n_head = ((base.n_head as f64 * r).round() as u64).max(1);
        s.n_head_kv = s.n_head;
        return Some(s);
    }
    let natural = 1u64 << (w / 16).max(1).ilog2();
    s.head_dim = base.head_dim.max(natural.min(128));
    if w % (s.head_dim * group) != 0 {
        return None;
    }
    s.n_head = w / s.head_dim;
    s.n_head_kv = s.n_head / group;
    Some(s)
}

/// Widths the fitter tries.
const WIDTH_STEP: u64 = 64;

/// Picks width and depth so the file lands near `target` bytes. `layers` / `width` fix that
/// dimension; otherwise both are chosen, preferring about 128 of width per layer.
pub fn fit_size(
    family: Family,
    base: &ArchSpec,
    weight_type: GgmlType,
    target: u64,
    layers: Option<u32>,
    width: Option<u64>,
) -> Result<ArchSpec, ShapeError> {
    let lead = base.n_leading_dense as u64;
    let widths: Vec<u64> = match width {
        Some(w) => vec![w],
        None => (1..=MAX_WIDTH / WIDTH_STEP)
            .map(|k| k * WIDTH_STEP)
            .collect(),
    };
    let mut best: Option<(f64, ArchSpec)> = None;
    for w in widths {
        // A width given on the command line is already the one to use, heads included.
        let s = if width.is_some() {
            Some(base.clone())
        } else {
            scale_width(family, base, w)
        };
        let Some(mut s) = s else { continue };
        let at = |n: u64| {
            let mut t = s.clone();
            t.n_layer = n as u32;
            data_bytes(&t, weight_type)
        };
        let (Some(fixed), Some(one_more)) = (at(lead), at(lead + 1)) else {
            continue;
        };
        let per = one_more.saturating_sub(fixed).max(1);
        let n = match layers {
            Some(l) => l as u64,
            None => {
                lead + ((target.saturating_sub(fixed) as f64 / per as f64).round() as u64).max(1)
            }
        };
        if n > MAX_LAYERS {
            continue;
        }
        let total = fixed + (n - lead) * per;
        let miss = (total as f64 / target as f64).ln().abs();
        // Within 3% of the target, prefer natural proportions and round widths; outside, the
        // closer size.
        let roundness = if w % 256 == 0 {
            0.0
        } else if w % 128 == 0 {
            0.05
        } else {
            0.1
        };
        let shape = ((w as f64 / n as f64) / TARGET_WIDTH_PER_LAYER).ln().abs() + roundness;
        let score = if layers.is_some() || width.is_some() {
            miss
        } else if miss < 0.03 {
            shape
        } else {
            100.0 + miss
        };
        s.n_layer = n as u32;
        if best.as_ref().is_none_or(|(b, _)| score < *b) {
            best = Some((score, s));
        }
    }
    let (_, spec) = best.ok_or(ShapeError::NoFit {
        max_layers: MAX_LAYERS,
        max_width: MAX_WIDTH,
        target,
    })?;
    normalize(family, spec)
}

/// A file size that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("size {text:?}: expected a number with an optional unit, like 2GiB")]
    NotANumber { text: String },
    #[error("size {text:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)")]
    UnknownUnit { text: String, unit: String },
    /// Below one byte or beyond 64 bits.
    #[error("size {text:?} is out of range")]
    OutOfRange { text: String },
}

/// Parses a size such as `2GiB`, `1.5G`, `500MB`, `64k` or `1000` (bytes), as every hypura
/// option reads byte counts ([`model::units::parse_bytes`]); at least one byte.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    use model::units::BytesError;
    match model::units::parse_bytes(text) {
        Ok(0) => Err(SizeError::OutOfRange {
            text: text.to_string(),
        }),
        Ok(b) => Ok(b),
        Err(BytesError::NotANumber { .. }) => Err(SizeError::NotANumber {
            text: text.to_string(),
        }),
        Err(BytesError::UnknownUnit { unit, .. }) => Err(SizeError::UnknownUnit {
            text: text.to_string(),
            unit,
        }),
        Err(BytesError::TooLarge { .. }) => Err(SizeError::OutOfRange {
            text: text.to_string(),
        }),
    }
}
