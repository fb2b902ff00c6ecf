//! Statistics on hand-made traces, checked against answers worked out by hand.

use traces::stats::{compute, StatsOptions};
use traces::{ModelFacts, TokenExtras, Trace, TraceBuilder};

/// 4 experts, top-2, MoE layers 0 and 1; each sequence is a list of tokens, each token the
/// ids of layer 0 then layer 1.
fn trace(seqs: &[&[[u16; 4]]]) -> Trace {
    let facts = ModelFacts {
        architecture: "t".into(),
        moe_layers: vec![0, 1],
        n_expert: 4,
        top_k: 2,
        n_shared_expert: 0,
    };
    let mut b = TraceBuilder::new(facts).unwrap();
    for (i, tokens) in seqs.iter().enumerate() {
        b.begin_sequence(i.to_string()).unwrap();
        for ids in *tokens {
            b.push_token(ids, TokenExtras::default()).unwrap();
        }
        b.end_sequence().unwrap();
    }
    b.finish().unwrap()
}

/// t0: L0 {0,1} L1 {2,3};  t1: L0 {1,2} L1 {2,3};  t2: L0 {0,1} L1 {0,2}.
fn three_tokens() -> Trace {
    trace(&[&[[0, 1, 2, 3], [1, 2, 2, 3], [0, 1, 0, 2]]])
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn popularity_entropy_and_top_share() {
    let s = compute(&three_tokens(), &StatsOptions::default());
    let p = &s.layers[0].popularity;
    assert_eq!(p.counts, [2, 3, 1, 0]);
    // p = 1/3, 1/2, 1/6: H = 1/3 log2 3 + 1/2 + 1/6 log2 6.
    let h = (3f64).log2() / 3.0 + 0.5 + (6f64).log2() / 6.0;
    assert!(close(p.entropy_bits, h), "{}", p.entropy_bits);
    assert!(close(p.entropy_norm, h / 2.0));
    assert_eq!(p.top_n, 1);
    assert!(close(p.top10_share, 0.5));
}

#[test]
fn reuse_distance_and_previous_token_reuse() {
    let s = compute(&three_tokens(), &StatsOptions::default());
    // Layer 0: t1 reuses 1 (d=1); t2 reuses 0 (d=2) and 1 (d=1); 0, 1 at t0 and 2 at t1 are first uses.
    assert_eq!(s.layers[0].reuse.counts, [2, 1, 0, 0, 0, 0, 0, 0, 3]);
    // Overlaps with the previous token: 1 of 2, then 1 of 2.
    assert!(close(s.layers[0].prev_token_reuse, 0.5));
    assert_eq!(s.layers[1].reuse.counts, [3, 0, 0, 0, 0, 0, 0, 0, 3]);
    assert!(close(s.layers[1].prev_token_reuse, 0.75));
}

#[test]
fn reuse_restarts_at_sequence_boundaries() {
    let s = compute(
        &trace(&[&[[0, 1, 2, 3]], &[[0, 1, 2, 3]]]),
        &StatsOptions::default(),
    );
    assert_eq!(s.layers[0].reuse.counts, [0, 0, 0, 0, 0, 0, 0, 0, 4]);
    assert_eq!(s.layers[0].prev_token_reuse, 0.0);
    assert_eq!(s.sequences, 2);
}

#[test]
fn co_activation_within_and_across_layers() {
    let s = compute(
        &three_tokens(),
        &StatsOptions {
            top_pairs: 3,
            windows: vec![],
            lru_fractions: vec![],
        },
    );
    let within: Vec<(u16, u16, u64)> = s.layers[0]
        .top_pairs
        .iter()
        .map(|p| (p.first, p.second, p.count))
        .collect();
    assert_eq!(within, [(0, 1, 2), (1, 2, 1)]);
    // P(0 and 1) = 2/3, P(0) = 2/3, P(1) = 1: independent, lift 1; P(1 | 0) = 1.
    assert!(close(s.layers[0].top_pairs[0].lift, 1.0));
    assert!(close(s.layers[0].top_pairs[0].p_second_given_first, 1.0));
    let cross = &s.cross_layer[0];
    assert_eq!((cross.from_layer, cross.to_layer), (0, 1));
    let got: Vec<(u16, u16, u64)> = cross
        .top_pairs
        .iter()
        .map(|p| (p.first, p.second, p.count))
        .collect();
    assert_eq!(got, [(1, 2, 3), (0, 2, 2), (1, 3, 2)]);
    // (1 at L0, 3 at L1): P(both) = 2/3, P(1) = 1, P(3) = 2/3, so lift 1; P(2 at L1 | 0 at L0) = 1.
    assert!(close(cross.top_pairs[2].lift, 1.0));
    assert!(close(cross.top_pairs[1].p_second_given_first, 1.0));
}

#[test]
fn working_set_over_sliding_windows() {
    let s = compute(
        &three_tokens(),
        &StatsOptions {
            top_pairs: 1,
            windows: vec![1, 2, 3, 4],
            lru_fractions: vec![],
        },
    );
    let got: Vec<(usize, f64, usize)> = s
        .working_set
        .iter()
        .map(|w| (w.window, w.mean, w.max))
        .collect();
    // W=2: t0+t1 touch L0 {0,1,2} L1 {2,3} = 5; t1+t2 touch L0 {0,1,2} L1 {0,2,3} = 6.
    assert_eq!(
        got,
        [(1, 4.0, 4), (2, 5.5, 6), (3, 6.0, 6)],
        "a window longer than the trace is skipped"
    );
    assert!(close(s.working_set[2].mean_fraction, 0.75));
}

#[test]
fn table_and_json_render() {
    let s = compute(&three_tokens(), &StatsOptions::default());
    let table = traces::stats::render(&s);
    assert!(
        table.starts_with(
            "t: 1 sequences, 3 tokens, 6 selections (12 expert ids), 4 experts, top-2"
        ),
        "{table}"
    );
    let json: serde_json::Value = serde_json::to_value(&s).unwrap();
    assert_eq!(json["layers"][1]["reuse"]["counts"][0], 3);
    assert_eq!(json["working_set"][0]["max"], 4);
}

#[test]
fn lru_hit_rates_by_hand() {
    let t = three_tokens();
    // Slots (layer * 4 + expert) in access order: 0 1 6 7 | 1 2 6 7 | 0 1 4 6.
    // 8 slots hold everything: the 6 distinct slots miss once, the other 6 accesses hit.
    assert!(close(
        traces::stats::lru_hit_rate(&t, 8).hit_rate,
        6.0 / 12.0
    ));
    // 4 slots: 0m 1m 6m 7m | 1h 2m 6h 7h | 0m 1m 4m 6m.
    assert!(close(
        traces::stats::lru_hit_rate(&t, 4).hit_rate,
        3.0 / 12.0
    ));
    // 2 slots: no slot comes back within two distinct others.
    assert_eq!(traces::stats::lru_hit_rate(&t, 2).hit_rate, 0.0);
    let s = compute(
        &t,
        &StatsOptions {
            top_pairs: 1,
            windows: vec![],
            lru_fractions: vec![0.5, 1.0],
        },
    );
    let caps: Vec<usize> = s.lru.iter().map(|p| p.capacity).collect();
    assert_eq!(caps, [4, 8]);
}
