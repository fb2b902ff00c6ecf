//! Fitting [`SynthParams`] to a real trace by simulated moments: per layer, each parameter is
//! bisected until the synthetic trace (same sequence lengths, fixed seed) matches one statistic
//! of the real trace that it controls monotonically.
//!
//! | parameter  | matched statistic                                                   |
//! |------------|---------------------------------------------------------------------|
//! | `drift`    | share of selections that are an expert's first use in the sequence  |
//! | `reuse`    | previous-token reuse                                                |
//! | `affinity` | mutual information between the experts of adjacent MoE layers       |
//!
//! | `cluster_drift` (one for the trace) | working set of a 16-token window, as a share of all experts |
//!
//! The cluster count (`n_expert`) and profile size (`top_k`) are not fitted.
//! | `skew`     | normalized popularity entropy                                       |

use super::{synthesize, LayerParams, ParamsError, SynthParams};
use crate::model::Trace;
use crate::stats::{popularity, reuse};
use serde::Serialize;
use std::collections::HashMap;

/// The statistics the fit matches, for one MoE layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerMoments {
    pub layer: u32,
    pub entropy_norm: f64,
    pub prev_token_reuse: f64,
    pub first_use_share: f64,
    /// Mutual information (bits) between an expert of this layer and one of the previous MoE
    /// layer (the next one, for the first MoE layer) selected by the same token; 0 when the
    /// model has a single MoE layer.
    pub affinity_mi_bits: f64,
}

/// Fitted parameters with the statistics they were fitted to and those they achieve.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub params: SynthParams,
    pub target: Vec<LayerMoments>,
    pub achieved: Vec<LayerMoments>,
    /// Working-set share of a [`WINDOW`]-token window: real, then synthetic.
    pub working_set: (f64, f64),
}

/// Window (tokens) of the working-set statistic that `cluster_drift` is fitted to.
pub const WINDOW: usize = 16;

/// Bisection steps per parameter and rounds over all four parameters.
const STEPS: usize = 8;
const ROUNDS: usize = 2;

#[derive(Clone, Copy)]
enum Param {
    Drift,
    Reuse,
    Affinity,
    Skew,
}

impl Param {
    fn range(self) -> (f64, f64) {
        match self {
            Param::Drift => (0.0, 4.0),
            Param::Reuse | Param::Affinity => (0.0, 1.0),
            Param::Skew => (0.0, 3.0),
        }
    }

    fn slot(self, l: &mut LayerParams) -> &mut f64 {
        match self {
            Param::Drift => &mut l.drift,
            Param::Reuse => &mut l.reuse,
            Param::Affinity => &mut l.affinity,
            Param::Skew => &mut l.skew,
        }
    }

    /// The matched statistic, signed so that it grows with the parameter.
    fn rising(self, m: &LayerMoments) -> f64 {
        match self {
            Param::Drift => -m.first_use_share,
            Param::Reuse => m.prev_token_reuse,
            Param::Affinity => m.affinity_mi_bits,
            Param::Skew => -m.entropy_norm,
        }
    }
}

/// The fitted statistics of every layer of `trace`.
pub fn moments(trace: &Trace) -> Vec<LayerMoments> {
    let m = trace.model();
    (0..m.n_layers())
        .map(|l| {
            let pop = popularity::layer(trace, l);
            let (hist, prev) = reuse::layer(trace, l);
            let total: u64 = hist.counts.iter().sum();
            LayerMoments {
                layer: m.moe_layers[l],
                entropy_norm: pop.entropy_norm,
                prev_token_reuse: prev,
                first_use_share: hist.counts[8] as f64 / total.max(1) as f64,
                affinity_mi_bits: match (l, m.n_layers()) {
                    (_, 1) => 0.0,
                    (0, _) => mutual_information(trace, 0, 1),
                    _ => mutual_information(trace, l - 1, l),
                },
            }
        })
        .collect()
}

/// MI between expert ids of layers `a` and `b`, over all (k x k) pairs of each token.
fn mutual_information(trace: &Trace, a: usize, b: usize) -> f64 {
    let n = trace.model().n_expert as usize;
    // Dense counts up to 1024 experts (8 MiB); sparse beyond, where n * n would not fit.
    let mut dense = if n <= 1024 {
        vec![0u64; n * n]
    } else {
        Vec::new()
    };
    let mut sparse: HashMap<(u16, u16), u64> = HashMap::new();
    let (mut pa, mut pb) = (vec![0u64; n], vec![0u64; n]);
    let mut total = 0u64;
    for t in 0..trace.n_tokens() {
        for &x in trace.selection(t, a) {
            pa[x as usize] += trace.model().top_k as u64;
            for &y in trace.selection(t, b) {
                if dense.is_empty() {
                    *sparse.entry((x, y)).or_insert(0) += 1;
                } else {
                    dense[x as usize * n + y as usize] += 1;
                }
                pb[y as usize] += 1;
                total += 1;
            }
        }
    }
    let t = total as f64;
    let term = |x: usize, y: usize, c: u64| {
        let pxy = c as f64 / t;
        pxy * (pxy / ((pa[x] as f64 / t) * (pb[y] as f64 / t))).log2()
    };
    if dense.is_empty() {
        sparse
            .into_iter()
            .map(|((x, y), c)| term(x as usize, y as usize, c))
            .sum()
    } else {
        dense
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| term(i / n, i % n, c))
            .sum()
    }
}

/// Fits parameters to `trace`; the synthetic trace has the real trace's sequence lengths.
pub fn fit(trace: &Trace, seed: u64) -> Result<FitReport, ParamsError> {
    let target = moments(trace);
    let target_ws = working_set_share(trace);
    let lengths = trace.sequences().map(|s| s.tokens.len()).collect();
    let start = LayerParams {
        skew: 0.0,
        reuse: 0.0,
        affinity: 0.0,
        drift: 0.0,
    };
    let mut params = SynthParams::uniform(trace.model().clone(), lengths, start);
    for _ in 0..ROUNDS {
        calibrate_cluster_drift(&mut params, target_ws, seed)?;
        for param in [Param::Drift, Param::Reuse, Param::Affinity, Param::Skew] {
            calibrate(&mut params, &target, param, seed)?;
        }
    }
    // Reuse once more, last: previous-token reuse is what caches are most sensitive to.
    calibrate(&mut params, &target, Param::Reuse, seed)?;
    let synthetic = synthesize(&params, seed)?;
    let achieved = moments(&synthetic);
    Ok(FitReport {
        params,
        target,
        achieved,
        working_set: (target_ws, working_set_share(&synthetic)),
    })
}

fn working_set_share(trace: &Trace) -> f64 {
    crate::stats::working_set(trace, &[WINDOW])
        .first()
        .map_or(0.0, |w| w.mean_fraction)
}

/// Bisects the one `cluster_drift` so the synthetic working set matches (it shrinks as drift grows).
fn calibrate_cluster_drift(
    params: &mut SynthParams,
    target: f64,
    seed: u64,
) -> Result<(), ParamsError> {
    let (mut lo, mut hi) = (0.0, 4.0);
    for _ in 0..STEPS {
        params.cluster_drift = (lo + hi) / 2.0;
        if working_set_share(&synthesize(params, seed)?) > target {
            lo = params.cluster_drift;
        } else {
            hi = params.cluster_drift;
        }
    }
    params.cluster_drift = (lo + hi) / 2.0;
    Ok(())
}

/// Bisects `param` of every layer at once (each layer's statistic depends mostly on its own).
fn calibrate(
    params: &mut SynthParams,
    target: &[LayerMoments],
    param: Param,
    seed: u64,
) -> Result<(), ParamsError> {
    let n_layers = params.layers.len();
    let (lo0, hi0) = param.range();
    let (mut lo, mut hi) = (vec![lo0; n_layers], vec![hi0; n_layers]);
    // With one MoE layer there is no inter-layer statistic to match.
    let fitted = |_: usize| !(matches!(param, Param::Affinity) && n_layers == 1);
    for _ in 0..STEPS {
        for l in (0..n_layers).filter(|&l| fitted(l)) {
            *param.slot(&mut params.layers[l]) = (lo[l] + hi[l]) / 2.0;
        }
        let got = moments(&synthesize(params, seed)?);
        for l in (0..n_layers).filter(|&l| fitted(l)) {
            let mid = (lo[l] + hi[l]) / 2.0;
            if param.rising(&got[l]) < param.rising(&target[l]) {
                lo[l] = mid;
            } else {
                hi[l] = mid;
            }
        }
    }
    for l in (0..n_layers).filter(|&l| fitted(l)) {
        *param.slot(&mut params.layers[l]) = (lo[l] + hi[l]) / 2.0;
    }
    Ok(())
}
