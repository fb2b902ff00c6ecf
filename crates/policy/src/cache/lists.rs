//! Intrusive doubly linked lists over cache slots: O(1) push, unlink and pop with no allocation.
//!
//! A slot is in at most one list at a time (the caller tracks which). Links live in one flat
//! array indexed by slot; each list is circular through its own sentinel node (index
//! `n_slots + list`), so no operation branches on empty neighbours. The front (after the
//! sentinel) is the most recent end.

pub(crate) struct Lists {
    /// `[prev, next]` of every slot, then of every list's sentinel.
    links: Vec<[u32; 2]>,
    len: Vec<u32>,
    n_slots: u32,
}

impl Lists {
    pub fn new(n_slots: usize, n_lists: usize) -> Lists {
        let mut links = vec![[0u32; 2]; n_slots + n_lists];
        for list in 0..n_lists {
            let s = (n_slots + list) as u32;
            links[s as usize] = [s, s];
        }
        Lists {
            links,
            len: vec![0; n_lists],
            n_slots: n_slots as u32,
        }
    }

    #[inline]
    fn sentinel(&self, list: usize) -> u32 {
        self.n_slots + list as u32
    }

    #[inline]
    pub fn len(&self, list: usize) -> u32 {
        self.len[list]
    }

    #[inline]
    fn link_front(&mut self, list: usize, s: u32) {
        let h = self.sentinel(list);
        let n = self.links[h as usize][1];
        self.links[s as usize] = [h, n];
        self.links[n as usize][0] = s;
        self.links[h as usize][1] = s;
    }

    #[inline]
    fn unlink_only(&mut self, s: u32) {
        let [p, n] = self.links[s as usize];
        self.links[p as usize][1] = n;
        self.links[n as usize][0] = p;
    }

    #[inline]
    pub fn push_front(&mut self, list: usize, s: u32) {
        self.link_front(list, s);
        self.len[list] += 1;
    }

    #[inline]
    pub fn unlink(&mut self, list: usize, s: u32) {
        self.unlink_only(s);
        self.len[list] -= 1;
    }

    /// Unlinks `out` (a member of `list`) and links `s` at the front in its place, keeping the
    /// count: a hit passes `out == s`, a miss in a full list its back. One code path for both
    /// avoids a branch on hit or miss, which a replay cannot predict.
    #[inline]
    pub fn replace(&mut self, list: usize, out: u32, s: u32) {
        self.unlink_only(out);
        self.link_front(list, s);
    }

    /// The least recent slot of a non-empty `list`.
    #[inline]
    pub fn back(&self, list: usize) -> u32 {
        self.links[self.sentinel(list) as usize][0]
    }

    /// Removes and returns the least recent slot of `list`.
    #[inline]
    pub fn pop_back(&mut self, list: usize) -> Option<u32> {
        let t = self.links[self.sentinel(list) as usize][0];
        if t == self.sentinel(list) {
            return None;
        }
        self.unlink(list, t);
        Some(t)
    }
}
