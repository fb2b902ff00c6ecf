//! End-to-end: `hypura run` on a synthesized Mixtral-style model whose experts stream one by one
//! through a small expert cache gives plain llama.cpp's greedy tokens; `--record-trace` writes a
//! trace `hypura sim --trace` reads (and refuses to overwrite one without --force);
//! `--replay-trace` of that recording reproduces the tokens and the routing exactly; bad traces
//! are refused with the numbers.
#![cfg(feature = "runtime")] // `hypura run` is left out without llama.cpp

mod common;

use common::{hypura, hypura_plain};
use runtime::{Context, ContextParams, Model, ModelParams, Sampling};
use std::path::{Path, PathBuf};

const PROMPT: &str = "Experts stream";
const N: usize = 8;
const PROFILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/h200-141g.toml");

fn synth_and_plan(dir: &Path) -> (PathBuf, PathBuf, u64) {
    common::streamed_tiny_mixtral(dir)
}

fn run(plan: &Path, model: &Path, n: usize, extra: &[&str]) -> (bool, String, String) {
    run_prompt(plan, model, PROMPT, n, extra)
}

/// `hypura run --json` of `plan` on `model` after `prompt`, `n` tokens, 2 threads, plus `extra`.
fn run_prompt(
    plan: &Path,
    model: &Path,
    prompt: &str,
    n: usize,
    extra: &[&str],
) -> (bool, String, String) {
    let n = n.to_string();
    let mut args = vec![
        "run",
        "--plan",
        plan.to_str().unwrap(),
        "-m",
        model.to_str().unwrap(),
        "-p",
        prompt,
        "-n",
        &n,
        "--threads",
        "2",
        "--json",
    ];
    args.extend_from_slice(extra);
    hypura(&args)
}

/// `hypura sim --policy lru` replaying `trace` on `plan` with the test profile, plus `extra`.
fn sim_lru(trace: &Path, plan: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "sim",
        "--trace",
        trace.to_str().unwrap(),
        "--plan",
        plan.to_str().unwrap(),
        "--hw",
        PROFILE,
        "--policy",
        "lru",
    ];
    args.extend_from_slice(extra);
    hypura(&args)
}

fn tokens(out: &str) -> (Vec<i64>, serde_json::Value) {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    let t = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    (t, v)
}

/// Expert uses as the runtime counts them, from the routing alone: the prompt is one batch and
/// an expert counts once per batch and layer; each decode token uses top-k per layer.
fn distinct_uses(trace: &traces::Trace, prompt_len: usize) -> u64 {
    let m = trace.model();
    let mut n = 0u64;
    for pos in 0..m.n_layers() {
        let mut seen = vec![false; m.n_expert as usize];
        for t in 0..prompt_len {
            for &e in trace.selection(t, pos) {
                seen[usize::from(e)] = true;
            }
        }
        n += seen.iter().filter(|&&s| s).count() as u64;
    }
    n + (trace.n_tokens() - prompt_len) as u64 * m.n_layers() as u64 * u64::from(m.top_k)
}

#[test]
fn per_expert_run_records_a_trace_that_replays_to_the_same_tokens() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (model, plan, _) = synth_and_plan(dir.path());
    let reference: Vec<i64> = {
        let m = Model::load(&model, &ModelParams::llama_defaults()).unwrap();
        let prompt = m.tokenize(PROMPT, true).unwrap();
        let params = ContextParams {
            n_ctx: 256,
            n_threads: 2,
            op_offload: true,
            ..ContextParams::DEFAULT
        };
        let mut ctx = Context::new(&m, params, None).unwrap();
        let g = ctx.generate(&prompt, N, Sampling::GREEDY).unwrap();
        g.tokens.iter().map(|&t| t as i64).collect()
    };

    let trace = dir.path().join("routing.json");
    let metrics = dir.path().join("metrics.json");
    let (ok, out, err) = run(
        &plan,
        &model,
        N,
        &[
            "--record-trace",
            trace.to_str().unwrap(),
            "--metrics",
            metrics.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let (ids, v) = tokens(&out);
    assert_eq!(ids, reference);
    assert_eq!(v["schema"], "hypura.run/1");
    assert_eq!(v["hypura_version"], env!("CARGO_PKG_VERSION"));
    let x = &v["experts"];
    let accesses = x["accesses"].as_u64().unwrap();
    let prompt_len = v["prompt_tokens"].as_array().unwrap().len();
    let recorded = traces::load(&trace).unwrap();
    assert_eq!(accesses, distinct_uses(&recorded, prompt_len), "{x}");
    assert!(x["hits"].as_u64().unwrap() < accesses, "{x}");

    // Per-(token, layer) records carry the expert uses and the bytes read.
    let records: Vec<metrics::TokenLayerRecord> =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    let uses: u64 = records.iter().map(|r| u64::from(r.expert_accesses)).sum();
    let hits: u64 = records.iter().map(|r| u64::from(r.expert_hits)).sum();
    let read: u64 = records.iter().map(|r| r.bytes_read).sum();
    assert_eq!(uses, accesses);
    assert_eq!(hits, x["hits"].as_u64().unwrap());
    assert_eq!(read, v["stream"]["bytes_read"].as_u64().unwrap());
    // A record's storage busy time is its own (not the load's): at most its wall time.
    for r in &records {
        assert!(r.storage_busy_s <= r.wall_s + 1e-3, "{r:?}");
    }

    // The recording is a trace `hypura sim` reads.
    let (ok, out, err) = sim_lru(&trace, &plan, &[]);
    assert!(ok, "{err}");
    assert!(out.contains("hit rate"), "{out}");

    // Not overwritten without --force.
    let (ok, _, err) = run(
        &plan,
        &model,
        N,
        &["--record-trace", trace.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(err.contains("exists") && err.contains("--force"), "{err}");

    // Replaying the recording: the same tokens, and the routing taken is the recording.
    let again = dir.path().join("again.htrace");
    let (ok, out, err) = run(
        &plan,
        &model,
        N,
        &[
            "--replay-trace",
            trace.to_str().unwrap(),
            "--record-trace",
            again.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(tokens(&out).0, reference);
    let replayed = traces::load(&again).unwrap();
    assert_eq!(recorded.expert_ids(), replayed.expert_ids());
    assert_eq!(recorded.model(), replayed.model());

    // Too short a trace names both counts.
    let (ok, _, err) = run(
        &plan,
        &model,
        N + 20,
        &["--replay-trace", trace.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(
        err.contains(&format!("has {} tokens", recorded.n_tokens()))
            && err.contains("decodes up to"),
        "{err}"
    );
}

#[test]
fn a_trace_of_another_routing_shape_is_refused() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (model, plan, _) = synth_and_plan(dir.path());
    let real = testkit::shared_data("traces/deepseek-v2-lite/prompt_0001.csv");
    let trace = dir.path().join("deepseek.htrace");
    let (ok, _, err) = hypura(&[
        "trace",
        "import",
        "--from",
        "deepseek-csv",
        real.to_str().unwrap(),
        "-o",
        trace.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &plan,
        &model,
        2,
        &["--replay-trace", trace.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(
        err.contains("expert count is 64 but the model's is 8"),
        "{err}"
    );
    assert!(err.contains("`hypura trace synth`"), "{err}");
}

/// `--plain --plain-like PLAN --replay-trace T`: plain llama.cpp (mmap, its own loader), the
/// plan's off-GPU tensors in host memory and the routing forced from T, is the reference for a
/// streamed run replaying T; on this CPU-only build the tokens must be the same.
#[test]
fn plain_llama_cpp_replaying_a_trace_gives_the_streamed_run_tokens() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (model, plan, _) = synth_and_plan(dir.path());
    let trace = dir.path().join("synth.json");
    common::synth_trace_for(&model, 64, 3, &trace);
    let plain = |extra: &[&str]| {
        let args = [&["--threads", "2", "--json"][..], extra].concat();
        hypura_plain(&model, PROMPT, 8, &args)
    };
    let (ok, out, err) = plain(&[]);
    assert!(ok, "{err}");
    let free = tokens(&out).0;
    let (ok, out, err) = run(
        &plan,
        &model,
        N,
        &["--replay-trace", trace.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let (streamed, v) = tokens(&out);
    assert!(v["experts"]["fills"].as_u64().unwrap() > 0, "{v}");
    // The forced routing matters: without it llama.cpp's own router picks other experts.
    assert_ne!(
        streamed, free,
        "the trace's routing did not change the tokens"
    );
    let replay = ["--replay-trace", trace.to_str().unwrap()];
    // The oracle prefetch reads ahead exactly what the trace routes next: same tokens, every
    // expert read ahead taken, no extra slice read.
    let (ok, out, err) = run(
        &plan,
        &model,
        N,
        &[&replay[..], &["--expert-prefetch", "oracle"]].concat(),
    );
    assert!(ok, "{err}");
    let (ahead, va) = tokens(&out);
    assert_eq!(ahead, streamed);
    let x = &va["experts"];
    assert!(x["prefetched"].as_u64().unwrap() > 0, "{va}");
    assert_eq!(x["prefetch_hits"], x["prefetched"], "{va}");
    assert_eq!(x["fills"], v["experts"]["fills"], "{va}");
    let (ok, _, err) = run(&plan, &model, N, &["--expert-prefetch", "oracle"]);
    assert!(!ok);
    assert!(err.contains("--replay-trace"), "{err}");
    let (ok, out, err) = plain(&[&replay[..], &["--plain-like", plan.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    assert_eq!(tokens(&out).0, streamed);
    let (ok, out, err) = plain(&replay);
    assert!(ok, "{err}");
    assert_eq!(tokens(&out).0, streamed);

    // A plan for another file is refused, naming the plan.
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    p["inputs"]["model"]["file_bytes"] = 12345.into();
    let other = dir.path().join("other-plan.json");
    std::fs::write(&other, p.to_string()).unwrap();
    let (ok, _, err) = plain(&["--plain-like", other.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("--plain-like") && err.contains("other-plan.json") && err.contains("12345"),
        "{err}"
    );
}

#[test]
fn sim_replaying_the_recorded_routing_gives_the_runs_hits_row_by_row() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (model, plan, stride) = synth_and_plan(dir.path());
    // A cache of 20 of the 32 experts (3 slices each), so that some uses hit and some miss.
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let expert_bytes = 3 * stride;
    p["expert_cache"]["bytes"] = (20 * expert_bytes).into();
    std::fs::write(&plan, serde_json::to_string(&p).unwrap()).unwrap();

    // An empty prompt is the BOS token alone: every token is then one decode step through the
    // layers in order, which is the order `hypura sim` replays a trace in. (A prompt batch visits
    // its tokens layer by layer, which an LRU cache sees as another access order.)
    let trace = dir.path().join("routing.json");
    let run_records = dir.path().join("run.json");
    let (ok, out, err) = run_prompt(
        &plan,
        &model,
        "",
        12,
        &[
            "--ignore-eos",
            "--record-trace",
            trace.to_str().unwrap(),
            "--metrics",
            run_records.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["prompt_tokens"].as_array().unwrap().len(),
        1,
        "{}",
        v["prompt_tokens"]
    );

    let sim_records = dir.path().join("sim.json");
    let (ok, _, err) = sim_lru(&trace, &plan, &["--out", sim_records.to_str().unwrap()]);
    assert!(ok, "{err}");

    // Same cache code, same routing: the same uses and hits at every (token, layer).
    let rows = |path: &Path| -> std::collections::BTreeMap<(u32, Option<u32>), (u32, u32, u64)> {
        let records: Vec<metrics::TokenLayerRecord> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        records
            .iter()
            .map(|r| {
                (
                    (r.token, r.layer),
                    (r.expert_accesses, r.expert_hits, r.bytes_read),
                )
            })
            .collect()
    };
    let (ran, simulated) = (rows(&run_records), rows(&sim_records));
    assert_eq!(
        ran.keys().collect::<Vec<_>>(),
        simulated.keys().collect::<Vec<_>>()
    );
    let (mut uses, mut hits) = (0, 0);
    for (key, &(r_uses, r_hits, r_bytes)) in &ran {
        let (s_uses, s_hits, s_bytes) = simulated[key];
        assert_eq!(
            (r_uses, r_hits),
            (s_uses, s_hits),
            "at (token, layer) {key:?}"
        );
        // Both read the missed experts' slices as the runtime's direct reads transfer them
        // (runs of adjacent experts, widened to 4 KiB pages): the same bytes.
        let misses = u64::from(r_uses - r_hits);
        assert_eq!(r_bytes, s_bytes, "at {key:?}");
        assert!(
            r_bytes >= misses * expert_bytes,
            "at {key:?}: {misses} misses read only {r_bytes} bytes"
        );
        uses += r_uses;
        hits += r_hits;
    }
    // Not vacuous: the cache both hit and missed.
    assert!(hits > 0 && hits < uses, "{hits} hits of {uses} uses");
}
