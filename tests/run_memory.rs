//! `hypura run` stays inside its plan's memory budget: on a synthesized model whose file is larger
//! than the RAM budget of a small CPU-only hardware profile (so `hypura solve` puts weights on
//! NVMe), the run's peak RSS stays under the budget plus a fixed overhead, and the streamed bytes
//! do not enter the page cache.
#![cfg(feature = "runtime")] // `hypura run` is left out without llama.cpp

mod common;

use common::{hypura, hypura_plain, hypura_run, json_tokens, synth};
use runtime::page_cache::{cached_bytes, cached_inside, cached_pages, drop_cached};
use std::fs::File;
use std::path::Path;

const MIB: u64 = 1 << 20;
/// What the plan may use: the profile's RAM minus its OS reserve (weights kept in RAM, the
/// streaming pool, KV cache and compute buffer together).
const BUDGET: u64 = 128 * MIB;
const OS_RESERVE: u64 = 64 * MIB;
/// Resident memory a `hypura run` has besides what the plan budgets. Measured on this machine
/// (x86_64, CPU backend, debug build): a full-resident run of `synth --preset tiny-llama`
/// (1.5 MB of weights, 0.5 MB of KV) peaks at 19.4 MB, i.e. ~17 MB for the binary, llama.cpp,
/// libstdc++, model metadata, ggml's threads and the real compute buffer. 48 MiB leaves room for
/// metadata growing with the tensor count; the solver's compute-buffer estimate is above
/// llama.cpp's real one (this test's run peaks ~4 MB below the plan's own total).
/// /work/notes/rt-bench-notes.md has the commands.
const OVERHEAD: u64 = 48 * MIB;
/// Extra at load only: llama.cpp's O_DIRECT load reads through a staging buffer of up to 64 MiB.
const LOAD_STAGING: u64 = 64 * MIB;

/// A CPU-only profile of this machine's shape with `BUDGET` of RAM for the plan.
fn small_profile(path: &Path) {
    let toml = format!(
        "version = 1\n\
         name = \"run_memory test: {budget} MiB for the plan\"\n\
         [ram]\nbytes = {ram}\nbandwidth_gbps = 10.0\nos_reserve_bytes = {OS_RESERVE}\n\
         [storage]\nseq_read_gbps = 1.0\nread_4k_qd1_latency_s = 0.0001\n\
         [[storage.read_curve]]\nblock_bytes = 4096\nqueue_depth = 1\ngbps = 0.04\n\
         [cpu]\ncores = 2\nfp32_gflops = 50.0\n",
        budget = BUDGET / MIB,
        ram = BUDGET + OS_RESERVE,
    );
    std::fs::write(path, toml).unwrap();
}

/// `hypura solve` of `model` for [`small_profile`] (written into `dir`) with a 256-token context
/// and `extra` flags: the plan file and its JSON.
fn solve_on_small_profile(
    dir: &Path,
    model: &Path,
    extra: &[&str],
) -> (std::path::PathBuf, serde_json::Value) {
    let hw = dir.join("hw.toml");
    small_profile(&hw);
    let plan = dir.join("plan.json");
    let mut args = vec![
        "solve",
        "--hw",
        hw.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--ctx",
        "256",
        "-o",
        plan.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, _, err) = hypura(&args);
    assert!(ok, "{err}");
    let p = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    (plan, p)
}

#[test]
fn streamed_run_stays_within_the_plan_budget_and_out_of_the_page_cache() {
    // On the target's disk (O_DIRECT must work; /tmp may be tmpfs elsewhere).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let model = dir.path().join("dense.gguf");
    synth(
        &model,
        &[
            "--arch", "llama", "--size", "384MiB", "--type", "q8_0", "--seed", "5",
        ],
    );
    let file_bytes = std::fs::metadata(&model).unwrap().len();
    assert!(file_bytes > 2 * (BUDGET + OVERHEAD), "{file_bytes}");

    let (plan, p) = solve_on_small_profile(dir.path(), &model, &["--greedy"]);
    assert_ne!(p["mode"], "full-resident", "{}", p["capacities"]);
    let nvme = p["capacities"]["nvme_bytes"].as_u64().unwrap();
    assert!(nvme > file_bytes / 2, "{}", p["capacities"]);

    // Synth's writes are in the page cache: flush and drop them so growth can be seen.
    let file = File::open(&model).unwrap();
    file.sync_all().unwrap();
    drop_cached(&file).unwrap();
    let before = cached_bytes(&file).unwrap();

    let n = 4;
    let (ok, out, err) = hypura_run(
        &plan,
        &model,
        "Memory",
        n,
        &["--ctx", "256", "--threads", "2", "--json"],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &v["stream"];
    let load = v["peak_rss_load_bytes"].as_u64().unwrap();
    let decode = v["peak_rss_decode_bytes"].as_u64().unwrap();
    eprintln!(
        "file {file_bytes}, budget {BUDGET}, plan {}, peak RSS load {load} decode {decode}, stream {s}",
        p["capacities"]
    );
    // Every decode pass re-read the weights that did not fit.
    let bytes_read = s["bytes_read"].as_u64().unwrap();
    assert!(
        bytes_read >= n as u64 * (nvme - s["pool_bytes"].as_u64().unwrap()),
        "{s}"
    );
    assert!(
        decode <= BUDGET + OVERHEAD,
        "decode peak RSS {decode} > budget {BUDGET} + overhead {OVERHEAD}"
    );
    assert!(
        load <= BUDGET + OVERHEAD + LOAD_STAGING,
        "load peak RSS {load} > budget {BUDGET} + overhead {OVERHEAD} + staging {LOAD_STAGING}"
    );

    // O_DIRECT everywhere: the streamed bytes (many times the file) left no trace in the cache.
    let cached = cached_pages(&file).unwrap();
    let after = cached.iter().filter(|&&c| c).count() as u64 * 4096;
    assert!(
        after.saturating_sub(before) < 4 * MIB,
        "the page cache grew by {} bytes over {bytes_read} streamed",
        after - before
    );
    let inv = model::Inventory::from_gguf(&model).unwrap();
    let streamed_cached: u64 = inv
        .tensors
        .iter()
        .filter(|t| p["tensors"][&t.name] == "nvme")
        .map(|t| cached_inside(&cached, t.offset.unwrap(), t.bytes).0)
        .sum();
    assert_eq!(streamed_cached, 0, "pages of NVMe-tier tensors are cached");
}

#[test]
fn a_plan_the_ilp_chose_to_stream_gives_plain_llama_cpps_tokens() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let model = dir.path().join("dense.gguf");
    synth(
        &model,
        &[
            "--arch", "llama", "--size", "256MiB", "--type", "q8_0", "--seed", "6",
        ],
    );
    // The ILP (the default method), not the greedy baseline.
    let (plan, p) = solve_on_small_profile(dir.path(), &model, &[]);
    assert_eq!(p["solver"]["method"], "ilp", "{}", p["solver"]);
    assert_ne!(p["mode"], "full-resident", "{}", p["capacities"]);
    assert!(p["capacities"]["nvme_bytes"].as_u64().unwrap() > 0);

    let n = 6;
    let args = ["--ctx", "256", "--threads", "2", "--ignore-eos", "--json"];
    let (ok, out, err) = hypura_run(&plan, &model, "Memory", n, &args);
    assert!(ok, "{err}");
    let streamed = json_tokens(&out);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["stream"]["bytes_read"].as_u64().unwrap() > 0,
        "{}",
        v["stream"]
    );
    // The reference for a streamed run: plain llama.cpp computing each tensor where and with
    // the kernels the plan's run does.
    let mut plain_args = vec!["--plain-like", plan.to_str().unwrap()];
    plain_args.extend_from_slice(&args);
    let (ok, out, err) = hypura_plain(&model, "Memory", n, &plain_args);
    assert!(ok, "{err}");
    assert_eq!(streamed, json_tokens(&out));
    assert_eq!(streamed.len(), n);
}
