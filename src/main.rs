//! `hypura`: the command line. Thin: parses arguments and calls the library crates.

mod choice;
mod cmd;
mod interrupt;
mod machine;
mod models;
mod progress;
mod range;
mod table;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hypura",
    version,
    about = "Run LLMs larger than memory: place GGUF tensors across GPU, RAM and NVMe"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a model's tensors by role and layer: sizes, expert stride, bytes a token touches.
    #[command(
        after_help = "Examples:\n  hypura inspect model.gguf\n  hypura inspect mixtral-8x7b:q5_k_m --json"
    )]
    Inspect(cmd::inspect::Args),
    /// Measure this machine (storage, RAM, CPU, CUDA GPU if present) and write a hardware profile TOML.
    #[command(
        after_help = "Examples:\n  hypura profile                      # kept as this machine's profile\n  hypura profile --disk /mnt/nvme -o hw.toml"
    )]
    Profile(cmd::profile::Args),
    /// Place a model on a machine's GPU, RAM and NVMe; write plan.json with predicted tok/s.
    #[command(
        after_help = "Examples:\n  hypura solve --model model.gguf -o plan.json        # this machine's profile\n  hypura solve --hw m1max --model mixtral-8x7b --explain"
    )]
    Solve(cmd::solve::Args),
    /// Simulate decoding a routing trace on a plan and machine: tok/s, latency, hit rates.
    #[command(
        after_help = "Examples:\n  hypura sim --plan plan.json --trace routing.htrace --policy lru\n  hypura sim --model mixtral-8x7b --hw m4 --cache-bytes 4GiB --policy arc"
    )]
    Sim(cmd::sim::Args),
    /// Simulate every configuration of a grid (policy, cache, prefetch, depth, ...) over a
    /// trace: one Parquet row each, resumable, shardable.
    #[command(
        after_help = "Example:\n  hypura sweep --trace t.htrace -m model.gguf --grid 'policy=lru,arc,belady;cache=1GiB..8GiB:4' -o results/"
    )]
    Sweep(cmd::sweep::Args),
    /// Pick expert cache bytes, policy, expert prefetch and queue depth for a trace, model and
    /// machine by simulation; write the plan and say how far it is from Belady.
    #[command(after_help = "Example:\n  hypura tune --trace t.htrace -m model.gguf -o plan.json")]
    Tune(cmd::tune::Args),
    /// Chart sweep results (SVG or PNG): a column against another, a line per value of a third.
    #[command(
        after_help = "Example:\n  hypura plot results/ --x cache --y hit_rate --by policy --log-x -o hit-rate.svg"
    )]
    Plot(cmd::plot::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  hypura completions bash > ~/.local/share/bash-completion/completions/hypura"
    )]
    Completions(cmd::shell::CompletionsArgs),
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  hypura man > ~/.local/share/man/man1/hypura.1")]
    Man,
    /// Download a model's published GGUF into the Hugging Face cache (resumable, sha256-checked);
    /// `run`, `chat`, `solve` and `inspect` then find it by name.
    #[command(
        after_help = "Examples:\n  hypura pull gemma-3-270m\n  hypura pull mixtral-8x7b:q5_k_m && hypura run -m mixtral-8x7b:q5_k_m -p hi\n  hypura pull hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M\n\nHF_ENDPOINT, HF_TOKEN and HF_HUB_CACHE mean what they mean to huggingface_hub."
    )]
    Pull(cmd::pull::Args),
    /// List what can be named instead of a file: catalog models, shipped hardware profiles,
    /// synth presets.
    #[command(after_help = "Examples:\n  hypura list profiles\n  hypura list models")]
    List(cmd::list::Args),
    /// Write a llama.cpp-loadable GGUF with random weights for a given architecture.
    #[command(
        after_help = "Examples:\n  hypura synth --preset tiny-mixtral -o tiny.gguf\n  hypura synth --preset tiny-deepseek-v2-lite --size 2GiB -o ds.gguf"
    )]
    Synth(cmd::synth::Args),
    /// Expert-routing traces: convert, import, statistics.
    #[command(
        after_help = "Examples:\n  hypura trace import --from deepseek-csv ../shared/data/traces/deepseek-v2-lite -o ds.htrace\n  hypura trace stats ds.htrace"
    )]
    Trace(cmd::trace::Args),
    /// Run a solved plan on llama.cpp: generate text, streaming NVMe-tier weights from disk.
    #[cfg(feature = "runtime")]
    #[command(
        after_help = "Examples:\n  hypura run -m model.gguf -p \"Once upon a time\" -n 64\n  hypura run --plan plan.json -f prompt.txt -t 8 -c 4096\n  echo \"Hello\" | hypura run -m model.gguf --temp 0.7 --top-k 40"
    )]
    Run(cmd::run::Args),
    /// Talk with a model: its chat template formats the turns, tokens stream, Ctrl-C ends a
    /// reply, /exit (or end of input) quits.
    #[cfg(feature = "runtime")]
    #[command(
        after_help = "Examples:\n  hypura chat model.gguf\n  hypura chat --plan plan.json --system \"You are terse.\""
    )]
    Chat(cmd::chat::Args),
    /// Serve a model over the Ollama (/api) and OpenAI (/v1) APIs, on its plan: one generation
    /// at a time, requests queued in arrival order; Prometheus metrics at /metrics.
    #[cfg(feature = "runtime")]
    #[command(
        after_help = "Examples:\n  hypura serve gemma-3-270m                 # after hypura pull gemma-3-270m\n  hypura serve --plan plan.json --port 8080\n  curl http://127.0.0.1:11434/api/generate -d '{\"model\": \"gemma-3-270m\", \"prompt\": \"Hi\"}'"
    )]
    Serve(cmd::serve::Args),
    /// hypura's plan against plain llama.cpp on the same prompt and memory: prompt and
    /// generation tok/s (median, spread), TTFT, peak RSS, bytes read per token, same tokens.
    #[cfg(feature = "runtime")]
    #[command(
        after_help = "Examples:\n  hypura bench -m model.gguf -p 512 -n 128 --reps 3\n  hypura bench -m moe.gguf --plan plan.json --leave-gib 3.5 --replay-trace t.json -- --queue-depth 4"
    )]
    Bench(cmd::bench::Args),
    /// Predicted against measured: solve, simulate and run each point of a grid; compare.
    #[cfg(feature = "runtime")]
    #[command(
        after_help = "Example:\n  hypura validate -m model.gguf --trace t.htrace --grid 'ram=3GiB,5GiB;policy=static,lru' -o out/"
    )]
    Validate(cmd::validate::Args),
    /// Run a solved plan on llama.cpp (left out of this build: it was built without the
    /// `runtime` feature).
    #[cfg(not(feature = "runtime"))]
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

fn main() {
    // Output piped into a reader that stops early (`| head`) ends the process quietly, as with
    // any Unix tool, instead of a panic at the next print. Rust ignores SIGPIPE by default.
    // SAFETY: restoring a signal's default disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // An interrupted write leaves no hidden partial file behind (exit status 128 + SIGINT, as
    // shells report an interrupted command).
    ctrlc::set_handler(|| {
        // In a chat, Ctrl-C ends the reply being generated and keeps the conversation.
        if interrupt::REPLYING.load(std::sync::atomic::Ordering::SeqCst) {
            interrupt::STOP.store(true, std::sync::atomic::Ordering::SeqCst);
            return;
        }
        outfile::remove_partials();
        std::process::exit(130);
    })
    .expect("the signal handler is installed once, first thing");
    // `--version` says what was built in, which needs llama.cpp's backends started: only then.
    if std::env::args_os().nth(1).is_some_and(|a| a == "--version") {
        println!("hypura {}", long_version());
        return;
    }
    let cli = Cli::parse_from(interactive_run(llama_flags(std::env::args_os())));
    let result = match cli.command {
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Profile(a) => cmd::profile::run(a),
        Command::Solve(a) => cmd::solve::run(a),
        Command::Sim(a) => cmd::sim::run(a),
        Command::Sweep(a) => cmd::sweep::run(a),
        Command::Plot(a) => cmd::plot::run(a),
        Command::Tune(a) => cmd::tune::run(a),
        Command::List(a) => cmd::list::run(a),
        Command::Pull(a) => cmd::pull::run(a),
        Command::Completions(a) => cmd::shell::completions(a),
        Command::Man => cmd::shell::man(),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Trace(a) => cmd::trace::run(a),
        #[cfg(feature = "runtime")]
        Command::Run(a) => cmd::run::run(a),
        #[cfg(feature = "runtime")]
        Command::Chat(a) => cmd::chat::run(a),
        #[cfg(feature = "runtime")]
        Command::Validate(a) => cmd::validate::run(a),
        #[cfg(feature = "runtime")]
        Command::Serve(a) => cmd::serve::run(a),
        #[cfg(feature = "runtime")]
        Command::Bench(a) => cmd::bench::run(a),
        #[cfg(not(feature = "runtime"))]
        Command::Run { .. } => Err(anyhow::anyhow!(
            "this hypura was built without llama.cpp (cargo build --no-default-features); \
             `hypura run` needs the default `runtime` feature"
        )),
    };
    if let Err(e) = result {
        eprintln!("hypura: error: {}", render(&e));
        std::process::exit(1);
    }
}

/// `--version`: the version, the features built in and, with the runtime, which llama.cpp and
/// the devices its backends found (`-V` prints the version alone).
fn long_version() -> String {
    let features = [
        ("runtime", cfg!(feature = "runtime")),
        ("cuda", cfg!(feature = "cuda")),
        ("metal", cfg!(feature = "metal")),
        ("dynamic-link", cfg!(feature = "dynamic-link")),
    ];
    let on: Vec<&str> = features
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    #[cfg_attr(not(feature = "runtime"), allow(unused_mut))]
    let mut v = format!(
        "{}\nfeatures: {}",
        env!("CARGO_PKG_VERSION"),
        if on.is_empty() {
            "none".to_string()
        } else {
            on.join(", ")
        }
    );
    #[cfg(feature = "runtime")]
    {
        v.push_str(&format!(
            "\nllama.cpp: the copy in llama-cpp-sys-2 {}\nbackends: {}",
            runtime::backend::LLAMA_CPP_SYS_VERSION,
            runtime::backend::devices().join(", ")
        ));
    }
    v
}

/// llama.cpp's multi-letter single-dash flags of `run` (`-ngl 99`, `-ot exps=CPU`, `-ctk`,
/// `-ctv`, `-fa`) as their
/// long forms: clap reads `-ngl` as `-n gl`. Only `run` takes them; after `--` nothing changes.
fn llama_flags(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let args: Vec<_> = args.collect();
    if args.get(1).is_none_or(|a| a != "run") {
        return args;
    }
    let mut out = Vec::with_capacity(args.len());
    let mut literal = false;
    for a in args {
        literal |= a == "--";
        let long = match a.to_str() {
            Some("-ngl") if !literal => "--n-gpu-layers",
            Some("-ot") if !literal => "--override-tensor",
            Some("-ctk") if !literal => "--cache-type-k",
            Some("-ctv") if !literal => "--cache-type-v",
            Some("-fa") if !literal => "--flash-attn",
            _ => {
                out.push(a);
                continue;
            }
        };
        out.push(long.into());
    }
    out
}

/// `run -i` (llama-cli's `-i`, `-cnv`, `--interactive`, `--conversation`) is `chat` with the
/// same flags, `-p` being the system message as in llama-cli's conversation mode.
fn interactive_run(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let asks = |a: &std::ffi::OsString| {
        matches!(
            a.to_str(),
            Some("-i" | "--interactive" | "-cnv" | "--conversation")
        )
    };
    if args.get(1).is_none_or(|a| a != "run") || !args[..end].iter().any(asks) {
        return args;
    }
    let mut out = Vec::with_capacity(args.len());
    for (k, a) in args.into_iter().enumerate() {
        if k == 1 {
            out.push("chat".into());
        } else if k < end && asks(&a) {
            continue;
        } else if k < end && (a == "-p" || a == "--prompt") {
            out.push("--system".into());
        } else if let Some(text) = a
            .to_str()
            .and_then(|t| t.strip_prefix("--prompt="))
            .filter(|_| k < end)
        {
            out.push(format!("--system={text}").into());
        } else {
            out.push(a);
        }
    }
    out
}

/// An error and its causes, each said once: library errors often repeat their source in their
/// own message (`{path}: {source}`), which `{:#}` would print twice.
pub fn render(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if out.contains(&said) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&said);
    }
    out
}
