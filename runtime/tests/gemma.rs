//! The real Gemma 3 270M through llama.cpp: our load path and streamed FFN weights give exactly
//! the greedy tokens plain llama.cpp gives.

mod common;

use common::{ffn_names, gemma, largest_streamed, load_ours, locations};
use runtime::direct_io::DirectReader;
use runtime::stream::Streamer;
use runtime::{Context, ContextParams, Model, ModelParams, Sampling};
use solver::Inventory;
use std::path::Path;

const PROMPT: &str = "The capital of France is";
const N_PREDICT: usize = 24;
const PARAMS: ContextParams = ContextParams {
    n_ctx: 256,
    n_threads: 2,
};

fn greedy(
    model: &Model,
    streamer: Option<Streamer>,
) -> (Vec<i32>, Option<runtime::stream::StreamStats>) {
    let prompt = model.tokenize(PROMPT, true).unwrap();
    let mut ctx = Context::new(model, PARAMS, streamer).unwrap();
    let g = ctx.generate(&prompt, N_PREDICT, Sampling::GREEDY).unwrap();
    (g.tokens, ctx.streamer().map(|s| s.stats()))
}

fn plain_llama(path: &Path) -> Vec<i32> {
    let model = Model::load(path, &ModelParams::llama_defaults()).unwrap();
    greedy(&model, None).0
}

#[test]
fn our_load_path_matches_plain_llama_cpp() {
    let path = gemma();
    let reference = plain_llama(&path);
    assert_eq!(reference.len(), N_PREDICT);
    let ours = load_ours(&path, &[]);
    assert_eq!(greedy(&ours, None).0, reference);
}

#[test]
fn streamed_ffn_under_a_small_pool_matches_plain_llama_cpp() {
    let path = gemma();
    let reference = plain_llama(&path);
    let inv = Inventory::from_gguf(&path).unwrap();
    let ffn = ffn_names(&inv);
    let model = load_ours(&path, &ffn);
    assert_eq!(model.streamed().len(), ffn.len());
    // Nothing streamed was read at load: no page of the reserved memory is resident.
    for t in model.streamed() {
        assert_eq!(
            resident_pages(t.data, t.reserved),
            0,
            "{} was loaded",
            t.name
        );
    }
    let ffn_total: u64 = model.streamed().iter().map(|t| t.reserved as u64).sum();
    let pool = (ffn_total / 4).max(largest_streamed(&model));
    let readers = vec![DirectReader::open(&path).unwrap()];
    let streamer = Streamer::new(model.streamed(), &locations(&inv), readers, pool).unwrap();
    let (tokens, stats) = greedy(&model, Some(streamer));
    let stats = stats.unwrap();
    assert_eq!(tokens, reference);
    assert!(stats.peak_resident_bytes <= pool, "{stats:?} pool {pool}");
    assert!(
        stats.evictions > 0 && stats.fills > ffn.len() as u64,
        "{stats:?}"
    );
    // Pages actually resident never exceed the pool (checked after the run).
    let resident: usize = model
        .streamed()
        .iter()
        .map(|t| resident_pages(t.data, t.reserved))
        .sum();
    assert!((resident * 4096) as u64 <= pool);
}

#[test]
fn a_pool_smaller_than_one_tensor_is_refused() {
    let path = gemma();
    let inv = Inventory::from_gguf(&path).unwrap();
    let ffn = ffn_names(&inv);
    let model = load_ours(&path, &ffn);
    let readers = vec![DirectReader::open(&path).unwrap()];
    let e = Streamer::new(model.streamed(), &locations(&inv), readers, 4096)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("pool of 4096 bytes"), "{e}");
}

/// Resident pages of a page-aligned range (mincore).
fn resident_pages(data: *mut u8, len: usize) -> usize {
    let pages = len.div_ceil(4096);
    let mut vec = vec![0u8; pages];
    // SAFETY: the range is mapped (reserved address space of a live model).
    let rc = unsafe { libc::mincore(data.cast(), len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0);
    vec.iter().filter(|&&b| b & 1 != 0).count()
}
