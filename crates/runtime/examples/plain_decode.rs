//! The plain llama.cpp baseline of scripts/balloon-bench.sh: loads a GGUF with llama.cpp's mmap
//! (no hypura plan, nothing streamed by hypura), generates greedily and prints JSON with the
//! fields of `hypura run --json` it shares (tokens, decode_tok_per_s, ...) plus the bytes the
//! process read from storage while generating (/proc/self/io read_bytes: mmap page faults count).
//!   cargo run --release -p runtime --example plain_decode -- MODEL PROMPT N THREADS CTX [--repack]
//!     [--replay-trace=TRACE] [--load=mmap|read|direct]
//! Without --repack, llama.cpp's CPU weight repacking is off: repacked copies are anonymous memory,
//! so with it on the weights cannot be larger than RAM and the mmap no longer matters.
//! --replay-trace forces each MoE layer's routing from TRACE as `hypura run --replay-trace` does
//! (the eval callback rewrites router logits; nothing is streamed), so a synthesized model, whose
//! random router collapses onto a few experts, touches the experts a real model would.
//! --load picks llama.cpp's loader (default mmap); `direct` is how `hypura run --plan` loads,
//! so a resident plan's speed can be compared with plain llama.cpp one difference at a time.

use runtime::stream::Streamer;
use runtime::{Context, ContextParams, LoadMode, Model, ModelParams, Sampling};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repack = args.iter().any(|a| a == "--repack");
    let replay = args
        .iter()
        .find_map(|a| a.strip_prefix("--replay-trace="))
        .map(PathBuf::from);
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [model, prompt, n, threads, n_ctx] = pos[..] else {
        fail("expected MODEL PROMPT N THREADS CTX");
    };
    let n: usize = n.parse().unwrap_or_else(|_| fail("N must be a count"));
    let threads: u32 = threads
        .parse()
        .unwrap_or_else(|_| fail("THREADS must be a count"));
    let load = args
        .iter()
        .find_map(|a| a.strip_prefix("--load="))
        .unwrap_or("mmap");
    let load_mode = match load {
        "mmap" => LoadMode::Default,
        "read" => LoadMode::Read,
        "direct" => LoadMode::DirectIo,
        other => fail(&format!("--load={other}: expected mmap, read or direct")),
    };
    let path = PathBuf::from(model);
    let params = ModelParams {
        load_mode,
        use_extra_bufts: repack,
        ..ModelParams::llama_defaults()
    };
    let model = Model::load(&path, &params).unwrap_or_else(|e| fail(&e.to_string()));
    let prompt = model
        .tokenize(prompt, true)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let n_ctx: u32 = n_ctx
        .parse()
        .unwrap_or_else(|_| fail("CTX must be a count"));
    let streamer = replay.map(|t| replay_streamer(&path, &t));
    let mut ctx = Context::new(
        &model,
        ContextParams {
            n_ctx,
            n_threads: threads,
            op_offload: true,
            ..ContextParams::DEFAULT
        },
        streamer,
    )
    .unwrap_or_else(|e| fail(&e.to_string()));
    let peak_rss_load = runtime::mem::peak_rss_bytes();
    let read_before = runtime::mem::storage_read_bytes();
    let g = ctx
        .generate(&prompt, n, Sampling::GREEDY)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let read = runtime::mem::storage_read_bytes()
        .zip(read_before)
        .map(|(a, b)| a - b);
    let (decode_s, tok_s) = (g.decode_s(), g.decode_tok_per_s());
    let v = serde_json::json!({
        "model": path.display().to_string(),
        "mode": format!("plain llama.cpp ({load}{})", if repack { ", repacked" } else { "" }),
        "tokens": g.tokens,
        "prompt_s": g.prompt_s,
        "decode_s": decode_s,
        "decode_tok_per_s": tok_s,
        "decode_read_bytes": g.decode_read_bytes,
        "peak_rss_load_bytes": peak_rss_load,
        "peak_rss_bytes": runtime::mem::peak_rss_bytes(),
        "read_bytes": read,
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}

/// A streamer that streams nothing and forces the routing of `trace`.
fn replay_streamer(model: &std::path::Path, trace: &std::path::Path) -> Streamer {
    let arch = model::Inventory::from_gguf(model)
        .unwrap_or_else(|e| fail(&e.to_string()))
        .arch;
    let trace = traces::load(trace).unwrap_or_else(|e| fail(&e.to_string()));
    Streamer::replaying(&arch, trace).unwrap_or_else(|e| fail(&e.to_string()))
}

fn fail(msg: &str) -> ! {
    eprintln!("plain_decode: {msg}");
    std::process::exit(1);
}
