//! The real Gemma 3 270M through llama.cpp: our load path and streamed FFN weights give exactly
//! the greedy tokens plain llama.cpp gives.

mod common;

use common::*;
use model::Inventory;

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
    let model = load_streamed_ffn(&path, &inv);
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
    let streamer = streamer(&model, &inv, &path, pool);
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
    let model = load_streamed_ffn(&path, &inv);
    let readers = vec![runtime::direct_io::DirectReader::open(&path).unwrap()];
    let e = runtime::stream::Streamer::new(model.streamed(), &locations(&inv), readers, 4096)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("pool of 4096 bytes"), "{e}");
}
