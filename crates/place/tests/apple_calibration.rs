//! The shipped Apple profiles against public measurements: llama.cpp's tg128 and pp512 of
//! LLaMA-2 7B (F16, Q8_0, Q4_0, fully resident on the GPU) from its Apple Silicon benchmark
//! table, ggml-org/llama.cpp discussion #4167. `hypura solve` must predict each decode rate
//! within 15% and each prompt rate (`--prompt-len 512`) within 20%.

use hw::HwProfile;
use model::catalog;
use place::{Headroom, SolveOptions};
use std::path::PathBuf;

/// (profile, catalog model, measured tg128 and pp512 tokens per second).
const MEASURED: &[(&str, &str, f64, f64)] = &[
    ("m1max", "llama-2-7b:f16", 23.03, 599.53),
    ("m1max", "llama-2-7b:q8_0", 40.20, 537.37),
    ("m1max", "llama-2-7b:q4_0", 61.19, 530.06),
    ("m2max", "llama-2-7b:f16", 24.65, 755.67),
    ("m2max", "llama-2-7b:q8_0", 41.83, 677.91),
    ("m2max", "llama-2-7b:q4_0", 65.95, 671.31),
    ("m3max", "llama-2-7b:f16", 25.09, 779.17),
    ("m3max", "llama-2-7b:q8_0", 42.75, 757.64),
    ("m3max", "llama-2-7b:q4_0", 66.31, 759.70),
    ("m4max", "llama-2-7b:f16", 31.64, 922.83),
    ("m4max", "llama-2-7b:q8_0", 54.05, 891.94),
    ("m4max", "llama-2-7b:q4_0", 83.06, 885.68),
    // The F16 file (12.6 GiB) does not fit a 16 GB Mac's GPU working set.
    ("m4-16g", "llama-2-7b:q8_0", 13.54, 230.18),
    ("m4-16g", "llama-2-7b:q4_0", 24.11, 221.29),
];

fn profile(name: &str) -> HwProfile {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles")
        .join(format!("{name}.toml"));
    HwProfile::load(&p).unwrap()
}

#[test]
fn apple_profiles_predict_llama_cpp_decode_within_15_percent() {
    let mut failures = Vec::new();
    println!(
        "{:<8} {:<18} {:>9} {:>9} {:>7}",
        "profile", "model", "measured", "predicted", "error"
    );
    for &(hw_name, spec, measured, _) in MEASURED {
        let hw = profile(hw_name);
        let inv = catalog::lookup(spec).unwrap();
        // tg128 after an empty prompt: the KV cache never holds more than 128 tokens.
        let opts = SolveOptions {
            headroom: Headroom {
                ctx: 128,
                ..Headroom::default()
            },
            ..SolveOptions::default()
        };
        let solved = place::solve(&inv, &hw, &opts).unwrap();
        assert_eq!(
            solved.plan.mode,
            place::Mode::FullResident,
            "{spec} on {hw_name}"
        );
        let off_gpu: Vec<&String> = solved
            .plan
            .tensors
            .iter()
            .filter(|(name, t)| **t != place::TensorPlace::Gpu && *name != "token_embd.weight")
            .map(|(name, _)| name)
            .collect();
        assert!(
            off_gpu.is_empty(),
            "{spec} on {hw_name}: off the GPU: {off_gpu:?}"
        );
        let predicted = solved.plan.prediction.tok_per_s;
        let error = predicted / measured - 1.0;
        println!(
            "{hw_name:<8} {spec:<18} {measured:>9.2} {predicted:>9.2} {:>+6.1}%",
            error * 100.0
        );
        if error.abs() > 0.15 {
            failures.push(format!(
                "{spec} on {hw_name}: {predicted:.2} vs {measured:.2}"
            ));
        }
    }
    assert!(failures.is_empty(), "off by more than 15%: {failures:?}");
}

#[test]
fn apple_profiles_predict_llama_cpp_prefill_within_20_percent() {
    let mut failures = Vec::new();
    println!(
        "{:<8} {:<18} {:>9} {:>9} {:>7}",
        "profile", "model", "measured", "predicted", "error"
    );
    for &(hw_name, spec, _, measured) in MEASURED {
        let hw = profile(hw_name);
        let inv = catalog::lookup(spec).unwrap();
        // pp512: one 512-token batch into an empty KV cache.
        let opts = SolveOptions {
            headroom: Headroom {
                ctx: 512,
                ..Headroom::default()
            },
            prompt_len: 512,
            ..SolveOptions::default()
        };
        let solved = place::solve(&inv, &hw, &opts).unwrap();
        assert_eq!(
            solved.plan.mode,
            place::Mode::FullResident,
            "{spec} on {hw_name}"
        );
        let predicted = solved
            .plan
            .prediction
            .prefill
            .as_ref()
            .expect("a prompt length gives a prefill prediction")
            .tok_per_s;
        let error = predicted / measured - 1.0;
        println!(
            "{hw_name:<8} {spec:<18} {measured:>9.2} {predicted:>9.2} {:>+6.1}%",
            error * 100.0
        );
        if error.abs() > 0.20 {
            failures.push(format!(
                "{spec} on {hw_name}: {predicted:.2} vs {measured:.2}"
            ));
        }
    }
    assert!(failures.is_empty(), "off by more than 20%: {failures:?}");
}
