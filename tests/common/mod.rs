//! Helpers shared by the end-to-end tests of the `hypura` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the built `hypura` with `args`: (success, stdout, stderr).
pub fn hypura(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hypura"))
        // Catalog names mean the catalog here, never a model this machine pulled.
        .env("HF_HUB_CACHE", "/nonexistent/hypura-tests/hub")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `hypura` with `args`, killed after `limit`: (exit code, stdout, stderr). A code of
/// `None` means it did not finish (or died of a signal).
#[allow(dead_code)]
pub fn hypura_within(args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hypura"))
        // Catalog names mean the catalog here, never a model this machine pulled.
        .env("HF_HUB_CACHE", "/nonexistent/hypura-tests/hub")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if t0.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "hypura {args:?} still ran after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The real Gemma 3 270M GGUF; fails the test with install instructions when it is missing.
#[allow(dead_code)] // not every test binary uses it
pub fn gemma_path() -> PathBuf {
    testkit::gemma_3_270m_or_panic()
}

/// `hypura run --plan PLAN -m MODEL -p PROMPT -n N` plus `extra`: (success, stdout, stderr).
#[allow(dead_code)]
pub fn hypura_run(
    plan: &Path,
    model: &Path,
    prompt: &str,
    n: usize,
    extra: &[&str],
) -> (bool, String, String) {
    run_with(&["--plan", plan.to_str().unwrap()], model, prompt, n, extra)
}

/// `hypura run --plain -m MODEL -p PROMPT -n N` plus `extra` (plain llama.cpp).
#[allow(dead_code)]
pub fn hypura_plain(
    model: &Path,
    prompt: &str,
    n: usize,
    extra: &[&str],
) -> (bool, String, String) {
    run_with(&["--plain"], model, prompt, n, extra)
}

fn run_with(
    how: &[&str],
    model: &Path,
    prompt: &str,
    n: usize,
    extra: &[&str],
) -> (bool, String, String) {
    let n = n.to_string();
    let mut args = vec!["run"];
    args.extend_from_slice(how);
    args.extend_from_slice(&["-m", model.to_str().unwrap(), "-p", prompt, "-n", &n]);
    args.extend_from_slice(extra);
    hypura(&args)
}

/// `hypura synth -o OUT` plus `args`, which must succeed.
#[allow(dead_code)]
pub fn synth(out: &Path, args: &[&str]) {
    let mut all = vec!["synth", "-o", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let (ok, _, err) = hypura(&all);
    assert!(ok, "{err}");
}

/// `hypura solve --greedy` of `model` on the H200 profile (everything fits on the GPU tier),
/// written to `dir/plan.json`.
#[allow(dead_code)]
pub fn solve(model: &Path, dir: &Path) -> PathBuf {
    let plan = dir.join("plan.json");
    let (ok, _, err) = hypura(&[
        "solve",
        "--hw",
        concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/h200-141g.toml"),
        "--model",
        model.to_str().unwrap(),
        "--greedy",
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    plan
}

/// A copy of a full-resident `plan` (next to it, as `streamed.json`) with `tensors` on NVMe
/// streamed through a pool of `pool` bytes. A merged expert tensor takes all of its layer's
/// experts to NVMe (pass every expert tensor of the layer), and `mode` says what now streams.
#[allow(dead_code)]
pub fn stream_from_nvme(plan: &Path, tensors: &[&model::TensorEntry], pool: u64) -> PathBuf {
    use plan::{Mode, Plan, TensorPlace};
    let mut p = Plan::load(plan).unwrap();
    assert_eq!(p.mode, Mode::FullResident, "{}", plan.display());
    let mut nvme_groups = std::collections::BTreeSet::new();
    let mut experts_stream = false;
    for t in tensors {
        p.tensors.insert(t.name.clone(), TensorPlace::Nvme);
        match (t.expert_stride, t.layer) {
            (Some(_), Some(layer)) => {
                let e = p.experts.iter_mut().find(|e| e.layer == layer).unwrap();
                let mut ids = [&e.gpu[..], &e.ram[..], &e.nvme[..]].concat();
                ids.sort_unstable();
                e.gpu.clear();
                e.ram.clear();
                e.nvme = ids;
                experts_stream = true;
            }
            _ => {
                nvme_groups.insert(t.group());
            }
        }
    }
    p.mode = plan::mode_of(&nvme_groups, experts_stream);
    p.pool_bytes = pool;
    let streamed = plan.with_file_name("streamed.json");
    std::fs::write(&streamed, p.to_json()).unwrap();
    streamed
}

/// The FFN weight matrices of a dense model (every `ffn_*` tensor but the norms).
#[allow(dead_code)]
pub fn ffn_matrices(inv: &model::Inventory) -> Vec<&model::TensorEntry> {
    inv.tensors
        .iter()
        .filter(|t| t.name.contains(".ffn_") && !t.name.contains("norm"))
        .collect()
}

/// `hypura trace import --from deepseek-csv` of the real DeepSeek-V2-Lite routing
/// (`shared/data/traces/deepseek-v2-lite`) into `out`; returns the command's stdout.
#[allow(dead_code)]
pub fn import_deepseek_trace(out: &Path) -> String {
    let data = testkit::shared_data("traces/deepseek-v2-lite");
    let (ok, stdout, err) = hypura(&[
        "trace",
        "import",
        "--from",
        "deepseek-csv",
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    stdout
}

/// Whether python3 imports every one of `modules` (the test's Python side, from
/// scripts/requirements.txt).
#[allow(dead_code)]
pub fn python_has(modules: &[&str]) -> bool {
    modules.iter().all(|m| {
        std::process::Command::new("python3")
            .args(["-c", &format!("import {m}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The token ids of a `hypura run --json` (or `run --plain --json`) output.
#[allow(dead_code)]
pub fn json_tokens(stdout: &str) -> Vec<i64> {
    let v: serde_json::Value = serde_json::from_str(stdout).unwrap();
    v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect()
}

/// A Python HTTP server on a loopback port (the word after "port" in its first line of
/// output); killed on drop.
#[allow(dead_code)]
pub struct PyServer {
    child: std::process::Child,
    pub port: u16,
}

#[allow(dead_code)]
impl PyServer {
    /// `python3 -u ARGS` in `cwd`.
    pub fn start(cwd: &Path, args: &[&std::ffi::OsStr]) -> PyServer {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg("-u")
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        PyServer { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A synthesized Mixtral-style model (32 experts, F16, small) in `dir` and a plan for it with
/// every expert tensor on NVMe, streamed through an LRU cache of 3 experts' slices per layer:
/// (model, plan, bytes of one expert's slice of one tensor). The plan overwrites `plan.json`.
#[allow(dead_code)]
pub fn streamed_tiny_mixtral(dir: &Path) -> (PathBuf, PathBuf, u64) {
    let model = dir.join("mixtral.gguf");
    synth(
        &model,
        &[
            "--preset",
            "tiny-mixtral",
            "--type",
            "f16",
            "--ff",
            "500",
            "--expert-ff",
            "500",
            "--vocab",
            "300",
        ],
    );
    let plan = solve(&model, dir);
    let inv = model::Inventory::from_gguf(&model).unwrap();
    let stride = inv.tensors.iter().find_map(|t| t.expert_stride).unwrap();
    let exps: Vec<&model::TensorEntry> = inv
        .tensors
        .iter()
        .filter(|t| t.expert_stride.is_some())
        .collect();
    let streamed = stream_from_nvme(&plan, &exps, 0);
    let mut p = plan::Plan::load(&streamed).unwrap();
    p.expert_cache.bytes = 3 * 3 * stride;
    p.expert_cache.policy = "lru".into();
    std::fs::write(&plan, p.to_json()).unwrap();
    (model, plan, stride)
}

/// `hypura trace synth` for `model`'s routing (its MoE layers, expert count and top-k): one
/// sequence of `tokens` tokens drawn with `seed`, written to `out`.
#[allow(dead_code)]
pub fn synth_trace_for(model: &Path, tokens: u32, seed: u32, out: &Path) {
    let inv = model::Inventory::from_gguf(model).unwrap();
    let arch = &inv.arch;
    let layers = format!("{}-{}", arch.moe_layers[0], arch.moe_layers.last().unwrap());
    let (ok, _, err) = hypura(&[
        "trace",
        "synth",
        "--experts",
        &arch.n_expert.to_string(),
        "--top-k",
        &arch.n_expert_used.to_string(),
        "--layers",
        &layers,
        "--sequences",
        "1",
        "--tokens",
        &tokens.to_string(),
        "--seed",
        &seed.to_string(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
}
