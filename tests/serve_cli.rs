//! `hypura serve` against the real PyPI `ollama` and `openai` client packages
//! (`tests/serve_clients.py`), with plain llama.cpp as the oracle for what greedy replies say.
#![cfg(feature = "runtime")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `hypura serve`; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hypura"))
            .current_dir(dir)
            .env("XDG_CACHE_HOME", dir)
            .env("HF_HUB_CACHE", dir.join("hub"))
            .arg("serve")
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("hypura serve ended before listening: {seen}");
            };
            if let Some(at) = line.find("http://") {
                break line[at..].split_whitespace().next().unwrap().to_string();
            }
            seen += &line;
        };
        // Keep draining stderr so that the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Plain llama.cpp's greedy continuation of `prompt` (`-n n`).
fn plain(model: &Path, prompt: &str, n: usize) -> String {
    let (ok, out, err) = common::hypura_plain(model, prompt, n, &["--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["text"].as_str().unwrap().to_string()
}

#[test]
fn ollama_and_openai_clients_get_plain_llama_cpps_greedy_text_and_the_apis_error_shapes() {
    let gemma = testkit::gemma_3_270m_or_panic();
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let (ok, _, err) = common::hypura(&[
        "solve",
        "--hw",
        "m1max",
        "--model",
        gemma.to_str().unwrap(),
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let server = Server::start(
        dir.path(),
        &[
            "--plan",
            plan.to_str().unwrap(),
            "-m",
            gemma.to_str().unwrap(),
            "--name",
            "gemma-3-270m",
            "--max-body",
            "64KiB",
            "-t",
            "2",
        ],
    );
    let (question, prompt, n) = (
        "What is the capital of France?",
        "The three primary colors are",
        16,
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve_clients.py");
    let run = Command::new("python3")
        .arg(script)
        .args([
            &server.url,
            "gemma-3-270m",
            question,
            prompt,
            &n.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "tests/serve_clients.py (pip install ollama openai; ./test installs them): {}",
        text(&run.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();

    // The oracle: plain llama.cpp on the turn as Gemma's template formats it, and on the raw
    // prompt.
    let formatted = format!("<start_of_turn>user\n{question}<end_of_turn>\n<start_of_turn>model\n");
    let reply = plain(&gemma, &formatted, n);
    let continuation = plain(&gemma, prompt, n);
    for key in ["ollama_chat", "ollama_chat_stream", "openai_chat"] {
        assert_eq!(v[key], reply, "{key}");
    }
    assert_eq!(v["openai_chat_stream"][0], reply);
    for key in [
        "ollama_generate_raw",
        "ollama_generate_stream",
        "openai_completion",
        "openai_completion_stream",
        "after_cancel",
    ] {
        assert_eq!(v[key], continuation, "{key}");
    }
    for r in v["concurrent"].as_array().unwrap() {
        assert_eq!(r, &reply, "one of 8 concurrent clients");
    }
    // A stop string cuts the text before it and says so.
    let stop = &continuation[3..6];
    let cut = &continuation[..continuation.find(stop).unwrap()];
    assert_eq!(v["ollama_generate_stop"], serde_json::json!([cut, "stop"]));
    let count = v["ollama_chat_eval_count"].as_u64().unwrap();
    assert!(count >= 1 && count <= n as u64, "{count}");
    assert_eq!(v["openai_chat_usage"][1], count);
    assert_eq!(v["openai_chat_stream"][1], count);
    let reason = if count == n as u64 { "length" } else { "stop" };
    assert_eq!(v["ollama_chat_done_reason"], reason);
    assert_eq!(v["openai_chat_finish"], reason);
    assert_eq!(v["ollama_chat_timed"], true);

    // What the server runs, by each API.
    assert_eq!(v["ollama_list"], serde_json::json!(["gemma-3-270m:latest"]));
    assert_eq!(v["ollama_ps"], serde_json::json!(["gemma-3-270m:latest"]));
    assert_eq!(
        v["openai_models"],
        serde_json::json!(["gemma-3-270m:latest"])
    );
    assert_eq!(
        v["ollama_show_capabilities"],
        serde_json::json!(["completion"])
    );
    assert_eq!(v["health"], serde_json::json!([200, {"status": "ok"}]));

    // Errors in each API's shape, with the status that says what went wrong.
    assert_eq!(v["ollama_unknown_model"][0], 404);
    assert!(v["ollama_unknown_model"][1]
        .as_str()
        .unwrap()
        .contains("no-such-model"));
    assert_eq!(v["openai_unknown_model"][0], 404);
    for (key, status) in [
        ("bad_json", 400),
        ("bad_field", 400),
        ("too_large", 413),
        ("too_big_ctx", 400),
    ] {
        assert_eq!(v[key][0], status, "{key}: {}", v[key]);
        assert!(v[key][1]["error"].is_string(), "{key}: {}", v[key]);
    }
    assert!(
        v["bad_field"][1]["error"]
            .as_str()
            .unwrap()
            .contains("prompt"),
        "{}",
        v["bad_field"]
    );
    assert!(
        v["too_big_ctx"][1]["error"]
            .as_str()
            .unwrap()
            .contains("--ctx"),
        "{}",
        v["too_big_ctx"]
    );
    for (key, status) in [("openai_bad_json", 400), ("openai_too_large", 413)] {
        assert_eq!(v[key][0], status, "{key}: {}", v[key]);
        assert!(
            v[key][1]["error"]["message"].is_string(),
            "{key}: {}",
            v[key]
        );
    }

    // The client that went away stopped its generation; the server went on serving.
    assert!(
        v["cancelled"].as_f64().unwrap() >= 1.0,
        "{}",
        v["cancelled"]
    );
    assert!(v["metrics_tokens"].as_f64().unwrap() > 0.0);

    // keep_alive 0 unloads; the next request loads again, says how long it took, same reply.
    assert_eq!(v["unload"], "unload");
    assert_eq!(v["ps_unloaded"], serde_json::json!([]));
    assert_eq!(v["reloaded"], serde_json::json!([reply, true]));
    assert_eq!(v["ps_reloaded"], serde_json::json!(["gemma-3-270m:latest"]));
    drop(server);
}

/// GET `url` (loopback, no keep-alive): the body.
fn get(url: &str) -> String {
    py(&format!(
        "import urllib.request; print(urllib.request.urlopen({url:?}, timeout=60).read().decode())"
    ))
}

/// Runs python3 on `code`; its stdout.
fn py(code: &str) -> String {
    let out = Command::new("python3").args(["-c", code]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn a_moe_whose_experts_stream_serves_run_s_tokens_and_reports_its_expert_cache() {
    let dir = tempfile::tempdir().unwrap();
    // Every expert tensor on NVMe, streamed through an LRU cache of 3 experts per layer.
    let (model, streamed, _) = common::streamed_tiny_mixtral(dir.path());
    let (plan_s, model_s) = (streamed.to_str().unwrap(), model.to_str().unwrap());

    let (prompt, n) = ("Experts stream", 8);
    let (ok, out, err) = common::hypura(&[
        "run",
        "--plan",
        plan_s,
        "-m",
        model_s,
        "-p",
        prompt,
        "-n",
        "8",
        "--threads",
        "2",
        "--json",
    ]);
    assert!(ok, "{err}");
    let ran: serde_json::Value = serde_json::from_str(&out).unwrap();

    let server = Server::start(dir.path(), &["--plan", plan_s, "-m", model_s, "-t", "2"]);
    let reply = py(&format!(
        "import json, ollama\n\
         r = ollama.Client(host={:?}).generate(model='mixtral', prompt={prompt:?}, raw=True, \
         options={{'temperature': 0, 'repeat_penalty': 1, 'num_predict': {n}}})\n\
         print(json.dumps(r.context))",
        server.url
    ));
    // Prompt and generated ids, as run reports them (an end-of-generation token not included).
    let ids: Vec<i64> = serde_json::from_str(reply.trim()).unwrap();
    let mut want = ran["prompt_tokens"].as_array().unwrap().clone();
    want.extend(ran["tokens"].as_array().unwrap().iter().cloned());
    let want: Vec<i64> = want.iter().map(|t| t.as_i64().unwrap()).collect();
    assert_eq!(ids, want[..ids.len()], "served {ids:?}, ran {want:?}");
    assert!(ids.len() + 1 >= want.len());

    let metrics = get(&format!("{}/metrics", server.url));
    let value = |name: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("hypura_{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert!(value("expert_accesses_total") > 0.0, "{metrics}");
    assert!(value("stream_read_bytes_total") > 0.0, "{metrics}");
    let ratio = value("expert_cache_hit_ratio");
    assert!((0.0..=1.0).contains(&ratio), "{metrics}");
    let ps: serde_json::Value =
        serde_json::from_str(&get(&format!("{}/api/ps", server.url))).unwrap();
    let h = &ps["models"][0]["hypura"];
    assert_eq!(h["mode"], "expert-streaming", "{h}");
    let experts_on_nvme = h["placement"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["group"] == "experts" && g["tier"] == "nvme");
    assert!(experts_on_nvme, "{h}");
    assert_eq!(h["expert_cache"]["policy"], "lru");
    assert!(h["expert_cache"]["accesses"].as_u64().unwrap() > 0, "{h}");
}
