//! Fit the synthesizer to the real DeepSeek-V2-Lite traces, synthesize a trace of the same
//! length, and compare their statistics within explicit tolerances.

mod common;

use traces::import::{import, Options, Source};
use traces::stats::{compute, Stats, StatsOptions, REUSE_BUCKETS};
use traces::synth::{fit, moments, synthesize, LayerParams, SynthParams};
use traces::ModelFacts;

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// Reuse-distance shares averaged over layers.
fn reuse_shares(s: &Stats) -> Vec<f64> {
    (0..REUSE_BUCKETS.len())
        .map(|b| {
            mean(
                s.layers
                    .iter()
                    .map(|l| l.reuse.counts[b] as f64 / l.reuse.counts.iter().sum::<u64>() as f64),
            )
        })
        .collect()
}

/// `(statistic, real, synthetic, tolerance)` rows compared by the fit test.
fn comparison(real: &Stats, syn: &Stats) -> Vec<(String, f64, f64, f64)> {
    let mut rows = vec![
        (
            "popularity entropy (norm, mean over layers)".to_string(),
            mean(real.layers.iter().map(|l| l.popularity.entropy_norm)),
            mean(syn.layers.iter().map(|l| l.popularity.entropy_norm)),
            0.005,
        ),
        (
            "top-10% share (mean over layers)".to_string(),
            mean(real.layers.iter().map(|l| l.popularity.top10_share)),
            mean(syn.layers.iter().map(|l| l.popularity.top10_share)),
            0.03,
        ),
        (
            "previous-token reuse (mean over layers)".to_string(),
            mean(real.layers.iter().map(|l| l.prev_token_reuse)),
            mean(syn.layers.iter().map(|l| l.prev_token_reuse)),
            0.015,
        ),
    ];
    let worst = real
        .layers
        .iter()
        .zip(&syn.layers)
        .map(|(a, b)| (a.prev_token_reuse - b.prev_token_reuse).abs())
        .fold(0.0, f64::max);
    rows.push((
        "previous-token reuse, worst layer |diff|".to_string(),
        0.0,
        worst,
        0.03,
    ));
    for (b, (r, s)) in reuse_shares(real)
        .into_iter()
        .zip(reuse_shares(syn))
        .enumerate()
    {
        rows.push((
            format!("reuse distance {} share", REUSE_BUCKETS[b]),
            r,
            s,
            0.04,
        ));
    }
    for (r, s) in real.working_set.iter().zip(&syn.working_set) {
        rows.push((
            format!("working set, window {} (share of experts)", r.window),
            r.mean_fraction,
            s.mean_fraction,
            0.05,
        ));
    }
    for (r, s) in real.lru.iter().zip(&syn.lru) {
        rows.push((
            format!(
                "LRU hit rate, cache {:.0}% of experts",
                100.0 * r.capacity_fraction
            ),
            r.hit_rate,
            s.hit_rate,
            0.04,
        ));
    }
    rows
}

#[test]
fn fitted_synthesizer_reproduces_deepseek_v2_lite_statistics() {
    let real = import(
        Source::DeepseekCsv,
        &common::shared_data().join("traces/deepseek-v2-lite"),
        &Options::default(),
    )
    .unwrap();
    let report = fit(&real, 7).unwrap();
    let syn = synthesize(&report.params, 12345).unwrap();
    assert_eq!(
        (syn.n_sequences(), syn.n_tokens(), syn.n_selections()),
        (real.n_sequences(), real.n_tokens(), real.n_selections())
    );
    let opts = StatsOptions {
        lru_fractions: vec![0.1, 0.25, 0.5, 0.75],
        ..StatsOptions::default()
    };
    let (a, b) = (compute(&real, &opts), compute(&syn, &opts));
    let mut rows = comparison(&a, &b);
    let mi = |t: &traces::Trace| mean(moments(t).iter().map(|m| m.affinity_mi_bits));
    rows.push((
        "adjacent-layer mutual information, bits (mean)".to_string(),
        mi(&real),
        mi(&syn),
        0.05,
    ));
    let mut failed = Vec::new();
    eprintln!("| statistic | real | synthetic | tolerance |\n|---|---|---|---|");
    for (name, r, s, tol) in &rows {
        eprintln!("| {name} | {r:.4} | {s:.4} | ±{tol} |");
        if (r - s).abs() > *tol {
            failed.push(name.clone());
        }
    }
    eprintln!(
        "params: {}",
        serde_json::to_string(&report.params.layers).unwrap()
    );
    assert!(failed.is_empty(), "outside tolerance: {failed:?}");
}

#[test]
fn synthesis_is_deterministic_and_controllable() {
    let model = ModelFacts {
        architecture: "mixtral".into(),
        moe_layers: (0..4).collect(),
        n_expert: 8,
        top_k: 2,
        n_shared_expert: 0,
    };
    let flat = LayerParams {
        skew: 0.0,
        reuse: 0.0,
        affinity: 0.0,
        drift: 0.0,
    };
    let p = SynthParams::uniform(model.clone(), vec![400; 5], flat);
    assert_eq!(synthesize(&p, 1).unwrap(), synthesize(&p, 1).unwrap());
    assert_ne!(synthesize(&p, 1).unwrap(), synthesize(&p, 2).unwrap());
    let stats = |p: &SynthParams| compute(&synthesize(p, 3).unwrap(), &StatsOptions::default());
    let base = stats(&p);
    // Uniform independent top-2 of 8: overlap with the previous token is 2/8 in expectation.
    assert!((mean(base.layers.iter().map(|l| l.prev_token_reuse)) - 0.25).abs() < 0.02);
    let sticky = stats(&SynthParams::uniform(
        model.clone(),
        vec![400; 5],
        LayerParams { reuse: 0.8, ..flat },
    ));
    assert!(mean(sticky.layers.iter().map(|l| l.prev_token_reuse)) > 0.8);
    let skewed = stats(&SynthParams::uniform(
        model.clone(),
        vec![400; 5],
        LayerParams { skew: 2.0, ..flat },
    ));
    assert!(
        skewed.layers[0].popularity.entropy_norm < base.layers[0].popularity.entropy_norm - 0.1
    );
    let mut bad = p.clone();
    bad.layers[2].reuse = 1.5;
    assert_eq!(
        synthesize(&bad, 1).unwrap_err().to_string(),
        "layers[2].reuse is 1.5; it must be in 0..=1"
    );
}
