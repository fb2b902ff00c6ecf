//! `Summary::from_records` on hand-computed inputs, and the edge cases: no records, and a dense
//! model without routed-expert accesses (hit rates absent, never NaN).

use metrics::{RunInfo, Summary, TokenLayerRecord};

fn run_info() -> RunInfo {
    RunInfo {
        source: "sim".into(),
        model: "test-model".into(),
        plan_hash: Some("abc".into()),
        policy: "lru".into(),
        cache_bytes: 1000,
    }
}

/// A step with the given timing and counts; the rest zero.
#[allow(clippy::too_many_arguments)]
fn step(
    token: u32,
    layer: Option<u32>,
    start_s: f64,
    wall_s: f64,
    compute_s: f64,
    io_wait_s: f64,
    bytes_read: u64,
    hits: u32,
    accesses: u32,
) -> TokenLayerRecord {
    TokenLayerRecord {
        token,
        layer,
        start_s,
        wall_s,
        compute_s,
        io_wait_s,
        link_s: 0.0,
        bytes_read,
        bytes_linked: 0,
        expert_hits: hits,
        expert_accesses: accesses,
        prefetch_hits: 0,
        storage_busy_s: io_wait_s,
    }
}

#[test]
fn two_tokens_by_hand() {
    let mut records = vec![
        step(0, Some(0), 0.0, 1.0, 0.5, 0.5, 100, 1, 2),
        step(0, Some(1), 1.0, 2.0, 1.0, 0.5, 200, 2, 2),
        step(1, Some(0), 3.0, 1.0, 1.0, 0.0, 300, 0, 2),
        step(1, Some(1), 4.0, 4.0, 4.0, 0.0, 0, 2, 2),
        step(1, None, 8.0, 1.0, 1.0, 0.0, 0, 0, 0),
    ];
    records[1].link_s = 0.5;
    records[1].bytes_linked = 10;
    records[2].storage_busy_s = 1.0;
    records[3].prefetch_hits = 1;
    // Order of the rows does not matter.
    records.reverse();
    let s = Summary::from_records(run_info(), &records);
    assert_eq!((s.tokens, s.records), (2, 5));
    // Token 0 spans 0..3 s, token 1 spans 3..9 s; the run 0..9 s.
    assert_eq!(s.elapsed_s, 9.0);
    assert_eq!(s.tok_per_s, Some(2.0 / 9.0));
    let lat = s.latency.unwrap();
    // Nearest rank over [3, 6]: p50 is rank ceil(1.0) = 1, p99 rank ceil(1.98) = 2.
    assert_eq!(
        (lat.p50_s, lat.p99_s, lat.mean_s, lat.max_s),
        (3.0, 6.0, 4.5, 6.0)
    );
    assert_eq!(
        (s.expert_hits, s.expert_accesses, s.prefetch_hits),
        (5, 8, 1)
    );
    assert_eq!(s.hit_rate, Some(5.0 / 8.0));
    let layers: Vec<(u32, u64, u64, Option<f64>)> = s
        .per_layer
        .iter()
        .map(|l| (l.layer, l.expert_accesses, l.expert_hits, l.hit_rate))
        .collect();
    assert_eq!(layers, [(0, 4, 1, Some(0.25)), (1, 4, 4, Some(1.0))]);
    assert_eq!((s.bytes_read, s.bytes_linked), (600, 10));
    assert_eq!(s.bytes_read_per_token, Some(300.0));
    assert_eq!(
        (
            s.time.compute_s,
            s.time.io_wait_s,
            s.time.link_s,
            s.time.wall_s
        ),
        (7.5, 1.0, 0.5, 9.0)
    );
    // Busy 0.5 + 0.5 + 1.0 + 0 + 0 = 2 s of 9.
    assert_eq!(s.storage_utilisation, Some(2.0 / 9.0));
    assert_eq!(s.run, run_info());
}

#[test]
fn percentiles_are_nearest_rank() {
    // 100 one-step tokens with latencies 1..=100 s, back to back.
    let mut start = 0.0;
    let records: Vec<TokenLayerRecord> = (1..=100u32)
        .map(|t| {
            let r = step(t, Some(0), start, f64::from(t), f64::from(t), 0.0, 0, 0, 0);
            start += f64::from(t);
            r
        })
        .collect();
    let s = Summary::from_records(run_info(), &records);
    let lat = s.latency.unwrap();
    assert_eq!((lat.p50_s, lat.p99_s, lat.max_s), (50.0, 99.0, 100.0));
    assert_eq!(lat.mean_s, 50.5);
    assert_eq!(s.tok_per_s, Some(100.0 / 5050.0));
}

#[test]
fn no_records_gives_absent_rates() {
    let s = Summary::from_records(run_info(), &[]);
    assert_eq!((s.tokens, s.records, s.elapsed_s), (0, 0, 0.0));
    assert_eq!(s.tok_per_s, None);
    assert_eq!(s.latency, None);
    assert_eq!(s.hit_rate, None);
    assert_eq!(s.bytes_read_per_token, None);
    assert_eq!(s.storage_utilisation, None);
    assert!(s.per_layer.is_empty());
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["tok_per_s"], serde_json::Value::Null);
    assert_eq!(json["latency"], serde_json::Value::Null);
}

#[test]
fn dense_model_has_no_hit_rate_not_nan() {
    let records: Vec<TokenLayerRecord> = (0..3u32)
        .flat_map(|t| {
            (0..2u32).map(move |l| {
                let start = f64::from(t * 2 + l);
                step(t, Some(l), start, 1.0, 1.0, 0.0, 50, 0, 0)
            })
        })
        .collect();
    let s = Summary::from_records(run_info(), &records);
    assert_eq!(s.tokens, 3);
    assert_eq!(s.tok_per_s, Some(0.5));
    assert_eq!(s.hit_rate, None);
    assert_eq!(s.per_layer.len(), 2);
    assert!(s.per_layer.iter().all(|l| l.hit_rate.is_none()));
    assert_eq!(s.bytes_read_per_token, Some(100.0));
    // JSON shows the absent rates as null: serde_json would also print NaN as null, so check
    // the values themselves are absent, and that the text round-trips.
    let text = serde_json::to_string(&s).unwrap();
    assert!(text.contains("\"hit_rate\":null"), "{text}");
    let back: Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
}
