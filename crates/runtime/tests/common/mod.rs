//! Model setup shared by the runtime's tests and its decode bench: the real Gemma 3 270M, plain
//! llama.cpp's greedy tokens, its FFN matrices as streamed tensors, tensor file locations and
//! hypura's load path (O_DIRECT, no repacking), page residency, and small synthesized MoE models
//! with plans that stream their experts.
#![allow(dead_code)] // not every test binary uses every helper

use gguf::GgmlType;
use model::{Inventory, TensorEntry};
use plan::{
    CapacityReport, ExpertCache, ExpertPlacement, Inputs, IoPlan, Mode, ModelIdentity, Plan,
    PlanPrediction, SolverReport, TensorPlace, PLAN_VERSION,
};
use runtime::direct_io::DirectReader;
use runtime::io_pool::IoStats;
use runtime::stream::{StreamStats, Streamer};
use runtime::{Context, ContextParams, LoadMode, Model, ModelParams, Sampling};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use synth::presets::{self, Overrides};
use synth::SynthSpec;

pub const PROMPT: &str = "The capital of France is";
pub const N_PREDICT: usize = 24;
pub const PARAMS: ContextParams = ContextParams {
    n_ctx: 256,
    n_threads: 2,
    op_offload: true,
    ..ContextParams::DEFAULT
};

/// The real Gemma 3 270M GGUF; fails with install instructions when it is missing.
pub fn gemma() -> PathBuf {
    testkit::gemma_3_270m_or_panic()
}

/// What a greedy run produced: tokens, or the error that stopped it, and the streamer's counters.
pub struct Run {
    pub tokens: runtime::Result<Vec<i32>>,
    pub stats: Option<StreamStats>,
    pub io: Option<IoStats>,
}

/// Greedy decode of [`N_PREDICT`] tokens after [`PROMPT`].
pub fn run(model: &Model, streamer: Option<Streamer>) -> Run {
    let prompt = model.tokenize(PROMPT, true).unwrap();
    let mut ctx = Context::new(model, PARAMS, streamer).unwrap();
    let tokens = ctx
        .generate(&prompt, N_PREDICT, Sampling::GREEDY)
        .map(|g| g.tokens);
    Run {
        tokens,
        stats: ctx.streamer().map(|s| s.stats()),
        io: ctx.streamer().map(|s| s.io_stats()),
    }
}

/// [`run`] that must succeed.
pub fn greedy(model: &Model, streamer: Option<Streamer>) -> (Vec<i32>, Option<StreamStats>) {
    let r = run(model, streamer);
    (r.tokens.unwrap(), r.stats)
}

/// Plain llama.cpp's greedy tokens (its own defaults: mmap, repacking).
pub fn plain_llama(path: &Path) -> Vec<i32> {
    let model = Model::load(path, &ModelParams::llama_defaults()).unwrap();
    greedy(&model, None).0
}

/// The FFN weight matrices (not the FFN norms): what the tests stream.
pub fn ffn_tensors(inv: &Inventory) -> Vec<&TensorEntry> {
    inv.tensors
        .iter()
        .filter(|t| t.name.contains(".ffn_") && !t.name.contains("norm"))
        .collect()
}

/// Names of [`ffn_tensors`].
pub fn ffn_names(inv: &Inventory) -> Vec<String> {
    ffn_tensors(inv).iter().map(|t| t.name.clone()).collect()
}

/// (file index, absolute data offset) of every tensor, by name: what `Streamer::new` takes.
pub fn locations(inv: &Inventory) -> HashMap<String, (usize, u64)> {
    inv.tensors
        .iter()
        .map(|t| (t.name.clone(), (t.file as usize, t.offset.unwrap())))
        .collect()
}

/// hypura's load path: O_DIRECT reads, no repacked copies, `streamed` tensors (exact names) in
/// the streamed-weights buffer type.
pub fn load_ours(path: &Path, streamed: &[String]) -> Model {
    Model::load(
        path,
        &ModelParams {
            load_mode: LoadMode::DirectIo,
            use_extra_bufts: false,
            streamed: runtime::placement::name_patterns(streamed),
            ..ModelParams::llama_defaults()
        },
    )
    .unwrap()
}

/// The model at `path` loaded our way, with the FFN weights streamed.
pub fn load_streamed_ffn(path: &Path, inv: &Inventory) -> Model {
    load_ours(path, &ffn_names(inv))
}

/// The largest reserved size of the model's streamed tensors: the smallest pool that works.
pub fn largest_streamed(model: &Model) -> u64 {
    model
        .streamed()
        .iter()
        .map(|t| t.reserved as u64)
        .max()
        .unwrap()
}

/// A streamer of `model`'s streamed tensors, read from `path`, with a pool of `pool` bytes.
pub fn streamer(model: &Model, inv: &Inventory, path: &Path, pool: u64) -> Streamer {
    let readers = vec![DirectReader::open(path).unwrap()];
    Streamer::new(model.streamed(), &locations(inv), readers, pool).unwrap()
}

/// Resident pages of a page-aligned range (mincore).
pub fn resident_pages(data: *mut u8, len: usize) -> usize {
    let pages = len.div_ceil(4096);
    let mut vec = vec![0u8; pages];
    // SAFETY: the range is mapped (reserved address space of a live model).
    let rc = unsafe { libc::mincore(data.cast(), len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0);
    vec.iter().filter(|&&b| b & 1 != 0).count()
}

/// Writes a small synthesized model (`preset` with `o`, F16 weights: no CPU repacking, so
/// plain llama.cpp runs the same kernels) into `dir`.
pub fn synth(dir: &Path, preset: &str, o: Overrides) -> PathBuf {
    let preset: synth::Preset = preset.parse().unwrap();
    let (family, base) = presets::base(Some(preset), None).unwrap();
    let arch = presets::apply(family, base, &o).unwrap();
    let spec = SynthSpec {
        arch,
        weight_type: GgmlType::F16,
        seed: 7,
        name: format!("test-{preset}"),
    };
    let path = dir.join(format!("{preset}.gguf"));
    spec.write(&path, false, &mut |_, _| {}).unwrap();
    path
}

/// A plan that keeps everything in RAM except the merged expert tensors: those stream, with the
/// experts in `ram` of every MoE layer preloaded (a split tensor) and an expert cache of
/// `cache_experts` experts. Written by hand, not solved: the runtime's tests need no solver, and
/// what the plan says is all here.
pub fn plan_streaming_experts(model: &Path, ram: &[u32], cache_experts: u64) -> Plan {
    let inv = Inventory::from_gguf(model).unwrap();
    let mut tensors: BTreeMap<String, TensorPlace> = inv
        .tensors
        .iter()
        .map(|t| (t.name.clone(), TensorPlace::Ram))
        .collect();
    let mut experts = Vec::new();
    let n_expert = inv.arch.n_expert;
    let mut expert_bytes = 0;
    for &layer in &inv.arch.moe_layers {
        let merged: Vec<&model::TensorEntry> = inv
            .tensors
            .iter()
            .filter(|t| t.layer == Some(layer) && t.expert_stride.is_some())
            .collect();
        expert_bytes = merged.iter().map(|t| t.expert_stride.unwrap()).sum();
        for t in &merged {
            let place = if ram.is_empty() {
                TensorPlace::Nvme
            } else {
                TensorPlace::Split { layer }
            };
            tensors.insert(t.name.clone(), place);
        }
        experts.push(ExpertPlacement {
            layer,
            tensors: merged.iter().map(|t| t.name.clone()).collect(),
            expert_bytes,
            gpu: Vec::new(),
            ram: ram.to_vec(),
            nvme: (0..n_expert).filter(|e| !ram.contains(e)).collect(),
        });
    }
    // The plan's expert memory holds its memory-tier experts and the cache.
    let pinned = ram.len() as u64 * inv.arch.moe_layers.len() as u64;
    let nvme_bytes = inv.total_bytes();
    Plan {
        version: PLAN_VERSION,
        inputs: Inputs {
            model: ModelIdentity::of(&inv),
            profile_name: "hand-made plan of the runtime tests".into(),
            profile_hash: "0000000000000000".into(),
            profile: None,
            trace_hash: None,
            ctx: u64::from(PARAMS.n_ctx),
            kv_type: "f16".into(),
        },
        mode: Mode::ExpertStreaming,
        solver: SolverReport {
            method: "greedy".into(),
            status: "heuristic".into(),
            lp_bound_s: None,
            objective_s: 1.0,
            mip_bound_s: None,
            gap: None,
            greedy_objective_s: 1.0,
        },
        capacities: CapacityReport {
            gpu_bytes: None,
            ram_bytes: 1 << 40,
            unified: false,
            kv_cache_bytes: 0,
            compute_buffer_bytes: 0,
            gpu_used_bytes: 0,
            ram_used_bytes: 0,
            nvme_bytes,
        },
        tensors,
        experts,
        expert_cache: ExpertCache {
            bytes: (pinned + cache_experts) * expert_bytes,
            policy: "lru".into(),
            hit_rate: 0.0,
        },
        pool_bytes: 0,
        prefetch_depth: 0,
        io: IoPlan {
            queue_depth: 4,
            threads: 4,
            dense_block_bytes: 1 << 20,
            dense_gbps: 1.0,
            expert_block_bytes: 1 << 20,
            expert_queue_depth: 8,
            expert_gbps: 1.0,
            row_bytes: 4096,
            row_gbps: 0.1,
        },
        prediction: PlanPrediction {
            tok_per_s: 1.0,
            token_s: 1.0,
            layers: Vec::new(),
            prefill: None,
        },
    }
}

/// `shared/data/<rel>` beside the checkout (looked up in the ancestors of the manifest
/// directory, so git worktrees find it too).
pub fn shared_data(rel: &str) -> PathBuf {
    testkit::shared_data(rel)
}
