//! Decode speed on the real Gemma 3 270M: plain llama.cpp (defaults) vs hypura's load path with
//! everything resident vs FFN weights streamed through a pool of a quarter of their bytes.
//! Only the per-token decode steps are timed (not the prompt, not loading).
//!   cargo bench -p runtime --bench decode

use criterion::{criterion_group, criterion_main, Criterion};
use runtime::direct_io::DirectReader;
use runtime::plan::name_patterns;
use runtime::stream::Streamer;
use runtime::{Context, ContextParams, LoadMode, Model, ModelParams, Sampling};
use solver::Inventory;
use std::collections::HashMap;
use std::time::Duration;

const TOKENS: usize = 8;
/// One thread: on a shared, oversubscribed machine ggml's spinning thread barrier makes two
/// threads slower and far noisier than one.
const THREADS: u32 = 1;

fn decode_time(model: &Model, streamer: impl Fn() -> Option<Streamer>, iters: u64) -> Duration {
    let prompt = model
        .tokenize("The history of the printing press", true)
        .unwrap();
    let mut total = 0.0;
    for _ in 0..iters {
        let params = ContextParams {
            n_ctx: 128,
            n_threads: THREADS,
        };
        let mut ctx = Context::new(model, params, streamer()).unwrap();
        let g = ctx.generate(&prompt, TOKENS, Sampling::GREEDY).unwrap();
        total += g.token_s.iter().sum::<f64>();
    }
    Duration::from_secs_f64(total)
}

fn bench(c: &mut Criterion) {
    let path = solver::testdata::gemma_3_270m().unwrap_or_else(|e| panic!("{e}"));
    let inv = Inventory::from_gguf(&path).unwrap();
    let ffn: Vec<String> = inv
        .tensors
        .iter()
        .filter(|t| t.name.contains(".ffn_") && !t.name.contains("norm"))
        .map(|t| t.name.clone())
        .collect();
    let locations: HashMap<String, (usize, u64)> = inv
        .tensors
        .iter()
        .map(|t| (t.name.clone(), (0, t.offset.unwrap())))
        .collect();
    let ours = |streamed: Vec<String>| ModelParams {
        load_mode: LoadMode::DirectIo,
        use_extra_bufts: false,
        streamed,
        host: Vec::new(),
    };
    let plain = Model::load(&path, &ModelParams::llama_defaults()).unwrap();
    let resident = Model::load(&path, &ours(Vec::new())).unwrap();
    let streamed = Model::load(&path, &ours(name_patterns(&ffn))).unwrap();
    let ffn_bytes: u64 = streamed.streamed().iter().map(|t| t.reserved as u64).sum();
    let largest = streamed
        .streamed()
        .iter()
        .map(|t| t.reserved as u64)
        .max()
        .unwrap();
    let pool = (ffn_bytes / 4).max(largest);

    let mut g = c.benchmark_group(format!("gemma-3-270m decode {TOKENS} tokens"));
    g.sample_size(10);
    g.bench_function("plain llama.cpp", |b| {
        b.iter_custom(|n| decode_time(&plain, || None, n))
    });
    g.bench_function("hypura resident", |b| {
        b.iter_custom(|n| decode_time(&resident, || None, n))
    });
    g.bench_function("hypura FFN streamed, pool 1/4", |b| {
        b.iter_custom(|n| {
            decode_time(
                &streamed,
                || {
                    let r = vec![DirectReader::open(&path).unwrap()];
                    Some(Streamer::new(streamed.streamed(), &locations, r, pool).unwrap())
                },
                n,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
