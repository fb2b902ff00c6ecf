//! `hypura chat`: a conversation with a model on the plan-driven runtime. The model loads
//! once; each turn is formatted with the model's chat template (the GGUF's own, else one for
//! its architecture, else chatml) and only the new part is decoded, the context keeping the
//! conversation. Replies stream; Ctrl-C ends the current one; `/exit` or end of input quits.

use super::run::{ModelArgs, SamplingFlags, TextOut, Threads};
use crate::interrupt::{REPLYING, STOP};
use crate::range;
use anyhow::{bail, Context as _, Result};
use runtime::chat::{apply_template, fallback_template, Message};
use runtime::{MoeOptions, PlannedModel};
use std::io::{BufRead, Write};
use std::sync::atomic::Ordering;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Most tokens of one reply, 1..=16777216.
    #[arg(short = 'n', long, default_value_t = 512,
          value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    pub n_predict: usize,
    /// Context size in tokens for the whole conversation, 1..=16777216 (default: the plan's
    /// context).
    #[arg(short = 'c', long = "ctx-size", visible_alias = "ctx",
          value_parser = range::int::<u32>(1..=range::MAX_TOKENS))]
    pub ctx: Option<u32>,
    #[command(flatten)]
    pub threads: Threads,
    /// Sampling temperature, 0..=100 (llama-cli's conversation default, 0.8; 0 is greedy).
    #[arg(long, default_value_t = 0.8, value_parser = range::float32(0.0, 100.0))]
    pub temp: f32,
    #[command(flatten)]
    pub sampling: SamplingFlags,
    /// A system message opening the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// A chat template llama.cpp knows by name (chatml, gemma, llama3, mistral-v7, ...) or a
    /// Jinja template it recognises (default: the GGUF's, else one for its architecture, else
    /// chatml).
    #[arg(long)]
    pub chat_template: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let (_, model_path, plan) = args.model.resolve(args.ctx, "chat")?;
    let planned = crate::progress::spinner(format!("loading {}", model_path.display()), || {
        PlannedModel::load(&model_path, &plan, None)
    })
    .with_context(|| format!("cannot load {}", model_path.display()))?;
    let template = match &args.chat_template {
        Some(t) => t.clone(),
        None => planned
            .model
            .chat_template()
            .unwrap_or_else(|| fallback_template(&planned.inventory.arch.arch).to_string()),
    };
    let n_ctx = args
        .ctx
        .unwrap_or(plan.inputs.ctx.min(range::MAX_TOKENS) as u32);
    let mut ctx = planned
        .context(&MoeOptions::default(), n_ctx, args.threads.count(), false)
        .with_context(|| format!("cannot run {}", model_path.display()))?;
    let sampling = args.sampling.at(args.temp, false);
    let mut messages: Vec<Message> = args
        .system
        .iter()
        .map(|s| Message {
            role: "system".into(),
            content: s.clone(),
        })
        .collect();
    // Bytes of the formatted conversation the context already holds.
    let mut held = 0;
    eprintln!(
        "hypura chat: {} ({}), context {n_ctx} tokens; Ctrl-C ends a reply, /exit quits",
        model_path.display(),
        plan.mode.name()
    );
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        print!("> ");
        std::io::stdout().flush()?;
        let Some(line) = lines.next() else {
            println!();
            return Ok(());
        };
        let line = line.context("reading standard input")?;
        let text = line.trim();
        if text == "/exit" {
            return Ok(());
        }
        if text.is_empty() {
            continue;
        }
        messages.push(Message {
            role: "user".into(),
            content: text.to_string(),
        });
        let formatted = apply_template(&template, &messages, true)?;
        let new = formatted.get(held..).unwrap_or(&formatted);
        let tokens = planned.model.tokenize(new, held == 0)?;
        let room = n_ctx as usize - ctx.used_tokens().min(n_ctx as usize);
        if tokens.len() + 1 > room {
            bail!(
                "the conversation has outgrown the context ({n_ctx} tokens); start again with a \
                 larger -c"
            );
        }
        let n = args.n_predict.min(room - tokens.len());
        STOP.store(false, Ordering::SeqCst);
        REPLYING.store(true, Ordering::SeqCst);
        let mut out = TextOut::new(true, "");
        let model = &planned.model;
        let g = ctx.generate_with(&tokens, n, sampling, |t| {
            if !model.is_end_of_generation(t) {
                out.token(&model.token_piece(t));
            }
            !STOP.load(Ordering::SeqCst)
        });
        REPLYING.store(false, Ordering::SeqCst);
        g?;
        let reply = out.take();
        println!();
        messages.push(Message {
            role: "assistant".into(),
            content: reply,
        });
        held = apply_template(&template, &messages, false)?.len();
    }
}
