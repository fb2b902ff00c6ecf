//! Importers on the real recorded traces in `../shared/data/traces`.

mod common;

use common::shared_data;
use traces::import::{import, Options, Source};

#[test]
fn deepseek_v2_lite_csv_directory() {
    let dir = shared_data().join("traces/deepseek-v2-lite");
    let t = import(Source::DeepseekCsv, &dir, &Options::default()).unwrap();
    let m = t.model();
    assert_eq!(m.architecture, "deepseek2");
    assert_eq!(m.moe_layers, (1..=26).collect::<Vec<u32>>());
    assert_eq!((m.n_expert, m.top_k, m.n_shared_expert), (64, 6, 2));
    assert_eq!(t.n_sequences(), 300);
    assert_eq!(t.n_tokens(), 22_287);
    assert_eq!(t.n_selections(), 22_287 * 26);
    assert_eq!(t.n_expert_ids(), 3_476_772);
    let first = t.sequence(0);
    assert_eq!(first.id, "prompt_0001");
    assert_eq!(first.tokens, 0..33, "prompt_0001.csv has 33 rows per layer");
    assert_eq!(t.sequence(299).id, "prompt_0300");
    // First rows of layers 1 and 2 of prompt_0001.csv, in router order.
    assert_eq!(t.selection(0, 0), [8, 26, 56, 57, 60, 43]);
    assert_eq!(t.selection(0, 1), [3, 35, 38, 62, 63, 60]);
    assert_eq!(t.selection(2, 0), [5, 8, 10, 45, 63, 26]);
    assert_eq!(t.text(0), Some("<｜begin▁of▁sentence｜>"));
    assert_eq!(t.text(1), Some("How"));
    assert!(!t.has_weights() && t.phase(0).is_none());
}

#[test]
fn switch_base_8_router_trace() {
    let dir = shared_data().join("traces/switch-base-8");
    let t = import(Source::SwitchJson, &dir, &Options::default()).unwrap();
    let m = t.model();
    assert_eq!(
        m.moe_layers,
        [1, 3, 5, 7, 9, 11],
        "sparse encoder blocks from capture-metadata.json"
    );
    assert_eq!((m.n_expert, m.top_k), (8, 1));
    assert_eq!(t.n_sequences(), 10);
    assert_eq!(t.n_tokens(), 215);
    assert_eq!(t.n_selections(), 1290);
    assert_eq!(t.sequence(0).id, "security-01");
    assert_eq!(t.sequence(0).tokens, 0..21);
    assert_eq!(t.sequence(9).tokens, 192..215);
    let token0: Vec<u16> = (0..6).flat_map(|l| t.selection(0, l).to_vec()).collect();
    assert_eq!(token0, [7, 0, 2, 1, 3, 7]);
}

#[test]
fn switch_trace_file_alone_is_one_sequence_per_metadata() {
    // Naming the file instead of the directory still finds the metadata beside it.
    let file = shared_data().join("traces/switch-base-8/router-trace.v2.json");
    let t = import(Source::SwitchJson, &file, &Options::default()).unwrap();
    assert_eq!((t.n_sequences(), t.n_tokens()), (10, 215));
}

#[test]
fn real_traces_round_trip_through_both_forms() {
    let dir = tempfile::tempdir().unwrap();
    let t = import(
        Source::DeepseekCsv,
        &shared_data().join("traces/deepseek-v2-lite"),
        &Options::default(),
    )
    .unwrap();
    for name in ["ds.json", "ds.htrace"] {
        let path = dir.path().join(name);
        traces::save(&t, &path, false).unwrap();
        assert_eq!(traces::load(&path).unwrap(), t, "{name}");
    }
}
