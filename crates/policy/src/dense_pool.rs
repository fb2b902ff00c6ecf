//! The pool whole streamed tensors are read into: which tensor goes when it is full, what is
//! read ahead, and when a read is waited for. The runtime's streamer carries these decisions
//! out; the simulator replays them to know which tensors each step reads.
//!
//! Contract: [`DensePool::ensure`] is called with the streamed inputs of each node as the graph
//! reaches it, [`DensePool::done`] once that node has run. It appends the [`Action`]s to carry
//! out, in order. A read is *in flight* from its [`Action::Fill`] until its [`Action::Collect`]
//! (the wait for it), which comes when the tensor is needed, or earlier when the pool must evict
//! it to make room. Whether the device has finished meanwhile does not matter: the decisions
//! depend on the use order alone, so the simulator and the runtime make the same ones.
//!
//! Eviction: the tensors of the node about to run are pinned and reads in flight are kept while
//! anything else can go; among the others the tensor needed furthest ahead in the cyclic use
//! order goes first (Belady's choice; for on-demand reads, the most recently used). A read
//! ahead only evicts tensors needed later than itself, and stops when nothing such is left.

use crate::use_order::UseOrder;

/// One step of carrying out a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The tensor needed is in memory, or its read is in flight.
    Hit(usize),
    /// Start reading the tensor into its memory; `ahead` when no node needs it yet.
    Fill { slot: usize, ahead: bool },
    /// Wait for the tensor's read in flight.
    Collect(usize),
    /// Release the tensor's memory.
    Evict(usize),
}

/// A tensor that does not fit beside the pinned ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolTooSmall {
    pub slot: usize,
    pub need: u64,
    pub pool: u64,
    /// Bytes held by tensors that could not go.
    pub pinned: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Out,
    InFlight,
    Resident,
}

/// The pool's state: which tensors hold memory, which reads are in flight, which are pinned.
pub struct DensePool {
    reserved: Vec<u64>,
    capacity: u64,
    used: u64,
    state: Vec<State>,
    pinned: Vec<bool>,
    pinned_list: Vec<usize>,
    order: UseOrder,
    depth: u32,
}

impl DensePool {
    /// A pool of `capacity` bytes over tensors taking `reserved[i]` bytes each, used in `order`,
    /// reading `depth` layers ahead. Fails on a tensor larger than the pool.
    pub fn new(
        reserved: Vec<u64>,
        order: UseOrder,
        capacity: u64,
        depth: u32,
    ) -> Result<DensePool, PoolTooSmall> {
        if let Some((slot, &need)) = reserved.iter().enumerate().find(|(_, &r)| r > capacity) {
            return Err(PoolTooSmall {
                slot,
                need,
                pool: capacity,
                pinned: 0,
            });
        }
        let n = reserved.len();
        Ok(DensePool {
            reserved,
            capacity,
            used: 0,
            state: vec![State::Out; n],
            pinned: vec![false; n],
            pinned_list: Vec::new(),
            order,
            depth,
        })
    }

    pub fn len(&self) -> usize {
        self.reserved.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reserved.is_empty()
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes of the tensors in memory, reads in flight included.
    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    pub fn reserved(&self, slot: usize) -> u64 {
        self.reserved[slot]
    }

    /// Whether the slot holds memory (its read may still be in flight).
    pub fn holds(&self, slot: usize) -> bool {
        self.state[slot] != State::Out
    }

    /// Makes `need` (the streamed inputs of the node about to run) resident, reads ahead what
    /// the depth and the pool allow, and waits for `need` alone. On error the actions up to it
    /// are in `out`.
    pub fn ensure(&mut self, need: &[usize], out: &mut Vec<Action>) -> Result<(), PoolTooSmall> {
        let Some(&from) = need.first() else {
            return Ok(());
        };
        for &i in need {
            if !self.pinned[i] {
                self.pinned[i] = true;
                self.pinned_list.push(i);
            }
            self.order.used(i);
        }
        for &i in need {
            if self.state[i] != State::Out {
                out.push(Action::Hit(i));
            } else {
                self.make_room(i, from, None, out)?;
                self.fill(i, false, out);
            }
        }
        for j in self.order.ahead(from, self.depth) {
            if self.state[j] != State::Out || self.pinned[j] {
                continue;
            }
            let d = self.order.distance(from, j);
            if !self.make_room(j, from, Some(d), out)? {
                break;
            }
            self.fill(j, true, out);
        }
        for &i in need {
            self.collect(i, out);
        }
        Ok(())
    }

    /// The node that `ensure` was last called for has run: its tensors may go again.
    pub fn done(&mut self) {
        for i in self.pinned_list.drain(..) {
            self.pinned[i] = false;
        }
    }

    /// Waits for every read in flight and releases every unpinned tensor.
    pub fn evict_all(&mut self, out: &mut Vec<Action>) {
        for i in 0..self.len() {
            self.collect(i, out);
        }
        for i in 0..self.len() {
            if self.state[i] != State::Out && !self.pinned[i] {
                self.evict(i, out);
            }
        }
    }

    /// Forgets every tensor, pins and reads included (after a failed read, whose memory the
    /// caller has released along with everything else).
    pub fn clear(&mut self) {
        self.done();
        self.state.fill(State::Out);
        self.used = 0;
    }

    /// Frees room for `i`, evicting the resident tensors needed furthest ahead of `from`. A read
    /// ahead (`ahead`: its distance from `from`) evicts only tensors needed later than itself and
    /// gets false when that is not enough; a node's own tensor waits for reads in flight when
    /// nothing else can go.
    fn make_room(
        &mut self,
        i: usize,
        from: usize,
        ahead: Option<usize>,
        out: &mut Vec<Action>,
    ) -> Result<bool, PoolTooSmall> {
        let need = self.reserved[i];
        while self.used + need > self.capacity {
            match (self.furthest(from, State::Resident), ahead) {
                (Some((d, j)), Some(limit)) if d > limit => self.evict(j, out),
                (_, Some(_)) => return Ok(false),
                (Some((_, j)), None) => self.evict(j, out),
                (None, None) => {
                    let Some((_, j)) = self.furthest(from, State::InFlight) else {
                        return Err(PoolTooSmall {
                            slot: i,
                            need,
                            pool: self.capacity,
                            pinned: self.used,
                        });
                    };
                    self.collect(j, out);
                    self.evict(j, out);
                }
            }
        }
        Ok(true)
    }

    /// The unpinned tensor in `state` needed furthest ahead of `from`, with its distance.
    fn furthest(&self, from: usize, state: State) -> Option<(usize, usize)> {
        (0..self.len())
            .filter(|&j| self.state[j] == state && !self.pinned[j])
            .map(|j| (self.order.distance(from, j), j))
            .max()
    }

    fn fill(&mut self, i: usize, ahead: bool, out: &mut Vec<Action>) {
        self.state[i] = State::InFlight;
        self.used += self.reserved[i];
        out.push(Action::Fill { slot: i, ahead });
    }

    fn collect(&mut self, i: usize, out: &mut Vec<Action>) {
        if self.state[i] == State::InFlight {
            self.state[i] = State::Resident;
            out.push(Action::Collect(i));
        }
    }

    fn evict(&mut self, j: usize, out: &mut Vec<Action>) {
        self.state[j] = State::Out;
        self.used -= self.reserved[j];
        out.push(Action::Evict(j));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` layers of `per` tensors of 10 bytes each, in file order.
    fn pool(n: u32, per: usize, capacity: u64, depth: u32) -> DensePool {
        let layers: Vec<Option<u32>> = (0..n).flat_map(|l| vec![Some(l); per]).collect();
        let offsets: Vec<u64> = (0..layers.len() as u64).collect();
        let order = UseOrder::new(&layers, &offsets, n);
        DensePool::new(vec![10; layers.len()], order, capacity, depth).unwrap()
    }

    /// Bytes read per pass over every tensor, for `passes` passes.
    fn reads_per_pass(p: &mut DensePool, passes: usize) -> Vec<u64> {
        let mut out = Vec::new();
        (0..passes)
            .map(|_| {
                let mut bytes = 0;
                for i in 0..p.len() {
                    out.clear();
                    p.ensure(&[i], &mut out).unwrap();
                    p.done();
                    bytes += out
                        .iter()
                        .filter(|a| matches!(a, Action::Collect(_)))
                        .count() as u64
                        * 10;
                    assert!(p.used_bytes() <= p.capacity);
                }
                bytes
            })
            .collect()
    }

    #[test]
    fn a_pool_holding_everything_reads_each_tensor_once() {
        let mut p = pool(4, 2, 80, 1);
        assert_eq!(reads_per_pass(&mut p, 3), vec![80, 0, 0]);
    }

    /// Belady over the unrolled sequence, by scanning for each cached tensor's next use: the
    /// misses per pass of `n` tensors used in a cycle, `c` fitting.
    fn belady_misses(n: usize, c: usize, passes: usize) -> Vec<u64> {
        let seq: Vec<usize> = (0..passes).flat_map(|_| 0..n).collect();
        let mut cached: Vec<usize> = Vec::new();
        let mut misses = vec![0; passes];
        for (t, &x) in seq.iter().enumerate() {
            if cached.contains(&x) {
                continue;
            }
            misses[t / n] += 1;
            if cached.len() == c {
                let next = |y: usize| seq[t + 1..].iter().position(|&z| z == y);
                let victim = *cached
                    .iter()
                    .max_by_key(|&&y| next(y).unwrap_or(usize::MAX))
                    .unwrap();
                cached.retain(|&y| y != victim);
            }
            cached.push(x);
        }
        misses
    }

    /// On-demand reads (one tensor per layer, depth 0) make Belady's choices.
    #[test]
    fn on_demand_reads_match_belady() {
        for c in 1..8usize {
            let mut p = pool(8, 1, 10 * c as u64, 0);
            let reads = reads_per_pass(&mut p, 6);
            let expect: Vec<u64> = belady_misses(8, c, 6).iter().map(|m| m * 10).collect();
            assert_eq!(reads, expect, "c={c}");
        }
    }

    #[test]
    fn read_ahead_fills_before_the_node_and_is_then_a_hit() {
        let mut p = pool(3, 1, 20, 1);
        let mut out = Vec::new();
        p.ensure(&[0], &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                Action::Fill {
                    slot: 0,
                    ahead: false
                },
                Action::Fill {
                    slot: 1,
                    ahead: true
                },
                Action::Collect(0),
            ]
        );
        p.done();
        out.clear();
        p.ensure(&[1], &mut out).unwrap();
        // Slot 2 takes slot 0's room: slot 0 is needed after it.
        assert_eq!(
            out,
            vec![
                Action::Hit(1),
                Action::Evict(0),
                Action::Fill {
                    slot: 2,
                    ahead: true
                },
                Action::Collect(1),
            ]
        );
        p.done();
        out.clear();
        // From the last layer the read ahead wraps to slot 0; its room is slot 1's, needed after it.
        p.ensure(&[2], &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                Action::Hit(2),
                Action::Evict(1),
                Action::Fill {
                    slot: 0,
                    ahead: true
                },
                Action::Collect(2),
            ]
        );
    }

    #[test]
    fn a_pinned_pool_too_small_is_an_error() {
        let mut p = pool(1, 2, 10, 0);
        let mut out = Vec::new();
        let e = p.ensure(&[0, 1], &mut out).unwrap_err();
        assert_eq!((e.slot, e.need, e.pinned), (1, 10, 10));
        let too_big = DensePool::new(vec![5, 50], UseOrder::new(&[None, None], &[0, 1], 0), 20, 0);
        assert_eq!(too_big.err().map(|e| e.slot), Some(1));
    }

    #[test]
    fn evict_all_waits_for_reads_in_flight() {
        let mut p = pool(2, 1, 20, 1);
        let mut out = Vec::new();
        p.ensure(&[0], &mut out).unwrap();
        p.done();
        out.clear();
        p.evict_all(&mut out);
        assert_eq!(
            out,
            vec![Action::Collect(1), Action::Evict(0), Action::Evict(1)]
        );
        assert_eq!(p.used_bytes(), 0);
    }
}
