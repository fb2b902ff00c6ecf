//! LFRU, least frequently/recently used (the two-partition scheme of Bilal & Kang, "A Cache
//! Management Scheme for Efficient Content Eviction and Replication in Cache Networks", IEEE
//! Access 5, 2017; summarised under "LFRU" in Wikipedia's "Cache replacement policies").
//!
//! Each cache partition of capacity `c` is split in two. The *privileged* segment holds the
//! `c / 2` (rounded down) most recently used resident experts and is managed by LRU: a fetched
//! expert and a hit expert enter at its most recent end, and its least recent one is demoted to
//! the *unprivileged* segment (the other `c - c / 2`). A miss in a full partition evicts from the
//! unprivileged segment only, by in-cache LFU: the fewest uses since the expert was fetched
//! (uses counted in both segments), the least recently used among equals. Equivalently: the
//! victim is the least frequently used resident outside the `c / 2` most recent ones.
//!
//! Choices where the paper leaves room: the privileged share is half the capacity; use counts
//! are exact (the paper's "approximated LFU" counts requests over a window); a hit in the
//! unprivileged segment promotes the expert (the paper's "popular content is pushed into the
//! privileged partition"). The unprivileged segment is an ordered set, so an access is
//! O(log capacity).

use super::config::Setup;
use super::lists::Lists;
use super::CachePolicy;
use std::collections::BTreeSet;

/// Where a slot is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seg {
    Out,
    Privileged,
    Unprivileged,
}

pub(crate) struct Lfru {
    /// Recency list of each partition's privileged segment.
    privileged: Lists,
    /// `(uses, last access, slot)` of each partition's unprivileged residents; the first is evicted.
    unprivileged: Vec<BTreeSet<(u32, u32, u32)>>,
    seg: Vec<Seg>,
    uses: Vec<u32>,
    last: Vec<u32>,
    caps: Vec<u32>,
}

impl Lfru {
    pub fn new(setup: &Setup) -> Lfru {
        Lfru {
            privileged: Lists::new(setup.n_slots, setup.n_parts()),
            unprivileged: vec![BTreeSet::new(); setup.n_parts()],
            seg: vec![Seg::Out; setup.n_slots],
            uses: vec![0; setup.n_slots],
            last: vec![0; setup.n_slots],
            caps: setup.caps.clone(),
        }
    }

    /// Puts `slot` at the most recent end of the privileged segment, demoting its least recent
    /// expert when the segment is over its share.
    fn promote(&mut self, part: usize, slot: u32) {
        self.privileged.push_front(part, slot);
        self.seg[slot as usize] = Seg::Privileged;
        if self.privileged.len(part) > self.caps[part] / 2 {
            if let Some(d) = self.privileged.pop_back(part) {
                let ds = d as usize;
                self.seg[ds] = Seg::Unprivileged;
                self.unprivileged[part].insert((self.uses[ds], self.last[ds], d));
            }
        }
    }
}

impl CachePolicy for Lfru {
    fn access(&mut self, slot: u32, part: usize, pos: u32) -> bool {
        let s = slot as usize;
        match self.seg[s] {
            Seg::Privileged => {
                self.privileged.unlink(part, slot);
                self.uses[s] += 1;
                self.last[s] = pos;
                self.promote(part, slot);
                true
            }
            Seg::Unprivileged => {
                self.unprivileged[part].remove(&(self.uses[s], self.last[s], slot));
                self.uses[s] += 1;
                self.last[s] = pos;
                self.promote(part, slot);
                true
            }
            Seg::Out => {
                let cap = self.caps[part];
                if cap == 0 {
                    return false;
                }
                let resident = self.privileged.len(part) as usize + self.unprivileged[part].len();
                if resident == cap as usize {
                    // The privileged share is below `cap`, so the unprivileged set is not empty.
                    if let Some((_, _, victim)) = self.unprivileged[part].pop_first() {
                        self.seg[victim as usize] = Seg::Out;
                    }
                }
                self.uses[s] = 1;
                self.last[s] = pos;
                self.promote(part, slot);
                false
            }
        }
    }

    fn resident(&self, slot: u32) -> bool {
        self.seg[slot as usize] != Seg::Out
    }
}
