//! What the expert cache holds as decode goes, for co-activation prefetch: a predicted expert
//! the cache holds is not read, as the runtime skips an expert whose slices are loaded.
//!
//! The hits come from a replay of the whole access sequence at once; which experts are cached
//! between two accesses is not part of its answer. So the same accesses are replayed again,
//! one at a time, through the same policy code driven online (`policy::cache::OnlineCache`,
//! which makes the replay's decisions for the same sequence): the prompt's before decode
//! starts, then each decode (token, layer) as the engine reaches it.

use policy::cache::{CacheConfig, ExpertBytes, OnlineCache};

/// One online cache per cache the hits were replayed with, and where each MoE layer's experts
/// sit in them.
pub(crate) struct Residency {
    caches: Vec<OnlineCache>,
    /// Per MoE layer position: (cache, its layer in that cache, slot of expert 0), or None
    /// where no expert of the layer streams.
    at: Vec<Option<Place>>,
}

#[derive(Debug, Clone, Copy)]
struct Place {
    cache: usize,
    layer: usize,
    offset: u16,
}

impl Residency {
    pub(crate) fn new(n_moe: usize) -> Residency {
        Residency {
            caches: Vec::new(),
            at: vec![None; n_moe],
        }
    }

    /// Adds a cache of `n_layers` layers of `n_expert` slots; `layers` maps MoE layer
    /// positions to (its layer in the cache, slot of expert 0). Its index, or None for a policy
    /// that cannot run online (Belady): the caller then keeps its static guess.
    pub(crate) fn add(
        &mut self,
        n_layers: usize,
        n_expert: usize,
        config: &CacheConfig,
        bytes: &ExpertBytes,
        layers: impl IntoIterator<Item = (usize, usize, u16)>,
    ) -> Option<usize> {
        let cache = OnlineCache::new(n_layers, n_expert, config, bytes).ok()?;
        let index = self.caches.len();
        self.caches.push(cache);
        for (moe, layer, offset) in layers {
            self.at[moe] = Some(Place {
                cache: index,
                layer,
                offset,
            });
        }
        Some(index)
    }

    /// One access to `slot` of layer 0 of cache `cache`, as a flat replay numbers them.
    pub(crate) fn access_slot(&mut self, cache: usize, slot: u16) {
        self.caches[cache].hit(0, slot);
    }

    /// One access to `expert` of MoE layer position `moe`; whether it hit (nothing for a layer
    /// whose experts do not stream).
    pub(crate) fn access(&mut self, moe: usize, expert: u16) -> Option<bool> {
        let p = self.at[moe]?;
        Some(self.caches[p.cache].hit(p.layer, p.offset + expert))
    }

    /// Whether the cache holds `expert` of MoE layer position `moe` now.
    pub(crate) fn holds(&self, moe: usize, expert: u16) -> bool {
        self.at[moe].is_some_and(|p| self.caches[p.cache].is_cached(p.layer, p.offset + expert))
    }
}
