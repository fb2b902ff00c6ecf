//! A model loaded as a plan says: the plan checked against the file, NVMe-tier tensors in the
//! streamed-weights buffer type (not read at load), the rest in host memory (or the GPU backend's).

use crate::direct_io::DirectReader;
use crate::error::{Error, Result};
use crate::model::{LoadMode, Model, ModelParams};
use crate::plan::{self, Placement};
use crate::stream::{IoOptions, Streamer};
use solver::place::plan::Plan;
use solver::place::Tier;
use solver::{Inventory, Source};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

pub struct PlannedModel {
    pub model: Model,
    pub inventory: Inventory,
    pub placement: Placement,
    /// How streamed tensors are read: the plan's queue depth, request size and prefetch depth
    /// (callers may override them before [`PlannedModel::streamer`]).
    pub io: IoOptions,
}

impl PlannedModel {
    /// Reads the GGUF header, refuses a plan made for another model, then loads.
    /// `pool_bytes` overrides the plan's streaming pool.
    pub fn load(path: &Path, plan: &Plan, pool_bytes: Option<u64>) -> Result<PlannedModel> {
        let inventory = Inventory::from_gguf(path)?;
        plan::check_model(plan, &inventory)?;
        let mut placement = plan::placement(plan, &inventory)?;
        if let Some(p) = pool_bytes {
            placement.pool_bytes = p;
        }
        let nvme = placement.names_on(Tier::Nvme);
        let params = ModelParams {
            // Reads, not mmap (whose load prefetches the whole file): resident weights land in
            // anonymous memory, streamed ones are not read at all. O_DIRECT, because buffered
            // reads' readahead caches the streamed neighbours of every resident tensor.
            load_mode: LoadMode::DirectIo,
            // Repacked copies would be extra anonymous memory the plan did not budget.
            use_extra_bufts: false,
            streamed: plan::name_patterns(&nvme),
            host: plan::name_patterns(&placement.names_on(Tier::Ram)),
        };
        let model = Model::load(path, &params)?;
        let got: BTreeSet<&str> = model.streamed().iter().map(|t| t.name.as_str()).collect();
        let want: BTreeSet<&str> = nvme.iter().map(|s| s.as_str()).collect();
        if got != want {
            let missing: Vec<&&str> = want.difference(&got).take(5).collect();
            let extra: Vec<&&str> = got.difference(&want).take(5).collect();
            return Err(Error::Placement(format!(
                "llama.cpp did not place the NVMe-tier tensors as planned (not streamed: {missing:?}; \
                 streamed but not planned: {extra:?})"
            )));
        }
        let io = IoOptions {
            // The simulator's storage device serves dense and expert reads at the larger depth.
            queue_depth: plan.io.queue_depth.max(plan.io.expert_queue_depth).max(1),
            request_bytes: plan.io.dense_block_bytes,
            prefetch_depth: plan.prefetch_depth,
            n_layer: Some(inventory.arch.n_layer),
        };
        Ok(PlannedModel {
            model,
            inventory,
            placement,
            io,
        })
    }

    /// The streamer for a context, or None when nothing is on the NVMe tier.
    pub fn streamer(&self) -> Result<Option<Streamer>> {
        if self.model.streamed().is_empty() {
            return Ok(None);
        }
        let Source::File { paths, .. } = &self.inventory.source else {
            return Err(Error::Placement(
                "a catalog model has no file to stream from".into(),
            ));
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
        Streamer::new(
            self.model.streamed(),
            &locations,
            readers,
            self.placement.pool_bytes,
        )?
        .with_io(self.io)
        .map(Some)
    }
}
