//! Prefill in the cost model and the `prompt_len` objective: monotone in prompt length, batched
//! reads, and no change at all when no prompt length is given.

use hw::HwProfile;
use model::catalog;
use place::{self, cost::expert_touches, Assignment, Method, SolveOptions, Tier};
use std::path::PathBuf;

fn profile(name: &str) -> HwProfile {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles")
        .join(format!("{name}.toml"));
    HwProfile::load(&p).unwrap()
}

fn solve_with(model: &str, hw: &str, method: Method, prompt_len: u64) -> place::Solved {
    let inv = catalog::lookup(model).unwrap();
    let opts = SolveOptions {
        method,
        prompt_len,
        ..SolveOptions::default()
    };
    place::solve(&inv, &profile(hw), &opts).unwrap()
}

const PROMPTS: [u64; 7] = [1, 2, 16, 128, 512, 2048, 8192];

#[test]
fn longer_prompts_never_predict_less_prefill_time() {
    for (model, hw) in [
        ("mixtral-8x7b:q5_k_m", "m1max"),
        ("deepseek-v3", "m1max"),
        ("llama-3.3-70b", "m4-16g"),
        ("llama-3.3-70b", "h100-pcie-80g"),
    ] {
        let s = solve_with(model, hw, Method::Ilp, 0);
        let mut assignments = vec![s.assignment.clone(), s.greedy.clone()];
        for t in Tier::ALL {
            assignments.push(Assignment::all_on(&s.units, t));
        }
        for a in &assignments {
            let times: Vec<f64> = PROMPTS
                .iter()
                .map(|&n| place::prefill_time(&s.cost, &s.units, a, n))
                .collect();
            for w in times.windows(2) {
                assert!(w[1] >= w[0], "{model}@{hw}: {times:?}");
            }
            // Batching amortises weight reads: prefill is never slower per token than decode.
            let decode = s.cost.predict(&s.units, a).token_s;
            for (&n, &t) in PROMPTS.iter().zip(&times) {
                assert!(t / n as f64 <= decode * (1.0 + 1e-12), "{model}@{hw} n={n}");
            }
        }
    }
}

#[test]
fn a_long_prompt_touches_nearly_every_expert() {
    let s = solve_with("mixtral-8x7b:q5_k_m", "m1max", Method::Greedy, 0);
    let e = &s.units.experts[0];
    // Uniform top-2 of 8: one token reads 2 experts, 512 tokens read all 8 (1 - 0.75^512).
    let one: f64 = expert_touches(e, 0, 0, 1).iter().map(|t| t.1).sum();
    let many: f64 = expert_touches(e, 0, 0, 512).iter().map(|t| t.1).sum();
    assert!((one - 2.0).abs() < 1e-9, "{one}");
    assert!((many - 8.0).abs() < 1e-9, "{many}");
}

#[test]
fn prompt_len_zero_is_the_decode_only_plan() {
    let default = solve_with("mixtral-8x7b:q5_k_m", "m1max", Method::Ilp, 0);
    let inv = catalog::lookup("mixtral-8x7b:q5_k_m").unwrap();
    let plain = place::solve(&inv, &profile("m1max"), &SolveOptions::default()).unwrap();
    assert_eq!(default.plan, plain.plan);
    assert!(plain.plan.prediction.prefill.is_none());
    assert!(!plain.plan.to_json().contains("prefill"));
    // A one-token batch is a decode step.
    let a = &plain.assignment;
    assert_eq!(
        plain.cost.predict_batch(&plain.units, a, 1),
        plain.cost.predict(&plain.units, a)
    );
}

#[test]
fn prompt_len_reports_prefill_and_optimises_the_request_time() {
    for (model, hw) in [
        ("mixtral-8x7b:q5_k_m", "m1max"),
        ("llama-3.3-70b", "m4-16g"),
    ] {
        let decode_only = solve_with(model, hw, Method::Ilp, 0);
        let s = solve_with(model, hw, Method::Ilp, 512);
        let pf = s
            .plan
            .prediction
            .prefill
            .as_ref()
            .expect("prefill reported");
        assert_eq!(pf.prompt_len, 512);
        assert!(pf.prefill_s > 0.0 && (pf.tok_per_s * pf.prefill_s - 512.0).abs() < 1e-6);
        let sv = &s.plan.solver;
        let request = s.plan.prediction.token_s + pf.prefill_s;
        assert!((sv.objective_s - request).abs() <= 1e-9 * request, "{sv:?}");
        assert!(sv.objective_s <= sv.greedy_objective_s * (1.0 + 1e-9));
        assert!(sv.lp_bound_s.unwrap() <= sv.objective_s * (1.0 + 1e-9));
        // The request-optimal plan is no slower on requests than the decode-optimal one, and
        // within the MIP gap of it.
        let other = place::request_time(&s.cost, &s.units, &decode_only.assignment, 512);
        assert!(
            sv.objective_s <= other * (1.0 + s.plan.solver.gap.unwrap_or(0.0) + 5e-3),
            "{model}@{hw}: {} vs {other}",
            sv.objective_s
        );
        assert!(place::explain::render(&s).contains("prefill:  512 prompt tokens"));
    }
}

/// A prompt batch pays the profile's batch overhead for each weight tensor of the model (its
/// inventory), a decode step and a one-token batch the decode overhead. (Plans that stream
/// nothing: a streamed read can hide a fixed cost.)
#[test]
fn a_batch_pays_the_batch_overhead_per_tensor_and_a_decode_step_does_not() {
    for (model, hw) in [
        ("llama-3.3-70b", "h100-pcie-80g"),
        ("llama-2-7b:q4_0", "m1max"),
    ] {
        let inv = catalog::lookup(model).unwrap();
        let s = solve_with(model, hw, Method::Greedy, 0);
        assert_eq!(s.plan.mode, plan::Mode::FullResident, "{model}@{hw}");
        let without = place::cost::CostModel {
            batch_tensor_overhead_s: None,
            ..s.cost.clone()
        };
        let extra = 25e-6;
        let with = place::cost::CostModel {
            batch_tensor_overhead_s: Some(without.tensor_overhead_s + extra),
            ..s.cost.clone()
        };
        let a = &s.assignment;
        assert_eq!(
            with.predict(&s.units, a).token_s,
            without.predict(&s.units, a).token_s,
            "{hw}: decode"
        );
        assert_eq!(
            place::prefill_time(&with, &s.units, a, 1),
            place::prefill_time(&without, &s.units, a, 1),
            "{hw}: a one-token batch is a decode step"
        );
        for n in [2, 16, 512] {
            let more = place::prefill_time(&with, &s.units, a, n)
                - place::prefill_time(&without, &s.units, a, n);
            let expected = extra * inv.tensors.len() as f64;
            assert!(
                (more / expected - 1.0).abs() < 1e-9,
                "{hw} n={n}: {more} s more, expected {expected}"
            );
        }
    }
}

/// A prompt batch computes the logits of its last token alone (llama.cpp computes the outputs a
/// batch asks for): the head's FLOPs are one token's whatever the batch, tied to the token
/// embedding or not; every other unit's scale with the tokens, and an untied embedding reads a
/// row per token and computes nothing.
#[test]
fn a_batch_computes_the_head_for_its_last_token_only() {
    for (model, tied) in [("llama-2-7b:q4_0", false), ("gemma-3-270m", true)] {
        let inv = catalog::lookup(model).unwrap();
        let units = place::units::Units::build(&inv, None).unwrap();
        // The head matrix (and the output norm, applied to the outputs alone).
        let head = units
            .units
            .iter()
            .filter(|u| u.is_head())
            .max_by(|a, b| a.flops.total_cmp(&b.flops))
            .unwrap();
        assert_eq!(
            head.group == model::Group::Embedding,
            tied,
            "{model}: {head:?}"
        );
        assert!(head.bytes > 100 << 20, "{model}: {head:?}");
        for u in &units.units {
            let one = place::cost::batch_work(u, 1);
            let w = place::cost::batch_work(u, 16);
            assert_eq!(
                w.bytes,
                if u.row_reads() { 16.0 } else { 1.0 } * one.bytes,
                "{}",
                u.name
            );
            let tokens = if u.is_head() { 1.0 } else { 16.0 };
            assert_eq!(w.flops, tokens * one.flops, "{model}: {}", u.name);
            assert_eq!(
                w.reuse_flops,
                (tokens - 1.0) * one.flops,
                "{model}: {}",
                u.name
            );
        }
    }
}
