//! The event-driven decode engine on hand-computable scenarios: exact step times for a miss,
//! queue-depth sharing, the base-latency floor, prefetch hiding a read (dense depth, oracle and
//! co-activation), and the host->GPU link. Every machine moves 1 byte per nanosecond unless a
//! test says otherwise, so times in nanoseconds are byte counts.

use hw::{ReadPoint, StorageProfile};
use metrics::TokenLayerRecord;
use model::Group;
use place::cost::{CostModel, Device, IoPlan};
use place::units::{ExpertLayer, Unit};
use place::{Tier, Units};
use plan::ExpertPlacement;
use policy::cache::{Partition, Policy};
use sim::decode::{self, DecodePolicy, DecodeRun, ExpertPrefetch, Machine, Options, Placement};
use sim::events::StorageDevice;
use traces::{ModelFacts, TokenExtras, Trace, TraceBuilder};

/// Storage whose bandwidth is `gbps[n - 1]` at queue depth n, whatever the block size.
fn storage(gbps: &[f64], latency_ns: u64) -> StorageProfile {
    StorageProfile {
        copy_gbps: None,
        seq_read_gbps: gbps[0],
        read_4k_qd1_latency_s: latency_ns as f64 * 1e-9,
        read_curve: gbps
            .iter()
            .enumerate()
            .map(|(i, &g)| ReadPoint {
                block_bytes: 1,
                queue_depth: i as u32 + 1,
                gbps: g,
            })
            .collect(),
    }
}

/// CPU only (or with a GPU 10x faster), 1 byte/ns memory, compute never the bound.
fn cost(gpu: bool) -> CostModel {
    CostModel {
        gpu: gpu.then_some(Device {
            flops_per_s: 1e15,
            bytes_per_s: 1e10,
        }),
        cpu: Device {
            flops_per_s: 1e15,
            bytes_per_s: 1e9,
        },
        stream_on_gpu: false,
        io: IoPlan {
            queue_depth: 1,
            threads: 1,
            dense_block_bytes: 100_000,
            dense_gbps: 1.0,
            expert_block_bytes: 50_000,
            expert_queue_depth: 1,
            expert_gbps: 1.0,
            row_bytes: 4096,
            row_gbps: 1.0,
        },
        tensor_overhead_s: 0.0,
        batch_tensor_overhead_s: None,
        host_layer_overhead_s: 0.0,
        layer_tensors: Vec::new(),
        global_tensors: 0,
    }
}

fn attention(layer: u32) -> Unit {
    Unit {
        name: format!("blk.{layer}.attention"),
        layer: Some(layer),
        group: Group::Attention,
        bytes: 100_000,
        read_bytes: 100_000.0,
        flops: 0.0,
        largest_tensor: 100_000,
        streamable: true,
        tensors: vec![format!("blk.{layer}.attn_q.weight")],
        spans: None,
    }
}

/// Two layers of 100 kB attention; both have 4 routed experts of `expert` bytes (read as
/// requests of `slice` bytes), top-1.
fn units(expert: u64, slice: u64) -> Units {
    Units {
        units: vec![attention(0), attention(1)],
        experts: (0..2)
            .map(|layer| ExpertLayer {
                layer,
                expert_bytes: expert,
                expert_flops: 0.0,
                slice_bytes: slice,
                rates: vec![0.25; 4],
                order: vec![0, 1, 2, 3],
                cum: vec![0.0, 0.25, 0.5, 0.75, 1.0],
                tensors: vec![format!("blk.{layer}.ffn_up_exps.weight")],
                slices: None,
            })
            .collect(),
        n_layer: 2,
        top_k: 1,
    }
}

/// Experts 0 and 1 in RAM, 2 and 3 on NVMe, in both layers.
fn experts() -> Vec<ExpertPlacement> {
    (0..2)
        .map(|layer| ExpertPlacement {
            layer,
            tensors: vec![],
            expert_bytes: 0,
            gpu: vec![],
            ram: vec![0, 1],
            nvme: vec![2, 3],
        })
        .collect()
}

/// Tokens routing (layer 0, layer 1) as given.
fn trace(tokens: &[[u16; 2]]) -> Trace {
    let model = ModelFacts {
        architecture: "tiny".into(),
        moe_layers: vec![0, 1],
        n_expert: 4,
        top_k: 1,
        n_shared_expert: 0,
    };
    let mut b = TraceBuilder::new(model).unwrap();
    b.begin_sequence("s").unwrap();
    for t in tokens {
        b.push_token(t, TokenExtras::default()).unwrap();
    }
    b.end_sequence().unwrap();
    b.finish().unwrap()
}

struct Case {
    units: Units,
    tiers: Vec<Tier>,
    cost: CostModel,
    machine: Machine,
    opts: Options,
}

impl Case {
    fn new(expert: u64, slice: u64, storage: StorageProfile) -> Case {
        Case {
            units: units(expert, slice),
            tiers: vec![Tier::Ram, Tier::Ram],
            cost: cost(false),
            machine: Machine {
                storage,
                h2d_bytes_per_s: None,
                unified: false,
            },
            opts: Options {
                prefetch_depth: 0,
                expert_prefetch: ExpertPrefetch::None,
                queue_depth: Some(1),
                host_weights_on_gpu: false,
                keep_records: true,
            },
        }
    }

    fn run(&self, trace: &Trace) -> DecodeRun {
        self.run_with(trace, &DecodePolicy::Static)
    }

    fn run_with(&self, trace: &Trace, policy: &DecodePolicy) -> DecodeRun {
        let experts = experts();
        let placement = Placement {
            units: &self.units,
            unit_tiers: &self.tiers,
            experts: &experts,
            cost: &self.cost,
            dense_pool_bytes: None,
        };
        decode::simulate(&placement, &self.machine, trace, policy, &self.opts).unwrap()
    }
}

fn ns(s: f64) -> u64 {
    (s * 1e9).round() as u64
}

/// (start, wall, io wait) of a record, in nanoseconds.
fn times(r: &TokenLayerRecord) -> (u64, u64, u64) {
    (ns(r.start_s), ns(r.wall_s), ns(r.io_wait_s))
}

#[test]
fn two_layers_one_expert_miss() {
    // Layer 0 hits expert 0 (RAM); layer 1 misses expert 2 (NVMe, 50 kB in one request).
    let case = Case::new(50_000, 50_000, storage(&[1.0], 20_000));
    let run = case.run(&trace(&[[0, 2]]));
    let r = &run.records;
    assert_eq!(r.len(), 3, "globals + 2 layers");
    assert_eq!((r[0].layer, times(&r[0])), (None, (0, 0, 0)));
    // Layer 0: attention 0..100_000, expert 0 computed from RAM to 150_000.
    assert_eq!((r[1].layer, times(&r[1])), (Some(0), (0, 150_000, 0)));
    assert_eq!((r[1].expert_hits, r[1].expert_accesses), (1, 1));
    // Layer 1: attention 150_000..250_000; the read (50 us > the 20 us floor) lands at
    // 300_000; the expert computes to 350_000.
    assert_eq!(
        (r[2].layer, times(&r[2])),
        (Some(1), (150_000, 200_000, 50_000))
    );
    assert_eq!((r[2].expert_hits, r[2].bytes_read), (0, 50_000));
    assert_eq!(ns(r[2].compute_s), 150_000);
    assert_eq!(ns(r[2].storage_busy_s), 50_000);
    assert_eq!(ns(run.report.token_s_mean), 350_000);
    assert!((run.report.hit_rate - 0.5).abs() < 1e-12);
    assert!((run.report.storage_utilisation - 50.0 / 350.0).abs() < 1e-12);
}

#[test]
fn queue_depth_shares_bandwidth() {
    // One miss of 1.5 MB in three 500 kB requests; the device gives 1 GB/s at depth 1 and
    // 1.5 GB/s at depth 2.
    let miss = |qd| {
        let mut case = Case::new(1_500_000, 500_000, storage(&[1.0, 1.5], 0));
        case.opts.queue_depth = Some(qd);
        ns(case.run(&trace(&[[0, 2]])).records[2].io_wait_s)
    };
    // Depth 1: one after another, 3 x 500 us.
    assert_eq!(miss(1), 1_500_000);
    // Depth 2: two share 1.5 GB/s (0.75 bytes/ns each) and end at 666_667 (rounded up to the
    // nanosecond); the third then runs alone at 1 byte/ns: 500_000 more.
    assert_eq!(miss(2), 666_667 + 500_000);
}

#[test]
fn base_latency_is_a_floor() {
    // A 4 kB request transfers in 4_096 ns but cannot complete before the 20 us latency.
    let case = Case::new(4_096, 4_096, storage(&[1.0], 20_000));
    let r = case.run(&trace(&[[0, 2]]));
    assert_eq!(ns(r.records[2].io_wait_s), 20_000);
    // Without the floor it is the transfer.
    let case = Case::new(4_096, 4_096, storage(&[1.0], 0));
    assert_eq!(ns(case.run(&trace(&[[0, 2]])).records[2].io_wait_s), 4_096);
}

#[test]
fn storage_device_orders_completions_and_queues_beyond_depth() {
    let s = storage(&[1.0, 2.0], 0);
    let mut dev = StorageDevice::new(&s, 2, 0, &[1_000, 3_000]).unwrap();
    let mut done = Vec::new();
    let mut cb = |t, tag| done.push((t, tag));
    dev.issue(0, 7, 1, &mut cb); // 3000 bytes
    dev.issue(0, 8, 0, &mut cb); // 1000 bytes
    dev.issue(0, 9, 0, &mut cb); // waits: depth 2
    dev.advance_to(10_000, &mut cb);
    // Two in flight share 2 GB/s (1 byte/ns each): tag 8 ends at 1000 and tag 9 takes its
    // slot; tag 7 (2000 left) and tag 9 share again: tag 9 ends at 2000; tag 7 alone gets the
    // depth-1 bandwidth, 1 byte/ns, for its last 1000 bytes: 3000.
    assert_eq!(done, [(1_000, 8), (2_000, 9), (3_000, 7)]);
    assert_eq!(dev.busy_ns(), 3_000);
    assert!((dev.delivered_bytes() - 5_000.0).abs() < 1e-6);
    assert_eq!(dev.pending(), 0);
}

#[test]
fn a_copy_holds_the_slot_after_the_transfer_without_bandwidth() {
    // Copies run at 0.5 byte/ns: 1000 bytes take 2000 ns after their transfer.
    let s = StorageProfile {
        copy_gbps: Some(0.5),
        ..storage(&[1.0, 2.0], 0)
    };
    let mut dev = StorageDevice::new(&s, 2, 0, &[1_000, 3_000]).unwrap();
    let mut done = Vec::new();
    let mut cb = |t, tag| done.push((t, tag));
    dev.issue(0, 7, 1, &mut cb); // 3000 bytes, copy 6000 ns
    dev.issue(0, 8, 0, &mut cb); // 1000 bytes, copy 2000 ns
    dev.issue(0, 9, 0, &mut cb); // waits: depth 2
    dev.advance_to(20_000, &mut cb);
    // Tags 7 and 8 share 2 GB/s: tag 8's transfer ends at 1000, its copy holds the slot to
    // 3000 while tag 7 transfers alone at 1 byte/ns (2000 left at 1000: ends at 3000). At 3000
    // tag 8 completes, tag 9 starts alone (1000 ns) and ends its transfer at 4000, copy to
    // 6000; tag 7 copies from 3000 to 9000.
    assert_eq!(done, [(3_000, 8), (6_000, 9), (9_000, 7)]);
    // Busy (a request in service, copying included) from 0 to 9000.
    assert_eq!(dev.busy_ns(), 9_000);
    assert!((dev.delivered_bytes() - 5_000.0).abs() < 1e-6);
    // Steady state of the same profile: 1 / (1 / 2 + 1 / (2 * 0.5)) GB/s at depth 2.
    assert!((s.streamed_gbps(1_000, 2) - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(storage(&[1.0, 2.0], 0).streamed_gbps(1_000, 2), 2.0);
}

#[test]
fn bad_storage_is_refused() {
    let e = StorageDevice::new(&storage(&[1.0], 0), 0, 0, &[1]).unwrap_err();
    assert!(e.to_string().contains("queue depth"), "{e}");
    let e = StorageDevice::new(&storage(&[0.0], 0), 1, 0, &[4096]).unwrap_err();
    assert!(e.to_string().contains("positive, finite"), "{e}");
}

#[test]
fn oracle_prefetch_hides_the_next_layers_read() {
    // Layer 1's miss (50 kB) is read while layer 0's expert computes (100_000..150_000).
    let mut case = Case::new(50_000, 50_000, storage(&[1.0], 0));
    let t = trace(&[[0, 2]]);
    let none = case.run(&t);
    case.opts.expert_prefetch = ExpertPrefetch::Oracle;
    let oracle = case.run(&t);
    assert_eq!(ns(none.report.token_s_mean), 350_000);
    assert_eq!(ns(oracle.report.token_s_mean), 300_000);
    let r = &oracle.records[2];
    assert_eq!((r.io_wait_s, r.prefetch_hits, r.expert_hits), (0.0, 1, 1));
    assert_eq!(r.bytes_read, 50_000);
    // The cache's own hit rate does not count the prefetch.
    assert!((oracle.report.hit_rate - 0.5).abs() < 1e-12);
    assert!((oracle.report.prefetch_hit_rate - 0.5).abs() < 1e-12);
}

#[test]
fn coactivation_learns_online_and_never_peeks() {
    let mut case = Case::new(50_000, 50_000, storage(&[1.0], 0));
    case.opts.expert_prefetch = ExpertPrefetch::Coactivation;
    // Token 0: nothing learnt yet, so nothing is prefetched; token 1 routes the same way and
    // the counts from token 0 predict expert 2 after expert 0.
    let run = case.run(&trace(&[[0, 2], [0, 2]]));
    let layer1: Vec<_> = run.records.iter().filter(|r| r.layer == Some(1)).collect();
    assert_eq!(
        (layer1[0].prefetch_hits, ns(layer1[0].io_wait_s)),
        (0, 50_000)
    );
    assert_eq!((layer1[1].prefetch_hits, ns(layer1[1].io_wait_s)), (1, 0));
    // A wrong prediction is read and wasted: token 2 goes 0 -> 3 after two tokens of 0 -> 2.
    let run = case.run(&trace(&[[0, 2], [0, 2], [0, 3]]));
    assert_eq!(run.report.prefetch_wasted_bytes_per_token * 3.0, 50_000.0);
    // The step that drops it counts its bytes with its own demand read, as the runtime does.
    let last = run.records.last().unwrap();
    assert_eq!((last.prefetch_hits, last.bytes_read), (0, 100_000));
    assert_eq!(run.report.bytes_read_per_token * 3.0, 4.0 * 50_000.0);
}

/// One LRU cache of two experts' bytes over both layers.
fn lru_of_two() -> DecodePolicy {
    DecodePolicy::Cache {
        policy: Policy::Lru,
        capacity_bytes: 100_000,
        partition: Partition::Global,
    }
}

#[test]
fn coactivation_does_not_read_what_a_dynamic_cache_holds() {
    let mut case = Case::new(50_000, 50_000, storage(&[1.0], 0));
    case.opts.expert_prefetch = ExpertPrefetch::Coactivation;
    // An LRU cache of two streamed experts. Token 0 reads expert 2 of both layers (both
    // cached) and teaches 2 -> 2. Token 1 hits layer 0's expert 2; the prediction for layer 1,
    // expert 2, is cached, so nothing is prefetched (the runtime sees its slices loaded); layer
    // 1 then routes to expert 3, a demand read that evicts layer 1's expert 2.
    let run = case.run_with(&trace(&[[2, 2], [2, 3]]), &lru_of_two());
    assert_eq!(run.report.prefetch_wasted_bytes_per_token, 0.0);
    assert_eq!(run.report.bytes_read_per_token * 2.0, 3.0 * 50_000.0);
    let hits: Vec<u32> = run.records.iter().map(|r| r.expert_hits).collect();
    assert_eq!(hits.iter().sum::<u32>(), 1, "{hits:?}");
}

#[test]
fn coactivation_reads_a_ram_tier_expert_that_a_dynamic_cache_evicted() {
    let mut case = Case::new(50_000, 50_000, storage(&[1.0], 0));
    case.opts.expert_prefetch = ExpertPrefetch::Coactivation;
    // LRU manages every expert (the plan's RAM tier, experts 0 and 1, is not kept), two slots.
    // Token 0 reads 0 and 1 and teaches 0 -> 1; token 1 reads 2 and 3, evicting both; token 2
    // routes layer 0 to 0 (a read, evicting layer 0's expert 2), which predicts layer 1's
    // expert 1: in the RAM tier but not cached, so it is read, as the runtime reads it; layer 1
    // then hits expert 3 and the prefetch is wasted.
    let run = case.run_with(&trace(&[[0, 1], [2, 3], [0, 3]]), &lru_of_two());
    assert_eq!(run.report.prefetch_wasted_bytes_per_token * 3.0, 50_000.0);
    assert_eq!(run.report.bytes_read_per_token * 3.0, 6.0 * 50_000.0);
    let hits: Vec<u32> = run.records.iter().map(|r| r.expert_hits).collect();
    assert_eq!(hits.iter().sum::<u32>(), 1, "{hits:?}");
}

#[test]
fn dense_prefetch_depth_overlaps_streamed_weights() {
    // Both attention units on NVMe (100 kB each), experts all hits; storage depth 1.
    let mut case = Case::new(50_000, 50_000, storage(&[1.0], 0));
    case.tiers = vec![Tier::Nvme, Tier::Nvme];
    let t = trace(&[[0, 1]]);
    // Depth 0: each layer reads (100 us), then computes attention (100) and its expert (50).
    assert_eq!(ns(case.run(&t).report.token_s_mean), 500_000);
    // Depth 1: both reads are issued at time 0 (when the globals and then layer 0 start) and
    // run back to back; layer 0 waits for the first (100_000), computes to 250_000, by which
    // time layer 1's read (done at 200_000) is in: 250_000 + 150_000.
    case.opts.prefetch_depth = 1;
    let run = case.run(&t);
    assert_eq!(ns(run.report.token_s_mean), 400_000);
    assert_eq!(ns(run.records[2].io_wait_s), 0);
    assert_eq!(
        run.records[1].bytes_read + run.records[2].bytes_read,
        200_000
    );
}

#[test]
fn host_weights_cross_the_link_to_a_discrete_gpu() {
    // GPU at 10 bytes/ns; host link at 0.5 bytes/ns. Attention (RAM) is copied (200 us) then
    // computed on the GPU (10 us); the RAM expert likewise (100 + 5); the missed expert is read
    // (50), copied (100) and computed (5).
    let mut case = Case::new(50_000, 50_000, storage(&[1.0], 0));
    case.cost = cost(true);
    case.machine.h2d_bytes_per_s = Some(0.5e9);
    case.opts.host_weights_on_gpu = true;
    let run = case.run(&trace(&[[0, 2]]));
    let r = &run.records;
    assert_eq!(ns(r[1].wall_s), 200_000 + 10_000 + 100_000 + 5_000);
    assert_eq!((ns(r[1].link_s), r[1].bytes_linked), (300_000, 150_000));
    assert_eq!(ns(r[2].wall_s), 200_000 + 10_000 + 50_000 + 100_000 + 5_000);
    assert_eq!(ns(r[2].io_wait_s), 50_000);
    assert_eq!(ns(run.report.link_s_per_token), 600_000);
    // Off (the cost model's choice for decode): the CPU computes host weights, nothing crosses.
    case.opts.host_weights_on_gpu = false;
    let run = case.run(&trace(&[[0, 2]]));
    assert_eq!(run.report.link_s_per_token, 0.0);
    assert_eq!(ns(run.report.token_s_mean), 350_000);
}

#[test]
fn a_gpu_plan_pays_a_fixed_cost_per_layer_whose_weights_the_cpu_computes() {
    // GPU at 10 bytes/ns computes attention (100 kB: 10 us); the CPU computes the RAM expert
    // (50 kB: 50 us); the layer leaves the GPU for it and comes back: 30 us more.
    let mut case = Case::new(50_000, 50_000, storage(&[1.0], 0));
    case.cost = CostModel {
        host_layer_overhead_s: 30e-6,
        ..cost(true)
    };
    case.tiers = vec![Tier::Gpu, Tier::Gpu];
    let run = case.run(&trace(&[[0, 1]]));
    let walls: Vec<u64> = run.records.iter().map(|r| ns(r.wall_s)).collect();
    assert_eq!(walls, [0, 90_000, 90_000]);
    // Host weights sent over the link to the GPU (0.5 bytes/ns): nothing runs on the CPU.
    case.machine.h2d_bytes_per_s = Some(0.5e9);
    case.opts.host_weights_on_gpu = true;
    let run = case.run(&trace(&[[0, 1]]));
    let walls: Vec<u64> = run.records.iter().map(|r| ns(r.wall_s)).collect();
    assert_eq!(walls, [0, 115_000, 115_000]);
    // Without a GPU the CPU runs the whole graph: no round trip to pay.
    let mut cpu = Case::new(50_000, 50_000, storage(&[1.0], 0));
    cpu.cost.host_layer_overhead_s = 30e-6;
    let run = cpu.run(&trace(&[[0, 1]]));
    assert_eq!(ns(run.records[1].wall_s), 150_000);
}

#[test]
fn unified_memory_dma_takes_bus_bandwidth() {
    // Unified: dense prefetch of layer 1 (100 kB) lands during layer 0's compute, which is
    // purely memory bound (no slack): layer 0's attention phase grows by 100 kB at 1 byte/ns.
    let mut case = Case::new(50_000, 50_000, storage(&[1.0], 0));
    case.tiers = vec![Tier::Ram, Tier::Nvme];
    case.opts.prefetch_depth = 1;
    let t = trace(&[[0, 1]]);
    let discrete = case.run(&t);
    case.machine.unified = true;
    let unified = case.run(&t);
    assert_eq!(ns(discrete.records[1].wall_s), 150_000);
    assert_eq!(ns(unified.records[1].wall_s), 250_000);
    assert_eq!(ns(unified.records[1].compute_s), 250_000);
}

#[test]
fn runs_are_deterministic() {
    let mut case = Case::new(1_500_000, 500_000, storage(&[1.0, 1.5], 7_000));
    case.opts.expert_prefetch = ExpertPrefetch::Coactivation;
    case.opts.queue_depth = Some(2);
    let t = trace(&[[0, 2], [1, 3], [0, 2], [2, 3], [0, 2]]);
    let (a, b) = (case.run(&t), case.run(&t));
    assert_eq!(a.records, b.records);
    assert_eq!(a.report, b.report);
}

#[test]
fn queue_pops_by_time_then_push_order() {
    let mut q = sim::events::EventQueue::new();
    q.push(5, "c");
    q.push(1, "a");
    q.push(5, "d");
    q.push(3, "b");
    q.push(1, "a2");
    assert_eq!((q.len(), q.peek_time()), (5, Some(1)));
    let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
    assert_eq!(order, [(1, "a"), (1, "a2"), (3, "b"), (5, "c"), (5, "d")]);
    assert!(q.is_empty());
}
