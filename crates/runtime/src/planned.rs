//! A model loaded as a plan says: the plan checked against the file, NVMe-tier tensors in the
//! streamed-weights buffer type (not read at load), the rest in host memory (or the GPU backend's).

use crate::context::{Context, ContextParams, FlashAttn};
use crate::direct_io::DirectReader;
use crate::error::{Error, Result};
use crate::experts::{ExpertTensor, Experts};
use crate::model::{LoadMode, Model, ModelParams, StreamedTensor};
use crate::moe::Moe;
use crate::placement::{self as place_on, Placement};
use crate::routing::{ReplayScope, Routing};
use crate::stream::{IoOptions, Streamer};
use gguf::GgmlType;
use model::{Inventory, Source};
use plan::Plan;
use plan::Tier;
use policy::cache::{Policy, RunPolicy};
use policy::prefetch::ExpertPrefetch;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

pub struct PlannedModel {
    pub model: Model,
    pub inventory: Inventory,
    pub placement: Placement,
    /// How streamed tensors are read: the plan's queue depth, request size and prefetch depth
    /// (callers may override them before [`PlannedModel::streamer`]).
    pub io: IoOptions,
    /// The KV cache types, keys and values: the plan's, for which it reserved memory (callers
    /// may override them before [`PlannedModel::context`]).
    pub type_k: GgmlType,
    pub type_v: GgmlType,
    /// Flash attention: llama.cpp's choice unless a caller sets it.
    pub flash_attn: FlashAttn,
}

/// How a run treats MoE layers.
#[derive(Debug, Clone, Default)]
pub struct MoeOptions {
    /// Stream NVMe-tier merged expert tensors whole, like dense tensors, instead of per expert.
    pub whole_expert_tensors: bool,
    /// Expert cache policy; None: the plan's (`static-frequency`: its memory-tier experts
    /// preloaded, LRU over the rest).
    pub cache_policy: Option<RunPolicy>,
    /// Record the routing taken ([`Routing::recorded_trace`]).
    pub record: bool,
    /// Force every MoE layer's selection from this trace.
    pub replay: Option<traces::Trace>,
    /// Which tokens `replay` is forced on.
    pub replay_scope: ReplayScope,
    /// Which experts of the next MoE layer are read ahead during a decode step (sim's choices:
    /// none, co-activation counts learned online, or the oracle, which needs `replay`).
    pub expert_prefetch: ExpertPrefetch,
}

impl MoeOptions {
    /// Refuses options that cannot work together (cheap: call it before a slow load).
    pub fn check(&self) -> Result<()> {
        if self.expert_prefetch == ExpertPrefetch::Oracle
            && (self.replay.is_none() || self.replay_scope != ReplayScope::AllTokens)
        {
            return Err(Error::OracleWithoutReplay);
        }
        Ok(())
    }

    fn intercepts(&self) -> bool {
        self.record || self.replay.is_some()
    }
}

/// The KV cache element type a plan names (`solve --kv-type`).
pub fn kv_type(name: &str) -> Result<GgmlType> {
    match GgmlType::from_name(name) {
        Some(t @ (GgmlType::F16 | GgmlType::F32 | GgmlType::Q8_0 | GgmlType::Q4_0)) => Ok(t),
        _ => Err(Error::KvType(name.to_string())),
    }
}

impl PlannedModel {
    /// Reads the GGUF header, refuses a plan made for another model or inconsistent with it
    /// ([`plan::Plan::check`]), then loads.
    /// `pool_bytes` overrides the plan's streaming pool.
    pub fn load(path: &Path, plan: &Plan, pool_bytes: Option<u64>) -> Result<PlannedModel> {
        PlannedModel::load_with(path, plan, pool_bytes, None)
    }

    /// [`PlannedModel::load`] with llama.cpp's CPU weight repacking forced on or off instead of
    /// chosen by the plan ([`Placement::repacks`]): timing the kernels a streaming run uses on a
    /// plan that streams nothing (decode calibration).
    pub fn load_with(
        path: &Path,
        plan: &Plan,
        pool_bytes: Option<u64>,
        repack: Option<bool>,
    ) -> Result<PlannedModel> {
        let inventory = Inventory::from_gguf(path)?;
        let kv_type = kv_type(&plan.inputs.kv_type)?;
        let mut placement = place_on::placement(plan, &inventory)?;
        if let Some(p) = pool_bytes {
            placement.pool_bytes = p;
        }
        let nvme = placement.names_on(Tier::Nvme);
        let params = ModelParams {
            // Reads, not mmap (whose load prefetches the whole file): resident weights land in
            // anonymous memory, streamed ones are not read at all. O_DIRECT, because buffered
            // reads' readahead caches the streamed neighbours of every resident tensor.
            load_mode: LoadMode::DirectIo,
            use_extra_bufts: repack.unwrap_or(placement.repacks()),
            streamed: place_on::name_patterns(&nvme),
            host: place_on::name_patterns(&placement.host_names()),
            ..ModelParams::llama_defaults()
        };
        let model = Model::load(path, &params)?;
        let got: BTreeSet<&str> = model.streamed().iter().map(|t| t.name.as_str()).collect();
        let want: BTreeSet<&str> = nvme.iter().map(|s| s.as_str()).collect();
        if got != want {
            let missing: Vec<&&str> = want.difference(&got).take(5).collect();
            let extra: Vec<&&str> = got.difference(&want).take(5).collect();
            return Err(Error::NotPlacedAsPlanned {
                missing: missing.iter().map(|s| s.to_string()).collect(),
                extra: extra.iter().map(|s| s.to_string()).collect(),
            });
        }
        let io = IoOptions {
            // The simulator's storage device serves dense and expert reads at the larger depth.
            queue_depth: plan.io.queue_depth.max(plan.io.expert_queue_depth).max(1),
            request_bytes: plan.io.dense_block_bytes,
            prefetch_depth: plan.prefetch_depth,
            n_layer: Some(inventory.arch.n_layer),
            memory: crate::StreamedMemory::default(),
        };
        Ok(PlannedModel {
            model,
            inventory,
            placement,
            io,
            type_k: kv_type,
            type_v: kv_type,
            flash_attn: FlashAttn::Auto,
        })
    }

    /// The streamer for a context, or None when nothing is on the NVMe tier.
    pub fn streamer(&self) -> Result<Option<Streamer>> {
        self.streamer_with(&MoeOptions::default())
    }

    /// Whether the plan streams routed experts per expert, so that a run's reads follow its
    /// routing (with `whole_expert_tensors` they stream as dense tensors instead).
    pub fn streams_experts(&self) -> bool {
        let expert_tensors: std::collections::HashSet<&str> = self
            .inventory
            .tensors
            .iter()
            .filter(|t| t.expert_stride.is_some())
            .map(|t| t.name.as_str())
            .collect();
        self.model
            .streamed()
            .iter()
            .any(|t| expert_tensors.contains(t.name.as_str()))
    }

    /// The streamer for a context with `moe` options, or None when nothing is on the NVMe tier
    /// and no routing is recorded or replayed. Expert tensors stream per expert unless
    /// `moe.whole_expert_tensors`; the plan's memory-tier experts of split tensors are read now.
    pub fn streamer_with(&self, moe: &MoeOptions) -> Result<Option<Streamer>> {
        let arch = &self.inventory.arch;
        if moe.intercepts() && !arch.is_moe() {
            return Err(Error::NotMoe {
                path: self.model.path().to_path_buf(),
                arch: arch.arch.clone(),
            });
        }
        moe.check()?;
        if self.model.streamed().is_empty() && !moe.intercepts() {
            return Ok(None);
        }
        let entries: HashMap<&str, &model::TensorEntry> = self
            .inventory
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let per_expert = |t: &StreamedTensor| -> Option<(u32, u64)> {
            let e = entries.get(t.name.as_str())?;
            Some((e.layer?, e.expert_stride?)).filter(|_| !moe.whole_expert_tensors)
        };
        let (experts, dense): (Vec<&StreamedTensor>, Vec<&StreamedTensor>) = self
            .model
            .streamed()
            .iter()
            .partition(|t| per_expert(t).is_some());
        let dense: Vec<StreamedTensor> = dense.into_iter().cloned().collect();
        let pool = if experts.is_empty() {
            self.placement.pool_bytes
        } else {
            // The expert cache is held by the experts' own accounting.
            self.placement
                .pool_bytes
                .saturating_sub(self.placement.expert_cache_bytes)
        };
        let Source::File { paths, .. } = &self.inventory.source else {
            return Err(Error::CatalogModel);
        };
        let mut readers = Vec::with_capacity(paths.len());
        for p in paths {
            readers.push(DirectReader::open(p)?);
        }
        let locations: HashMap<String, (usize, u64)> = self
            .inventory
            .tensors
            .iter()
            .filter_map(|t| Some((t.name.clone(), (t.file as usize, t.offset?))))
            .collect();
        let mut streamer = Streamer::new(&dense, &locations, readers, pool)?.with_io(self.io)?;
        if !experts.is_empty() || moe.intercepts() {
            let facts = crate::routing::model_facts(arch);
            let routing =
                Routing::new(facts, moe.record, moe.replay.clone())?.with_scope(moe.replay_scope);
            let x = if experts.is_empty() {
                None
            } else {
                let tensors = experts
                    .iter()
                    .map(|t| {
                        let (layer, stride) = per_expert(t).expect("partitioned on it");
                        let (file, offset) = locations[&t.name];
                        ExpertTensor {
                            t: (*t).clone(),
                            file,
                            offset,
                            layer,
                            stride: stride as usize,
                        }
                    })
                    .collect();
                // The plan's memory-tier experts are preloaded and pinned under its own policy
                // and pinned-lru; any other policy manages all of the expert memory itself, as
                // `hypura sim --policy` does.
                let (policy, pinned) = self.cache_policy(moe)?;
                let no_pins = HashMap::new();
                let (io, stats) = streamer.io();
                let mut x = Experts::new(
                    tensors,
                    &arch.moe_layers,
                    arch.n_expert as usize,
                    if pinned {
                        &self.placement.resident_experts
                    } else {
                        &no_pins
                    },
                    policy,
                    self.placement.expert_cache_bytes,
                    io,
                    stats,
                )?;
                x.set_prefetch(moe.expert_prefetch, arch.n_expert_used as usize);
                Some(x)
            };
            streamer.set_moe(Moe::new(routing, x));
        }
        Ok(Some(streamer))
    }

    /// A context that runs the plan: the streamer for `moe` wired in and, with `record_layers`,
    /// a per-(token, layer) record of every step (a plan that streams nothing then gets a
    /// streamer that only records). Ops on host weights stay on the CPU backend, as a plan
    /// computes them.
    pub fn context(
        &self,
        moe: &MoeOptions,
        n_ctx: u32,
        n_threads: u32,
        record_layers: bool,
    ) -> Result<Context<'_>> {
        let mut streamer = self.streamer_with(moe)?;
        if record_layers {
            match streamer.as_mut() {
                Some(s) => s.record_layers(true),
                None => streamer = Some(Streamer::metrics_only()),
            }
        }
        let params = ContextParams {
            n_ctx,
            n_threads,
            op_offload: true,
            type_k: self.type_k,
            type_v: self.type_v,
            flash_attn: self.flash_attn,
        };
        Context::new(&self.model, params, streamer)
    }

    /// The expert cache policy (the option's, else the plan's) and whether the plan's
    /// memory-tier experts are preloaded and pinned under it.
    fn cache_policy(&self, moe: &MoeOptions) -> Result<(Policy, bool)> {
        let name = &self.placement.expert_policy;
        let run = match moe.cache_policy.or_else(|| RunPolicy::from_name(name)) {
            Some(p) => p,
            // A plan naming a policy that cannot run (belady) or none at all: the cache
            // refuses it with its own message.
            None => return Ok((Policy::from_name(name)?, false)),
        };
        Ok((run.policy(), run.pins_plan_experts()))
    }
}
