//! Prefill simulation: a hand-computed two-layer request, prefill of 1-token batches against
//! decode of the same tokens, agreement with the solver's prefill prediction where the models
//! coincide, and refused prompts.

use hw::{HwProfile, ReadPoint, StorageProfile};
use model::Group;
use place::cost::{CostModel, Device, IoPlan};
use place::units::{ExpertLayer, Unit};
use place::{Assignment, ExpertSplit, SolveOptions, Tier, Units};
use plan::ExpertPlacement;
use policy::cache::{Partition, Policy};
use sim::decode::{self, DecodePolicy, Machine, Options, Placement};
use sim::prefill::{self, Prompt, RequestRun};
use traces::synth::{LayerParams, SynthParams};
use traces::{ModelFacts, TokenExtras, Trace, TraceBuilder};

const MB: u64 = 1_000_000;

/// CPU only at `flops` FLOP/s and 1 GB/s of memory; storage requests one at a time.
fn cost(flops: f64, expert_gbps: f64) -> CostModel {
    CostModel {
        gpu: None,
        cpu: Device {
            flops_per_s: flops,
            bytes_per_s: 1e9,
        },
        stream_on_gpu: false,
        io: IoPlan {
            queue_depth: 1,
            threads: 1,
            dense_block_bytes: MB,
            dense_gbps: expert_gbps,
            expert_block_bytes: MB,
            expert_queue_depth: 1,
            expert_gbps,
            row_bytes: 4096,
            row_gbps: expert_gbps,
        },
        tensor_overhead_s: 0.0,
        batch_tensor_overhead_s: None,
        host_layer_overhead_s: 0.0,
        layer_tensors: Vec::new(),
        global_tensors: 0,
    }
}

/// Two layers, each an attention unit of `bytes` (`flops` per token) and 4 routed experts of
/// `bytes` (`flops` per use), top-2; `rates` are the experts' uses per token.
fn units(bytes: u64, flops: f64, rates: [f64; 4]) -> Units {
    let attention = |l: u32| Unit {
        name: format!("blk.{l}.attention"),
        layer: Some(l),
        group: Group::Attention,
        bytes,
        read_bytes: bytes as f64,
        flops,
        largest_tensor: bytes,
        streamable: true,
        tensors: vec![format!("blk.{l}.attn_q.weight")],
        spans: None,
    };
    let mut order: Vec<u32> = (0..4).collect();
    order.sort_by(|&a, &b| {
        rates[b as usize]
            .total_cmp(&rates[a as usize])
            .then(a.cmp(&b))
    });
    let mut cum = vec![0.0];
    for &id in &order {
        cum.push(cum.last().unwrap() + rates[id as usize]);
    }
    let experts = |l: u32| ExpertLayer {
        layer: l,
        expert_bytes: bytes,
        expert_flops: flops,
        slice_bytes: bytes / 3,
        rates: rates.to_vec(),
        order: order.clone(),
        cum: cum.clone(),
        tensors: vec![format!("blk.{l}.ffn_up_exps.weight")],
        slices: None,
    };
    Units {
        units: vec![attention(0), attention(1)],
        experts: vec![experts(0), experts(1)],
        n_layer: 2,
        top_k: 2,
    }
}

fn expert_placement(layer: u32, bytes: u64, ram: &[u32]) -> ExpertPlacement {
    ExpertPlacement {
        layer,
        tensors: vec![],
        expert_bytes: bytes,
        gpu: vec![],
        ram: ram.to_vec(),
        nvme: (0..4).filter(|e| !ram.contains(e)).collect(),
    }
}

/// One sequence; each token gives its layer-0 and layer-1 selections.
fn trace(tokens: &[[[u16; 2]; 2]]) -> Trace {
    let model = ModelFacts {
        architecture: "tiny".into(),
        moe_layers: vec![0, 1],
        n_expert: 4,
        top_k: 2,
        n_shared_expert: 0,
    };
    let mut b = TraceBuilder::new(model).unwrap();
    b.begin_sequence("s").unwrap();
    for t in tokens {
        b.push_token(
            &[t[0][0], t[0][1], t[1][0], t[1][1]],
            TokenExtras::default(),
        )
        .unwrap();
    }
    b.end_sequence().unwrap();
    b.finish().unwrap()
}

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

fn cpu_machine(gbps: f64) -> Machine {
    Machine {
        storage: flat_storage(gbps),
        h2d_bytes_per_s: None,
        unified: false,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1e-9)
}

/// Walls of the steps of each batch (globals, layer 0, layer 1) in ms.
fn walls_ms(run: &RequestRun, token: u32) -> Vec<f64> {
    run.records
        .iter()
        .filter(|r| r.token == token)
        .map(|r| (r.wall_s * 1e3 * 1e6).round() / 1e6)
        .collect()
}

/// Two layers with 1 MB attention (RAM in layer 0, streamed in layer 1) and 1 MB experts, 0
/// and 1 in RAM; CPU at 1 GB/s (every step bandwidth bound), storage at 0.5 GB/s one request
/// at a time. A 4-token prompt in batches of 2, then one decoded token.
#[test]
fn hand_computed_prefill_then_decode() {
    // No compute: times are bytes over rates.
    let u = units(MB, 0.0, [0.5; 4]);
    let c = cost(1e12, 0.5);
    let experts = vec![
        expert_placement(0, MB, &[0, 1]),
        expert_placement(1, MB, &[0, 1]),
    ];
    let placement = Placement {
        units: &u,
        unit_tiers: &[Tier::Ram, Tier::Nvme],
        experts: &experts,
        cost: &c,
        dense_pool_bytes: None,
    };
    let t = trace(&[
        [[0, 2], [0, 1]],
        [[0, 1], [1, 3]],
        [[1, 3], [0, 1]],
        [[0, 1], [0, 2]],
        [[2, 3], [0, 1]],
    ]);
    let prompt = Prompt {
        tokens: 4,
        batch: Some(2),
    };
    let m = cpu_machine(0.5);
    let opts = Options::default();
    let run = |policy: &DecodePolicy| {
        prefill::simulate_request(&placement, &m, &t, policy, &opts, &prompt).unwrap()
    };

    // Static. Batch 0: layer 0 needs {0, 2, 1}, 2 from NVMe; layer 1 needs {0, 1, 3}, 3.
    // Layer 1's attention (1 MB, 2 ms) is read from t = 0, one step ahead. Layer 0: attention
    // 1 ms; expert 2's read queues behind it (lands 2 + 2 = 4 ms); the rest of the layer (3
    // experts, 3 MB) 3 ms: 7 ms. Layer 1: 1 ms + read 2 ms + 3 ms = 6 ms. Batch 1 (from 13 ms):
    // layer 0 needs {1, 3, 0}: attention read 13..15, expert 3 15..17, 20 ms; layer 1 needs
    // {0, 1, 2}: 6 ms. Time to first token 26 ms; 4 MB of experts and 2 MB of attention read.
    let r = run(&DecodePolicy::Static);
    let p = &r.prefill;
    assert_eq!((p.prompt_tokens, p.batch_tokens, p.batches), (4, 2, 2));
    assert!(close(p.ttft_s, 26e-3), "{p:?}");
    assert!(close(p.tok_per_s, 4.0 / 26e-3), "{p:?}");
    assert_eq!(p.bytes_read, 6 * MB);
    assert_eq!(walls_ms(&r, 0), [0.0, 7.0, 6.0]);
    assert_eq!(walls_ms(&r, 1), [0.0, 7.0, 6.0]);
    assert!(
        close(p.compute_s, 16e-3) && close(p.io_wait_s, 10e-3),
        "{p:?}"
    );
    assert!(close(p.storage_utilisation, 12.0 / 26.0), "{p:?}");
    for b in &p.per_batch {
        assert_eq!((b.expert_hits, b.expert_accesses), (4, 6));
        assert_eq!(b.bytes_read, 3 * MB);
    }
    assert!(close(p.hit_rate, 4.0 / 6.0));
    // Decode of token 4 from 26 ms: layer 0 reads experts 2 and 3 behind the attention
    // prefetch (2 + 4 ms) and computes 1 + 2 ms: 8 ms; layer 1 hits both: 3 ms.
    assert_eq!(r.decode.tokens, 1);
    assert!(close(r.decode.token_s_mean, 11e-3), "{:?}", r.decode);
    assert_eq!(walls_ms(&r, 2), [0.0, 8.0, 3.0]);
    let first_decode = r.records.iter().find(|x| x.token == 2).unwrap();
    assert!(close(first_decode.start_s, 26e-3));

    // LRU holding all 8 experts of the two layers, starting empty. Batch 0 misses all six:
    // layer 0 computes attention until 1 ms, its 3 reads (6 ms) queue behind the attention
    // prefetch (until 2 ms) and land at 8 ms, 3 ms of compute: 11 ms; layer 1: 1 + 6 + 3 =
    // 10 ms. Batch 1 misses only expert 3 at layer 0 and 2 at layer 1: 7 + 6 ms. Decode then
    // hits everything (3 + 3 ms), where decode alone from an empty cache misses all four.
    let lru = DecodePolicy::Cache {
        policy: Policy::Lru,
        capacity_bytes: 8 * MB,
        partition: Partition::Global,
    };
    let r = run(&lru);
    let p = &r.prefill;
    assert!(close(p.ttft_s, 34e-3), "{p:?}");
    assert_eq!(p.bytes_read, 10 * MB);
    assert_eq!(walls_ms(&r, 0), [0.0, 11.0, 10.0]);
    assert_eq!(walls_ms(&r, 1), [0.0, 7.0, 6.0]);
    let rates: Vec<f64> = p.per_batch.iter().map(|b| b.hit_rate).collect();
    assert_eq!(rates, [0.0, 4.0 / 6.0]);
    assert_eq!(r.decode.hit_rate, 1.0);
    assert!(close(r.decode.token_s_mean, 6e-3), "{:?}", r.decode);
    let alone = decode::simulate(
        &placement,
        &m,
        &decode::token_range(&t, 4..5).unwrap(),
        &lru,
        &opts,
    )
    .unwrap();
    assert_eq!(alone.report.hit_rate, 0.0);

    // Records: prefill rows (token = batch) first, then decode rows after the batches.
    let tokens: Vec<u32> = r.records.iter().map(|x| x.token).collect();
    assert_eq!(tokens, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    assert_eq!(r.records[1].expert_accesses, 3);
}

/// Catalog Mixtral on the M1 Max (unified memory, its real read curve and latency floor, the
/// plan's dense prefetch) with a synthesized trace.
fn mixtral() -> (HwProfile, place::Solved, Trace) {
    let hw = HwProfile::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../profiles/m1max.toml"
    ))
    .unwrap();
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
        traces::synth::synthesize(&SynthParams::uniform(model, vec![64; 2], layer), 3).unwrap();
    let opts = SolveOptions {
        rates: Some(decode::expert_rates(&trace)),
        ..SolveOptions::default()
    };
    let solved = place::solve(&inv, &hw, &opts).unwrap();
    (hw, solved, trace)
}

/// A batch of one token is a decode step: prefilling the first 40 tokens one at a time gives
/// exactly the records of decoding those 40 tokens, for the static cache, for LRU and ARC (whose
/// hits on a prefix do not depend on what follows), global and per layer, on a machine with every effect on
/// (a batch overhead too, which a one-token batch does not pay).
#[test]
fn prefill_in_batches_of_one_is_decode_of_the_same_tokens() {
    let (hw, solved, trace) = mixtral();
    let cost = CostModel {
        tensor_overhead_s: 2e-6,
        batch_tensor_overhead_s: Some(1e-3),
        ..solved.cost.clone()
    };
    let placement = Placement {
        units: &solved.units,
        unit_tiers: &solved.assignment.units,
        experts: &solved.plan.experts,
        cost: &cost,
        dense_pool_bytes: None,
    };
    let machine = Machine::from_profile(&hw);
    assert!(machine.unified);
    let opts = Options {
        prefetch_depth: solved.plan.prefetch_depth.max(1),
        ..Options::default()
    };
    let prompt = Prompt {
        tokens: 40,
        batch: Some(1),
    };
    let head = decode::first_tokens(&trace, 40).unwrap();
    for policy in [
        DecodePolicy::Static,
        DecodePolicy::Cache {
            policy: Policy::Lru,
            capacity_bytes: solved.plan.expert_cache.bytes / 2,
            partition: Partition::Global,
        },
        DecodePolicy::Cache {
            policy: Policy::Lru,
            capacity_bytes: solved.plan.expert_cache.bytes / 2,
            partition: Partition::PerLayer,
        },
        DecodePolicy::Cache {
            policy: Policy::Arc,
            capacity_bytes: solved.plan.expert_cache.bytes,
            partition: Partition::PerLayer,
        },
    ] {
        let req = prefill::simulate_request(&placement, &machine, &trace, &policy, &opts, &prompt)
            .unwrap();
        let dec = decode::simulate(&placement, &machine, &head, &policy, &opts).unwrap();
        let n = dec.records.len();
        assert_eq!(req.records[..n], dec.records[..], "{}", policy.name());
        assert!(req.prefill.bytes_read > 0);
        assert!(
            close(req.prefill.ttft_s, dec.report.token_s_mean * 40.0),
            "{} vs {}",
            req.prefill.ttft_s,
            dec.report.token_s_mean * 40.0
        );
        // Decode rows follow, numbered after the 40 batches.
        assert_eq!(req.records[n].token, 40);
        assert_eq!(req.decode.tokens, trace.n_tokens() - 40);
    }
}

/// Where the models coincide the simulated prefill is the solver's `prefill_time`: one batch,
/// the static cache, every token selecting experts 0 and 1 (rates 1 and 0, so the solver's
/// touch probabilities are exact), nothing dense streamed, a flat storage curve without a
/// latency floor. Compute bound (64 tokens at 2e10 FLOPs per unit per token on 1 TFLOP/s)
/// with expert 1 read from NVMe at every layer; steps of seconds, so rounding each phase to
/// nanoseconds stays below 1e-9 of the total.
#[test]
fn one_batch_matches_the_solver_prefill_prediction() {
    let bytes = 1_000_000_000;
    let u = units(bytes, 2e10, [1.0, 1.0, 0.0, 0.0]);
    let c = cost(1e12, 0.5);
    let experts = vec![
        expert_placement(0, bytes, &[0]),
        expert_placement(1, bytes, &[0]),
    ];
    let tiers = [Tier::Ram, Tier::Ram];
    let placement = Placement {
        units: &u,
        unit_tiers: &tiers,
        experts: &experts,
        cost: &c,
        dense_pool_bytes: None,
    };
    let t = trace(&[[[0, 1], [1, 0]]; 65]);
    let prompt = Prompt {
        tokens: 64,
        batch: None,
    };
    let r = prefill::simulate_request(
        &placement,
        &cpu_machine(0.5),
        &t,
        &DecodePolicy::Static,
        &Options::default(),
        &prompt,
    )
    .unwrap();
    assert_eq!((r.prefill.batches, r.prefill.batch_tokens), (1, 64));
    let a = Assignment {
        units: tiers.to_vec(),
        experts: vec![ExpertSplit { gpu: 0, ram: 1 }; 2],
    };
    let predicted = place::prefill_time(&c, &u, &a, 64);
    // Per layer the CPU streams 3 GB of weights (attention, experts 0 and 1) at 1 GB/s, 3 s,
    // then computes the batch's uses beyond one per weight: 63 * 2e10 (attention) + 126 *
    // 2e10 (experts) FLOPs at 1e12 FLOP/s = 3.78 s, more than all 3.84e12 FLOPs overlapped
    // with the stream would take; plus expert 1's 1 GB read at 0.5 GB/s = 2 s.
    assert!(close(predicted, 2.0 * (3.0 + 3.78 + 2.0)), "{predicted}");
    let rel = (r.prefill.ttft_s - predicted).abs() / predicted;
    assert!(
        rel <= 1e-9,
        "sim {} vs solver {predicted}: {rel}",
        r.prefill.ttft_s
    );
    assert_eq!(r.prefill.bytes_read, 2 * bytes);

    // A batch overhead of 0.5 s per tensor, 2 tensors a layer (the decode one, 0.1 s, not
    // paid): 2 s more, on both sides.
    let c = CostModel {
        tensor_overhead_s: 0.1,
        batch_tensor_overhead_s: Some(0.5),
        layer_tensors: vec![2, 2],
        ..c.clone()
    };
    let placement = Placement {
        cost: &c,
        ..placement
    };
    let with = place::prefill_time(&c, &u, &a, 64);
    assert!(close(with, predicted + 2.0), "{with}");
    let r = prefill::simulate_request(
        &placement,
        &cpu_machine(0.5),
        &t,
        &DecodePolicy::Static,
        &Options::default(),
        &prompt,
    )
    .unwrap();
    let rel = (r.prefill.ttft_s - with).abs() / with;
    assert!(rel <= 1e-9, "sim {} vs solver {with}", r.prefill.ttft_s);
}

#[test]
fn bad_prompts_are_refused() {
    let u = units(MB, 2e6, [0.5; 4]);
    let c = cost(1e12, 0.5);
    let experts = vec![
        expert_placement(0, MB, &[0, 1]),
        expert_placement(1, MB, &[0, 1]),
    ];
    let placement = Placement {
        units: &u,
        unit_tiers: &[Tier::Ram, Tier::Ram],
        experts: &experts,
        cost: &c,
        dense_pool_bytes: None,
    };
    let t = trace(&[[[0, 1], [0, 1]]; 3]);
    let err = |tokens, batch| {
        prefill::simulate_request(
            &placement,
            &cpu_machine(0.5),
            &t,
            &DecodePolicy::Static,
            &Options::default(),
            &Prompt { tokens, batch },
        )
        .unwrap_err()
        .to_string()
    };
    let e = err(5, None);
    assert!(
        e.contains("the trace has 3") && e.contains("at most 2"),
        "{e}"
    );
    let e = err(3, None);
    assert!(e.contains("the trace has 3"), "{e}");
    assert!(err(0, None).contains("at least 1"));
    assert!(err(2, Some(0)).contains("batch is 0"));
}
