//! Brute-force caches: resident sets in plain vectors, victims found by scanning, and the trace
//! walked through `Trace::selection`. Slow on purpose; each mirrors the definition in a doc
//! comment of `policy::cache::Policy` directly.

use policy::cache::{Capacity, HotSet, Partition, Policy};
use std::collections::{HashMap, HashSet};
use traces::Trace;

/// `(layer position, expert)` of every access in trace order.
pub fn accesses(trace: &Trace) -> Vec<(usize, u16)> {
    let mut out = Vec::new();
    for t in 0..trace.n_tokens() {
        for l in 0..trace.model().n_layers() {
            for &e in trace.selection(t, l) {
                out.push((l, e));
            }
        }
    }
    out
}

/// Partition capacities as documented on `Partition`, for a capacity in experts.
pub fn caps(trace: &Trace, partition: Partition, capacity: u64) -> Vec<usize> {
    let m = trace.model();
    let (layers, n) = (m.n_layers() as u64, u64::from(m.n_expert));
    match partition {
        Partition::Global => vec![capacity.min(layers * n) as usize],
        Partition::PerLayer => (0..layers)
            .map(|l| {
                let share = capacity / layers + u64::from(l < capacity % layers);
                share.min(n) as usize
            })
            .collect(),
    }
}

/// Hits of each access (true = hit) under `policy`, by brute force.
pub fn hits(trace: &Trace, policy: &Policy, partition: Partition, capacity: Capacity) -> Vec<bool> {
    let Capacity::Experts(capacity) = capacity else {
        panic!("reference caches take capacities in experts");
    };
    let acc = accesses(trace);
    let caps = caps(trace, partition, capacity);
    let part = |l: usize| match partition {
        Partition::Global => 0,
        Partition::PerLayer => l,
    };
    // Split the stream by partition, replay each alone, and put the answers back in order.
    let mut out = vec![false; acc.len()];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); caps.len()];
    for (i, &(l, _)) in acc.iter().enumerate() {
        members[part(l)].push(i);
    }
    for (p, (&cap, idx)) in caps.iter().zip(&members).enumerate() {
        let stream: Vec<(usize, u16)> = idx.iter().map(|&i| acc[i]).collect();
        let h = match policy {
            Policy::Lru => lru(&stream, cap),
            Policy::Lfu => lfu(&stream, cap),
            Policy::Lfru => lfru(&stream, cap),
            Policy::Arc => arc(&stream, cap),
            Policy::PinnedLru(hot) => pinned_lru(&stream, cap, hot, |l| part(l) == p),
            Policy::Belady => belady(&stream, cap),
        };
        for (j, &i) in idx.iter().enumerate() {
            out[i] = h[j];
        }
    }
    out
}

type Key = (usize, u16);

pub fn lru(stream: &[Key], cap: usize) -> Vec<bool> {
    let mut resident: Vec<(Key, usize)> = Vec::new(); // (expert, last use)
    let mut out = Vec::new();
    for (t, &x) in stream.iter().enumerate() {
        if let Some(r) = resident.iter_mut().find(|r| r.0 == x) {
            r.1 = t;
            out.push(true);
            continue;
        }
        out.push(false);
        if cap == 0 {
            continue;
        }
        if resident.len() == cap {
            let oldest = (0..resident.len()).min_by_key(|&i| resident[i].1).unwrap();
            resident.remove(oldest);
        }
        resident.push((x, t));
    }
    out
}

/// A resident expert with its uses since fetched and its last use.
type Counted = (Key, usize, usize);

/// A cache of `cap` experts that counts uses; on a miss in a full cache `victim` picks the
/// resident to drop.
fn counted(stream: &[Key], cap: usize, victim: impl Fn(&[Counted]) -> usize) -> Vec<bool> {
    let mut resident: Vec<Counted> = Vec::new();
    let mut out = Vec::new();
    for (t, &x) in stream.iter().enumerate() {
        if let Some(r) = resident.iter_mut().find(|r| r.0 == x) {
            r.1 += 1;
            r.2 = t;
            out.push(true);
            continue;
        }
        out.push(false);
        if cap == 0 {
            continue;
        }
        if resident.len() == cap {
            let v = victim(&resident);
            resident.remove(v);
        }
        resident.push((x, 1, t));
    }
    out
}

/// Least used, the least recently used among equals.
fn least_used(resident: &[Counted], among: impl Iterator<Item = usize>) -> usize {
    among
        .min_by_key(|&i| (resident[i].1, resident[i].2))
        .unwrap()
}

pub fn lfu(stream: &[Key], cap: usize) -> Vec<bool> {
    counted(stream, cap, |resident| {
        least_used(resident, 0..resident.len())
    })
}

/// LFRU as defined in `policy::cache::Policy::Lfru`: on a miss in a full cache, the `cap / 2` most
/// recently used residents are safe and the victim is the least used of the others (uses since
/// fetched), the least recently used among equals.
pub fn lfru(stream: &[Key], cap: usize) -> Vec<bool> {
    counted(stream, cap, |resident| {
        let mut by_recency: Vec<usize> = (0..resident.len()).collect();
        by_recency.sort_by_key(|&i| std::cmp::Reverse(resident[i].2));
        least_used(resident, by_recency[cap / 2..].iter().copied())
    })
}

pub fn pinned_lru(
    stream: &[Key],
    cap: usize,
    hot: &HotSet,
    in_part: impl Fn(usize) -> bool,
) -> Vec<bool> {
    let pinned: HashSet<Key> = hot.0.iter().copied().filter(|&(l, _)| in_part(l)).collect();
    let rest_cap = cap - pinned.len();
    let mut fetched = HashSet::new();
    let rest: Vec<Key> = stream
        .iter()
        .copied()
        .filter(|x| !pinned.contains(x))
        .collect();
    let mut rest_hits = lru(&rest, rest_cap).into_iter();
    stream
        .iter()
        .map(|x| {
            if pinned.contains(x) {
                !fetched.insert(*x)
            } else {
                rest_hits.next().unwrap()
            }
        })
        .collect()
}

pub fn belady(stream: &[Key], cap: usize) -> Vec<bool> {
    let mut uses: HashMap<Key, Vec<usize>> = HashMap::new();
    for (t, &x) in stream.iter().enumerate() {
        uses.entry(x).or_default().push(t);
    }
    let next_use = |x: Key, t: usize| {
        let u = &uses[&x];
        u.get(u.partition_point(|&v| v <= t))
            .copied()
            .unwrap_or(usize::MAX)
    };
    let mut resident: Vec<Key> = Vec::new();
    let mut out = Vec::new();
    for (t, &x) in stream.iter().enumerate() {
        if resident.contains(&x) {
            out.push(true);
            continue;
        }
        out.push(false);
        if cap == 0 {
            continue;
        }
        // Candidates to drop: every resident expert and the fetched one (bypass).
        resident.push(x);
        if resident.len() > cap {
            // Ties (never used again) drop the highest (layer, expert), as the fast version does.
            let victim = (0..resident.len())
                .max_by_key(|&i| (next_use(resident[i], t), resident[i]))
                .unwrap();
            resident.remove(victim);
        }
    }
    out
}

/// ARC transcribed from Megiddo & Modha (FAST 2003), fig. 4; each list's end is its MRU end.
pub fn arc(stream: &[Key], cap: usize) -> Vec<bool> {
    let c = cap as f64;
    let (mut t1, mut t2, mut b1, mut b2): (Vec<Key>, Vec<Key>, Vec<Key>, Vec<Key>) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut p = 0.0f64;
    let remove = |v: &mut Vec<Key>, x: Key| {
        let i = v.iter().position(|&y| y == x).unwrap();
        v.remove(i);
    };
    fn replace(
        t1: &mut Vec<Key>,
        t2: &mut Vec<Key>,
        b1: &mut Vec<Key>,
        b2: &mut Vec<Key>,
        x_in_b2: bool,
        p: f64,
    ) {
        let n1 = t1.len() as f64;
        if !t1.is_empty() && ((x_in_b2 && n1 == p) || n1 > p) {
            b1.push(t1.remove(0));
        } else {
            b2.push(t2.remove(0));
        }
    }
    let mut out = Vec::new();
    for &x in stream {
        if cap == 0 {
            out.push(false);
            continue;
        }
        if t1.contains(&x) || t2.contains(&x) {
            if t1.contains(&x) {
                remove(&mut t1, x);
            } else {
                remove(&mut t2, x);
            }
            t2.push(x);
            out.push(true);
            continue;
        }
        out.push(false);
        if b1.contains(&x) {
            let d = if b1.len() >= b2.len() {
                1.0
            } else {
                b2.len() as f64 / b1.len() as f64
            };
            p = (p + d).min(c);
            replace(&mut t1, &mut t2, &mut b1, &mut b2, false, p);
            remove(&mut b1, x);
            t2.push(x);
        } else if b2.contains(&x) {
            let d = if b2.len() >= b1.len() {
                1.0
            } else {
                b1.len() as f64 / b2.len() as f64
            };
            p = (p - d).max(0.0);
            replace(&mut t1, &mut t2, &mut b1, &mut b2, true, p);
            remove(&mut b2, x);
            t2.push(x);
        } else {
            if t1.len() + b1.len() == cap {
                if t1.len() < cap {
                    b1.remove(0);
                    replace(&mut t1, &mut t2, &mut b1, &mut b2, false, p);
                } else {
                    t1.remove(0);
                }
            } else if t1.len() + t2.len() + b1.len() + b2.len() >= cap {
                if t1.len() + t2.len() + b1.len() + b2.len() == 2 * cap {
                    b2.remove(0);
                }
                replace(&mut t1, &mut t2, &mut b1, &mut b2, false, p);
            }
            t1.push(x);
        }
    }
    out
}

/// Fewest misses any demand-fetching cache of `cap` experts can have, by exhaustive search over
/// every choice at each miss: bypass, fill a free slot, or replace any resident (tiny streams only).
pub fn optimal_misses(stream: &[Key], cap: usize) -> usize {
    fn go(
        stream: &[Key],
        cap: usize,
        resident: &mut Vec<Key>,
        memo: &mut HashMap<(usize, Vec<Key>), usize>,
        t: usize,
    ) -> usize {
        if t == stream.len() {
            return 0;
        }
        let mut key_set = resident.clone();
        key_set.sort();
        if let Some(&m) = memo.get(&(t, key_set.clone())) {
            return m;
        }
        let x = stream[t];
        let best = if resident.contains(&x) {
            go(stream, cap, resident, memo, t + 1)
        } else if cap == 0 {
            1 + go(stream, cap, resident, memo, t + 1)
        } else if resident.len() < cap {
            resident.push(x);
            let keep = 1 + go(stream, cap, resident, memo, t + 1);
            resident.pop();
            keep.min(1 + go(stream, cap, resident, memo, t + 1))
        } else {
            // Use x without caching it, or replace any resident expert with it.
            let mut best = 1 + go(stream, cap, resident, memo, t + 1);
            for i in 0..resident.len() {
                let old = std::mem::replace(&mut resident[i], x);
                best = best.min(1 + go(stream, cap, resident, memo, t + 1));
                resident[i] = old;
            }
            best
        };
        memo.insert((t, key_set), best);
        best
    }
    go(stream, cap, &mut Vec::new(), &mut HashMap::new(), 0)
}
