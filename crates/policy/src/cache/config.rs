//! What a replay is asked to do (policy, partitioning, capacity, expert sizes) and its validation.

use crate::PolicyError;
use serde::Serialize;
use traces::Trace;

/// Eviction policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Policy {
    /// Least recently used.
    Lru,
    /// Least frequently used, counting uses since the expert was last fetched (in-cache LFU);
    /// ties go to the least recently used.
    Lfu,
    /// LFRU: LRU over the most recent half of the capacity, in-cache LFU (ties to the least
    /// recently used) over the rest, which is where victims come from; see `cache::lfru`'s
    /// module doc for the exact definition and the variant it follows.
    Lfru,
    /// Adaptive Replacement Cache (Megiddo & Modha, FAST 2003), with ghost lists of the same
    /// capacity as the cache.
    Arc,
    /// A static hot set that is never evicted, and LRU in the rest of the capacity.
    PinnedLru(HotSet),
    /// Belady's offline optimum: keep the experts used again soonest; of the residents and the
    /// fetched expert, the one used farthest in the future is dropped (the fetched one is then
    /// used without being cached).
    Belady,
}

impl Policy {
    /// Every name [`Policy::from_name`] accepts, in the order help texts list them.
    pub const NAMES: [&'static str; 6] = ["lru", "lfu", "lfru", "arc", "pinned-lru", "belady"];

    /// The policy called `name` (as [`Policy::name`] spells it). `pinned-lru` comes with an
    /// empty hot set, for the caller to fill (the simulation takes it from the plan).
    pub fn from_name(name: &str) -> Result<Policy, PolicyError> {
        Ok(match name {
            "lru" => Policy::Lru,
            "lfu" => Policy::Lfu,
            "lfru" => Policy::Lfru,
            "arc" => Policy::Arc,
            "pinned-lru" => Policy::PinnedLru(HotSet(Vec::new())),
            "belady" => Policy::Belady,
            other => {
                return Err(PolicyError::UnknownPolicy {
                    name: other.to_string(),
                })
            }
        })
    }

    /// Short name for tables and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Lru => "lru",
            Policy::Lfu => "lfu",
            Policy::Lfru => "lfru",
            Policy::Arc => "arc",
            Policy::PinnedLru(_) => "pinned-lru",
            Policy::Belady => "belady",
        }
    }
}

/// An expert cache policy a running decode can follow, by the names plan.json and
/// `hypura run --cache-policy` use: the plan's own or an online policy. Belady needs the future,
/// so it is not one. The runtime, the CLI and the validation grid share this one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum RunPolicy {
    /// The plan's own: its memory-tier experts preloaded and pinned, LRU over what is left of
    /// the expert memory (nothing, for a plan from `hypura solve`).
    StaticFrequency,
    Lru,
    Lfu,
    Lfru,
    Arc,
    /// Same cache as static-frequency: the plan's memory-tier experts pinned, LRU over the rest.
    PinnedLru,
}

impl RunPolicy {
    pub const ALL: [RunPolicy; 6] = [
        RunPolicy::StaticFrequency,
        RunPolicy::Lru,
        RunPolicy::Lfu,
        RunPolicy::Lfru,
        RunPolicy::Arc,
        RunPolicy::PinnedLru,
    ];

    /// The name plan.json's `expert_policy` and `run --cache-policy` use.
    pub fn name(self) -> &'static str {
        match self {
            RunPolicy::StaticFrequency => "static-frequency",
            RunPolicy::Lru => "lru",
            RunPolicy::Lfu => "lfu",
            RunPolicy::Lfru => "lfru",
            RunPolicy::Arc => "arc",
            RunPolicy::PinnedLru => "pinned-lru",
        }
    }

    /// The policy [`RunPolicy::name`] calls `name`; None for any other name (Belady included).
    pub fn from_name(name: &str) -> Option<RunPolicy> {
        RunPolicy::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether the plan's memory-tier experts are preloaded and pinned; the other policies
    /// manage all of the expert memory themselves, as `hypura sim --policy` does.
    pub fn pins_plan_experts(self) -> bool {
        matches!(self, RunPolicy::StaticFrequency | RunPolicy::PinnedLru)
    }

    /// The cache policy over the expert memory. The plan's own is LRU over what its pinned
    /// experts leave; `pinned-lru`'s hot set is left empty for the caller to fill.
    pub fn policy(self) -> Policy {
        match self {
            RunPolicy::StaticFrequency | RunPolicy::Lru => Policy::Lru,
            RunPolicy::Lfu => Policy::Lfu,
            RunPolicy::Lfru => Policy::Lfru,
            RunPolicy::Arc => Policy::Arc,
            RunPolicy::PinnedLru => Policy::PinnedLru(HotSet(Vec::new())),
        }
    }
}

/// How capacity is shared between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Partition {
    /// One cache for the experts of all layers.
    Global,
    /// One cache per MoE layer. A capacity in experts is split evenly (the first
    /// `capacity % n_layers` layers get one more); a capacity in bytes gives every layer an equal
    /// byte share, holding as many of that layer's experts as fit.
    PerLayer,
}

/// Cache size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Capacity {
    /// Routed experts (slots of one expert of one layer).
    Experts(u64),
    /// Bytes of expert weights, converted with [`ExpertBytes`].
    Bytes(u64),
}

/// Experts that [`Policy::PinnedLru`] keeps resident: `(MoE layer position, expert id)` pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HotSet(pub Vec<(usize, u16)>);

/// Bytes of one routed expert (all its projections) of every MoE layer, in `moe_layers` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpertBytes(Vec<u64>);

impl ExpertBytes {
    /// One size per MoE layer; every size must be positive.
    pub fn per_layer_sizes(sizes: Vec<u64>) -> Result<ExpertBytes, PolicyError> {
        if let Some(l) = sizes.iter().position(|&b| b == 0) {
            return Err(PolicyError::ZeroExpertSize { layer: l });
        }
        Ok(ExpertBytes(sizes))
    }

    /// The same size for every one of `n_layers` layers.
    pub fn uniform(n_layers: usize, bytes: u64) -> Result<ExpertBytes, PolicyError> {
        ExpertBytes::per_layer_sizes(vec![bytes; n_layers])
    }

    pub fn per_layer(&self) -> &[u64] {
        &self.0
    }
}

/// A replay's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheConfig {
    pub policy: Policy,
    pub partition: Partition,
    pub capacity: Capacity,
}

/// A validated configuration resolved against a trace: capacity of each partition in experts.
pub(crate) struct Setup {
    pub partition: Partition,
    pub n_slots: usize,
    pub n_expert: usize,
    /// Capacity in experts of each partition (one for global, one per layer otherwise).
    pub caps: Vec<u32>,
}

impl Setup {
    pub fn new(
        trace: &Trace,
        config: &CacheConfig,
        bytes: &ExpertBytes,
    ) -> Result<Setup, PolicyError> {
        let m = trace.model();
        if trace.n_expert_ids() >= u32::MAX as usize {
            return Err(PolicyError::TraceTooLong {
                ids: trace.n_expert_ids(),
                max: u32::MAX - 1,
            });
        }
        Setup::for_shape(m.n_layers(), m.n_expert as usize, config, bytes)
    }

    /// The setup for `n_layers` MoE layers of `n_expert` experts, without a trace (an online
    /// cache).
    pub fn for_shape(
        n_layers: usize,
        n_expert: usize,
        config: &CacheConfig,
        bytes: &ExpertBytes,
    ) -> Result<Setup, PolicyError> {
        if bytes.per_layer().len() != n_layers {
            return Err(PolicyError::SizeCount {
                given: bytes.per_layer().len(),
                layers: n_layers,
            });
        }
        let caps = partition_caps(config, n_layers, n_expert, bytes.per_layer())?;
        Ok(Setup {
            partition: config.partition,
            n_slots: n_layers * n_expert,
            n_expert,
            caps,
        })
    }

    /// Number of partitions (1 or the layer count).
    pub fn n_parts(&self) -> usize {
        self.caps.len()
    }

    pub fn part_of(&self, slot: usize) -> usize {
        match self.partition {
            Partition::Global => 0,
            Partition::PerLayer => slot / self.n_expert,
        }
    }
}

/// Capacity of each partition in experts, never above the experts it can hold.
fn partition_caps(
    config: &CacheConfig,
    n_layers: usize,
    n_expert: usize,
    sizes: &[u64],
) -> Result<Vec<u32>, PolicyError> {
    let slots = (n_layers * n_expert) as u64;
    let caps: Vec<u64> = match (config.partition, config.capacity) {
        (Partition::Global, Capacity::Experts(n)) => vec![n.min(slots)],
        (Partition::Global, Capacity::Bytes(b)) => {
            let size = sizes[0];
            if let Some(l) = sizes.iter().position(|&s| s != size) {
                return Err(PolicyError::MixedExpertSizes {
                    layer: l,
                    size: sizes[l],
                    first: size,
                });
            }
            vec![(b / size).min(slots)]
        }
        (Partition::PerLayer, Capacity::Experts(n)) => {
            let (q, r) = (n / n_layers as u64, n % n_layers as u64);
            (0..n_layers as u64)
                .map(|l| (q + u64::from(l < r)).min(n_expert as u64))
                .collect()
        }
        (Partition::PerLayer, Capacity::Bytes(b)) => {
            let share = b / n_layers as u64;
            sizes
                .iter()
                .map(|&s| (share / s).min(n_expert as u64))
                .collect()
        }
    };
    Ok(caps.into_iter().map(|c| c as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_policy() {
        for name in Policy::NAMES {
            assert_eq!(Policy::from_name(name).unwrap().name(), name);
        }
        let err = Policy::from_name("fifo").unwrap_err().to_string();
        assert!(err.contains("\"fifo\"") && err.contains("lfru"), "{err}");
    }
}
