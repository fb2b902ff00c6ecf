//! Belady-OPT with bypass: on a miss in a full partition, of the resident experts and the one
//! just fetched, the one used again farthest in the future is not kept (never-again first,
//! highest slot among those); when that is the fetched expert it is used without being cached.
//! This is the offline optimum over every policy that fetches on demand, whether or not it caches
//! what it fetches (pinning with no room left for the rest does not). Next uses are precomputed
//! in one backward pass; each partition keeps a max-heap of `(next use, slot)` keys.
//!
//! A hit pushes the slot's new key and leaves the old one behind. Old keys are harmless: an old
//! key's next use is an access already made, so it is below every live key (all live next uses
//! lie ahead), and the heap's top is always live when an eviction pops it. Heaps are compacted
//! when stale keys outnumber live ones.

use super::config::Setup;
use super::CachePolicy;
use std::collections::BinaryHeap;
use traces::Trace;

const NEVER: u32 = u32::MAX;

pub(crate) struct Belady {
    /// Access index of the next use of the expert accessed at each index (`NEVER` if none).
    next_use: Vec<u32>,
    heaps: Vec<BinaryHeap<u64>>,
    resident: Vec<bool>,
    len: Vec<u32>,
    caps: Vec<u32>,
}

/// Next-use index of every access, in one backward pass.
pub(crate) fn next_uses(trace: &Trace) -> Vec<u32> {
    let m = trace.model();
    let (n_expert, k) = (m.n_expert as usize, m.top_k as usize);
    let ids = trace.expert_ids();
    let mut next = vec![NEVER; ids.len()];
    let mut seen = vec![NEVER; m.n_layers() * n_expert];
    for i in (0..ids.len()).rev() {
        let layer = (i % m.ids_per_token()) / k;
        let slot = layer * n_expert + usize::from(ids[i]);
        next[i] = seen[slot];
        seen[slot] = i as u32;
    }
    next
}

fn key(next: u32, slot: u32) -> u64 {
    (u64::from(next) << 32) | u64::from(slot)
}

impl Belady {
    pub fn new(trace: &Trace, setup: &Setup) -> Belady {
        Belady {
            next_use: next_uses(trace),
            heaps: vec![BinaryHeap::new(); setup.n_parts()],
            resident: vec![false; setup.n_slots],
            len: vec![0; setup.n_parts()],
            caps: setup.caps.clone(),
        }
    }
}

impl CachePolicy for Belady {
    fn access(&mut self, slot: u32, part: usize, pos: u32) -> bool {
        let s = slot as usize;
        let next = self.next_use[pos as usize];
        let heap = &mut self.heaps[part];
        if self.resident[s] {
            heap.push(key(next, slot));
            if heap.len() > 2 * self.caps[part] as usize + 64 {
                heap.retain(|&k| (k >> 32) as u32 > pos);
            }
            return true;
        }
        if self.caps[part] == 0 {
            return false;
        }
        if self.len[part] == self.caps[part] {
            // The top is live (see the module doc), so it is a resident slot.
            if heap.peek().is_some_and(|&top| key(next, slot) > top) {
                return false;
            }
            if let Some(victim) = heap.pop() {
                self.resident[(victim & u64::from(u32::MAX)) as usize] = false;
                self.len[part] -= 1;
            }
        }
        heap.push(key(next, slot));
        self.resident[s] = true;
        self.len[part] += 1;
        false
    }

    fn resident(&self, slot: u32) -> bool {
        self.resident[slot as usize]
    }
}
