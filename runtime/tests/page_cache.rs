//! Streamed weights bypass the page cache: after loading with O_DIRECT and a streamed run, none
//! of the model file's FFN pages is cached (with buffered loading, readahead around the resident
//! tensors cached all of them on this machine).

mod common;

use common::{cached_pages, drop_page_cache};
use runtime::direct_io::{CacheMode, DirectReader};
use runtime::plan::name_patterns;
use runtime::stream::Streamer;
use runtime::{Context, ContextParams, LoadMode, Model, ModelParams, Sampling};
use solver::Inventory;
use std::collections::HashMap;
use std::fs::File;

#[test]
fn streamed_ffn_bytes_do_not_enter_the_page_cache() {
    let gemma = solver::testdata::gemma_3_270m().unwrap_or_else(|e| panic!("{e}"));
    // A private copy, so no other process's reads of the shared file can cache its pages.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("gemma.gguf");
    std::fs::copy(&gemma, &path).unwrap();
    let file = File::open(&path).unwrap();
    file.sync_all().unwrap();
    drop_page_cache(&file);
    let before = cached_pages(&file).iter().filter(|&&c| c).count();
    assert!(
        before < 16,
        "{before} pages still cached after POSIX_FADV_DONTNEED"
    );

    let inv = Inventory::from_gguf(&path).unwrap();
    let ffn: Vec<&solver::TensorEntry> = inv
        .tensors
        .iter()
        .filter(|t| t.name.contains(".ffn_") && !t.name.contains("norm"))
        .collect();
    let names: Vec<String> = ffn.iter().map(|t| t.name.clone()).collect();
    let model = Model::load(
        &path,
        &ModelParams {
            load_mode: LoadMode::DirectIo,
            use_extra_bufts: false,
            streamed: name_patterns(&names),
            host: Vec::new(),
        },
    )
    .unwrap();
    let locations: HashMap<String, (usize, u64)> = inv
        .tensors
        .iter()
        .map(|t| (t.name.clone(), (0, t.offset.unwrap())))
        .collect();
    let reader = DirectReader::open(&path).unwrap();
    assert_eq!(
        reader.mode(),
        CacheMode::Direct,
        "the target dir's file system refuses O_DIRECT"
    );
    let largest = model
        .streamed()
        .iter()
        .map(|t| t.reserved as u64)
        .max()
        .unwrap();
    let streamer = Streamer::new(model.streamed(), &locations, vec![reader], 2 * largest).unwrap();
    let prompt = model.tokenize("Once upon a time", true).unwrap();
    let mut ctx = Context::new(
        &model,
        ContextParams {
            n_ctx: 128,
            n_threads: 2,
        },
        Some(streamer),
    )
    .unwrap();
    ctx.generate(&prompt, 4, Sampling::GREEDY).unwrap();
    let stats = ctx.streamer().unwrap().stats();
    let ffn_bytes: u64 = ffn.iter().map(|t| t.bytes).sum();
    // Four decode steps, each re-reading nearly every FFN matrix.
    assert!(stats.bytes_read >= 3 * ffn_bytes, "{stats:?}");

    let cached = cached_pages(&file);
    let page = 4096u64;
    let mut ffn_cached = 0;
    let mut ffn_pages = 0;
    for t in &ffn {
        // Whole pages inside the tensor: boundary pages may hold bytes of resident neighbours.
        let first = t.offset.unwrap().div_ceil(page);
        let end = (t.offset.unwrap() + t.bytes) / page;
        for p in first..end {
            ffn_pages += 1;
            ffn_cached += cached[p as usize] as u64;
        }
    }
    assert!(ffn_pages > 1000);
    assert_eq!(
        ffn_cached, 0,
        "{ffn_cached} of {ffn_pages} FFN pages are in the page cache"
    );
    // The header, read buffered by the GGUF parsers, is cached: the check above can see pages.
    assert!(cached[0], "the header page should be cached after loading");
}
