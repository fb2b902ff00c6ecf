//! Streamed weights bypass the page cache: after loading with O_DIRECT and a streamed run, none
//! of the model file's FFN pages is cached (with buffered loading, readahead around the resident
//! tensors cached all of them on this machine).

mod common;

use common::{ffn_names, ffn_tensors, gemma, largest_streamed, load_ours, locations};
use model::Inventory;
use runtime::direct_io::{CacheMode, DirectReader};
use runtime::page_cache::{cached_inside, cached_pages, drop_cached};
use runtime::stream::Streamer;
use runtime::{Context, ContextParams, Sampling};
use std::fs::File;

#[test]
fn streamed_ffn_bytes_do_not_enter_the_page_cache() {
    let gemma = gemma();
    // A private copy, so no other process's reads of the shared file can cache its pages.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("gemma.gguf");
    std::fs::copy(&gemma, &path).unwrap();
    let file = File::open(&path).unwrap();
    file.sync_all().unwrap();
    drop_cached(&file).unwrap();
    let before = cached_pages(&file).unwrap().iter().filter(|&&c| c).count();
    assert!(
        before < 16,
        "{before} pages still cached after POSIX_FADV_DONTNEED"
    );

    let inv = Inventory::from_gguf(&path).unwrap();
    let ffn = ffn_tensors(&inv);
    let model = load_ours(&path, &ffn_names(&inv));
    let reader = DirectReader::open(&path).unwrap();
    assert_eq!(
        reader.mode(),
        CacheMode::Direct,
        "the target dir's file system refuses O_DIRECT"
    );
    let pool = 2 * largest_streamed(&model);
    let streamer = Streamer::new(model.streamed(), &locations(&inv), vec![reader], pool).unwrap();
    let prompt = model.tokenize("Once upon a time", true).unwrap();
    let mut ctx = Context::new(
        &model,
        ContextParams {
            n_ctx: 128,
            n_threads: 2,
            op_offload: true,
            ..ContextParams::DEFAULT
        },
        Some(streamer),
    )
    .unwrap();
    ctx.generate(&prompt, 4, Sampling::GREEDY).unwrap();
    let stats = ctx.streamer().unwrap().stats();
    let ffn_bytes: u64 = ffn.iter().map(|t| t.bytes).sum();
    // Four decode steps, each re-reading nearly every FFN matrix.
    assert!(stats.bytes_read >= 3 * ffn_bytes, "{stats:?}");

    let cached = cached_pages(&file).unwrap();
    let mut ffn_cached = 0;
    let mut ffn_pages = 0;
    for t in &ffn {
        // Whole pages inside the tensor: boundary pages may hold bytes of resident neighbours.
        let (hits, pages) = cached_inside(&cached, t.offset.unwrap(), t.bytes);
        ffn_cached += hits;
        ffn_pages += pages;
    }
    assert!(ffn_pages > 1000);
    assert_eq!(
        ffn_cached, 0,
        "{ffn_cached} of {ffn_pages} FFN pages are in the page cache"
    );
    // The header, read buffered by the GGUF parsers, is cached: the check above can see pages.
    assert!(cached[0], "the header page should be cached after loading");
}
