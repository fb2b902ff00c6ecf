//! Tier capacities: GPU working set minus KV cache and compute buffers, RAM minus the OS reserve,
//! and on unified memory one shared budget with the GPU part capped by the working set.

use gguf::ggml_type::GgmlType;
use hw::HwProfile;
use model::arch::ArchInfo;
use serde::{Deserialize, Serialize};

/// What the runtime needs besides weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Headroom {
    /// Context length the KV cache is sized for.
    pub ctx: u64,
    /// KV cache element type (`f16`, `q8_0`, `q4_0`, `f32`).
    pub kv_type: GgmlType,
    /// Tokens per compute batch (llama.cpp's n_ubatch) for the compute-buffer estimate.
    pub n_ubatch: u64,
    /// Overrides both the profile's `gpu.compute_headroom_bytes` and the built-in estimate.
    pub compute_buffer_bytes: Option<u64>,
}

impl Default for Headroom {
    fn default() -> Headroom {
        Headroom {
            ctx: 4096,
            kv_type: GgmlType::F16,
            n_ubatch: 512,
            compute_buffer_bytes: None,
        }
    }
}

/// KV cache bytes per token of context, summed over layers.
pub fn kv_bytes_per_token(arch: &ArchInfo, kv_type: GgmlType) -> u64 {
    // Saturating throughout: header values are untrusted, and a saturated headroom is then
    // refused as not fitting instead of wrapping to a small number.
    (0..arch.n_layer)
        .map(|l| kv_layer_bytes_per_token(arch, l, kv_type))
        .fold(0, u64::saturating_add)
}

/// KV cache bytes per token of context in one layer. MLA models (DeepSeek-V2/V3) cache the
/// compressed latent plus the decoupled RoPE key: kv_lora_rank + (key width - value width).
pub fn kv_layer_bytes_per_token(arch: &ArchInfo, layer: u32, kv_type: GgmlType) -> u64 {
    let elems = match arch.kv_lora_rank {
        Some(rank) => {
            let rope = arch
                .head_dim_k
                .unwrap_or(0)
                .saturating_sub(arch.head_dim_v.unwrap_or(0));
            rank.saturating_add(rope)
        }
        None => {
            let n_head = arch.n_head.at(layer).max(1);
            let dk = arch.head_dim_k.unwrap_or(arch.n_embd / n_head);
            let dv = arch.head_dim_v.unwrap_or(dk);
            arch.n_head_kv
                .at(layer)
                .saturating_mul(dk.saturating_add(dv))
        }
    };
    elems
        .div_ceil(kv_type.block_size().max(1))
        .saturating_mul(kv_type.block_bytes())
}

/// llama.cpp-style compute buffer estimate (f32 activations of one ubatch): the logits
/// (n_ubatch x n_vocab), the attention scores of one layer without flash attention
/// (n_ubatch x ctx x n_head) and the widest FFN activation (n_ubatch x 2 x width).
pub fn compute_buffer_estimate(arch: &ArchInfo, h: &Headroom) -> u64 {
    let vocab = arch.n_vocab.unwrap_or(0);
    let width = arch
        .n_ff
        .max()
        .max(
            arch.expert_ff
                .unwrap_or(0)
                .saturating_mul(arch.n_expert_used.max(1) as u64),
        )
        .max(arch.n_embd);
    let scores = h.ctx.saturating_mul(arch.n_head.max());
    let row = vocab
        .saturating_add(scores)
        .saturating_add(width.saturating_mul(2));
    h.n_ubatch.saturating_mul(row).saturating_mul(4)
}

/// The compute buffer placement reserves: the caller's override, else the profile's measured
/// `gpu.compute_headroom_bytes`, else [`compute_buffer_estimate`].
pub fn compute_buffer_bytes(hw: &HwProfile, arch: &ArchInfo, h: &Headroom) -> u64 {
    h.compute_buffer_bytes
        .or_else(|| hw.gpu.as_ref().and_then(|g| g.compute_headroom_bytes))
        .unwrap_or_else(|| compute_buffer_estimate(arch, h))
}

/// Bytes each tier may hold for weights (after headroom).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacities {
    /// GPU bytes for weights; `None` without a GPU.
    pub gpu: Option<u64>,
    /// RAM bytes for weights (on unified memory: the shared budget, GPU part included).
    pub ram: u64,
    /// GPU and RAM share one budget: gpu + ram weights <= `ram`.
    pub unified: bool,
    pub kv_cache_bytes: u64,
    pub compute_buffer_bytes: u64,
    /// Staging pool for streamed weights, already taken out of `ram`.
    pub pool_reserve_bytes: u64,
}

/// Memory that does not fit: `needed` bytes of what `short` names, `available` there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} needs {needed} bytes but only {available} are available (short by {} bytes); {}", .short.what(), .needed.saturating_sub(*.available), .short.why())]
pub struct Shortfall {
    pub short: Short,
    pub needed: u64,
    pub available: u64,
}

/// What did not fit, with the numbers that explain it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Short {
    /// The KV cache and compute buffer alone exceed `tier` (the runtime needs them besides
    /// the weights).
    Headroom {
        tier: HeadroomTier,
        /// Context length the KV cache is sized for, in tokens.
        ctx: u64,
        kv_type: GgmlType,
        kv_bytes: u64,
        compute_bytes: u64,
    },
    /// No RAM is left for the streaming pool once the model does not fit in memory.
    Pool,
    /// Norms and routers (always resident) exceed the memory.
    Pinned,
    /// Norms and routers fit the memory in total but do not pack into the tiers.
    PinnedPacking,
}

/// The memory the headroom did not fit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadroomTier {
    Ram,
    GpuWorkingSet,
    Unified,
}

impl Short {
    /// The memory that is short.
    pub fn what(&self) -> &'static str {
        match self {
            Short::Headroom { tier, .. } => match tier {
                HeadroomTier::Ram => "RAM (KV cache + compute buffer)",
                HeadroomTier::GpuWorkingSet => "GPU working set (KV cache + compute buffer)",
                HeadroomTier::Unified => "unified memory (KV cache + compute buffer)",
            },
            Short::Pool => "RAM (streaming pool)",
            Short::Pinned | Short::PinnedPacking => "the tensors that stay resident (norms, routers, the token embedding; the output head when the baseline keeps it)",
        }
    }

    /// Why it is needed, or why it cannot be had.
    pub fn why(&self) -> String {
        match self {
            Short::Headroom {
                ctx,
                kv_type,
                kv_bytes,
                compute_bytes,
                ..
            } => format!(
                "KV cache for a context of {ctx} tokens ({kv_type}) is {kv_bytes} bytes and the \
                 compute buffer {compute_bytes} bytes"
            ),
            Short::Pool => {
                "the model does not fit in memory, and there is no room left to stream it through"
                    .into()
            }
            Short::Pinned => "this machine has too little memory for this model".into(),
            Short::PinnedPacking => "they do not pack into the free memory".into(),
        }
    }
}

impl Capacities {
    /// Capacities of `hw` for a model with `arch`, before any streaming pool.
    pub fn new(hw: &HwProfile, arch: &ArchInfo, h: &Headroom) -> Result<Capacities, Shortfall> {
        let kv = kv_bytes_per_token(arch, h.kv_type).saturating_mul(h.ctx);
        let compute = compute_buffer_bytes(hw, arch, h);
        let ram_free = hw.ram.bytes.saturating_sub(hw.ram.os_reserve_bytes);
        let headroom = kv.saturating_add(compute);
        let short = |tier: HeadroomTier, available: u64| Shortfall {
            short: Short::Headroom {
                tier,
                ctx: h.ctx,
                kv_type: h.kv_type,
                kv_bytes: kv,
                compute_bytes: compute,
            },
            needed: headroom,
            available,
        };
        let (gpu, ram, unified) = match &hw.gpu {
            None => {
                let ram = ram_free
                    .checked_sub(headroom)
                    .ok_or_else(|| short(HeadroomTier::Ram, ram_free))?;
                (None, ram, false)
            }
            Some(g) => {
                let gpu = g
                    .working_set_bytes
                    .checked_sub(headroom)
                    .ok_or_else(|| short(HeadroomTier::GpuWorkingSet, g.working_set_bytes))?;
                if g.unified_memory {
                    let shared = ram_free
                        .checked_sub(headroom)
                        .ok_or_else(|| short(HeadroomTier::Unified, ram_free))?;
                    (Some(gpu.min(shared)), shared, true)
                } else {
                    (Some(gpu), ram_free, false)
                }
            }
        };
        Ok(Capacities {
            gpu,
            ram,
            unified,
            kv_cache_bytes: kv,
            compute_buffer_bytes: compute,
            pool_reserve_bytes: 0,
        })
    }

    /// Total bytes GPU and RAM can hold together.
    pub fn memory_total(&self) -> u64 {
        if self.unified {
            self.ram
        } else {
            self.ram + self.gpu.unwrap_or(0)
        }
    }

    /// Takes `bytes` of RAM for the streaming pool.
    pub fn with_pool(&self, bytes: u64) -> Result<Capacities, Shortfall> {
        let ram = self.ram.checked_sub(bytes).ok_or(Shortfall {
            short: Short::Pool,
            needed: bytes,
            available: self.ram,
        })?;
        let gpu = match (self.gpu, self.unified) {
            (Some(g), true) => Some(g.min(ram)),
            (g, _) => g,
        };
        Ok(Capacities {
            gpu,
            ram,
            pool_reserve_bytes: bytes,
            ..self.clone()
        })
    }

    /// Bytes a placement may put on `tier`, with `gpu_used` already on the GPU (unified budgets
    /// share). NVMe is unbounded.
    pub fn left_for(&self, tier: super::Tier, gpu_used: u64, ram_used: u64) -> u64 {
        match tier {
            super::Tier::Gpu => {
                let g = self.gpu.unwrap_or(0).saturating_sub(gpu_used);
                if self.unified {
                    g.min(self.ram.saturating_sub(gpu_used + ram_used))
                } else {
                    g
                }
            }
            super::Tier::Ram => {
                let used = if self.unified {
                    gpu_used + ram_used
                } else {
                    ram_used
                };
                self.ram.saturating_sub(used)
            }
            super::Tier::Nvme => u64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_70b_kv_cache_matches_the_hand_count() {
        let inv = model::catalog::lookup("llama-3.3-70b").unwrap();
        // 80 layers x 8 KV heads x (128 + 128) x 2 bytes (f16) per token.
        assert_eq!(
            kv_bytes_per_token(&inv.arch, GgmlType::F16),
            80 * 8 * 256 * 2
        );
        // q8_0 packs 32 elements in 34 bytes.
        assert_eq!(
            kv_bytes_per_token(&inv.arch, GgmlType::Q8_0),
            80 * 8 * 256 / 32 * 34
        );
    }

    #[test]
    fn profile_compute_headroom_replaces_the_estimate() {
        let inv = model::catalog::lookup("mixtral-8x7b:q5_k_m").unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/m1max.toml");
        let mut hw = HwProfile::load(path).unwrap();
        let h = Headroom::default();
        let estimated = Capacities::new(&hw, &inv.arch, &h).unwrap();
        assert_eq!(
            estimated.compute_buffer_bytes,
            compute_buffer_estimate(&inv.arch, &h)
        );
        let measured = 3 << 30;
        hw.gpu.as_mut().unwrap().compute_headroom_bytes = Some(measured);
        let caps = Capacities::new(&hw, &inv.arch, &h).unwrap();
        assert_eq!(caps.compute_buffer_bytes, measured);
        // The difference goes straight to (or comes straight out of) the weights' budget.
        assert_eq!(
            caps.ram + measured,
            estimated.ram + estimated.compute_buffer_bytes
        );
        // An explicit override (--compute-buffer) still wins.
        let forced = Headroom {
            compute_buffer_bytes: Some(1 << 20),
            ..Headroom::default()
        };
        let caps = Capacities::new(&hw, &inv.arch, &forced).unwrap();
        assert_eq!(caps.compute_buffer_bytes, 1 << 20);
    }

    #[test]
    fn deepseek_mla_caches_the_latent_and_rope_key() {
        let inv = model::catalog::lookup("deepseek-v3").unwrap();
        // kv_lora_rank 512 + rope 64 per layer, 61 layers.
        assert_eq!(kv_bytes_per_token(&inv.arch, GgmlType::F16), 61 * 576 * 2);
    }
}
