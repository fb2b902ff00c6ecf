//! Decode simulation: a hand-computed two-token case, Belady never below LRU, and agreement with
//! the solver's prediction for the plan's own static cache.

use sim::cache::Policy;
use sim::decode::{self, DecodePolicy, Placement};
use solver::place::cost::{CostModel, Device, IoPlan};
use solver::place::plan::ExpertPlacement;
use solver::place::units::{ExpertLayer, Unit};
use solver::place::{SolveOptions, Tier, Units};
use solver::Group;
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
    };
    let trace = tiny_trace();

    // Static: token 0 computes 3 MB at 1 GB/s (attention, expert 0, streamed expert 2) = 3 ms
    // and then waits for expert 2's read, 1 MB at 0.5 GB/s = 2 ms: 5 ms. Token 1 computes
    // 3 MB from RAM: 3 ms.
    let r = decode::simulate(&placement, &trace, &DecodePolicy::Static).unwrap();
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
    };
    let r = decode::simulate(&placement, &trace, &lru).unwrap();
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
    };
    let r = decode::simulate(&placement, &trace, &belady).unwrap();
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
    };
    let model = ModelFacts {
        architecture: "tiny".into(),
        moe_layers: vec![0],
        n_expert: 4,
        top_k: 1,
        n_shared_expert: 0,
    };
    let e =
        decode::simulate(&placement, &trace_of(model, &[&[0]]), &DecodePolicy::Static).unwrap_err();
    assert!(e.to_string().contains("top-1"), "{e}");
}

/// Catalog Mixtral on the M1 Max profile with a synthesized trace and a plan solved for it.
fn mixtral() -> (solver::place::Solved, Trace) {
    let inv = solver::load_model("mixtral-8x7b:q5_k_m").unwrap();
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
    let hw = solver::hw::HwProfile::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../profiles/m1max.toml"
    ))
    .unwrap();
    let opts = SolveOptions {
        rates: Some(decode::expert_rates(&trace)),
        ..SolveOptions::default()
    };
    (solver::place::solve(&inv, &hw, &opts).unwrap(), trace)
}

#[test]
fn mixtral_static_matches_solver_and_belady_bounds_lru() {
    let (solved, trace) = mixtral();
    let placement = Placement {
        units: &solved.units,
        unit_tiers: &solved.assignment.units,
        experts: &solved.plan.experts,
        cost: &solved.cost,
    };
    assert!(
        solved.plan.expert_cache.bytes > 0,
        "the plan should stream experts"
    );
    // Same trace, same rates, same cost model: the mean token time differs from the solver's
    // expected one only where a layer's roofline changes regime between tokens.
    let r = decode::simulate(&placement, &trace, &DecodePolicy::Static).unwrap();
    let predicted = solved.plan.prediction.tok_per_s;
    assert!(
        (r.tok_per_s - predicted).abs() <= 1e-3 * predicted,
        "sim {} tok/s vs solver {predicted}",
        r.tok_per_s
    );
    assert!((r.hit_rate - solved.plan.expert_cache.hit_rate).abs() < 1e-9);

    let capacity_bytes = solved.plan.expert_cache.bytes;
    let run = |policy| {
        decode::simulate(
            &placement,
            &trace,
            &DecodePolicy::Cache {
                policy,
                capacity_bytes,
            },
        )
        .unwrap()
    };
    let (lru, belady) = (run(Policy::Lru), run(Policy::Belady));
    assert!(
        belady.hit_rate >= lru.hit_rate,
        "{} < {}",
        belady.hit_rate,
        lru.hit_rate
    );
    assert!(belady.tok_per_s >= lru.tok_per_s);
    assert!(lru.hit_rate > 0.0 && lru.hit_rate < 1.0);
}
