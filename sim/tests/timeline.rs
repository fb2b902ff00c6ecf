//! The event core on hand-computable scenarios: exact completion times, FIFO storage, tie order.

use sim::events::{simulate, EventQueue, Step, StepRecord, Storage};

const STORAGE: Storage = Storage {
    bandwidth_bytes_per_s: 1e9, // 1 byte per ns
    latency_ns: 20_000,
};

#[test]
fn two_layers_one_expert_miss() {
    // Layer 0: all experts hit. Layer 1: one 1 MB expert misses.
    let steps = [
        Step {
            attention_ns: 100,
            experts_ns: 50,
            reads: vec![],
        },
        Step {
            attention_ns: 100,
            experts_ns: 50,
            reads: vec![1_000_000],
        },
    ];
    let t = simulate(&steps, STORAGE).unwrap();
    // Layer 0: attention 0..100, experts 100..150.
    // Layer 1: attention 150..250, read 250 + 20 us latency + 1 ms = 1_020_250, experts to 1_020_300.
    assert_eq!(
        t.steps,
        [
            StepRecord {
                start: 0,
                routed: 100,
                loaded: 100,
                end: 150,
                bytes_read: 0
            },
            StepRecord {
                start: 150,
                routed: 250,
                loaded: 1_020_250,
                end: 1_020_300,
                bytes_read: 1_000_000
            },
        ]
    );
    assert_eq!(t.end_ns(), 1_020_300);
    assert_eq!(t.io_wait_ns(), 1_020_000);
}

#[test]
fn reads_of_one_step_share_the_channel_in_order() {
    // Two 500 kB reads: the second starts when the first ends.
    let steps = [Step {
        attention_ns: 10,
        experts_ns: 5,
        reads: vec![500_000, 500_000],
    }];
    let t = simulate(&steps, STORAGE).unwrap();
    assert_eq!(t.steps[0].loaded, 10 + 2 * (20_000 + 500_000));
    assert_eq!(t.end_ns(), 1_040_015);
    assert_eq!(t.steps[0].bytes_read, 1_000_000);
}

#[test]
fn transfer_times_round_up_to_whole_nanoseconds() {
    let s = Storage {
        bandwidth_bytes_per_s: 3e9,
        latency_ns: 0,
    };
    assert_eq!(s.read_ns(1), 1);
    assert_eq!(s.read_ns(3), 1);
    assert_eq!(s.read_ns(4), 2);
}

#[test]
fn no_steps_is_an_empty_timeline() {
    let t = simulate(&[], STORAGE).unwrap();
    assert!(t.steps.is_empty());
    assert_eq!(t.end_ns(), 0);
}

#[test]
fn bad_bandwidth_is_rejected() {
    for bw in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = simulate(
            &[],
            Storage {
                bandwidth_bytes_per_s: bw,
                latency_ns: 0,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("positive, finite bandwidth"), "{e}");
    }
}

#[test]
fn queue_pops_by_time_then_push_order() {
    let mut q = EventQueue::new();
    q.push(5, "c");
    q.push(1, "a");
    q.push(5, "d");
    q.push(3, "b");
    q.push(1, "a2");
    assert_eq!(q.len(), 5);
    let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
    assert_eq!(order, [(1, "a"), (1, "a2"), (3, "b"), (5, "c"), (5, "d")]);
    assert!(q.is_empty());
}
