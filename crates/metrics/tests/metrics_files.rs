//! Record files: every format round-trips exactly, the extension picks the format, existing
//! files are kept unless overwriting is asked for, and bad files or records are refused with
//! the file and the line or record named.

use metrics::{read_records, write_records, RecordsFormat, TokenLayerRecord};
use proptest::prelude::*;
use std::path::Path;

fn record(token: u32, layer: Option<u32>) -> TokenLayerRecord {
    TokenLayerRecord {
        token,
        layer,
        start_s: 0.1 * f64::from(token),
        wall_s: 1.0 / 3.0,
        compute_s: 0.2,
        io_wait_s: 0.1,
        link_s: 1e-9,
        bytes_read: 12_345,
        bytes_linked: 7,
        expert_hits: 4,
        expert_accesses: 6,
        prefetch_hits: 1,
        storage_busy_s: 0.05,
    }
}

fn sample() -> Vec<TokenLayerRecord> {
    let mut v = vec![record(0, Some(0)), record(0, Some(1)), record(0, None)];
    // Extremes of every integer column survive the unsigned-in-signed Parquet encoding.
    v.push(TokenLayerRecord {
        token: u32::MAX,
        layer: Some(u32::MAX),
        bytes_read: u64::MAX,
        bytes_linked: u64::MAX - 1,
        expert_hits: u32::MAX,
        expert_accesses: u32::MAX,
        prefetch_hits: u32::MAX,
        ..record(1, Some(2))
    });
    v
}

const EXTENSIONS: [&str; 5] = ["parquet", "json", "jsonl", "ndjson", "PARQUET"];

#[test]
fn every_format_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for ext in EXTENSIONS {
        for records in [sample(), Vec::new()] {
            let path = dir.path().join(format!("r{}.{ext}", records.len()));
            write_records(&path, &records, false).unwrap();
            assert_eq!(read_records(&path).unwrap(), records, "{ext}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn random_records_round_trip(
        rows in prop::collection::vec(
            (any::<u32>(), prop::option::of(any::<u32>()), 0.0f64..1e6, any::<u64>(), any::<u32>(), any::<u32>()),
            0..50,
        )
    ) {
        let records: Vec<TokenLayerRecord> = rows
            .iter()
            .map(|&(token, layer, t, bytes, a, b)| TokenLayerRecord {
                token,
                layer,
                start_s: t,
                wall_s: t / 7.0,
                bytes_read: bytes,
                expert_hits: a.min(b),
                expert_accesses: a.max(b),
                prefetch_hits: a.min(b) / 2,
                ..record(0, None)
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        for ext in ["parquet", "json", "jsonl"] {
            let path = dir.path().join(format!("r.{ext}"));
            write_records(&path, &records, false).unwrap();
            prop_assert_eq!(&read_records(&path).unwrap(), &records);
        }
    }
}

#[test]
fn the_extension_picks_the_format() {
    assert_eq!(
        RecordsFormat::from_path(Path::new("a/b.Parquet")).unwrap(),
        RecordsFormat::Parquet
    );
    assert_eq!(
        RecordsFormat::from_path(Path::new("x.ndjson")).unwrap(),
        RecordsFormat::JsonLines
    );
    let dir = tempfile::tempdir().unwrap();
    for name in ["records.csv", "records"] {
        let path = dir.path().join(name);
        let e = write_records(&path, &sample(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(name) && e.contains("*.parquet") && e.contains("*.jsonl"),
            "{e}"
        );
        assert!(!path.exists());
    }
    let e = read_records(Path::new("r.txt")).unwrap_err().to_string();
    assert!(e.contains("extension .txt"), "{e}");
}

#[test]
fn an_existing_file_is_kept_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.json");
    std::fs::write(&path, "my notes").unwrap();
    let e = write_records(&path, &sample(), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mine.json") && e.contains("already exists"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "my notes");
    write_records(&path, &sample(), true).unwrap();
    assert_eq!(read_records(&path).unwrap(), sample());
    // Nothing but the target is left in the directory (no partial files).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn unwritable_paths_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/r.parquet");
    let e = write_records(&missing, &sample(), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no/such/dir/r.parquet"), "{e}");
    let as_dir = dir.path().join("d.json");
    std::fs::create_dir(&as_dir).unwrap();
    let e = write_records(&as_dir, &sample(), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a directory"), "{e}");
}

#[test]
fn invalid_records_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.parquet");
    let mut bad = sample();
    bad[1].wall_s = f64::NAN;
    let e = write_records(&path, &bad, false).unwrap_err().to_string();
    assert!(e.contains("record 1") && e.contains("wall_s is NaN"), "{e}");
    let mut bad = sample();
    bad[2].expert_hits = 7;
    let e = write_records(&path, &bad, false).unwrap_err().to_string();
    assert!(
        e.contains("record 2 (token 0, layer none)") && e.contains("expert_hits 7"),
        "{e}"
    );
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn bad_files_name_the_file_and_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let good = serde_json::to_string(&record(0, Some(0))).unwrap();
    let jsonl = dir.path().join("r.jsonl");
    std::fs::write(&jsonl, format!("{good}\n{{\"token\": 1}}\n")).unwrap();
    let e = read_records(&jsonl).unwrap_err().to_string();
    assert!(
        e.contains("r.jsonl: line 2") && e.contains("missing field"),
        "{e}"
    );

    let json = dir.path().join("r.json");
    std::fs::write(&json, format!("[\n{good},\n{{\"token\": 1}}\n]\n")).unwrap();
    let e = read_records(&json).unwrap_err().to_string();
    assert!(
        e.contains("r.json: line 3") && e.contains("missing field"),
        "{e}"
    );
    assert!(!e.contains(" at line "), "{e}");
    std::fs::write(&json, format!("[\n{good},\n{good}\n")).unwrap();
    let e = read_records(&json).unwrap_err().to_string();
    assert!(e.contains("r.json: line 4 column 0: EOF"), "{e}");

    // A record read back is checked like one written.
    let mut bad = record(3, Some(1));
    bad.prefetch_hits = 5;
    std::fs::write(&jsonl, serde_json::to_string(&bad).unwrap()).unwrap();
    let e = read_records(&jsonl).unwrap_err().to_string();
    assert!(
        e.contains("record 0 (token 3, layer 1)") && e.contains("prefetch_hits 5"),
        "{e}"
    );

    let pq = dir.path().join("r.parquet");
    std::fs::write(&pq, "not parquet at all").unwrap();
    let e = read_records(&pq).unwrap_err().to_string();
    assert!(e.contains("r.parquet: parquet"), "{e}");

    let e = read_records(&dir.path().join("absent.parquet"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot read") && e.contains("absent.parquet"),
        "{e}"
    );
}
