//! Helpers of the tests on the real Gemma 3 270M: the model, plain llama.cpp's greedy tokens, the
//! FFN weights as streamed tensors, and page residency.
#![allow(dead_code)]

use runtime::direct_io::DirectReader;
use runtime::io_pool::IoStats;
use runtime::plan::name_patterns;
use runtime::stream::{StreamStats, Streamer};
use runtime::{Context, ContextParams, LoadMode, Model, ModelParams, Sampling};
use solver::Inventory;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const PROMPT: &str = "The capital of France is";
pub const N_PREDICT: usize = 24;
pub const PARAMS: ContextParams = ContextParams {
    n_ctx: 256,
    n_threads: 2,
};

pub fn gemma() -> PathBuf {
    solver::testdata::gemma_3_270m().unwrap_or_else(|e| panic!("{e}"))
}

/// What a greedy run produced: tokens, or the error that stopped it, and the streamer's counters.
pub struct Run {
    pub tokens: runtime::Result<Vec<i32>>,
    pub stats: Option<StreamStats>,
    pub io: Option<IoStats>,
}

pub fn run(model: &Model, streamer: Option<Streamer>) -> Run {
    let prompt = model.tokenize(PROMPT, true).unwrap();
    let mut ctx = Context::new(model, PARAMS, streamer).unwrap();
    let tokens = ctx
        .generate(&prompt, N_PREDICT, Sampling::GREEDY)
        .map(|g| g.tokens);
    Run {
        tokens,
        stats: ctx.streamer().map(|s| s.stats()),
        io: ctx.streamer().map(|s| s.io_stats()),
    }
}

pub fn greedy(model: &Model, streamer: Option<Streamer>) -> (Vec<i32>, Option<StreamStats>) {
    let r = run(model, streamer);
    (r.tokens.unwrap(), r.stats)
}

pub fn plain_llama(path: &Path) -> Vec<i32> {
    let model = Model::load(path, &ModelParams::llama_defaults()).unwrap();
    greedy(&model, None).0
}

pub fn ffn_names(inv: &Inventory) -> Vec<String> {
    inv.tensors
        .iter()
        .filter(|t| t.name.contains(".ffn_") && !t.name.contains("norm"))
        .map(|t| t.name.clone())
        .collect()
}

pub fn locations(inv: &Inventory) -> HashMap<String, (usize, u64)> {
    inv.tensors
        .iter()
        .map(|t| (t.name.clone(), (t.file as usize, t.offset.unwrap())))
        .collect()
}

/// The model at `path` loaded our way, with the FFN weights streamed.
pub fn load_streamed_ffn(path: &Path, inv: &Inventory) -> Model {
    Model::load(
        path,
        &ModelParams {
            load_mode: LoadMode::DirectIo,
            use_extra_bufts: false,
            streamed: name_patterns(&ffn_names(inv)),
            host: Vec::new(),
        },
    )
    .unwrap()
}

/// A streamer of `model`'s streamed tensors, read from `path`, with a pool of `pool` bytes.
pub fn streamer(model: &Model, inv: &Inventory, path: &Path, pool: u64) -> Streamer {
    let readers = vec![DirectReader::open(path).unwrap()];
    Streamer::new(model.streamed(), &locations(inv), readers, pool).unwrap()
}

/// Resident pages of a page-aligned range (mincore).
pub fn resident_pages(data: *mut u8, len: usize) -> usize {
    let pages = len.div_ceil(4096);
    let mut vec = vec![0u8; pages];
    // SAFETY: the range is mapped (reserved address space of a live model).
    let rc = unsafe { libc::mincore(data.cast(), len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0);
    vec.iter().filter(|&&b| b & 1 != 0).count()
}
