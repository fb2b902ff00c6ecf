//! `hypura`: the command line. Thin: parses arguments and calls the library crates.

mod choice;
mod cmd;
mod table;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hypura",
    version,
    about = "Run LLMs larger than memory: place GGUF tensors across GPU, RAM and NVMe"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a model's tensors by role and layer: sizes, expert stride, bytes a token touches.
    Inspect(cmd::inspect::Args),
    /// Measure this machine (storage, RAM, CPU, CUDA GPU if present) and write a hardware profile TOML.
    Profile(cmd::profile::Args),
    /// Place a model on a machine's GPU, RAM and NVMe; write plan.json with predicted tok/s.
    Solve(cmd::solve::Args),
    /// Simulate decoding a routing trace on a plan and machine: tok/s, latency, hit rates.
    Sim(cmd::sim::Args),
    /// Write a llama.cpp-loadable GGUF with random weights for a given architecture.
    Synth(cmd::synth::Args),
    /// Expert-routing traces: convert, import, statistics.
    Trace(cmd::trace::Args),
    /// Run a solved plan on llama.cpp: generate text, streaming NVMe-tier weights from disk.
    #[cfg(feature = "runtime")]
    Run(cmd::run::Args),
    /// Run a solved plan on llama.cpp (left out of this build: it was built without the
    /// `runtime` feature).
    #[cfg(not(feature = "runtime"))]
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Profile(a) => cmd::profile::run(a),
        Command::Solve(a) => cmd::solve::run(a),
        Command::Sim(a) => cmd::sim::run(a),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Trace(a) => cmd::trace::run(a),
        #[cfg(feature = "runtime")]
        Command::Run(a) => cmd::run::run(a),
        #[cfg(not(feature = "runtime"))]
        Command::Run { .. } => Err(anyhow::anyhow!(
            "this hypura was built without llama.cpp (cargo build --no-default-features); \
             `hypura run` needs the default `runtime` feature"
        )),
    };
    if let Err(e) = result {
        eprintln!("hypura: error: {e:#}");
        std::process::exit(1);
    }
}
