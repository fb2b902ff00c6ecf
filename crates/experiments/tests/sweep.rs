//! `sweep` against independent simulations: every row equals what `sim::decode::simulate`
//! gives for that configuration alone (no shared plan, replay or bound), the directory reads
//! back in pyarrow as one table, reruns skip what is there and shards make up the grid.

use experiments::sweep::{self, grid, Config, Identity, ResultsDir, Run, Setup, Shard};
use hw::HwProfile;
use policy::cache::{Partition, Policy};
use sim::decode::{self, DecodePolicy, Machine, Options};
use sim::Planned;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

const MODEL: &str = "mixtral-8x7b:q5_k_m";

fn setup(tokens: usize) -> Setup {
    let inventory = model::load_model(MODEL).unwrap();
    let hw = HwProfile::load(testkit::profile("m1max.toml")).unwrap();
    let units = place::Units::build(&inventory, None).unwrap();
    let trace = sim::default_trace::synthesize(&units, &inventory.arch.arch, tokens).unwrap();
    let identity = Identity {
        hypura_version: "test".into(),
        model: plan::ModelIdentity::of(&inventory),
        profile_name: hw.name.clone(),
        profile_hash: plan::profile_hash(&hw),
        trace_name: "synthesized".into(),
        trace_hash: "0".into(),
        tokens: trace.n_tokens() as u64,
    };
    Setup {
        inventory,
        hw,
        trace,
        identity,
        plan: None,
    }
}

fn run_into(setup: &Setup, configs: &[Config], dir: &Path, shard: Shard) -> sweep::Summary {
    let mut results = ResultsDir::open(dir, shard).unwrap();
    let run = Run {
        threads: 2,
        shard,
        rows_per_file: 7,
        flush_seconds: 60.0,
    };
    sweep::sweep(setup, configs, &mut results, &run, &mut |_| {}).unwrap()
}

/// What `hypura sim` computes for one configuration, from scratch (its error as text).
fn alone(setup: &Setup, c: &Config) -> Result<(decode::DecodeReport, f64), String> {
    let hw = experiments::validate::budget_profile(&setup.hw, c.ram_bytes, c.gpu_bytes).unwrap();
    let planned =
        Planned::solve(&setup.inventory, &hw, decode::expert_rates(&setup.trace)).unwrap();
    let placement = planned.placement();
    let policy = c.decode_policy(planned.plan.expert_cache.bytes);
    let opts = Options {
        prefetch_depth: c.depth.unwrap_or(planned.plan.prefetch_depth),
        expert_prefetch: c.prefetch,
        queue_depth: c.queue_depth,
        host_weights_on_gpu: false,
        keep_records: false,
    };
    let machine = Machine::from_profile(&setup.hw);
    let run = decode::simulate(&placement, &machine, &setup.trace, &policy, &opts)
        .map_err(|e| e.to_string())?;
    let (capacity_bytes, partition) = match policy {
        DecodePolicy::Static => (planned.plan.expert_cache.bytes, Partition::Global),
        DecodePolicy::Cache {
            capacity_bytes,
            partition,
            ..
        } => (capacity_bytes, partition),
    };
    let belady = DecodePolicy::Cache {
        policy: Policy::Belady,
        capacity_bytes,
        partition,
    };
    let bound = decode::simulate(&placement, &machine, &setup.trace, &belady, &opts).unwrap();
    Ok((run.report, bound.report.hit_rate))
}

/// The rows of a results directory, read by pyarrow: config_id -> (tok/s, hit rate, Belady's
/// hit rate, bytes per token, error).
type PyRow = (
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<String>,
);

fn read_with_pyarrow(dir: &Path) -> Option<HashMap<String, PyRow>> {
    let script = r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
cols = ["config_id", "tok_per_s", "hit_rate", "belady_hit_rate", "bytes_read_per_token", "error"]
print(json.dumps([t.column(c).to_pylist() for c in cols]))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named 'pyarrow'") {
            return None;
        }
        panic!("pyarrow could not read {}: {err}", dir.display());
    }
    let cols: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let col = |i: usize| cols[i].as_array().unwrap().clone();
    let ids = col(0);
    let mut rows = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let f = |c: usize| col(c)[i].as_f64();
        let e = col(5)[i].as_str().map(str::to_string);
        let prev = rows.insert(
            id.as_str().unwrap().to_string(),
            (f(1), f(2), f(3), f(4), e),
        );
        assert!(prev.is_none(), "config_id {id} twice in {}", dir.display());
    }
    Some(rows)
}

#[test]
fn every_row_equals_its_configuration_simulated_alone() {
    let setup = setup(240);
    // 16 GiB of RAM for a 32 GB model: experts stream. Pinned-lru refuses 1 GiB (the plan's
    // resident experts it pins do not fit): those rows carry the error.
    let configs = grid::parse(
        "ram=16GiB;policy=static,lru,pinned-lru,belady;cache=1GiB,6GiB;partition=global,per-layer;\
         prefetch=none,coactivation,oracle;qd=2,8",
    )
    .unwrap();
    assert_eq!(configs.len(), (1 + 3 * 2 * 2) * 3 * 2);
    let dir = tempfile::tempdir().unwrap();
    let summary = run_into(&setup, &configs, dir.path(), Shard::ALL);
    assert_eq!(summary.run, configs.len());
    assert_eq!(
        summary.replays, 13,
        "one replay per (policy, cache, partition)"
    );
    let Some(rows) = read_with_pyarrow(dir.path()) else {
        testkit::cannot_run("pyarrow is not installed: run scripts/setup.sh");
        return;
    };
    assert_eq!(rows.len(), configs.len());
    let mut failed = 0;
    for c in &configs {
        let (tok, hit, bound, bytes, error) = &rows[&setup.identity.config_id(c)];
        if let Some(e) = error {
            failed += 1;
            assert_eq!(c.policy, grid::SweepPolicy::PinnedLru, "{c}: {e}");
            let alone = alone(&setup, c).expect_err("fails alone too");
            assert!(e.contains(&alone), "{c}: {e} / {alone}");
            assert!(tok.is_none());
            continue;
        }
        let (report, belady) = alone(&setup, c).unwrap();
        assert_eq!(tok.unwrap(), report.tok_per_s, "{c}");
        assert_eq!(hit.unwrap(), report.hit_rate, "{c}");
        assert_eq!(bytes.unwrap(), report.bytes_read_per_token, "{c}");
        assert_eq!(bound.unwrap(), belady, "{c}");
        assert!(belady + 1e-12 >= report.hit_rate, "{c}: Belady is a bound");
    }
    assert!(
        failed > 0 && failed == summary.failed,
        "{failed} vs {}",
        summary.failed
    );
}

#[test]
fn a_rerun_skips_what_is_there_and_shards_make_up_the_grid() {
    let setup = setup(60);
    let configs = grid::parse("ram=16GiB;policy=lru,lfu;cache=2GiB..8GiB:3;depth=0..1").unwrap();
    assert_eq!(configs.len(), 12);
    let whole = tempfile::tempdir().unwrap();
    let first = run_into(&setup, &configs, whole.path(), Shard::ALL);
    assert_eq!((first.run, first.skipped), (12, 0));
    let again = run_into(&setup, &configs, whole.path(), Shard::ALL);
    assert_eq!((again.run, again.skipped), (0, 12));

    let sharded = tempfile::tempdir().unwrap();
    let mut in_shards = 0;
    for i in 0..5 {
        let shard = Shard { index: i, count: 5 };
        let s = run_into(&setup, &configs, sharded.path(), shard);
        assert_eq!(s.skipped, 0);
        in_shards += s.run;
    }
    assert_eq!(in_shards, 12);
    let (Some(a), Some(b)) = (
        read_with_pyarrow(whole.path()),
        read_with_pyarrow(sharded.path()),
    ) else {
        testkit::cannot_run("pyarrow is not installed: run scripts/setup.sh");
        return;
    };
    assert_eq!(a, b, "the shards' rows are the whole run's");
    // A grid that grows runs only its new configurations.
    let more = grid::parse("ram=16GiB;policy=lru,lfu,arc;cache=2GiB..8GiB:3;depth=0..1").unwrap();
    let grown = run_into(&setup, &more, whole.path(), Shard::ALL);
    assert_eq!((grown.run, grown.skipped), (6, 12));
}

#[test]
fn a_foreign_file_in_the_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.parquet"), b"not parquet").unwrap();
    let e = ResultsDir::open(dir.path(), Shard::ALL).err().unwrap();
    assert!(e.to_string().contains("notes.parquet"), "{e}");
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let e = ResultsDir::open(&file, Shard::ALL).err().unwrap();
    assert!(e.to_string().contains("not a directory"), "{e}");
}

#[test]
fn shards_parse_as_i_of_n() {
    assert_eq!(Shard::parse("2/4"), Some(Shard { index: 2, count: 4 }));
    for bad in ["4/4", "1/0", "-1/2", "1", "a/b", ""] {
        assert_eq!(Shard::parse(bad), None, "{bad}");
    }
}
