//! Expert prefetch for the next MoE layer: which experts to read while the current layer still
//! computes — none, a prediction from co-activation counts learned online, or the oracle.

/// How the next MoE layer's experts are chosen for prefetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpertPrefetch {
    /// Misses are read on demand, after the router has chosen.
    #[default]
    None,
    /// After layer `m` routes, read the experts of layer `m + 1` that co-occurred most often
    /// with layer `m`'s selection in earlier tokens (counts learned online; nothing from the
    /// future). Up to top-k experts, the size of the plan's expert staging pool.
    Coactivation,
    /// Same timing, but the next layer's actual selection (perfect knowledge): the upper bound
    /// for next-layer prefetch.
    Oracle,
}

impl ExpertPrefetch {
    /// Every choice, in the order help texts list them.
    pub const ALL: [ExpertPrefetch; 3] = [
        ExpertPrefetch::None,
        ExpertPrefetch::Coactivation,
        ExpertPrefetch::Oracle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ExpertPrefetch::None => "none",
            ExpertPrefetch::Coactivation => "coactivation",
            ExpertPrefetch::Oracle => "oracle",
        }
    }

    /// The choice [`ExpertPrefetch::name`] calls `s`.
    pub fn parse(s: &str) -> Option<ExpertPrefetch> {
        ExpertPrefetch::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// Counts of (expert at MoE layer m, expert at MoE layer m + 1) selected by the same token: the
/// predictor of [`ExpertPrefetch::Coactivation`], shared with the runtime.
pub struct Coactivation {
    n_expert: usize,
    counts: Vec<u32>,
    scores: Vec<u64>,
    /// The best (score, expert) so far while predicting.
    best: Vec<(u64, u16)>,
}

impl Coactivation {
    pub fn new(n_moe: usize, n_expert: usize) -> Coactivation {
        Coactivation {
            n_expert,
            counts: vec![0; n_moe.saturating_sub(1) * n_expert * n_expert],
            scores: vec![0; n_expert],
            best: Vec::new(),
        }
    }

    /// Learns that `prev` at MoE position `m` was followed by `next` at `m + 1`.
    pub fn learn(&mut self, m: usize, prev: &[u16], next: &[u16]) {
        let n = self.n_expert;
        for &a in prev {
            let row = (m * n + a as usize) * n;
            for &b in next {
                let c = &mut self.counts[row + b as usize];
                *c = c.saturating_add(1);
            }
        }
    }

    /// Up to `k` experts of position `m + 1` most often seen after `selection` at `m` (ties to
    /// the lower id), most often first; none with a zero count.
    pub fn predict(&mut self, m: usize, selection: &[u16], k: usize, out: &mut Vec<u16>) {
        out.clear();
        if k == 0 {
            return;
        }
        let n = self.n_expert;
        let scores = &mut self.scores;
        scores.fill(0);
        for &a in selection {
            let row = (m * n + a as usize) * n;
            for (s, &c) in scores.iter_mut().zip(&self.counts[row..row + n]) {
                *s += u64::from(c);
            }
        }
        // One pass keeping the best `k` in order: a later id displaces only a higher score.
        // `k` is small (top-k routing), so the place is found from the end, one step at a time.
        let best = &mut self.best;
        best.clear();
        for (e, &s) in scores.iter().enumerate() {
            if s == 0 || (best.len() == k && s <= best[k - 1].0) {
                continue;
            }
            if best.len() == k {
                best[k - 1] = (s, e as u16);
            } else {
                best.push((s, e as u16));
            }
            // Bubble it up past the lower scores (swaps: no memmove call for a few entries).
            let mut at = best.len() - 1;
            while at > 0 && best[at - 1].0 < s {
                best.swap(at - 1, at);
                at -= 1;
            }
        }
        out.extend(best.iter().map(|&(_, e)| e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prediction by brute force: every expert's summed count, sorted by count (higher
    /// first) then id, zeros dropped, the first `k`.
    fn brute(c: &Coactivation, m: usize, selection: &[u16], k: usize) -> Vec<u16> {
        let n = c.n_expert;
        let mut scored: Vec<(u64, u16)> = (0..n)
            .map(|e| {
                let s = selection
                    .iter()
                    .map(|&a| u64::from(c.counts[(m * n + a as usize) * n + e]))
                    .sum();
                (s, e as u16)
            })
            .filter(|&(s, _)| s > 0)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(k).map(|(_, e)| e).collect()
    }

    #[test]
    fn predict_is_the_top_k_by_count_ties_to_the_lower_id() {
        let mut x = 12_345u64;
        let mut rand = |below: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 33) % below
        };
        for n in [4usize, 8, 64] {
            let mut c = Coactivation::new(3, n);
            let mut out = Vec::new();
            for step in 0..400 {
                let m = rand(2) as usize;
                // Few distinct experts: many equal counts, so ties are exercised.
                let pick = |r: &mut dyn FnMut(u64) -> u64| -> Vec<u16> {
                    let mut v: Vec<u16> = (0..3).map(|_| r(n as u64) as u16).collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                };
                let (prev, next) = (pick(&mut rand), pick(&mut rand));
                c.learn(m, &prev, &next);
                let k = 1 + step % 6;
                let sel = pick(&mut rand);
                c.predict(m, &sel, k, &mut out);
                assert_eq!(out, brute(&c, m, &sel, k), "n {n}, step {step}, k {k}");
            }
        }
    }
}
