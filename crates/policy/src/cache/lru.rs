//! LRU, and LRU around a pinned hot set, on intrusive lists: O(1) per access.

use super::config::{HotSet, Setup};
use super::lists::Lists;
use super::CachePolicy;
use crate::PolicyError;

/// One recency list per partition; the back is evicted.
pub(crate) struct Lru {
    lists: Lists,
    resident: Vec<bool>,
    caps: Vec<u32>,
}

impl Lru {
    pub fn new(setup: &Setup) -> Lru {
        Lru::with_caps(setup, setup.caps.clone())
    }

    fn with_caps(setup: &Setup, caps: Vec<u32>) -> Lru {
        Lru {
            lists: Lists::new(setup.n_slots, setup.n_parts()),
            resident: vec![false; setup.n_slots],
            caps,
        }
    }
}

impl CachePolicy for Lru {
    #[inline]
    fn access(&mut self, slot: u32, part: usize, _pos: u32) -> bool {
        let s = slot as usize;
        let hit = self.resident[s];
        let (len, cap) = (self.lists.len(part), self.caps[part]);
        // Rare (filling up, or no capacity), so this branch predicts well; `&`/`|` keep the
        // unpredictable `hit` out of the branch structure.
        if !hit & ((len < cap) | (cap == 0)) {
            if cap > 0 {
                self.lists.push_front(part, slot);
                self.resident[s] = true;
            }
            return false;
        }
        // A hit moves `slot` to the front; a miss in a full cache drops the back for it.
        let out = if hit { slot } else { self.lists.back(part) };
        self.resident[out as usize] = false;
        self.lists.replace(part, out, slot);
        self.resident[s] = true;
        hit
    }

    fn resident(&self, slot: u32) -> bool {
        self.resident[slot as usize]
    }
}

/// Pinned experts keep their slots for good once fetched; LRU runs in what is left.
pub(crate) struct PinnedLru {
    pinned: Vec<bool>,
    fetched: Vec<bool>,
    rest: Lru,
}

impl PinnedLru {
    pub fn new(setup: &Setup, hot: &HotSet) -> Result<PinnedLru, PolicyError> {
        let n_layers = setup.n_slots / setup.n_expert;
        let mut pinned = vec![false; setup.n_slots];
        let mut caps = setup.caps.clone();
        for &(layer, expert) in &hot.0 {
            if layer >= n_layers || usize::from(expert) >= setup.n_expert {
                return Err(PolicyError::HotSetOutOfRange {
                    expert,
                    layer,
                    layers: n_layers,
                    experts: setup.n_expert,
                });
            }
            let slot = layer * setup.n_expert + usize::from(expert);
            if pinned[slot] {
                continue;
            }
            pinned[slot] = true;
            let part = setup.part_of(slot);
            if caps[part] == 0 {
                return Err(PolicyError::HotSetTooLarge {
                    partition: part,
                    holds: setup.caps[part],
                });
            }
            caps[part] -= 1;
        }
        Ok(PinnedLru {
            pinned,
            fetched: vec![false; setup.n_slots],
            rest: Lru::with_caps(setup, caps),
        })
    }
}

impl CachePolicy for PinnedLru {
    #[inline]
    fn access(&mut self, slot: u32, part: usize, pos: u32) -> bool {
        let s = slot as usize;
        if self.pinned[s] {
            return std::mem::replace(&mut self.fetched[s], true);
        }
        self.rest.access(slot, part, pos)
    }

    fn resident(&self, slot: u32) -> bool {
        let s = slot as usize;
        if self.pinned[s] {
            self.fetched[s]
        } else {
            self.rest.resident(slot)
        }
    }
}
