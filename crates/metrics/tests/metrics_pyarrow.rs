//! An independent reader agrees with ours: pyarrow (pinned in scripts/requirements.txt) reads a
//! records Parquet file we wrote with the declared column types and the exact values, and we
//! read a file pyarrow wrote (columns reordered, signed integer types, its default codec).

use metrics::{read_records, write_records, TokenLayerRecord};
use std::process::Command;

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 is not runnable ({e}); run scripts/setup.sh"));
    assert!(
        out.status.success(),
        "python3 failed (this test needs pyarrow from scripts/requirements.txt: run scripts/setup.sh \
         or `pip install -r scripts/requirements.txt`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn records() -> Vec<TokenLayerRecord> {
    (0..5u32)
        .map(|i| TokenLayerRecord {
            token: i / 2,
            layer: (i != 4).then_some(i % 2),
            start_s: f64::from(i) / 3.0,
            wall_s: 0.1 + f64::from(i),
            compute_s: 0.1,
            io_wait_s: f64::from(i) * 1e-7,
            link_s: 0.0,
            bytes_read: 1 << (40 + i),
            bytes_linked: u64::from(i),
            expert_hits: i,
            expert_accesses: 6,
            prefetch_hits: i / 2,
            storage_busy_s: 0.25,
        })
        .collect()
}

const READ: &str = r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(json.dumps({
    "types": {f.name: str(f.type) for f in t.schema},
    "meta": {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()},
    "rows": t.to_pylist(),
}))
"#;

#[test]
fn pyarrow_reads_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.parquet");
    let recs = records();
    write_records(&path, &recs, false).unwrap();
    let out: serde_json::Value =
        serde_json::from_str(&python(READ, &[path.to_str().unwrap()])).unwrap();
    let types = &out["types"];
    for (col, ty) in [
        ("token", "uint32"),
        ("layer", "uint32"),
        ("start_s", "double"),
        ("bytes_read", "uint64"),
        ("expert_accesses", "uint32"),
        ("storage_busy_s", "double"),
    ] {
        assert_eq!(types[col], ty, "{col}: {types}");
    }
    assert_eq!(
        out["meta"]["hypura.schema"],
        metrics::SCHEMA_ID,
        "{}",
        out["meta"]
    );
    // pyarrow's rows, as JSON objects, are exactly our records (null layer included).
    let rows: Vec<TokenLayerRecord> = serde_json::from_value(out["rows"].clone()).unwrap();
    assert_eq!(rows, recs);
}

const WRITE: &str = r#"
import json, sys
import pyarrow as pa, pyarrow.parquet as pq
rows = json.loads(sys.argv[2])
cols = list(reversed(list(rows[0].keys())))
ints = {"token", "layer", "bytes_read", "bytes_linked", "expert_hits", "expert_accesses", "prefetch_hits"}
t = pa.table({c: pa.array([r[c] for r in rows], type=pa.int64() if c in ints else pa.float64()) for c in cols})
pq.write_table(t, sys.argv[1])
"#;

#[test]
fn we_read_what_pyarrow_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("py.parquet");
    let recs = records();
    let json = serde_json::to_string(&recs).unwrap();
    python(WRITE, &[path.to_str().unwrap(), &json]);
    assert_eq!(read_records(&path).unwrap(), recs);
}
