//! Cache partitioning in the decode simulation: one cache over every streaming layer against
//! one per layer with an equal byte share, on a hand-computed two-layer case.

use sim::cache::{HotSet, Partition, Policy};
use sim::decode::{self, DecodePolicy, Machine, Options, Placement};
use solver::hw::{ReadPoint, StorageProfile};
use solver::place::cost::{CostModel, Device, IoPlan};
use solver::place::plan::ExpertPlacement;
use solver::place::units::ExpertLayer;
use solver::place::Units;
use traces::{ModelFacts, TokenExtras, Trace, TraceBuilder};

const MB: u64 = 1_000_000;

fn cost() -> CostModel {
    CostModel {
        gpu: None,
        cpu: Device {
            flops_per_s: 1e12,
            bytes_per_s: 1e9,
        },
        stream_on_gpu: false,
        io: IoPlan {
            queue_depth: 1,
            threads: 1,
            dense_block_bytes: MB,
            dense_gbps: 1.0,
            expert_block_bytes: MB,
            expert_queue_depth: 1,
            expert_gbps: 1.0,
            row_bytes: 4096,
            row_gbps: 1.0,
        },
    }
}

/// Two MoE layers of 4 experts of 1 MB, top-1, every expert on NVMe.
fn units() -> Units {
    let layer = |l: u32| ExpertLayer {
        layer: l,
        expert_bytes: MB,
        expert_flops: 2e6,
        slice_bytes: MB,
        rates: vec![0.25; 4],
        order: vec![0, 1, 2, 3],
        cum: vec![0.0, 0.25, 0.5, 0.75, 1.0],
        tensors: vec![format!("blk.{l}.ffn_up_exps.weight")],
    };
    Units {
        units: vec![],
        experts: vec![layer(0), layer(1)],
        n_layer: 2,
        top_k: 1,
    }
}

/// Layer 0 alternates experts 0 and 1, layer 1 always selects expert 2, for 8 tokens.
fn trace() -> Trace {
    let model = ModelFacts {
        architecture: "two-layers".into(),
        moe_layers: vec![0, 1],
        n_expert: 4,
        top_k: 1,
        n_shared_expert: 0,
    };
    let mut b = TraceBuilder::new(model).unwrap();
    b.begin_sequence("s").unwrap();
    for t in 0..8u16 {
        b.push_token(&[t % 2, 2], TokenExtras::default()).unwrap();
    }
    b.end_sequence().unwrap();
    b.finish().unwrap()
}

fn machine() -> Machine {
    Machine {
        storage: StorageProfile {
            seq_read_gbps: 1.0,
            read_4k_qd1_latency_s: 0.0,
            read_curve: vec![ReadPoint {
                block_bytes: 1,
                queue_depth: 1,
                gbps: 1.0,
            }],
        },
        h2d_bytes_per_s: None,
        unified: false,
    }
}

/// Simulates [`trace`] with layer `l`'s experts `ram[l]` in RAM and the rest on NVMe; returns
/// each MoE layer's hits and the policy name the metrics carry.
fn simulate(
    ram: [&[u32]; 2],
    policy: Policy,
    partition: Partition,
    capacity_bytes: u64,
) -> Result<(Vec<u64>, String), sim::SimError> {
    let (units, cost) = (units(), cost());
    let experts: Vec<ExpertPlacement> = (0..2)
        .map(|l| ExpertPlacement {
            layer: l as u32,
            tensors: vec![],
            expert_bytes: MB,
            gpu: vec![],
            ram: ram[l].to_vec(),
            nvme: (0..4).filter(|e| !ram[l].contains(e)).collect(),
        })
        .collect();
    let placement = Placement {
        units: &units,
        unit_tiers: &[],
        experts: &experts,
        cost: &cost,
    };
    let policy = DecodePolicy::Cache {
        policy,
        capacity_bytes,
        partition,
    };
    let run = decode::simulate(
        &placement,
        &machine(),
        &trace(),
        &policy,
        &Options::default(),
    )?;
    let hits = run.report.layers.iter().map(|l| l.hits).collect();
    Ok((hits, run.summary.run.policy))
}

fn hits(policy: Policy, partition: Partition, capacity_bytes: u64) -> (Vec<u64>, String) {
    simulate([&[], &[]], policy, partition, capacity_bytes).unwrap()
}

/// 3 MB global: experts 0, 1 (layer 0) and 2 (layer 1) all fit, so only the first use of each
/// misses. 3 MB per layer is 1.5 MB each, one expert: LRU misses layer 0 at every token, layer
/// 1 only at the first; Belady keeps one of layer 0's two alternating experts, hitting it at
/// every other token after the first two.
#[test]
fn global_and_per_layer_lru_and_belady_by_hand() {
    let (global, name) = hits(Policy::Lru, Partition::Global, 3 * MB);
    assert_eq!((global, name.as_str()), (vec![6, 7], "lru"));
    let (per_layer, name) = hits(Policy::Lru, Partition::PerLayer, 3 * MB);
    assert_eq!((per_layer, name.as_str()), (vec![0, 7], "lru/per-layer"));
    let (belady, _) = hits(Policy::Belady, Partition::PerLayer, 3 * MB);
    assert_eq!(belady, vec![3, 7]);
    // Enough for every expert either way: the partitions agree.
    assert_eq!(
        hits(Policy::Lru, Partition::PerLayer, 4 * MB).0,
        hits(Policy::Lru, Partition::Global, 4 * MB).0
    );
}

/// Pinned-LRU per layer pins each layer's resident experts in that layer's share; a share too
/// small for them is refused.
#[test]
fn per_layer_pinned_lru_needs_room_for_each_layers_hot_set() {
    let pinned = || Policy::PinnedLru(HotSet(Vec::new()));
    // 4 MB: 2 MB per layer. Layer 0's two RAM experts are pinned and fill its share (they hit
    // after their first use); layer 1's expert 2 is cached by LRU.
    let (hits, _) = simulate([&[0, 1], &[]], pinned(), Partition::PerLayer, 4 * MB).unwrap();
    assert_eq!(hits, vec![6, 7]);
    // 2 MB: 1 MB per layer, too small for layer 0's two pinned experts.
    let err = simulate([&[0, 1], &[]], pinned(), Partition::PerLayer, 2 * MB)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("MoE layer 0 pins its 2 resident experts") && err.contains("4000000 bytes"),
        "{err}"
    );
}
