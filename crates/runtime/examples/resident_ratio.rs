//! Decode speed of hypura's resident load path against plain llama.cpp, in one process and
//! interleaved, for a machine too noisy for separate runs: every round runs each variant once (in
//! a rotating order), and the ratio of each round's pair is taken before the median, so slow drift
//! in the machine's speed cancels. Prints medians, the median paired ratio and a bootstrap 95%
//! interval of it.
//!   cargo run --release -p runtime --example resident_ratio -- MODEL [ROUNDS] [TOKENS] [THREADS]
//! Variants: `plain` (llama.cpp's defaults: mmap, weight repacking), `hypura` (the model
//! parameters `hypura run` uses for a resident plan on a CPU-only build: O_DIRECT reads into
//! anonymous memory, repacking) and `norepack` (mmap, no repacking: the kernels that streamed
//! tensors run with). Tokens must agree between plain and hypura; norepack may differ from them.

use runtime::{Context, ContextParams, LoadMode, Model, ModelParams, Sampling};
use std::path::PathBuf;

const PROMPT: &str = "The history of the printing press begins";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first().map(PathBuf::from) else {
        fail("usage: resident_ratio MODEL [ROUNDS] [TOKENS] [THREADS]");
    };
    let number = |i: usize, default: u32| -> u32 {
        args.get(i).map_or(default, |a| {
            a.parse()
                .unwrap_or_else(|_| fail(&format!("not a number: {a}")))
        })
    };
    let (rounds, tokens, threads) = (number(1, 20), number(2, 32), number(3, 1));
    if rounds == 0 || tokens < 2 {
        fail("ROUNDS must be at least 1 and TOKENS at least 2");
    }
    let plain = ModelParams::llama_defaults();
    let hypura = ModelParams {
        load_mode: LoadMode::DirectIo,
        ..ModelParams::llama_defaults()
    };
    let norepack = ModelParams {
        use_extra_bufts: false,
        ..ModelParams::llama_defaults()
    };
    let variants: Vec<(&str, Model)> =
        [("plain", plain), ("hypura", hypura), ("norepack", norepack)]
            .into_iter()
            .map(|(name, p)| {
                let m = Model::load(&path, &p).unwrap_or_else(|e| fail(&e.to_string()));
                (name, m)
            })
            .collect();
    let mut speeds = vec![Vec::new(); variants.len()];
    let mut first: Vec<Option<Vec<i32>>> = vec![None; variants.len()];
    for round in 0..rounds as usize {
        for k in 0..variants.len() {
            let i = (round + k) % variants.len();
            let (name, model) = &variants[i];
            let (tok_s, ids) = decode(model, tokens as usize, threads);
            match &first[i] {
                None => first[i] = Some(ids),
                Some(r) if *r != ids => fail(&format!("{name} generated other tokens than before")),
                Some(_) => {}
            }
            speeds[i].push(tok_s);
        }
    }
    if first[0] != first[1] {
        fail("hypura's load path generated other tokens than plain llama.cpp");
    }
    println!(
        "{}: {rounds} rounds of {tokens} tokens, {threads} threads; plain and hypura give the same \
         tokens, norepack {}",
        path.display(),
        if first[2] == first[0] { "too" } else { "other ones" }
    );
    for (i, (name, _)) in variants.iter().enumerate() {
        let mut s = speeds[i].clone();
        println!(
            "{name:<15} median {:8.2} tok/s (range {:.2}-{:.2})",
            median(&mut s),
            s[0],
            s[s.len() - 1]
        );
    }
    for (a, b) in [(1, 0), (2, 0)] {
        let ratios: Vec<f64> = speeds[a]
            .iter()
            .zip(&speeds[b])
            .map(|(x, y)| x / y)
            .collect();
        let (lo, hi) = bootstrap_interval(&ratios);
        println!(
            "{:>15} / {:<15} paired median {:.3}, 95% interval {lo:.3}-{hi:.3}",
            variants[a].0,
            variants[b].0,
            median(&mut ratios.clone())
        );
    }
}

/// Decode tok/s (prompt excluded) and the token ids of one greedy generation.
fn decode(model: &Model, tokens: usize, threads: u32) -> (f64, Vec<i32>) {
    let prompt = model
        .tokenize(PROMPT, true)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let params = ContextParams {
        n_ctx: (prompt.len() + tokens) as u32,
        n_threads: threads,
        op_offload: true,
        ..ContextParams::DEFAULT
    };
    let mut ctx = Context::new(model, params, None).unwrap_or_else(|e| fail(&e.to_string()));
    let sampling = Sampling {
        ignore_eos: true,
        ..Sampling::GREEDY
    };
    let g = ctx
        .generate(&prompt, tokens, sampling)
        .unwrap_or_else(|e| fail(&e.to_string()));
    (g.decode_tok_per_s(), g.tokens)
}

/// Sorts `v` and returns its median.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// 2.5th and 97.5th percentiles of the median over 2000 resamples (a fixed seed, so reruns on
/// the same data agree).
fn bootstrap_interval(v: &[f64]) -> (f64, f64) {
    let mut rng = seeded::Xoshiro256::new(0x9e37_79b9_7f4a_7c15);
    let mut next = || rng.next_u64();
    let mut medians: Vec<f64> = (0..2000)
        .map(|_| {
            let mut s: Vec<f64> = (0..v.len()).map(|_| v[next() as usize % v.len()]).collect();
            median(&mut s)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    (medians[50], medians[1949])
}

fn fail(msg: &str) -> ! {
    eprintln!("resident_ratio: {msg}");
    std::process::exit(1);
}
