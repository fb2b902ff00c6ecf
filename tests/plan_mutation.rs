//! Randomly mutated plans through `hypura sim` and `hypura run`: each is either refused with a
//! message (exit 1, `hypura: error: ...`) or runs, and a run stays within the memory its plan's
//! placement implies. Never a panic, a signal, a hang or a runaway allocation.
//!
//! The base plan streams experts of a synthesized Mixtral-shaped model on a small CPU-only
//! profile, so the mutations hit split expert layers, tensor tiers, the pool and the cache.

mod common;

use plan::Plan;
use proptest::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

const MIB: u64 = 1 << 20;
/// RAM the profile leaves to the plan (the model is about 96 MiB).
const BUDGET: u64 = 48 * MIB;
/// Resident memory of a run besides what its plan places (binary, llama.cpp, metadata, threads,
/// the real compute buffer): see `tests/run_memory.rs`, which measured it.
#[cfg(feature = "runtime")]
const OVERHEAD: u64 = 48 * MIB;

struct Base {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    model: PathBuf,
    hw: PathBuf,
    trace: PathBuf,
    plan: Value,
}

/// The model, profile, trace and solved plan every case starts from (made once).
fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let path = dir.path().to_path_buf();
        let model = path.join("moe.gguf");
        common::synth(
            &model,
            &[
                "--preset",
                "tiny-mixtral",
                "--size",
                "96MiB",
                "--type",
                "q8_0",
                "--seed",
                "9",
            ],
        );
        let hw = path.join("hw.toml");
        std::fs::write(
            &hw,
            format!(
                "version = 1\nname = \"plan mutation test\"\n\
                 [ram]\nbytes = {}\nbandwidth_gbps = 10.0\nos_reserve_bytes = {}\n\
                 [storage]\nseq_read_gbps = 1.0\nread_4k_qd1_latency_s = 0.0001\n\
                 [[storage.read_curve]]\nblock_bytes = 4096\nqueue_depth = 1\ngbps = 0.04\n\
                 [cpu]\ncores = 2\nfp32_gflops = 50.0\n",
                BUDGET + 64 * MIB,
                64 * MIB
            ),
        )
        .unwrap();
        let trace = path.join("t.json");
        common::synth_trace_for(&model, 24, 1, &trace);
        let plan_path = path.join("plan.json");
        let (ok, _, err) = common::hypura(&[
            "solve",
            "--hw",
            path_str(&hw),
            "--model",
            path_str(&model),
            "--trace",
            path_str(&trace),
            "--ctx",
            "128",
            "--greedy",
            "-o",
            path_str(&plan_path),
        ]);
        assert!(ok, "{err}");
        let plan: Value =
            serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
        // The base must exercise split expert layers and streaming.
        assert_eq!(plan["mode"], "expert-streaming", "{}", plan["capacities"]);
        Base {
            _dir: dir,
            dir: path,
            model,
            hw,
            trace,
            plan,
        }
    })
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One edit: which node (an index into the document's nodes, modulo their count) and what to do.
#[derive(Debug, Clone, Copy)]
struct Edit {
    node: u32,
    op: u8,
    pick: u8,
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        (any::<u32>(), any::<u8>(), any::<u8>()).prop_map(|(node, op, pick)| Edit {
            node,
            op,
            pick,
        }),
        1..4,
    )
}

/// JSON pointers of every node of `v`, in document order.
fn nodes(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                nodes(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                )
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                nodes(x, format!("{at}/{i}"), out)
            }
        }
        _ => {}
    }
}

const NUMBERS: [f64; 9] = [
    0.0,
    1.0,
    -1.0,
    3.0,
    7.0,
    0.5,
    9007199254740992.0,
    1e300,
    4294967296.0,
];
const STRINGS: [&str; 8] = [
    "gpu",
    "ram",
    "nvme",
    "",
    "x",
    "expert-streaming",
    "dense-streaming",
    "full-resident",
];

fn apply(doc: &mut Value, e: Edit) {
    let mut all = Vec::new();
    nodes(doc, String::new(), &mut all);
    let ptr = &all[e.node as usize % all.len()];
    let pick = e.pick as usize;
    let Some(v) = doc.pointer_mut(ptr) else {
        return;
    };
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            *v = match e.op % 4 {
                0 => serde_json::json!(NUMBERS[pick % NUMBERS.len()]),
                1 => serde_json::json!(x as i64 + 1),
                2 => serde_json::json!((x as i64).saturating_sub(1)),
                _ => serde_json::json!(u64::MAX),
            };
        }
        Value::String(s) => {
            *s = STRINGS[pick % STRINGS.len()].to_string();
        }
        Value::Bool(b) => *b = !*b,
        Value::Array(a) => match e.op % 3 {
            0 if !a.is_empty() => {
                a.remove(pick % a.len());
            }
            1 if !a.is_empty() => {
                let x = a[pick % a.len()].clone();
                a.push(x);
            }
            _ => a.push(serde_json::json!(pick % 16)),
        },
        Value::Object(m) => match e.op % 3 {
            0 if !m.is_empty() => {
                let k = m.keys().nth(pick % m.len()).unwrap().clone();
                m.remove(&k);
            }
            1 if !m.is_empty() => {
                // A tensor placed on another tier, or a split one made whole.
                let k = m.keys().nth(pick % m.len()).unwrap().clone();
                m[&k] = serde_json::json!(STRINGS[pick % 3]);
            }
            _ => {
                m.insert("unexpected".into(), serde_json::json!(1));
            }
        },
        Value::Null => *v = serde_json::json!(0),
    }
}

/// Runs `hypura` with `args` (a hang fails the test after 120 s): exit code, stdout, stderr.
fn hypura(args: &[&str]) -> (Option<i32>, String, String) {
    common::hypura_within(args, Duration::from_secs(120))
}

/// Refused with a message, or succeeded: never a panic (101) or a signal (None).
fn refused_or_ran(args: &[&str], code: Option<i32>, err: &str, plan: &str) -> bool {
    match code {
        Some(0) => true,
        Some(1) => {
            assert!(
                err.starts_with("hypura: error: ") && err.trim().len() > 20,
                "hypura {args:?} failed without a message: {err:?}\nplan: {plan}"
            );
            false
        }
        other => panic!("hypura {args:?} exited {other:?}: {err}\nplan: {plan}"),
    }
}

fn mutated(b: &Base, edits: &[Edit], name: &str) -> (PathBuf, String) {
    let mut doc = b.plan.clone();
    for &e in edits {
        apply(&mut doc, e);
    }
    let text = serde_json::to_string_pretty(&doc).unwrap();
    let path = b.dir.join(name);
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn sim_refuses_or_simulates_a_mutated_plan(edits in edits()) {
        let b = base();
        let name = format!("sim-{}.json", std::process::id());
        let (path, text) = mutated(b, &edits, &name);
        let args = [
            "sim", "--plan", path_str(&path), "--model", path_str(&b.model), "--hw",
            path_str(&b.hw), "--trace", path_str(&b.trace), "--json",
        ];
        let (code, out, err) = hypura(&args);
        if refused_or_ran(&args, code, &err, &text) {
            let v: Value = serde_json::from_str(&out).unwrap();
            let tok_s = v["summary"]["tok_per_s"].as_f64().unwrap();
            prop_assert!(tok_s.is_finite() && tok_s > 0.0, "{out}");
        }
    }
}

#[cfg(feature = "runtime")]
proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn run_refuses_or_runs_a_mutated_plan_within_its_memory(edits in edits()) {
        let b = base();
        let name = format!("run-{}.json", std::process::id());
        let (path, text) = mutated(b, &edits, &name);
        let args = [
            "run", "--plan", path_str(&path), "-m", path_str(&b.model), "-p", "hello", "-n",
            "3", "--ignore-eos", "--threads", "2", "--json",
        ];
        let (code, out, err) = hypura(&args);
        if refused_or_ran(&args, code, &err, &text) {
            // It ran, so the plan passed the check: its placement's memory is what the run may
            // use, whatever its reported numbers say.
            let plan = Plan::from_json(&text, "mutated").unwrap();
            let inv = model::Inventory::from_gguf(&b.model).unwrap();
            let placed = plan.check_placement(&inv).unwrap();
            let c = &plan.capacities;
            let budget = [
                plan.pool_bytes,
                plan.expert_cache.bytes,
                c.kv_cache_bytes,
                c.compute_buffer_bytes,
                OVERHEAD,
            ]
            .into_iter()
            .fold(placed.ram, u64::saturating_add);
            let v: Value = serde_json::from_str(&out).unwrap();
            let peak = v["peak_rss_decode_bytes"].as_u64().unwrap();
            prop_assert!(
                peak <= budget,
                "peak RSS {peak} > {budget} (RAM tier {}, pool {}, cache {})\nplan: {text}",
                placed.ram,
                plan.pool_bytes,
                plan.expert_cache.bytes
            );
        }
    }
}
