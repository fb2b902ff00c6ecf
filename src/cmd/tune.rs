//! `hypura tune`: simulate the candidates a run can use (cache bytes, policy, expert prefetch,
//! queue depth) on the user's trace, model and machine; write the plan with the best, and say
//! how far it is from Belady.

use crate::range;
use anyhow::Result;
use experiments::sweep::Row;
use experiments::tune;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Expert-routing trace (*.json or *.htrace) of the user's own prompts.
    #[arg(long)]
    pub trace: PathBuf,
    /// A GGUF file or a catalog name.
    #[arg(long, short = 'm')]
    pub model: String,
    /// Hardware profile: a TOML file (from `hypura profile`), or a shipped profile's name
    /// (`hypura list profiles`: m1max, m4-16g, h100, h200, ...); default: this machine's
    /// profile, measured once by `hypura profile`.
    #[arg(long, value_name = "FILE|NAME")]
    pub hw: Option<String>,
    /// Tune on the trace's first N tokens, 1..=16777216 (default: all of them).
    #[arg(long, value_parser = range::int::<usize>(1..=range::MAX_TOKENS))]
    pub tokens: Option<usize>,
    /// Give up to this percentage of speed, 0..=50, for the least expert cache memory.
    #[arg(long, default_value_t = 0, value_parser = range::int::<u32>(0..=50))]
    pub within: u32,
    /// Worker threads, 0..=512 (0: all cores).
    #[arg(long, default_value_t = 0, value_parser = range::int::<u32>(0..=range::MAX_THREADS))]
    pub threads: u32,
    /// Write the tuned plan here.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Overwrite the -o file if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> Result<()> {
    super::refuse_existing(&args.output, args.force, "-o path")?;
    let hw = crate::machine::resolve(args.hw.as_deref())?;
    let setup = super::sweep::setup(
        &args.model,
        hw,
        &args.trace,
        args.tokens,
        None,
        "an expert cache to tune",
    )?;
    let tokens = setup.trace.n_tokens();
    let threads = super::sweep::threads(args.threads);
    let start = Instant::now();
    let t = tune::tune(&setup, f64::from(args.within) / 100.0, threads)?;
    let secs = start.elapsed().as_secs_f64();
    let mut plan = t.plan.clone();
    plan.inputs.trace_hash = Some(setup.identity.trace_hash.clone());
    outfile::write_bytes(&args.output, args.force, plan.to_json().as_bytes())?;
    println!(
        "tuned on {tokens} tokens of {}: {} configurations simulated in {secs:.1} s on {threads} thread(s)",
        args.trace.display(),
        t.simulated
    );
    let o = t.best.outcome.as_ref().expect("the best ran");
    println!("best: {}", describe(&t.best));
    if let Some(b) = t.belady.as_ref().and_then(|r| r.outcome.as_ref().ok()) {
        println!(
            "  Belady with the same bytes: hit rate {:.2}% against {:.2}% ({:+.2} points), {:.3} tok/s ({:.0}% faster than the chosen policy)",
            b.hit_rate * 100.0,
            o.hit_rate * 100.0,
            (b.hit_rate - o.hit_rate) * 100.0,
            b.tok_per_s,
            (b.tok_per_s / o.tok_per_s - 1.0) * 100.0
        );
    }
    if let Some(r) = t.oracle.as_ref().and_then(|r| r.outcome.as_ref().ok()) {
        println!(
            "  a perfect next-layer predictor (oracle prefetch) would give {:.3} tok/s",
            r.tok_per_s
        );
    }
    println!("runners-up:");
    for r in t
        .ranked
        .iter()
        .filter(|r| r.config != t.best.config)
        .take(5)
    {
        println!("  {}", describe(r));
    }
    let prefetch = t.best.config.prefetch.name();
    println!(
        "wrote {} (expert cache {} {}, queue depth {}); run it with\n  hypura run --plan {} -m {} --expert-prefetch {prefetch} -p PROMPT -n N",
        args.output.display(),
        gib(plan.expert_cache.bytes),
        plan.expert_cache.policy,
        plan.io.expert_queue_depth,
        args.output.display(),
        args.model
    );
    Ok(())
}

fn gib(b: u64) -> String {
    format!("{:.2}GiB", b as f64 / (1u64 << 30) as f64)
}

/// `policy=lru cache=3.00GiB prefetch=none qd=8: 4.512 tok/s, hit rate 74.61%`.
fn describe(r: &Row) -> String {
    let c = &r.config;
    let cache = r
        .cache_bytes
        .map_or_else(String::new, |b| format!(" cache={}", gib(b)));
    match &r.outcome {
        Ok(o) => format!(
            "policy={}{cache} prefetch={} qd={}: {:.3} tok/s, hit rate {:.2}%",
            c.policy.name(),
            c.prefetch.name(),
            r.queue_depth.unwrap_or(0),
            o.tok_per_s,
            o.hit_rate * 100.0
        ),
        Err(e) => format!("{c}: {e}"),
    }
}
