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
                best.pop();
            }
            let mut at = best.len();
            while at > 0 && best[at - 1].0 < s {
                at -= 1;
            }
            best.insert(at, (s, e as u16));
        }
        out.extend(best.iter().map(|&(_, e)| e));
    }
}
