//! ARC (Megiddo & Modha, "ARC: A Self-Tuning, Low Overhead Replacement Cache", FAST 2003, fig. 4)
//! per partition: T1/T2 hold resident experts seen once/more than once recently, B1/B2 remember
//! the experts just evicted from them, and the target size `p` of T1 adapts on ghost hits.
//! `p` is real-valued as in the paper. All four lists are intrusive, so each access is O(1).

use super::config::Setup;
use super::lists::Lists;
use super::CachePolicy;

const T1: u8 = 0;
const T2: u8 = 1;
const B1: u8 = 2;
const B2: u8 = 3;
const NOWHERE: u8 = u8::MAX;

pub(crate) struct Arc {
    lists: Lists,
    /// Which of T1, T2, B1, B2 each slot is in.
    place: Vec<u8>,
    p: Vec<f64>,
    caps: Vec<u32>,
}

impl Arc {
    pub fn new(setup: &Setup) -> Arc {
        Arc {
            lists: Lists::new(setup.n_slots, 4 * setup.n_parts()),
            place: vec![NOWHERE; setup.n_slots],
            p: vec![0.0; setup.n_parts()],
            caps: setup.caps.clone(),
        }
    }

    fn len(&self, part: usize, which: u8) -> u32 {
        self.lists.len(4 * part + which as usize)
    }

    fn push(&mut self, part: usize, which: u8, s: u32) {
        self.lists.push_front(4 * part + which as usize, s);
        self.place[s as usize] = which;
    }

    fn remove(&mut self, part: usize, s: u32) {
        let which = self.place[s as usize];
        self.lists.unlink(4 * part + which as usize, s);
        self.place[s as usize] = NOWHERE;
    }

    fn pop_back(&mut self, part: usize, which: u8) -> Option<u32> {
        let s = self.lists.pop_back(4 * part + which as usize)?;
        self.place[s as usize] = NOWHERE;
        Some(s)
    }

    /// Evicts the LRU expert of T1 into B1 or of T2 into B2, steered by `p`.
    fn replace(&mut self, part: usize, in_b2: bool) {
        let t1 = self.len(part, T1);
        let t1_f = f64::from(t1);
        let from_t1 = t1 >= 1 && ((in_b2 && t1_f == self.p[part]) || t1_f > self.p[part]);
        let (from, to) = if from_t1 || self.len(part, T2) == 0 {
            (T1, B1)
        } else {
            (T2, B2)
        };
        if let Some(v) = self.pop_back(part, from) {
            self.push(part, to, v);
        }
    }
}

impl CachePolicy for Arc {
    fn access(&mut self, slot: u32, part: usize, _pos: u32) -> bool {
        let c = self.caps[part];
        if c == 0 {
            return false;
        }
        let cf = f64::from(c);
        match self.place[slot as usize] {
            T1 | T2 => {
                self.remove(part, slot);
                self.push(part, T2, slot);
                true
            }
            B1 => {
                let (b1, b2) = (f64::from(self.len(part, B1)), f64::from(self.len(part, B2)));
                let delta = if b1 >= b2 { 1.0 } else { b2 / b1 };
                self.p[part] = (self.p[part] + delta).min(cf);
                self.replace(part, false);
                self.remove(part, slot);
                self.push(part, T2, slot);
                false
            }
            B2 => {
                let (b1, b2) = (f64::from(self.len(part, B1)), f64::from(self.len(part, B2)));
                let delta = if b2 >= b1 { 1.0 } else { b1 / b2 };
                self.p[part] = (self.p[part] - delta).max(0.0);
                self.replace(part, true);
                self.remove(part, slot);
                self.push(part, T2, slot);
                false
            }
            _ => {
                let (t1, t2) = (self.len(part, T1), self.len(part, T2));
                let (b1, b2) = (self.len(part, B1), self.len(part, B2));
                if t1 + b1 == c {
                    if t1 < c {
                        self.pop_back(part, B1);
                        self.replace(part, false);
                    } else {
                        self.pop_back(part, T1);
                    }
                } else if t1 + t2 + b1 + b2 >= c {
                    if t1 + t2 + b1 + b2 == 2 * c {
                        self.pop_back(part, B2);
                    }
                    self.replace(part, false);
                }
                self.push(part, T1, slot);
                false
            }
        }
    }

    fn resident(&self, slot: u32) -> bool {
        matches!(self.place[slot as usize], T1 | T2)
    }
}
