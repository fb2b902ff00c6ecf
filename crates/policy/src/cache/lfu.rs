//! In-cache LFU: evict the resident expert with the fewest uses since it was fetched, the least
//! recently used among equals. An ordered set per partition gives O(log capacity) per access.

use super::config::Setup;
use super::CachePolicy;
use std::collections::BTreeSet;

pub(crate) struct Lfu {
    /// `(uses, last access, slot)` of every resident slot, per partition; the first is evicted.
    order: Vec<BTreeSet<(u32, u32, u32)>>,
    uses: Vec<u32>,
    last: Vec<u32>,
    resident: Vec<bool>,
    caps: Vec<u32>,
}

impl Lfu {
    pub fn new(setup: &Setup) -> Lfu {
        Lfu {
            order: vec![BTreeSet::new(); setup.n_parts()],
            uses: vec![0; setup.n_slots],
            last: vec![0; setup.n_slots],
            resident: vec![false; setup.n_slots],
            caps: setup.caps.clone(),
        }
    }
}

impl CachePolicy for Lfu {
    fn access(&mut self, slot: u32, part: usize, pos: u32) -> bool {
        let s = slot as usize;
        let set = &mut self.order[part];
        if self.resident[s] {
            set.remove(&(self.uses[s], self.last[s], slot));
            self.uses[s] += 1;
            self.last[s] = pos;
            set.insert((self.uses[s], pos, slot));
            return true;
        }
        if self.caps[part] == 0 {
            return false;
        }
        if set.len() == self.caps[part] as usize {
            if let Some((_, _, victim)) = set.pop_first() {
                self.resident[victim as usize] = false;
            }
        }
        self.resident[s] = true;
        self.uses[s] = 1;
        self.last[s] = pos;
        set.insert((1, pos, slot));
        false
    }

    fn resident(&self, slot: u32) -> bool {
        self.resident[slot as usize]
    }
}
