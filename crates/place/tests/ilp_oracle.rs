//! The ILP against a brute-force optimum. On toy instances small enough to try every placement,
//! HiGHS's optimum (gap 0) must be the best placement found by trying them all. The brute force
//! checks capacities itself and prices each placement with the cost model, so it shares none of
//! the ILP's formulation: piecewise use curves, rooflines as constraints, prefetch windows,
//! one-hot prefill counts, symmetry breaking between equal layers.

use model::role::Group;
use place::cost::{CostModel, Device};
use place::units::{ExpertLayer, Unit};
use place::{ilp, Assignment, Capacities, ExpertSplit, IlpOptions, Tier, Units};
use plan::IoPlan;
use seeded::Xoshiro256;

/// Relative tolerance for comparing HiGHS's objective with a cost-model price.
const REL: f64 = 1e-5;

struct Rng(Xoshiro256);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Log-uniform: sizes and speeds spread over orders of magnitude.
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.uniform(lo.ln(), hi.ln()).exp()
    }
}

/// One toy problem: two layers and the globals, every choice the ILP makes still present.
struct Instance {
    units: Units,
    caps: Capacities,
    cost: CostModel,
    streaming: ilp::Streaming,
    prompt_len: u64,
}

fn unit(rng: &mut Rng, name: &str, layer: Option<u32>, group: Group) -> Unit {
    let bytes = rng.log_uniform(1e6, 1e8) as u64;
    let streamable = !matches!(group, Group::Norm | Group::Router);
    let (bytes, read_bytes, flops) = match group {
        // An untied embedding: one row per token.
        Group::Embedding => (bytes, (bytes / 32_000) as f64, 0.0),
        Group::Norm => (bytes / 1000, (bytes / 1000) as f64, (bytes / 500) as f64),
        _ => (bytes, bytes as f64, rng.uniform(2.0, 8.0) * bytes as f64),
    };
    Unit {
        name: name.to_string(),
        layer,
        group,
        bytes,
        read_bytes,
        flops,
        largest_tensor: bytes,
        streamable,
        tensors: vec![name.to_string()],
        spans: None,
    }
}

/// Rates of `n_expert` experts from routing 64 tokens top-k by skewed random weights, so each
/// rate is at most 1 and they sum to top-k.
fn rates(rng: &mut Rng, n_expert: u32, top_k: u32) -> Vec<f64> {
    let weights: Vec<f64> = (0..n_expert).map(|_| rng.log_uniform(0.05, 1.0)).collect();
    let mut counts = vec![0u32; n_expert as usize];
    let tokens = 64;
    for _ in 0..tokens {
        let mut w = weights.clone();
        for _ in 0..top_k {
            let total: f64 = w.iter().sum();
            let mut x = rng.uniform(0.0, total);
            let mut pick = w.iter().rposition(|&v| v > 0.0).unwrap();
            for (i, &v) in w.iter().enumerate() {
                if v > 0.0 && x < v {
                    pick = i;
                    break;
                }
                x -= v;
            }
            counts[pick] += 1;
            w[pick] = 0.0;
        }
    }
    counts.iter().map(|&c| c as f64 / tokens as f64).collect()
}

fn expert_layer(rng: &mut Rng, layer: u32, n_expert: u32, top_k: u32) -> ExpertLayer {
    let rates = rates(rng, n_expert, top_k);
    let mut order: Vec<u32> = (0..n_expert).collect();
    order.sort_by(|&a, &b| {
        rates[b as usize]
            .total_cmp(&rates[a as usize])
            .then(a.cmp(&b))
    });
    let mut cum = vec![0.0];
    for &id in &order {
        cum.push(cum.last().unwrap() + rates[id as usize]);
    }
    let expert_bytes = rng.log_uniform(1e6, 5e7) as u64;
    ExpertLayer {
        layer,
        expert_bytes,
        expert_flops: rng.uniform(2.0, 8.0) * expert_bytes as f64,
        slice_bytes: expert_bytes / 3,
        rates,
        order,
        cum,
        tensors: vec![format!("blk.{layer}.ffn_up_exps")],
        slices: None,
    }
}

fn instance(seed: u64) -> Instance {
    let rng = &mut Rng(Xoshiro256::new(seed));
    let has_gpu = rng.below(4) != 0;
    let unified = has_gpu && rng.below(2) == 0;
    let n_expert = 2 + rng.below(3) as u32;
    let top_k = (1 + rng.below(2) as u32).min(n_expert);
    // Both layers MoE (half of those equal, so symmetry breaking applies), or a dense first one.
    let kind = rng.below(3);
    let mut units = vec![
        unit(rng, "token_embd", None, Group::Embedding),
        unit(rng, "output", None, Group::Output),
    ];
    let mut experts: Vec<ExpertLayer> = Vec::new();
    for layer in 0..2u32 {
        let l = Some(layer);
        if layer == 1 && kind == 0 {
            // A copy of layer 0 under the next index.
            for k in 2..4 {
                let mut u: Unit = units[k].clone();
                u.layer = l;
                u.name = u.name.replace("blk.0", "blk.1");
                units.push(u);
            }
            let mut e: ExpertLayer = experts[0].clone();
            e.layer = 1;
            experts.push(e);
            continue;
        }
        units.push(unit(rng, &format!("blk.{layer}.norm"), l, Group::Norm));
        units.push(unit(
            rng,
            &format!("blk.{layer}.attention"),
            l,
            Group::Attention,
        ));
        if layer == 0 && kind == 2 {
            units.push(unit(rng, "blk.0.ffn", l, Group::DenseFfn));
        } else {
            experts.push(expert_layer(rng, layer, n_expert, top_k));
        }
    }
    let units = Units {
        units,
        experts,
        n_layer: 2,
        top_k,
    };
    let total = units.total_bytes() as f64;
    let gpu_cap = has_gpu.then(|| (total * rng.uniform(0.0, 0.7)) as u64);
    let ram_cap = (total * rng.uniform(0.05, 0.9)) as u64;
    let caps = Capacities {
        gpu: gpu_cap.map(|g| if unified { g.min(ram_cap) } else { g }),
        ram: ram_cap,
        unified,
        kv_cache_bytes: 0,
        compute_buffer_bytes: 0,
        pool_reserve_bytes: 0,
    };
    let gpu = has_gpu.then(|| Device {
        flops_per_s: rng.log_uniform(1e12, 1e14),
        bytes_per_s: rng.log_uniform(1e11, 3e12),
    });
    let cost = CostModel {
        gpu,
        cpu: Device {
            flops_per_s: rng.log_uniform(1e10, 1e12),
            bytes_per_s: rng.log_uniform(2e10, 2e11),
        },
        stream_on_gpu: unified,
        io: IoPlan {
            queue_depth: 4,
            threads: 4,
            dense_block_bytes: 1 << 20,
            dense_gbps: rng.log_uniform(0.5, 10.0),
            expert_block_bytes: 1 << 20,
            expert_queue_depth: 4,
            expert_gbps: rng.log_uniform(0.3, 8.0),
            row_bytes: 4096,
            row_gbps: rng.log_uniform(0.02, 1.0),
        },
        tensor_overhead_s: 0.0,
        batch_tensor_overhead_s: None,
        host_layer_overhead_s: 0.0,
        layer_tensors: Vec::new(),
        global_tensors: 0,
    };
    // Half the GPU instances charge layers with CPU weights a fixed cost, up to a few times a
    // layer's compute, so that it moves the optimum.
    let cost = CostModel {
        host_layer_overhead_s: if has_gpu && rng.below(2) == 0 {
            rng.log_uniform(1e-6, 1e-3)
        } else {
            0.0
        },
        ..cost
    };
    let (depth, dense, globals) = match rng.below(4) {
        0 => (0, false, false),
        1 => (1, true, true),
        2 => (2, true, false),
        _ => (0, true, true),
    };
    let prompt_len = if rng.below(3) == 0 {
        2 + rng.below(30)
    } else {
        0
    };
    Instance {
        units,
        caps,
        cost,
        streaming: ilp::Streaming {
            depth,
            dense,
            globals,
        },
        prompt_len,
    }
}

/// Tiers unit `u` may take: the GPU only with one, NVMe only for weights the runtime can
/// stream under this streaming configuration (embedding rows always can).
fn allowed(inst: &Instance, u: &Unit) -> Vec<Tier> {
    let s = inst.streaming;
    let dense_ok = s.dense && (u.layer.is_some() || s.globals);
    let row_reads = u.group == Group::Embedding && u.read_bytes < u.bytes as f64;
    let mut out = vec![Tier::Ram];
    if inst.caps.gpu.is_some() {
        out.push(Tier::Gpu);
    }
    if u.streamable && (dense_ok || row_reads) {
        out.push(Tier::Nvme);
    }
    out
}

/// Every split of each MoE layer's experts: `gpu` most popular on the GPU, the next `ram` in
/// RAM, the rest on NVMe; a layer's experts are on the GPU all or none (a merged tensor lives on
/// one device).
fn splits(inst: &Instance, e: &ExpertLayer) -> Vec<ExpertSplit> {
    let n = e.order.len() as u32;
    let mut out: Vec<ExpertSplit> = (0..=n).map(|ram| ExpertSplit { gpu: 0, ram }).collect();
    if inst.caps.gpu.is_some() {
        out.push(ExpertSplit { gpu: n, ram: 0 });
    }
    out
}

fn price(inst: &Instance, a: &Assignment) -> f64 {
    place::request_time_depth(
        &inst.cost,
        &inst.units,
        a,
        inst.prompt_len,
        inst.streaming.depth,
    )
}

/// Tries every placement; the fastest that fits, or None when none does.
fn brute_force(inst: &Instance) -> Option<(f64, Assignment)> {
    let tiers: Vec<Vec<Tier>> = inst.units.units.iter().map(|u| allowed(inst, u)).collect();
    let splits: Vec<Vec<ExpertSplit>> =
        inst.units.experts.iter().map(|e| splits(inst, e)).collect();
    let radix: Vec<usize> = tiers
        .iter()
        .map(Vec::len)
        .chain(splits.iter().map(Vec::len))
        .collect();
    let mut digit = vec![0usize; radix.len()];
    let n_units = tiers.len();
    let mut best: Option<(f64, Assignment)> = None;
    loop {
        let a = Assignment {
            units: (0..n_units).map(|i| tiers[i][digit[i]]).collect(),
            experts: (0..splits.len())
                .map(|j| splits[j][digit[n_units + j]])
                .collect(),
        };
        if fits(inst, &a) {
            let t = price(inst, &a);
            if best.as_ref().is_none_or(|(b, _)| t < *b) {
                best = Some((t, a));
            }
        }
        // Odometer step.
        let mut i = 0;
        loop {
            if i == radix.len() {
                return best;
            }
            digit[i] += 1;
            if digit[i] < radix[i] {
                break;
            }
            digit[i] = 0;
            i += 1;
        }
    }
}

/// Bytes on the GPU and in RAM.
fn usage(inst: &Instance, a: &Assignment) -> (u64, u64) {
    let (mut gpu, mut ram) = (0u64, 0u64);
    for (u, t) in inst.units.units.iter().zip(&a.units) {
        match t {
            Tier::Gpu => gpu += u.bytes,
            Tier::Ram => ram += u.bytes,
            Tier::Nvme => {}
        }
    }
    for (e, s) in inst.units.experts.iter().zip(&a.experts) {
        gpu += e.expert_bytes * s.gpu as u64;
        ram += e.expert_bytes * s.ram as u64;
    }
    (gpu, ram)
}

fn fits(inst: &Instance, a: &Assignment) -> bool {
    let (gpu, ram) = usage(inst, a);
    let c = &inst.caps;
    gpu <= c.gpu.unwrap_or(0) && if c.unified { gpu + ram } else { ram } <= c.ram
}

#[test]
fn ilp_optimum_equals_the_brute_force_optimum_on_toy_instances() {
    let opts = IlpOptions {
        time_limit_s: 60.0,
        mip_rel_gap: 0.0,
        ..IlpOptions::default()
    };
    let seeds = 400;
    let (mut solved, mut infeasible, mut streamed) = (0, 0, 0);
    for seed in 0..seeds {
        let inst = instance(seed);
        let oracle = brute_force(&inst);
        let ilp = ilp::solve_with(
            &inst.units,
            &inst.caps,
            &inst.cost,
            &opts,
            inst.prompt_len,
            None,
            inst.streaming,
        );
        let (best, r) = match (oracle, ilp) {
            (None, Err(ilp::IlpError::Infeasible)) => {
                infeasible += 1;
                continue;
            }
            (None, r) => panic!("seed {seed}: nothing fits, but the ILP gave {r:?}"),
            (Some(b), Err(e)) => panic!("seed {seed}: the ILP failed ({e}) but {b:?} fits"),
            (Some(b), Ok(r)) => (b, r),
        };
        solved += 1;
        let a = &r.assignment;
        assert!(
            fits(&inst, a),
            "seed {seed}: the ILP's placement {a:?} uses (GPU, RAM) {:?} bytes, over {:?}",
            usage(&inst, a),
            inst.caps
        );
        for (i, (u, t)) in inst.units.units.iter().zip(&a.units).enumerate() {
            assert!(
                allowed(&inst, u).contains(t),
                "seed {seed}: unit {i} on {t:?}"
            );
        }
        streamed += usize::from(a.units.contains(&Tier::Nvme));
        let t = price(&inst, a);
        assert!(
            t <= best.0 * (1.0 + REL),
            "seed {seed}: the ILP's placement {a:?} takes {t} s, brute force found {} s: {:?}",
            best.0,
            best.1
        );
        assert!(
            (r.objective_s - t).abs() <= REL * t,
            "seed {seed}: the ILP's objective {} s is not its placement's price {t} s \
             ({:?}, prompt {}, {:?})",
            r.objective_s,
            inst.streaming,
            inst.prompt_len,
            inst.cost
        );
    }
    // The draws cover both outcomes and placements that stream, so no branch is vacuous.
    assert!(
        solved >= 300,
        "only {solved} of {seeds} instances were feasible"
    );
    assert!(
        infeasible >= 20,
        "only {infeasible} of {seeds} instances were infeasible"
    );
    assert!(streamed >= 200, "only {streamed} optima streamed a unit");
}
