//! `--explain`: a plan in words — capacities and what binds, where each group went and why,
//! the solver's bound and gap, and what limits each layer.

use super::units::Tier;
use super::Solved;
use model::role::Group;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Sizes in binary units (GiB, MiB), as every hypura table prints them; rates stay GB/s.
fn gb(bytes: u64) -> String {
    model::units::human_bytes(bytes)
}

/// Request sizes, in the same units.
fn size(bytes: u64) -> String {
    model::units::human_bytes(bytes)
}

fn ms(s: f64) -> String {
    format!("{:.3} ms", s * 1e3)
}

/// A capacity binds when the plan leaves less than this fraction of it free.
const BINDING: f64 = 0.01;

/// The explanation text (deterministic: no timings).
pub fn render(s: &Solved) -> String {
    let p = &s.plan;
    let c = &p.capacities;
    let mut o = String::new();
    let m = &p.inputs.model;
    let _ = writeln!(
        o,
        "model:    {} ({}, header {})",
        m.name,
        gb(m.file_bytes),
        m.header_hash
    );
    let _ = writeln!(o, "machine:  {}", p.inputs.profile_name);
    let _ = writeln!(
        o,
        "context:  {} tokens, KV cache {} ({}), compute buffer {}",
        p.inputs.ctx,
        gb(c.kv_cache_bytes),
        p.inputs.kv_type,
        gb(c.compute_buffer_bytes)
    );
    let _ = writeln!(
        o,
        "expert use: {}",
        if p.inputs.trace_hash.is_some() {
            "from the trace"
        } else {
            "uniform (no trace)"
        }
    );
    let _ = writeln!(o, "\nmode:     {}", p.mode.name());
    let _ = writeln!(
        o,
        "predicted: {:.2} tok/s ({} per token)",
        p.prediction.tok_per_s,
        ms(p.prediction.token_s)
    );
    if let Some(pf) = &p.prediction.prefill {
        let _ = writeln!(
            o,
            "prefill:  {} prompt tokens in {} ({:.1} tok/s, one batch); objective = prefill + one decode step",
            pf.prompt_len,
            ms(pf.prefill_s),
            pf.tok_per_s
        );
    }
    let sv = &p.solver;
    let _ = write!(o, "solver:   {} ({})", sv.method, sv.status);
    if let (Some(b), Some(mb), Some(g)) = (sv.lp_bound_s, sv.mip_bound_s, sv.gap) {
        let _ = write!(
            o,
            "; LP bound {}, MIP bound {}, objective {}, gap {:.3}%",
            ms(b),
            ms(mb),
            ms(sv.objective_s),
            g * 100.0
        );
    }
    let _ = writeln!(
        o,
        "\ngreedy:   {} per {} (chosen / greedy = {:.4})",
        ms(sv.greedy_objective_s),
        if p.prediction.prefill.is_some() {
            "request"
        } else {
            "token"
        },
        sv.objective_s / sv.greedy_objective_s
    );

    let _ = writeln!(o, "\ncapacities (weights):");
    let binds =
        |used: u64, cap: u64| cap > 0 && (cap - used.min(cap)) as f64 <= BINDING * cap as f64;
    let gpu_binds = c.gpu_bytes.is_some_and(|g| binds(c.gpu_used_bytes, g));
    let ram_used = if c.unified {
        c.gpu_used_bytes + c.ram_used_bytes
    } else {
        c.ram_used_bytes
    };
    let ram_binds = binds(ram_used, c.ram_bytes);
    if let Some(g) = c.gpu_bytes {
        let _ = writeln!(
            o,
            "  gpu   {} of {} used{}",
            gb(c.gpu_used_bytes),
            gb(g),
            if gpu_binds { "  <- binds" } else { "" }
        );
    }
    let _ = writeln!(
        o,
        "  {}   {} of {} used{}",
        if c.unified { "mem" } else { "ram" },
        gb(ram_used),
        gb(c.ram_bytes),
        if ram_binds { "  <- binds" } else { "" }
    );
    let _ = writeln!(
        o,
        "  nvme  {} streamed; pool {}, prefetch depth {}",
        gb(c.nvme_bytes),
        gb(p.pool_bytes),
        p.prefetch_depth
    );
    let io = &p.io;
    let _ = write!(
        o,
        "  io    dense reads of {} at queue depth {} -> {:.2} GB/s",
        size(io.dense_block_bytes),
        io.queue_depth,
        io.dense_gbps
    );
    if !s.units.experts.is_empty() {
        let _ = write!(
            o,
            "; expert slices of {} at depth {} -> {:.2} GB/s",
            size(io.expert_block_bytes),
            io.expert_queue_depth,
            io.expert_gbps
        );
    }
    let _ = writeln!(o, "; {} threads", io.threads);
    if p.expert_cache.bytes > 0 {
        let _ = writeln!(
            o,
            "  expert cache {} ({}), hit rate {:.1}%",
            gb(p.expert_cache.bytes),
            p.expert_cache.policy,
            p.expert_cache.hit_rate * 100.0
        );
    }

    let _ = writeln!(o, "\ngroups:");
    let _ = writeln!(
        o,
        "  {:<15} {:>11} {:>11} {:>11}  why",
        "group", "gpu", "ram", "nvme"
    );
    let mut by_group: BTreeMap<Group, [u64; 3]> = BTreeMap::new();
    for (u, &t) in s.units.units.iter().zip(&s.assignment.units) {
        by_group.entry(u.group).or_default()[t as usize] += u.bytes;
    }
    for (e, sp) in s.units.experts.iter().zip(&s.assignment.experts) {
        let row = by_group.entry(Group::Experts).or_default();
        row[0] += e.expert_bytes * sp.gpu as u64;
        row[1] += e.expert_bytes * sp.ram as u64;
        row[2] += e.expert_bytes * (e.n_expert() - sp.gpu - sp.ram) as u64;
    }
    let fastest = if c.gpu_bytes.is_some() {
        Tier::Gpu
    } else {
        Tier::Ram
    };
    for (g, row) in by_group {
        let why = if row[fastest as usize] == row.iter().sum::<u64>() {
            format!("all on the fastest tier ({})", fastest.name())
        } else {
            let mut r = Vec::new();
            if row[2] > 0 {
                let full = if gpu_binds || ram_binds {
                    "memory is full; "
                } else {
                    ""
                };
                r.push(match g {
                    Group::Experts => {
                        format!("{full}the least used experts stream (misses read after routing)")
                    }
                    Group::Embedding => format!("{full}one row read per token"),
                    _ => format!("{full}streamed with prefetch"),
                });
            }
            if fastest == Tier::Gpu && row[1] > 0 {
                r.push(if gpu_binds {
                    "GPU capacity binds".to_string()
                } else {
                    "RAM tier is as fast per token here".to_string()
                });
            }
            r.join("; ")
        };
        let _ = writeln!(
            o,
            "  {:<15} {:>11} {:>11} {:>11}  {}",
            g.name(),
            gb(row[0]),
            gb(row[1]),
            gb(row[2]),
            why
        );
    }

    let _ = writeln!(o, "\nlayers (what limits each, per token):");
    let mut bounds: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for l in &p.prediction.layers {
        let e = bounds.entry(l.bound()).or_default();
        e.0 += 1;
        e.1 += l.total_s;
    }
    for (b, (n, t)) in bounds {
        let _ = writeln!(o, "  {b:<13} {n:>4} layers  {}", ms(t));
    }
    o
}
