//! Decode speed on the real Gemma 3 270M: plain llama.cpp (defaults) vs hypura's load path with
//! everything resident vs FFN weights streamed through a pool of a quarter of their bytes.
//! Only the per-token decode steps are timed (not the prompt, not loading).
//!   cargo bench -p runtime --bench decode

#[path = "../tests/common/mod.rs"]
mod common;

use common::{ffn_names, gemma, largest_streamed, load_ours, locations};
use criterion::{criterion_group, criterion_main, Criterion};
use model::Inventory;
use runtime::direct_io::DirectReader;
use runtime::stream::Streamer;
use runtime::{Context, ContextParams, Model, ModelParams, Sampling};
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
            op_offload: true,
            ..ContextParams::DEFAULT
        };
        let mut ctx = Context::new(model, params, streamer()).unwrap();
        let g = ctx.generate(&prompt, TOKENS, Sampling::GREEDY).unwrap();
        total += g.decode_s();
    }
    Duration::from_secs_f64(total)
}

fn bench(c: &mut Criterion) {
    let path = gemma();
    let inv = Inventory::from_gguf(&path).unwrap();
    let locations = locations(&inv);
    let plain = Model::load(&path, &ModelParams::llama_defaults()).unwrap();
    let resident = load_ours(&path, &[]);
    let streamed = load_ours(&path, &ffn_names(&inv));
    let ffn_bytes: u64 = streamed.streamed().iter().map(|t| t.reserved as u64).sum();
    let pool = (ffn_bytes / 4).max(largest_streamed(&streamed));

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
