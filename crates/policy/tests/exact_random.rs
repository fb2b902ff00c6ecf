//! Every policy's hit/miss pattern equals its brute-force reference on random skewed traces, and
//! Belady is optimal: never worse than any policy, and equal to an exhaustive search on tiny traces.

mod common;

use common::{reference, skewed_trace};
use policy::cache::{replay, CacheConfig, Capacity, ExpertBytes, HotSet, Partition, Policy};
use proptest::prelude::*;
use traces::Trace;

fn counts(trace: &Trace, policy: &Policy, partition: Partition, capacity: u64) -> (u64, Vec<u64>) {
    let cfg = CacheConfig {
        policy: policy.clone(),
        partition,
        capacity: Capacity::Experts(capacity),
    };
    let bytes = ExpertBytes::uniform(trace.model().n_layers(), 3).unwrap();
    let s = replay(trace, &cfg, &bytes).unwrap();
    (s.hits(), s.per_layer.iter().map(|c| c.hits).collect())
}

fn reference_counts(
    trace: &Trace,
    policy: &Policy,
    partition: Partition,
    capacity: u64,
) -> (u64, Vec<u64>) {
    let h = reference::hits(trace, policy, partition, Capacity::Experts(capacity));
    let mut per_layer = vec![0u64; trace.model().n_layers()];
    for (hit, (l, _)) in h.iter().zip(reference::accesses(trace)) {
        per_layer[l] += u64::from(*hit);
    }
    (per_layer.iter().sum(), per_layer)
}

/// Pins `wanted` pairs, keeping only as many per partition as its capacity allows.
fn fitting_hot_set(
    trace: &Trace,
    partition: Partition,
    capacity: u64,
    wanted: &[(usize, u16)],
) -> HotSet {
    let caps = reference::caps(trace, partition, capacity);
    let mut used = vec![0usize; caps.len()];
    let mut hot = Vec::new();
    let m = trace.model();
    for &(l, e) in wanted {
        let (l, e) = (l % m.n_layers(), e % m.n_expert as u16);
        let p = if partition == Partition::Global { 0 } else { l };
        if used[p] < caps[p] && !hot.contains(&(l, e)) {
            used[p] += 1;
            hot.push((l, e));
        }
    }
    HotSet(hot)
}

/// Layers, experts, top-k, raw selections, capacity, per-layer partitioning, wanted hot set.
type Shape = (usize, u32, u32, Vec<u16>, u64, bool, Vec<(usize, u16)>);

fn shape() -> impl Strategy<Value = Shape> {
    (1usize..=3, 1u32..=8)
        .prop_flat_map(|(layers, n)| (Just(layers), Just(n), 1u32..=n.min(3)))
        .prop_flat_map(|(layers, n, k)| {
            let per_token = layers * k as usize;
            (
                Just(layers),
                Just(n),
                Just(k),
                (1usize..60)
                    .prop_flat_map(move |t| prop::collection::vec(0u16..1000, t * per_token)),
                0u64..=(layers as u64 * u64::from(n) + 2),
                any::<bool>(),
                prop::collection::vec((0usize..3, 0u16..8), 0..6),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_policy_matches_its_reference((layers, n, k, raw, cap, per_layer, wanted) in shape()) {
        let trace = skewed_trace(layers, n, k, &raw);
        let partition = if per_layer { Partition::PerLayer } else { Partition::Global };
        let hot = fitting_hot_set(&trace, partition, cap, &wanted);
        for policy in [Policy::Lru, Policy::Lfu, Policy::Lfru, Policy::Arc, Policy::PinnedLru(hot), Policy::Belady] {
            prop_assert_eq!(
                counts(&trace, &policy, partition, cap),
                reference_counts(&trace, &policy, partition, cap),
                "{} {:?} capacity {}", policy.name(), partition, cap
            );
        }
    }

    #[test]
    fn belady_is_never_worse((layers, n, k, raw, cap, per_layer, wanted) in shape()) {
        let trace = skewed_trace(layers, n, k, &raw);
        let partition = if per_layer { Partition::PerLayer } else { Partition::Global };
        let hot = fitting_hot_set(&trace, partition, cap, &wanted);
        let (opt, opt_layers) = counts(&trace, &Policy::Belady, partition, cap);
        for policy in [Policy::Lru, Policy::Lfu, Policy::Lfru, Policy::Arc, Policy::PinnedLru(hot)] {
            let (h, layers_h) = counts(&trace, &policy, partition, cap);
            prop_assert!(h <= opt, "{} has {} hits, Belady {}", policy.name(), h, opt);
            if per_layer {
                // Partitions are independent caches, so the bound holds layer by layer too.
                prop_assert!(layers_h.iter().zip(&opt_layers).all(|(a, b)| a <= b));
            }
        }
    }

    #[test]
    fn belady_equals_exhaustive_optimum(n in 2u32..=5, raw in prop::collection::vec(0u16..1000, 1..13), cap in 0u64..=4) {
        let trace = skewed_trace(1, n, 1, &raw);
        let stream = reference::accesses(&trace);
        let (hits, _) = counts(&trace, &Policy::Belady, Partition::Global, cap);
        let misses = stream.len() as u64 - hits;
        prop_assert_eq!(misses as usize, reference::optimal_misses(&stream, cap.min(u64::from(n)) as usize));
    }
}

#[test]
fn reference_lru_on_a_hand_example() {
    // Capacity 2: a b a c b -> miss miss hit miss(evicts b) miss(evicts a).
    let k = |e| (0usize, e);
    let stream = [k(0), k(1), k(0), k(2), k(1)];
    assert_eq!(
        reference::lru(&stream, 2),
        [false, false, true, false, false]
    );
    // Belady keeps b at the 4th access (drops a or c, never used again): one more hit.
    assert_eq!(
        reference::belady(&stream, 2),
        [false, false, true, false, true]
    );
}

/// One-layer, top-1 trace whose accesses are `experts` in order.
fn single_layer_trace(n_expert: u32, experts: &[u16]) -> Trace {
    let facts = traces::ModelFacts {
        architecture: "test".into(),
        moe_layers: vec![0],
        n_expert,
        top_k: 1,
        n_shared_expert: 0,
    };
    let mut b = traces::TraceBuilder::new(facts).unwrap();
    b.begin_sequence("s").unwrap();
    for &e in experts {
        b.push_token(&[e], traces::TokenExtras::default()).unwrap();
    }
    b.end_sequence().unwrap();
    b.finish().unwrap()
}

#[test]
fn lfru_on_hand_examples() {
    // Capacity 3: the most recent resident is privileged, victims come from the other two.
    let (a, b, c, d) = (0u16, 1, 2, 3);
    // a a b c | d: a (2 uses) outlives b (1 use), though a is least recent; LRU drops a.
    let s1 = [a, a, b, c, d, a, b];
    // a a b b c | d: c (1 use, most recent) is privileged, so a (2 uses, older) goes; LFU drops c.
    let s2 = [a, a, b, b, c, d, c, a];
    let cases = [
        (&s1[..], Policy::Lfru, vec![0, 1, 0, 0, 0, 1, 0]),
        (&s1[..], Policy::Lru, vec![0, 1, 0, 0, 0, 0, 0]),
        (&s2[..], Policy::Lfru, vec![0, 1, 0, 1, 0, 0, 1, 0]),
        (&s2[..], Policy::Lfu, vec![0, 1, 0, 1, 0, 0, 0, 1]),
    ];
    for (stream, policy, expect) in cases {
        let expect: Vec<bool> = expect.into_iter().map(|h| h == 1).collect();
        let keys: Vec<(usize, u16)> = stream.iter().map(|&e| (0, e)).collect();
        let slow = match policy {
            Policy::Lfru => reference::lfru(&keys, 3),
            Policy::Lru => reference::lru(&keys, 3),
            _ => reference::lfu(&keys, 3),
        };
        assert_eq!(slow, expect, "reference {}", policy.name());
        let trace = single_layer_trace(4, stream);
        let cfg = CacheConfig {
            policy: policy.clone(),
            partition: Partition::Global,
            capacity: Capacity::Experts(3),
        };
        let bytes = ExpertBytes::uniform(1, 1).unwrap();
        let (_, fast) = policy::cache::replay_hits(&trace, &cfg, &bytes).unwrap();
        assert_eq!(fast, expect, "{}", policy.name());
    }
}
