//! The generator: draws a trace from [`SynthParams`] and a seed.

use super::rng::Rng;
use super::{ParamsError, SynthParams};
use crate::builder::{TokenExtras, TraceBuilder};
use crate::model::Trace;

/// Rejected draws (duplicates) before falling back to a uniform pick among unused experts.
const MAX_REJECTIONS: usize = 32;

/// Fixed per-layer structure: base popularity weights and each cluster's expert profile.
struct Structure {
    base: Vec<Vec<f64>>,
    /// `profiles[l][c]`: the experts cluster `c` prefers at layer position `l`.
    profiles: Vec<Vec<Vec<u16>>>,
}

fn structure(p: &SynthParams, rng: &mut Rng) -> Structure {
    let n = p.model.n_expert as usize;
    let base = p
        .layers
        .iter()
        .map(|lp| {
            let rank = rng.permutation(n);
            (0..n)
                .map(|e| (f64::from(rank[e]) + 1.0).powf(-lp.skew))
                .collect()
        })
        .collect();
    let profiles = (0..p.layers.len())
        .map(|_| balanced_profiles(p, rng))
        .collect();
    Structure { base, profiles }
}

/// Cluster profiles cut from back-to-back permutations of the experts, so that every expert is
/// in (nearly) the same number of profiles: random subsets would leave some experts in many
/// profiles and others in none, skewing popularity in a way no `skew` can undo.
fn balanced_profiles(p: &SynthParams, rng: &mut Rng) -> Vec<Vec<u16>> {
    let (n, size) = (p.model.n_expert as usize, p.profile_size as usize);
    let mut pool: Vec<u16> = Vec::with_capacity(p.clusters as usize * size + n);
    while pool.len() < p.clusters as usize * size {
        pool.extend(rng.permutation(n));
    }
    pool.chunks_exact(size)
        .take(p.clusters as usize)
        .map(<[u16]>::to_vec)
        .collect()
}

/// Cumulative weights of one sequence's popularity at one layer.
fn sequence_cdf(base: &[f64], drift: f64, rng: &mut Rng, cdf: &mut Vec<f64>) {
    cdf.clear();
    let mut total = 0.0;
    for &w in base {
        total += w * (drift * rng.normal()).exp();
        cdf.push(total);
    }
}

fn sample(cdf: &[f64], rng: &mut Rng) -> u16 {
    let total = cdf[cdf.len() - 1];
    let x = rng.f64() * total;
    cdf.partition_point(|&c| c <= x).min(cdf.len() - 1) as u16
}

/// Generates a trace; the same parameters and seed always give the same trace.
pub fn synthesize(p: &SynthParams, seed: u64) -> Result<Trace, ParamsError> {
    p.check()?;
    let (n, k, n_layers) = (
        p.model.n_expert as usize,
        p.model.top_k as usize,
        p.model.n_layers(),
    );
    // Separate streams keep the structure fixed while the token draws vary, and vice versa.
    let s = structure(p, &mut Rng::new(seed));
    let mut seq_rng = Rng::new(seed.wrapping_add(1));
    let mut rng = Rng::new(seed.wrapping_add(2));
    let mut b = TraceBuilder::new(p.model.clone())?;
    b.reserve_tokens(p.total_tokens()?);
    let mut cdfs: Vec<Vec<f64>> = vec![Vec::with_capacity(n); n_layers];
    let mut prev: Vec<Vec<u16>> = vec![Vec::with_capacity(k); n_layers];
    let mut ids: Vec<u16> = Vec::with_capacity(p.model.ids_per_token());
    let uniform_clusters = vec![1.0; p.clusters as usize];
    let mut cluster_cdf = Vec::with_capacity(p.clusters as usize);
    for (r, &len) in p.sequence_lengths.iter().enumerate() {
        for (l, cdf) in cdfs.iter_mut().enumerate() {
            sequence_cdf(&s.base[l], p.layers[l].drift, &mut seq_rng, cdf);
        }
        sequence_cdf(
            &uniform_clusters,
            p.cluster_drift,
            &mut seq_rng,
            &mut cluster_cdf,
        );
        prev.iter_mut().for_each(Vec::clear);
        b.begin_sequence(format!("synth-{r}"))?;
        for _ in 0..len {
            ids.clear();
            let cluster = sample(&cluster_cdf, &mut rng) as usize;
            for l in 0..n_layers {
                let lp = p.layers[l];
                let start = ids.len();
                for &e in &prev[l] {
                    if rng.f64() < lp.reuse {
                        ids.push(e);
                    }
                }
                let mut rejections = 0;
                while ids.len() - start < k {
                    let candidate = if rng.f64() < lp.affinity {
                        let profile = &s.profiles[l][cluster];
                        profile[rng.below(profile.len())]
                    } else {
                        sample(&cdfs[l], &mut rng)
                    };
                    if !ids[start..].contains(&candidate) {
                        ids.push(candidate);
                    } else if rejections < MAX_REJECTIONS {
                        rejections += 1;
                    } else {
                        // `0..n as u16` would wrap to an empty range at n = 65536.
                        let unused: Vec<u16> = (0..n)
                            .map(|e| e as u16)
                            .filter(|e| !ids[start..].contains(e))
                            .collect();
                        ids.push(unused[rng.below(unused.len())]);
                    }
                }
                prev[l].clear();
                prev[l].extend_from_slice(&ids[start..]);
            }
            b.push_token(&ids, TokenExtras::default())?;
        }
        b.end_sequence()?;
    }
    Ok(b.finish()?)
}
