//! Decode simulation: a hand-computed two-token case, Belady never below LRU, global against
//! per-layer cache partitions by hand, and agreement with
//! the solver's prediction where the engine and the analytic model coincide.

use hw::{HwProfile, ReadPoint, StorageProfile};
use model::Group;
use place::cost::LayerLoad;
use place::cost::{CostModel, Device, IoPlan};
use place::units::{ExpertLayer, Unit};
use place::{SolveOptions, Tier, Units};
use plan::ExpertPlacement;
use policy::cache::{HotSet, Partition, Policy};
use sim::decode::{self, DecodePolicy, DecodeReport, ExpertPrefetch, Machine, Options, Placement};
use traces::synth::{LayerParams, SynthParams};
use traces::{ModelFacts, TokenExtras, Trace, TraceBuilder};

const MB: u64 = 1_000_000;

/// CPU only, 1 GB/s memory, 1 TFLOP/s (so every layer is bandwidth bound), experts read at
/// 0.5 GB/s.
fn tiny_cost() -> CostModel {
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
            expert_gbps: 0.5,
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

/// One layer: 1 MB of attention (resident) and 4 experts of 1 MB, top-2.
fn tiny_units() -> Units {
    Units {
        units: vec![Unit {
            name: "blk.0.attention".into(),
            layer: Some(0),
            group: Group::Attention,
            bytes: MB,
            read_bytes: MB as f64,
            flops: 2e6,
            largest_tensor: MB,
            streamable: true,
            tensors: vec!["blk.0.attn_q.weight".into()],
            spans: None,
        }],
        experts: vec![ExpertLayer {
            layer: 0,
            expert_bytes: MB,
            expert_flops: 2e6,
            slice_bytes: MB / 3,
            rates: vec![0.5; 4],
            order: vec![0, 1, 2, 3],
            cum: vec![0.0, 0.5, 1.0, 1.5, 2.0],
            tensors: vec!["blk.0.ffn_up_exps.weight".into()],
            slices: None,
        }],
        n_layer: 1,
        top_k: 2,
    }
}

fn trace_of(model: ModelFacts, tokens: &[&[u16]]) -> Trace {
    let mut b = TraceBuilder::new(model).unwrap();
    b.begin_sequence("s").unwrap();
    for t in tokens {
        b.push_token(t, TokenExtras::default()).unwrap();
    }
    b.end_sequence().unwrap();
    b.finish().unwrap()
}

fn tiny_trace() -> Trace {
    let model = ModelFacts {
        architecture: "tiny".into(),
        moe_layers: vec![0],
        n_expert: 4,
        top_k: 2,
        n_shared_expert: 0,
    };
    // Token 0: expert 0 (in RAM) and 2 (on NVMe); token 1: experts 0 and 1, both in RAM.
    trace_of(model, &[&[0, 2], &[0, 1]])
}

/// Storage at `gbps` for every block size and queue depth, no latency floor.
fn flat_storage(gbps: f64) -> StorageProfile {
    StorageProfile {
        copy_gbps: None,
        seq_read_gbps: gbps,
        read_4k_qd1_latency_s: 0.0,
        read_curve: vec![ReadPoint {
            block_bytes: 1,
            queue_depth: 1,
            gbps,
        }],
    }
}

fn tiny_machine() -> Machine {
    Machine {
        storage: flat_storage(0.5),
        h2d_bytes_per_s: None,
        unified: false,
    }
}

fn run(p: &Placement<'_>, m: &Machine, t: &Trace, policy: &DecodePolicy) -> DecodeReport {
    decode::simulate(p, m, t, policy, &Options::default())
        .unwrap()
        .report
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1e-9)
}

#[test]
fn hand_computed_two_tokens() {
    let (units, cost) = (tiny_units(), tiny_cost());
    let experts = vec![ExpertPlacement {
        layer: 0,
        tensors: vec![],
        expert_bytes: MB,
        gpu: vec![],
        ram: vec![0, 1],
        nvme: vec![2, 3],
    }];
    let placement = Placement {
        units: &units,
        unit_tiers: &[Tier::Ram],
        experts: &experts,
        cost: &cost,
        dense_pool_bytes: None,
    };
    let trace = tiny_trace();

    // Static: token 0 computes 3 MB at 1 GB/s (attention, expert 0, streamed expert 2) = 3 ms
    // and then waits for expert 2's read, 1 MB at 0.5 GB/s = 2 ms: 5 ms. Token 1 computes
    // 3 MB from RAM: 3 ms.
    let m = tiny_machine();
    let r = run(&placement, &m, &trace, &DecodePolicy::Static);
    assert_eq!(r.tokens, 2);
    assert!(close(r.token_s_mean, 4e-3), "{r:?}");
    assert!(close(r.tok_per_s, 250.0), "{r:?}");
    assert!(
        close(r.token_s_p50, 3e-3) && close(r.token_s_p99, 5e-3),
        "{r:?}"
    );
    assert!(close(r.compute_s_per_token, 3e-3), "{r:?}");
    assert!(close(r.io_wait_s_per_token, 1e-3), "{r:?}");
    assert!(close(r.hit_rate, 0.75));
    assert!(close(r.bytes_read_per_token, 0.5e6));
    assert_eq!((r.layers[0].hits, r.layers[0].accesses), (3, 4));
    assert_eq!(r.cache_bytes, 2 * MB);

    // LRU holding one expert: 0, 2, 0, 1 all miss. Each token computes 3 MB (3 ms) and reads
    // 2 MB at 0.5 GB/s (4 ms): 7 ms.
    let lru = DecodePolicy::Cache {
        policy: Policy::Lru,
        capacity_bytes: MB,
        partition: Partition::Global,
    };
    let r = run(&placement, &m, &trace, &lru);
    assert!(
        close(r.token_s_p50, 7e-3) && close(r.token_s_p99, 7e-3),
        "{r:?}"
    );
    assert_eq!(r.hit_rate, 0.0);
    assert!(close(r.bytes_read_per_token, 2e6));

    // Belady with two experts keeps 0 for token 1: one hit (token 1 reads only expert 1).
    let belady = DecodePolicy::Cache {
        policy: Policy::Belady,
        capacity_bytes: 2 * MB,
        partition: Partition::Global,
    };
    let r = run(&placement, &m, &trace, &belady);
    assert_eq!(r.layers[0].hits, 1);
    assert!(close(r.token_s_mean, (7e-3 + 5e-3) / 2.0), "{r:?}");
}

#[test]
fn mismatched_trace_is_refused() {
    let (units, cost) = (tiny_units(), tiny_cost());
    let experts = vec![ExpertPlacement {
        layer: 0,
        tensors: vec![],
        expert_bytes: MB,
        gpu: vec![],
        ram: vec![0, 1],
        nvme: vec![2, 3],
    }];
    let placement = Placement {
        units: &units,
        unit_tiers: &[Tier::Ram],
        experts: &experts,
        cost: &cost,
        dense_pool_bytes: None,
    };
    let model = ModelFacts {
        architecture: "tiny".into(),
        moe_layers: vec![0],
        n_expert: 4,
        top_k: 1,
        n_shared_expert: 0,
    };
    let e = decode::simulate(
        &placement,
        &tiny_machine(),
        &trace_of(model, &[&[0]]),
        &DecodePolicy::Static,
        &Options::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("top-1"), "{e}");
}

/// The M1 Max profile, with its read curve replaced by a flat 5.1 GB/s and no latency floor
/// when `flat`.
fn m1max(flat: bool) -> HwProfile {
    let mut hw = HwProfile::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../profiles/m1max.toml"
    ))
    .unwrap();
    if flat {
        hw.storage = flat_storage(5.1);
    }
    hw
}

/// Catalog Mixtral with a synthesized trace and a plan solved for it on `hw`.
fn mixtral(hw: &HwProfile) -> (place::Solved, Trace) {
    let inv = model::load_model("mixtral-8x7b:q5_k_m").unwrap();
    let units = Units::build(&inv, None).unwrap();
    let model = ModelFacts {
        architecture: inv.arch.arch.clone(),
        moe_layers: units.experts.iter().map(|e| e.layer).collect(),
        n_expert: units.experts[0].n_expert(),
        top_k: units.top_k,
        n_shared_expert: 0,
    };
    let layer = LayerParams {
        skew: 0.8,
        reuse: 0.3,
        affinity: 0.5,
        drift: 0.5,
    };
    let trace =
        traces::synth::synthesize(&SynthParams::uniform(model, vec![128; 4], layer), 7).unwrap();
    let opts = SolveOptions {
        rates: Some(decode::expert_rates(&trace)),
        ..SolveOptions::default()
    };
    (place::solve(&inv, hw, &opts).unwrap(), trace)
}

/// The solver's `layer_time` summed over the trace with each token's actual expert use, for
/// the plan's static cache: what the analytic model predicts token by token.
fn analytic_token_s(solved: &place::Solved, trace: &Trace) -> f64 {
    let cost = &solved.cost;
    let mut base: std::collections::BTreeMap<Option<u32>, LayerLoad> = Default::default();
    for (u, &tier) in solved.units.units.iter().zip(&solved.assignment.units) {
        let load = base.entry(u.layer).or_default();
        let w = if cost.on_gpu(tier) {
            &mut load.gpu
        } else {
            &mut load.cpu
        };
        w.flops += u.flops;
        w.bytes += u.read_bytes;
        if tier == Tier::Nvme && u.row_reads() {
            load.nvme_row_bytes += u.read_bytes;
        } else if tier == Tier::Nvme {
            load.nvme_dense_bytes += u.read_bytes;
        }
    }
    let mut total = 0.0;
    for token in 0..trace.n_tokens() {
        for (l, load) in &base {
            let mut load = *load;
            if let Some(pos) = solved.plan.experts.iter().position(|e| Some(e.layer) == *l) {
                let (e, unit) = (&solved.plan.experts[pos], &solved.units.experts[pos]);
                for &id in trace.selection(token, pos) {
                    let tier = if e.gpu.contains(&u32::from(id)) {
                        Tier::Gpu
                    } else if e.ram.contains(&u32::from(id)) {
                        Tier::Ram
                    } else {
                        Tier::Nvme
                    };
                    let w = if cost.on_gpu(tier) {
                        &mut load.gpu
                    } else {
                        &mut load.cpu
                    };
                    w.flops += unit.expert_flops;
                    w.bytes += unit.expert_bytes as f64;
                    if tier == Tier::Nvme {
                        load.nvme_expert_bytes += unit.expert_bytes as f64;
                    }
                }
            }
            total += cost.layer_time(*l, &load).total_s;
        }
    }
    total / trace.n_tokens() as f64
}

/// The engine's mean token time equals the analytic one up to rounding each phase (two per
/// step) and each storage request to whole nanoseconds.
fn assert_rounding_only(solved: &place::Solved, trace: &Trace, r: &DecodeReport) {
    let analytic = analytic_token_s(solved, trace);
    let steps = f64::from(solved.units.n_layer + 1);
    let reads = r.bytes_read_per_token / solved.cost.io.expert_block_bytes as f64 + 1.0;
    let tolerance = (2.0 * steps + reads) * 1e-9;
    assert!(
        (r.token_s_mean - analytic).abs() <= tolerance,
        "engine {} s/token vs analytic {analytic} (tolerance {tolerance})",
        r.token_s_mean
    );
}

fn placement(solved: &place::Solved) -> Placement<'_> {
    Placement {
        units: &solved.units,
        unit_tiers: &solved.assignment.units,
        experts: &solved.plan.experts,
        cost: &solved.cost,
        dense_pool_bytes: None,
    }
}

/// Simulates `solved`'s static cache on `hw` and checks it against the solver: the mean token
/// time up to rounding, and tok/s within `rel` (relative) of the prediction.
fn static_matches_solver(
    hw: &HwProfile,
    solved: &place::Solved,
    trace: &Trace,
    rel: f64,
) -> DecodeReport {
    let r = decode::simulate(
        &placement(solved),
        &Machine::from_profile(hw),
        trace,
        &DecodePolicy::Static,
        &Options::default(),
    )
    .unwrap()
    .report;
    assert_rounding_only(solved, trace, &r);
    let predicted = solved.plan.prediction.tok_per_s;
    assert!(
        (r.tok_per_s - predicted).abs() <= rel * predicted,
        "sim {} tok/s vs solver {predicted}",
        r.tok_per_s
    );
    r
}

/// Where the models coincide: the plan's static cache, no expert prefetch, no dense weights
/// streamed, and a flat storage curve (5.1 GB/s at every block size and queue depth) without
/// the latency floor (with M1 Max's 70 us floor the per-token embedding-row read, a few kB,
/// takes 70 us in the engine and its transfer time in the solver). Every layer then costs its
/// compute plus its misses' bytes over the bandwidth: the solver's `layer_time` with the
/// token's actual expert use, whose mean is the solver's prediction up to where a layer's
/// roofline changes regime.
#[test]
fn mixtral_static_matches_solver_where_the_models_coincide() {
    let hw = m1max(true);
    let (solved, trace) = mixtral(&hw);
    assert_eq!(solved.plan.mode, place::Mode::ExpertStreaming);
    assert!(solved.plan.expert_cache.bytes > 0);
    let r = static_matches_solver(&hw, &solved, &trace, 1e-3);
    assert!((r.hit_rate - solved.plan.expert_cache.hit_rate).abs() < 1e-9);
}

/// Nothing streams (Mixtral fits in an H200): no storage at all, so the engine is the sum of
/// the cost model's compute and equals the solver's prediction.
#[test]
fn full_resident_plan_matches_solver() {
    let hw = HwProfile::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../profiles/h200-141g.toml"
    ))
    .unwrap();
    let (solved, trace) = mixtral(&hw);
    assert_eq!(solved.plan.mode, place::Mode::FullResident);
    let r = static_matches_solver(&hw, &solved, &trace, 1e-4);
    assert_eq!(r.bytes_read_per_token, 0.0);
}

#[test]
fn mixtral_belady_bounds_lru_and_prefetch_helps() {
    let hw = m1max(false);
    let (solved, trace) = mixtral(&hw);
    let p = placement(&solved);
    let machine = Machine::from_profile(&hw);
    let capacity_bytes = solved.plan.expert_cache.bytes;
    let sim = |policy, expert_prefetch| {
        let opts = Options {
            expert_prefetch,
            ..Options::default()
        };
        decode::simulate(
            &p,
            &machine,
            &trace,
            &DecodePolicy::Cache {
                policy,
                capacity_bytes,
                partition: Partition::Global,
            },
            &opts,
        )
        .unwrap()
        .report
    };
    let (lru, belady) = (
        sim(Policy::Lru, ExpertPrefetch::None),
        sim(Policy::Belady, ExpertPrefetch::None),
    );
    assert!(
        belady.hit_rate >= lru.hit_rate,
        "{} < {}",
        belady.hit_rate,
        lru.hit_rate
    );
    assert!(belady.tok_per_s >= lru.tok_per_s);
    assert!(lru.hit_rate > 0.0 && lru.hit_rate < 1.0);
    // Prefetch changes when bytes arrive, never which accesses the cache serves.
    let oracle = sim(Policy::Lru, ExpertPrefetch::Oracle);
    let coact = sim(Policy::Lru, ExpertPrefetch::Coactivation);
    assert_eq!(oracle.hit_rate, lru.hit_rate);
    assert_eq!(coact.hit_rate, lru.hit_rate);
    // Mixtral's experts take longer to read than a layer to compute, so prefetches shorten the
    // wait rather than landing before the router asks.
    assert!(oracle.io_wait_s_per_token < lru.io_wait_s_per_token);
    assert!(
        oracle.tok_per_s > lru.tok_per_s,
        "{} <= {}",
        oracle.tok_per_s,
        lru.tok_per_s
    );
    assert_eq!(oracle.prefetch_wasted_bytes_per_token, 0.0);
    assert!(coact.tok_per_s <= oracle.tok_per_s);
}

// Cache partitioning: one cache over every streaming layer against one per layer with an
// equal byte share, on a hand-computed two-layer case.

/// Two MoE layers of 4 experts of 1 MB, top-1, every expert on NVMe.
fn two_layer_units() -> Units {
    let layer = |l: u32| ExpertLayer {
        layer: l,
        expert_bytes: MB,
        expert_flops: 2e6,
        slice_bytes: MB,
        rates: vec![0.25; 4],
        order: vec![0, 1, 2, 3],
        cum: vec![0.0, 0.25, 0.5, 0.75, 1.0],
        tensors: vec![format!("blk.{l}.ffn_up_exps.weight")],
        slices: None,
    };
    Units {
        units: vec![],
        experts: vec![layer(0), layer(1)],
        n_layer: 2,
        top_k: 1,
    }
}

/// Layer 0 alternates experts 0 and 1, layer 1 always selects expert 2, for 8 tokens.
fn two_layer_trace() -> Trace {
    let model = ModelFacts {
        architecture: "two-layers".into(),
        moe_layers: vec![0, 1],
        n_expert: 4,
        top_k: 1,
        n_shared_expert: 0,
    };
    let tokens: Vec<[u16; 2]> = (0..8u16).map(|t| [t % 2, 2]).collect();
    let refs: Vec<&[u16]> = tokens.iter().map(|t| &t[..]).collect();
    trace_of(model, &refs)
}

/// Simulates [`two_layer_trace`] with layer `l`'s experts `ram[l]` in RAM and the rest on NVMe; returns
/// each MoE layer's hits and the policy name the metrics carry.
fn simulate_two_layers(
    ram: [&[u32]; 2],
    policy: Policy,
    partition: Partition,
    capacity_bytes: u64,
) -> Result<(Vec<u64>, String), sim::SimError> {
    let (units, cost) = (two_layer_units(), tiny_cost());
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
        dense_pool_bytes: None,
    };
    let policy = DecodePolicy::Cache {
        policy,
        capacity_bytes,
        partition,
    };
    let run = decode::simulate(
        &placement,
        &tiny_machine(),
        &two_layer_trace(),
        &policy,
        &Options::default(),
    )?;
    let hits = run.report.layers.iter().map(|l| l.hits).collect();
    Ok((hits, run.summary.run.policy))
}

fn layer_hits(policy: Policy, partition: Partition, capacity_bytes: u64) -> (Vec<u64>, String) {
    simulate_two_layers([&[], &[]], policy, partition, capacity_bytes).unwrap()
}

/// 3 MB global: experts 0, 1 (layer 0) and 2 (layer 1) all fit, so only the first use of each
/// misses. 3 MB per layer is 1.5 MB each, one expert: LRU misses layer 0 at every token, layer
/// 1 only at the first; Belady keeps one of layer 0's two alternating experts, hitting it at
/// every other token after the first two.
#[test]
fn global_and_per_layer_lru_and_belady_by_hand() {
    let (global, name) = layer_hits(Policy::Lru, Partition::Global, 3 * MB);
    assert_eq!((global, name.as_str()), (vec![6, 7], "lru"));
    let (per_layer, name) = layer_hits(Policy::Lru, Partition::PerLayer, 3 * MB);
    assert_eq!((per_layer, name.as_str()), (vec![0, 7], "lru/per-layer"));
    let (belady, _) = layer_hits(Policy::Belady, Partition::PerLayer, 3 * MB);
    assert_eq!(belady, vec![3, 7]);
    // Enough for every expert either way: the partitions agree.
    assert_eq!(
        layer_hits(Policy::Lru, Partition::PerLayer, 4 * MB).0,
        layer_hits(Policy::Lru, Partition::Global, 4 * MB).0
    );
}

/// Pinned-LRU per layer pins each layer's resident experts in that layer's share; a share too
/// small for them is refused.
#[test]
fn per_layer_pinned_lru_needs_room_for_each_layers_hot_set() {
    let pinned = || Policy::PinnedLru(HotSet(Vec::new()));
    // 4 MB: 2 MB per layer. Layer 0's two RAM experts are pinned and fill its share (they hit
    // after their first use); layer 1's expert 2 is cached by LRU.
    let (hits, _) =
        simulate_two_layers([&[0, 1], &[]], pinned(), Partition::PerLayer, 4 * MB).unwrap();
    assert_eq!(hits, vec![6, 7]);
    // 2 MB: 1 MB per layer, too small for layer 0's two pinned experts.
    let err = simulate_two_layers([&[0, 1], &[]], pinned(), Partition::PerLayer, 2 * MB)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("MoE layer 0 pins its 2 resident experts") && err.contains("4000000 bytes"),
        "{err}"
    );
}

/// Without `keep_records` a run drops its records as it goes (a long dense run once held
/// tens of GB of them), and its summary is still what the records it would have kept give.
#[test]
fn a_run_that_drops_its_records_has_the_same_summary() {
    let hw = m1max(false);
    let (solved, trace) = mixtral(&hw);
    let p = placement(&solved);
    let machine = Machine::from_profile(&hw);
    let policy = DecodePolicy::Cache {
        policy: Policy::Lru,
        capacity_bytes: solved.plan.expert_cache.bytes,
        partition: Partition::Global,
    };
    let run = |keep_records| {
        let opts = Options {
            keep_records,
            expert_prefetch: ExpertPrefetch::Coactivation,
            ..Options::default()
        };
        decode::simulate(&p, &machine, &trace, &policy, &opts).unwrap()
    };
    let (kept, dropped) = (run(true), run(false));
    assert!(dropped.records.is_empty());
    assert!(!kept.records.is_empty());
    // The oracle: the summary of the kept records, computed after the fact.
    let oracle = metrics::Summary::from_records(kept.summary.run.clone(), &kept.records);
    assert_eq!(dropped.summary, oracle);
    assert_eq!(dropped.summary, kept.summary);
}
