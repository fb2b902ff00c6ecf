//! Exactness on the real DeepSeek-V2-Lite trace (`../shared/data/traces/deepseek-v2-lite`):
//! every policy against its brute-force reference, global LRU against the traces crate's own LRU,
//! Belady above every policy, and capacities given in bytes.

mod common;

use common::{deepseek, first_sequences, reference};
use policy::cache::{replay, CacheConfig, Capacity, ExpertBytes, HotSet, Partition, Policy};
use traces::Trace;

fn run(
    trace: &Trace,
    policy: &Policy,
    partition: Partition,
    capacity: Capacity,
) -> policy::cache::ReplayStats {
    let cfg = CacheConfig {
        policy: policy.clone(),
        partition,
        capacity,
    };
    replay(
        trace,
        &cfg,
        &ExpertBytes::uniform(trace.model().n_layers(), 1000).unwrap(),
    )
    .unwrap()
}

/// The `per_layer` most used experts of every layer.
fn hot_set(trace: &Trace, per_layer: usize) -> HotSet {
    let m = trace.model();
    let mut hot = Vec::new();
    for l in 0..m.n_layers() {
        let mut uses = vec![0u64; m.n_expert as usize];
        for t in 0..trace.n_tokens() {
            for &e in trace.selection(t, l) {
                uses[e as usize] += 1;
            }
        }
        let mut order: Vec<u16> = (0..m.n_expert as u16).collect();
        order.sort_by_key(|&e| (std::cmp::Reverse(uses[e as usize]), e));
        hot.extend(order[..per_layer].iter().map(|&e| (l, e)));
    }
    HotSet(hot)
}

fn assert_matches_reference(
    trace: &Trace,
    partition: Partition,
    capacity: u64,
    hot_per_layer: usize,
) {
    let policies = [
        Policy::Lru,
        Policy::Lfu,
        Policy::Lfru,
        Policy::Arc,
        Policy::PinnedLru(hot_set(trace, hot_per_layer)),
        Policy::Belady,
    ];
    let mut belady = 0;
    let mut best_online = 0;
    for policy in &policies {
        let fast = run(trace, policy, partition, Capacity::Experts(capacity));
        let slow = reference::hits(trace, policy, partition, Capacity::Experts(capacity));
        let mut per_layer = vec![0u64; trace.model().n_layers()];
        for (hit, (l, _)) in slow.iter().zip(reference::accesses(trace)) {
            per_layer[l] += u64::from(*hit);
        }
        let fast_layers: Vec<u64> = fast.per_layer.iter().map(|c| c.hits).collect();
        assert_eq!(
            fast_layers,
            per_layer,
            "{} {partition:?} {capacity}",
            policy.name()
        );
        assert_eq!(fast.accesses(), trace.n_expert_ids() as u64);
        if *policy == Policy::Belady {
            belady = fast.hits();
        } else {
            best_online = best_online.max(fast.hits());
        }
    }
    assert!(
        belady > best_online,
        "Belady {belady} vs best online {best_online}"
    );
}

#[test]
fn per_layer_policies_match_reference_on_whole_trace() {
    // 4 of 64 experts per layer: small enough for the references' scans over all 3.5 M accesses.
    assert_matches_reference(deepseek(), Partition::PerLayer, 4 * 26, 2);
}

#[test]
fn per_layer_policies_match_reference_on_first_prompts() {
    // 16 of 64 experts per layer (25%), five layers with one more.
    let prefix = first_sequences(deepseek(), 60);
    assert_matches_reference(&prefix, Partition::PerLayer, 16 * 26 + 5, 4);
}

#[test]
fn global_policies_match_reference_on_first_prompts() {
    // A global cache's reference scans all residents per miss, so it replays 20 prompts.
    let prefix = first_sequences(deepseek(), 20);
    assert!(prefix.n_expert_ids() > 50_000);
    assert_matches_reference(&prefix, Partition::Global, 166, 1);
    assert_matches_reference(&prefix, Partition::Global, 416, 3);
}

#[test]
fn global_lru_equals_traces_stats_lru() {
    let t = deepseek();
    for capacity in [166usize, 416, 832, 1248] {
        let ours = run(
            t,
            &Policy::Lru,
            Partition::Global,
            Capacity::Experts(capacity as u64),
        );
        let theirs = traces::stats::lru_hit_rate(t, capacity);
        assert_eq!(ours.hit_rate(), theirs.hit_rate, "capacity {capacity}");
    }
}

#[test]
fn capacity_in_bytes_and_bytes_read() {
    let t = deepseek();
    let n = t.model().n_layers();
    let sizes: Vec<u64> = (0..n as u64).map(|l| 1000 + 10 * l).collect();
    let bytes = ExpertBytes::per_layer_sizes(sizes.clone()).unwrap();
    // Per layer: each layer gets an equal byte share, 8 experts of its own size plus change.
    let share = 8 * (1000 + 10 * (n as u64 - 1)) + 5;
    let cfg = CacheConfig {
        policy: Policy::Lru,
        partition: Partition::PerLayer,
        capacity: Capacity::Bytes(share * n as u64),
    };
    let s = replay(t, &cfg, &bytes).unwrap();
    let expect_caps: Vec<u64> = sizes.iter().map(|&b| share / b).collect();
    assert_eq!(s.capacities, expect_caps);
    assert_eq!(s.capacities[n - 1], 8);
    for (c, &b) in s.per_layer.iter().zip(&sizes) {
        assert_eq!(c.bytes_read, c.misses * b);
    }
    // A global cache in bytes needs one size.
    let cfg = CacheConfig {
        partition: Partition::Global,
        ..cfg
    };
    let err = replay(t, &cfg, &bytes).unwrap_err().to_string();
    assert!(err.contains("one expert size for all layers"), "{err}");
    let uniform = ExpertBytes::uniform(n, 1000).unwrap();
    let by_bytes = replay(
        t,
        &CacheConfig {
            capacity: Capacity::Bytes(416_999),
            ..cfg.clone()
        },
        &uniform,
    )
    .unwrap();
    let by_count = run(t, &Policy::Lru, Partition::Global, Capacity::Experts(416));
    assert_eq!(by_bytes.capacities, [416]);
    assert_eq!(by_bytes.per_layer, by_count.per_layer);
}

#[test]
fn bad_configurations_are_rejected_with_the_fix() {
    let t = deepseek();
    let n = t.model().n_layers();
    let err =
        |cfg: CacheConfig, bytes: ExpertBytes| replay(t, &cfg, &bytes).unwrap_err().to_string();
    let pinned = |hot: Vec<(usize, u16)>, cap: u64| CacheConfig {
        policy: Policy::PinnedLru(HotSet(hot)),
        partition: Partition::PerLayer,
        capacity: Capacity::Experts(cap),
    };
    let uniform = ExpertBytes::uniform(n, 1).unwrap();
    let e = err(pinned(vec![(26, 0)], 260), uniform.clone());
    assert!(
        e.contains("layer position 26") && e.contains("26 MoE layers"),
        "{e}"
    );
    let e = err(pinned(vec![(0, 64)], 260), uniform.clone());
    assert!(e.contains("expert 64"), "{e}");
    let e = err(pinned(vec![(3, 0), (3, 1)], 26), uniform.clone());
    assert!(e.contains("partition 3") && e.contains("pin fewer"), "{e}");
    let e = err(pinned(vec![], 26), ExpertBytes::uniform(3, 1).unwrap());
    assert!(
        e.contains("3 expert sizes") && e.contains("26 MoE layers"),
        "{e}"
    );
    let e = ExpertBytes::per_layer_sizes(vec![5, 0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer position 1 is 0 bytes"), "{e}");
}
