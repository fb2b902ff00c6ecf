//! `hypura serve`: the Ollama and OpenAI APIs over one model on its plan (the `serve` crate).

use super::run::{ModelArgs, Threads};
use crate::range;
use anyhow::{Context as _, Result};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on (loopback by default; 0.0.0.0 serves the network).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port, 0..=65535 (Ollama's 11434 by default; 0 picks a free one, printed at start).
    #[arg(long, default_value_t = 11434)]
    pub port: u16,
    /// The model's name in requests (default: the name given, else the file's name without
    /// `.gguf`).
    #[arg(long)]
    pub name: Option<String>,
    /// Context size in tokens for requests that do not set num_ctx, 1..=16777216 (default and
    /// most: the plan's context).
    #[arg(short = 'c', long = "ctx-size", visible_alias = "ctx",
          value_parser = range::int::<u32>(1..=range::MAX_TOKENS))]
    pub ctx: Option<u32>,
    #[command(flatten)]
    pub threads: Threads,
    /// A chat template by name (chatml, gemma, llama3, ...) or Jinja text (default: the
    /// GGUF's, else one for its architecture, else chatml).
    #[arg(long)]
    pub chat_template: Option<String>,
    /// How long the model stays loaded after a request that does not say (Ollama's
    /// keep_alive): -1 for ever (the default: reloading a large model is slow), seconds, or
    /// a duration such as 5m; a request's own keep_alive wins.
    #[arg(long, default_value = "-1", allow_hyphen_values = true,
          value_parser = |s: &str| serve::engine::KeepAlive::parse(s))]
    pub keep_alive: serve::engine::KeepAlive,
    /// Largest request body (8MiB, 64KB, ...), 1KiB..=1GiB; larger ones get 413.
    #[arg(long, default_value = "8MiB", value_parser = range::bytes(1 << 10, 1 << 30))]
    pub max_body: u64,
}

pub fn run(args: Args) -> Result<()> {
    let (given, model_path, plan) = args.model.resolve(args.ctx, "serve")?;
    let name = args.name.clone().unwrap_or_else(|| {
        match &given {
            // A catalog or hub name is the name clients use.
            Some(g) if !g.exists() => g.display().to_string(),
            _ => model_path
                .file_stem()
                .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned()),
        }
    });
    let plan_ctx = plan.inputs.ctx.min(range::MAX_TOKENS) as u32;
    let config = serve::EngineConfig {
        model_path: model_path.clone(),
        n_ctx: args.ctx.unwrap_or(plan_ctx),
        threads: args.threads.count(),
        chat_template: args.chat_template.clone(),
        keep_alive: args.keep_alive,
        plan,
    };
    let engine = crate::progress::spinner(format!("loading {}", model_path.display()), || {
        serve::Engine::start(config)
    })
    .map_err(anyhow::Error::msg)
    .with_context(|| format!("cannot serve {}", model_path.display()))?;
    let (mode, predicted, n_ctx) = (
        engine.info.plan.mode.name(),
        engine.info.plan.prediction.tok_per_s,
        engine.info.n_ctx,
    );
    let options = serve::Options {
        host: args.host.clone(),
        port: args.port,
        name: name.clone(),
        max_body_bytes: args.max_body as usize,
    };
    serve::serve(engine, options, |addr| {
        eprintln!(
            "hypura serve: {name} ({mode}, {predicted:.2} tok/s predicted, context {n_ctx}) on \
             http://{addr} — Ollama API at /api, OpenAI API at /v1, metrics at /metrics"
        );
    })
    .map_err(anyhow::Error::msg)
}
