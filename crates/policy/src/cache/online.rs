//! The replay policies driven one access at a time, reporting what each access evicted: the
//! expert cache of a real runtime (`hypura run`), with exactly the decisions [`super::replay`]
//! makes for the same access sequence.

use super::config::{CacheConfig, ExpertBytes, Policy, Setup};
use super::{arc, lfru, lfu, lru, CachePolicy};
use crate::PolicyError;

/// What one access did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    /// The expert was cached before the access.
    pub hit: bool,
    /// The expert is cached after the access (false when the policy used it without caching
    /// it, e.g. with no capacity).
    pub cached: bool,
    /// `(MoE layer position, expert id)` of every expert the access dropped from the cache.
    pub evicted: Vec<(usize, u16)>,
}

/// An online expert cache over `n_layers` MoE layers of `n_expert` experts.
pub struct OnlineCache {
    policy: Box<dyn CachePolicy>,
    setup: Setup,
    /// Cached slots of each partition, as last seen (diffed against the policy after a miss).
    members: Vec<Vec<u32>>,
    pos: u32,
    /// [`OnlineCache::hit`] was used: `members` is no longer kept, so `access` would report
    /// wrong evictions and refuses.
    untracked: bool,
}

impl OnlineCache {
    /// Every online policy; Belady-OPT needs the future and is refused.
    pub fn new(
        n_layers: usize,
        n_expert: usize,
        config: &CacheConfig,
        bytes: &ExpertBytes,
    ) -> Result<OnlineCache, PolicyError> {
        let setup = Setup::for_shape(n_layers, n_expert, config, bytes)?;
        let policy: Box<dyn CachePolicy> = match &config.policy {
            Policy::Lru => Box::new(lru::Lru::new(&setup)),
            Policy::Lfu => Box::new(lfu::Lfu::new(&setup)),
            Policy::Lfru => Box::new(lfru::Lfru::new(&setup)),
            Policy::Arc => Box::new(arc::Arc::new(&setup)),
            Policy::PinnedLru(hot) => Box::new(lru::PinnedLru::new(&setup, hot)?),
            Policy::Belady => return Err(PolicyError::OfflineOnly),
        };
        Ok(OnlineCache {
            policy,
            members: vec![Vec::new(); setup.n_parts()],
            setup,
            pos: 0,
            untracked: false,
        })
    }

    /// Capacity in experts of each partition.
    pub fn capacities(&self) -> &[u32] {
        &self.setup.caps
    }

    pub fn is_cached(&self, layer: usize, expert: u16) -> bool {
        self.policy.resident(self.slot(layer, expert))
    }

    fn slot(&self, layer: usize, expert: u16) -> u32 {
        (layer * self.setup.n_expert + usize::from(expert)) as u32
    }

    /// One access to `expert` of MoE layer position `layer`, without the report of what it
    /// evicted (a simulator that asks only what is cached): whether it hit. The diff that
    /// finds evictions scans the whole partition on every miss; this does not. A cache used
    /// this way cannot [`OnlineCache::access`] later.
    pub fn hit(&mut self, layer: usize, expert: u16) -> bool {
        assert!(
            layer * self.setup.n_expert + usize::from(expert) < self.setup.n_slots,
            "expert {expert} of layer {layer} is outside the cache's shape"
        );
        self.untracked = true;
        let slot = self.slot(layer, expert);
        let part = self.setup.part_of(slot as usize);
        let hit = self.policy.access(slot, part, self.pos);
        self.pos = self.pos.wrapping_add(1);
        hit
    }

    /// One access to `expert` of MoE layer position `layer`.
    pub fn access(&mut self, layer: usize, expert: u16) -> Access {
        assert!(
            !self.untracked,
            "an OnlineCache driven by `hit` no longer knows what it evicts"
        );
        assert!(
            layer * self.setup.n_expert + usize::from(expert) < self.setup.n_slots,
            "expert {expert} of layer {layer} is outside the cache's shape"
        );
        let slot = self.slot(layer, expert);
        let part = self.setup.part_of(slot as usize);
        let hit = self.policy.access(slot, part, self.pos);
        self.pos = self.pos.wrapping_add(1);
        let cached = self.policy.resident(slot);
        let mut out = Access {
            hit,
            cached,
            evicted: Vec::new(),
        };
        if hit {
            return out;
        }
        let n_expert = self.setup.n_expert;
        let policy = &self.policy;
        self.members[part].retain(|&s| {
            let keep = policy.resident(s);
            if !keep {
                let s = s as usize;
                out.evicted.push((s / n_expert, (s % n_expert) as u16));
            }
            keep
        });
        if cached {
            self.members[part].push(slot);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Capacity, HotSet, Partition};

    fn cache(policy: Policy, experts: u64) -> OnlineCache {
        let config = CacheConfig {
            policy,
            partition: Partition::Global,
            capacity: Capacity::Experts(experts),
        };
        OnlineCache::new(2, 8, &config, &ExpertBytes::uniform(2, 100).unwrap()).unwrap()
    }

    #[test]
    fn hit_makes_the_decisions_access_makes() {
        for policy in [Policy::Lru, Policy::Lfu, Policy::Lfru, Policy::Arc] {
            let (mut a, mut b) = (cache(policy.clone(), 3), cache(policy, 3));
            let mut x = 7u32;
            for _ in 0..500 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let (layer, expert) = ((x >> 8) as usize % 2, (x >> 12) as u16 % 8);
                assert_eq!(a.access(layer, expert).hit, b.hit(layer, expert));
                for e in 0..8 {
                    assert_eq!(a.is_cached(layer, e), b.is_cached(layer, e));
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "no longer knows")]
    fn access_after_hit_is_refused() {
        let mut c = cache(Policy::Lru, 2);
        c.hit(0, 1);
        c.access(0, 2);
    }

    #[test]
    fn lru_reports_the_least_recent_expert_as_evicted() {
        let mut c = cache(Policy::Lru, 2);
        assert!(!c.access(0, 1).hit);
        assert!(!c.access(1, 1).hit);
        assert!(c.access(0, 1).hit);
        let a = c.access(0, 5);
        assert_eq!((a.hit, a.cached), (false, true));
        assert_eq!(a.evicted, vec![(1, 1)]);
        assert!(c.is_cached(0, 1) && c.is_cached(0, 5) && !c.is_cached(1, 1));
    }

    #[test]
    fn every_online_policy_keeps_its_capacity_and_reports_each_eviction_once() {
        for policy in [
            Policy::Lru,
            Policy::Lfu,
            Policy::Lfru,
            Policy::Arc,
            Policy::PinnedLru(HotSet(vec![(0, 0)])),
        ] {
            let name = policy.name();
            let mut c = cache(policy, 3);
            let mut cached = std::collections::BTreeSet::new();
            for i in 0..200u32 {
                let (l, e) = ((i % 2) as usize, ((i * 7 + i / 3) % 8) as u16);
                let a = c.access(l, e);
                for v in &a.evicted {
                    assert!(cached.remove(v), "{name}: {v:?} evicted but not cached");
                }
                if a.cached {
                    cached.insert((l, e));
                }
                assert!(cached.len() <= 3, "{name}: {} cached", cached.len());
                for &(l, e) in &cached {
                    assert!(c.is_cached(l, e), "{name}");
                }
            }
        }
    }

    #[test]
    fn belady_is_refused_online() {
        let config = CacheConfig {
            policy: Policy::Belady,
            partition: Partition::Global,
            capacity: Capacity::Experts(2),
        };
        let e = OnlineCache::new(1, 4, &config, &ExpertBytes::uniform(1, 1).unwrap())
            .err()
            .unwrap();
        assert!(e.to_string().contains("belady"), "{e}");
    }
}
