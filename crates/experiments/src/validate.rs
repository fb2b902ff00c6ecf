//! `validate`: each configuration of a grid solved, simulated and run for real on the same
//! plan, profile and routing, and compared by [`Measures`](crate::measures::Measures).
//!
//! Per point: the profile is narrowed to the point's memory (`ram`, `gpu`), a plan is solved
//! for it with the trace's expert use, the simulator decodes the trace's tokens on that plan
//! (prefill of the prompt, then decode), and the runtime runs the same plan on the model file
//! with the same routing forced from the trace (greedy, a fixed number of tokens, the model's
//! page cache dropped first; the runtime reads streamed weights with O_DIRECT). The simulator
//! is calibrated by the profile alone: nothing is fitted to the run it is compared with.

use crate::grid::Point;
#[cfg(feature = "runtime")]
use crate::measures::Measures;
use crate::measures::Split;
use hw::HwProfile;
use metrics::TokenLayerRecord;
use model::Inventory;
use place::{IlpOptions, Method, PlaceError, SolveOptions};
use plan::Plan;
use policy::cache::{HotSet, Partition, Policy, RunPolicy};
use serde::Serialize;
use sim::decode::{self, DecodePolicy, Machine, Options};
use sim::prefill::{self, Prompt};
use sim::{Planned, SimError};
#[cfg(feature = "runtime")]
use std::path::Path;
use std::path::PathBuf;
use traces::Trace;

/// llama.cpp's physical batch: a prompt up to this long is one batch on both sides.
pub const MAX_PROMPT: usize = sim::prefill::DEFAULT_BATCH;

/// What every point shares.
pub struct Setup {
    pub model_path: PathBuf,
    pub inventory: Inventory,
    pub hw: HwProfile,
    /// The routing both sides follow (MoE models); `None` for a dense model.
    pub trace: Option<Trace>,
    /// Prompt tokens, 1..=[`MAX_PROMPT`]: one prefill batch.
    pub prompt_len: usize,
    /// Tokens to generate; the last is sampled, not decoded, so `tokens - 1` are decoded.
    pub tokens: usize,
    /// Decoded tokens left out of the timing on both sides.
    pub warmup: u32,
    /// Decode threads for the run (0: all cores).
    pub threads: u32,
    /// Solve with the greedy baseline instead of the ILP.
    pub greedy: bool,
    /// Runs per point (at least 1): the one with the median decode speed is compared, so that
    /// one slow run on a noisy machine does not decide a point's error.
    pub repeats: u32,
}

/// Why a point could not be validated.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("the prompt must be 1..={MAX_PROMPT} tokens (one prefill batch), not {0}")]
    PromptLength(usize),
    #[error("at least 2 tokens must be generated (1 is sampled from the prompt), not {0}")]
    TooFewTokens(usize),
    #[error("each point must be run at least once")]
    NoRuns,
    #[error("the warm-up ({warmup} tokens) leaves none of the {decoded} decoded tokens to time")]
    WarmupTooLong { warmup: u32, decoded: usize },
    #[error("the trace has {has} tokens; {need} are needed ({prompt} prompt + {decoded} decoded)")]
    TraceTooShort {
        has: usize,
        need: usize,
        prompt: usize,
        decoded: usize,
    },
    #[error("{model} has routed experts: give a routing trace")]
    NeedsTrace { model: String },
    #[error("{model} is dense: a routing trace does not apply")]
    DenseWithTrace { model: String },
    #[error(transparent)]
    Budget(#[from] hw::BudgetError),
    #[error("cannot solve a plan")]
    Solve(#[source] PlaceError),
    #[error("cannot simulate the plan")]
    Sim(#[source] SimError),
    #[cfg(feature = "runtime")]
    #[error("cannot run the plan")]
    Run(#[source] runtime::Error),
    #[error("cannot drop {path}'s cached pages")]
    DropCache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Setup {
    /// Checks the lengths against each other and the trace against the model, before any work.
    pub fn check(&self) -> Result<(), ValidateError> {
        if !(1..=MAX_PROMPT).contains(&self.prompt_len) {
            return Err(ValidateError::PromptLength(self.prompt_len));
        }
        if self.tokens < 2 {
            return Err(ValidateError::TooFewTokens(self.tokens));
        }
        if self.repeats == 0 {
            return Err(ValidateError::NoRuns);
        }
        if self.warmup as usize >= self.decoded() {
            return Err(ValidateError::WarmupTooLong {
                warmup: self.warmup,
                decoded: self.decoded(),
            });
        }
        let model = self.model_path.display().to_string();
        match (&self.trace, self.inventory.arch.is_moe()) {
            (None, true) => return Err(ValidateError::NeedsTrace { model }),
            (Some(_), false) => return Err(ValidateError::DenseWithTrace { model }),
            (Some(t), true) if t.n_tokens() < self.trace_tokens() => {
                return Err(ValidateError::TraceTooShort {
                    has: t.n_tokens(),
                    need: self.trace_tokens(),
                    prompt: self.prompt_len,
                    decoded: self.decoded(),
                })
            }
            _ => {}
        }
        Ok(())
    }

    /// Tokens decoded after the prompt.
    pub fn decoded(&self) -> usize {
        self.tokens - 1
    }

    /// Tokens of routing both sides consume.
    pub fn trace_tokens(&self) -> usize {
        self.prompt_len + self.decoded()
    }

    /// The routing both sides use: the trace's first tokens, or every layer's FFN for a dense
    /// model.
    pub fn routing(&self) -> Result<Trace, ValidateError> {
        match &self.trace {
            Some(t) => decode::first_tokens(t, self.trace_tokens()).map_err(ValidateError::Sim),
            None => Ok(Trace::without_routing(
                self.inventory.arch.arch.clone(),
                self.trace_tokens(),
            )),
        }
    }

    /// How records split into prefill, warm-up and timed decode.
    pub fn split(&self) -> Split {
        Split {
            prefill_batches: 1,
            prompt_tokens: self.prompt_len as u32,
            warmup: self.warmup,
        }
    }
}

/// The profile narrowed to a point's memory.
pub fn point_profile(hw: &HwProfile, point: &Point) -> Result<HwProfile, ValidateError> {
    budget_profile(hw, point.ram_bytes, point.gpu_bytes)
}

/// The profile with `ram_bytes` of RAM for the plan (after the OS reserve) and `gpu_bytes` of
/// GPU working set, where given ([`HwProfile::with_budget`]).
pub fn budget_profile(
    hw: &HwProfile,
    ram_bytes: Option<u64>,
    gpu_bytes: Option<u64>,
) -> Result<HwProfile, ValidateError> {
    Ok(hw.with_budget(ram_bytes, gpu_bytes)?)
}

/// The plan `hypura solve` makes for the point, with the routing's expert use.
pub fn solve(setup: &Setup, hw: &HwProfile, routing: &Trace) -> Result<Plan, ValidateError> {
    let rates = setup.trace.as_ref().map(|_| decode::expert_rates(routing));
    let opts = SolveOptions {
        rates,
        method: if setup.greedy {
            Method::Greedy
        } else {
            Method::Ilp
        },
        ilp: IlpOptions::default(),
        headroom: place::Headroom {
            ctx: context_tokens(setup),
            ..place::Headroom::default()
        },
        ..SolveOptions::default()
    };
    let solved = place::solve(&setup.inventory, hw, &opts).map_err(ValidateError::Solve)?;
    Ok(solved.plan)
}

/// The context both sides reserve: the prompt and the generated tokens, rounded up to 256 as
/// `hypura run` does.
pub fn context_tokens(setup: &Setup) -> u64 {
    ((setup.prompt_len + setup.tokens) as u64).div_ceil(256) * 256
}

/// The simulator's records for the point's plan.
pub fn simulate(
    setup: &Setup,
    hw: &HwProfile,
    plan: &Plan,
    routing: &Trace,
    point: &Point,
) -> Result<Vec<TokenLayerRecord>, ValidateError> {
    let rates = decode::expert_rates(routing);
    let planned = Planned::from_plan(plan.clone(), &setup.inventory, hw, &rates)
        .map_err(ValidateError::Sim)?;
    let policy = decode_policy(point.policy, plan.expert_cache.bytes);
    let opts = Options {
        prefetch_depth: plan.prefetch_depth,
        expert_prefetch: point.prefetch,
        queue_depth: point.queue_depth,
        host_weights_on_gpu: false,
        keep_records: true,
    };
    let prompt = Prompt {
        tokens: setup.prompt_len,
        batch: None,
    };
    let run = prefill::simulate_request(
        &planned.placement(),
        &Machine::from_profile(hw),
        routing,
        &policy,
        &opts,
        &prompt,
    )
    .map_err(ValidateError::Sim)?;
    Ok(run.records)
}

/// The simulator's policy for a grid policy: the plan's cache, or a policy over its bytes.
fn decode_policy(p: RunPolicy, capacity_bytes: u64) -> DecodePolicy {
    let policy = match p {
        RunPolicy::StaticFrequency => return DecodePolicy::Static,
        RunPolicy::Lru => Policy::Lru,
        RunPolicy::Lfu => Policy::Lfu,
        RunPolicy::Lfru => Policy::Lfru,
        RunPolicy::Arc => Policy::Arc,
        // The hot set is filled from the plan by the simulator.
        RunPolicy::PinnedLru => Policy::PinnedLru(HotSet(Vec::new())),
    };
    DecodePolicy::Cache {
        policy,
        capacity_bytes,
        partition: Partition::Global,
    }
}

/// What the runtime measured besides its records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunFacts {
    /// Generated token ids (greedy).
    pub tokens: Vec<i32>,
    /// `hypura run`'s own decode tok/s (wall clock of the decode steps, records or not).
    pub decode_tok_per_s: f64,
    /// Decode tok/s of the steps after the warm-up (wall clock of each step).
    pub timed_decode_tok_per_s: Option<f64>,
    /// Prompt tokens over the prompt batch's wall clock.
    pub prefill_tok_per_s: Option<f64>,
    /// The kernel's count of bytes read during the decode steps, when it keeps one.
    pub decode_read_bytes: Option<u64>,
}

/// How a run of a point is made.
#[cfg(feature = "runtime")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Routing forced on every token and a (token, layer) record of every step: what hits,
    /// bytes, I/O wait and per-layer times are measured from. Each layer's end is a stop of the
    /// graph, which on a GPU costs more than the layer's own work.
    Observed,
    /// As `hypura run` runs the plan: no records; the routing forced on the prompt and, when the
    /// plan streams experts (its reads follow the routing, and it stops at each router anyway),
    /// on every decode step. A decode step of a plan that holds every expert in memory takes
    /// the model's own routing: one token selects top-k experts whichever they are. Speeds are
    /// measured from these runs.
    Timed,
}

/// Runs the point's plan on the model, `kind` deciding what is forced and recorded.
#[cfg(feature = "runtime")]
pub fn run(
    setup: &Setup,
    plan: &Plan,
    routing: &Trace,
    point: &Point,
    kind: RunKind,
) -> Result<(Vec<TokenLayerRecord>, RunFacts), ValidateError> {
    use runtime::{MoeOptions, PlannedModel, ReplayScope, Sampling};
    drop_cached(&setup.model_path)?;
    let mut planned =
        PlannedModel::load(&setup.model_path, plan, None).map_err(ValidateError::Run)?;
    if let Some(q) = point.queue_depth {
        planned.io.queue_depth = q;
    }
    let replay_scope = match kind {
        RunKind::Timed if !planned.streams_experts() => ReplayScope::Prompt,
        _ => ReplayScope::AllTokens,
    };
    let moe = MoeOptions {
        whole_expert_tensors: false,
        cache_policy: match point.policy {
            RunPolicy::StaticFrequency => None,
            p => Some(p),
        },
        record: false,
        replay: setup.trace.as_ref().map(|_| routing.clone()),
        replay_scope,
        expert_prefetch: point.prefetch,
    };
    let prompt = planned
        .model
        .filler_prompt(setup.prompt_len)
        .map_err(ValidateError::Run)?;
    let record_layers = kind == RunKind::Observed;
    let mut ctx = planned
        .context(
            &moe,
            context_tokens(setup) as u32,
            setup.threads,
            record_layers,
        )
        .map_err(ValidateError::Run)?;
    // The simulator has no one-time costs of a fresh context; a throwaway token pays them
    // before the prompt is timed (the streamer sits it out: the expert cache is untouched).
    ctx.warm_up().map_err(ValidateError::Run)?;
    let sampling = Sampling {
        ignore_eos: true,
        ..Sampling::GREEDY
    };
    let g = ctx
        .generate(&prompt, setup.tokens, sampling)
        .map_err(ValidateError::Run)?;
    let records = ctx
        .streamer()
        .map(|s| s.records().to_vec())
        .unwrap_or_default();
    let facts = RunFacts {
        decode_tok_per_s: g.decode_tok_per_s(),
        timed_decode_tok_per_s: timed_rate(&g.token_s[1.min(g.token_s.len())..], setup.warmup),
        prefill_tok_per_s: (g.prompt_s > 0.0).then(|| g.prompt_tokens.len() as f64 / g.prompt_s),
        decode_read_bytes: g.decode_read_bytes,
        tokens: g.tokens,
    };
    Ok((records, facts))
}

/// Tokens per second of the decode steps `step_s` after the first `warmup`; None when none is
/// left or they took no time.
#[cfg(feature = "runtime")]
fn timed_rate(step_s: &[f64], warmup: u32) -> Option<f64> {
    let timed = step_s.get(warmup as usize..).unwrap_or(&[]);
    let s: f64 = timed.iter().sum();
    (!timed.is_empty() && s > 0.0).then(|| timed.len() as f64 / s)
}

/// Drops the model file's cached pages, so that a run starts cold.
#[cfg(feature = "runtime")]
fn drop_cached(path: &Path) -> Result<(), ValidateError> {
    let err = |source| ValidateError::DropCache {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    runtime::page_cache::drop_cached(&file).map_err(err)
}

/// One point validated: its report and both sides' records.
#[cfg(feature = "runtime")]
pub struct Validated {
    pub report: crate::report::PointReport,
    pub sim_records: Vec<TokenLayerRecord>,
    pub run_records: Vec<TokenLayerRecord>,
    pub plan: Plan,
}

/// The index of the median of `v` (the lower one of an even count; NaN sorts last).
#[cfg(feature = "runtime")]
fn median_index(v: &[f64]) -> usize {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    order[(v.len().max(1) - 1) / 2]
}

/// Solves, simulates and runs one point: one observed run, and [`Setup::repeats`] timed runs
/// whose median (by decode speed) gives the measured speeds.
#[cfg(feature = "runtime")]
pub fn validate_point(setup: &Setup, point: &Point) -> Result<Validated, ValidateError> {
    setup.check()?;
    let hw = point_profile(&setup.hw, point)?;
    let routing = setup.routing()?;
    let plan = solve(setup, &hw, &routing)?;
    let sim_records = simulate(setup, &hw, &plan, &routing, point)?;
    let split = setup.split();
    let (run_records, _) = run(setup, &plan, &routing, point, RunKind::Observed)?;
    let mut timed = Vec::with_capacity(setup.repeats.max(1) as usize);
    for _ in 0..setup.repeats.max(1) {
        timed.push(run(setup, &plan, &routing, point, RunKind::Timed)?.1);
    }
    let speeds: Vec<f64> = timed
        .iter()
        .map(|f| f.timed_decode_tok_per_s.unwrap_or(f64::NAN))
        .collect();
    let facts = timed.swap_remove(median_index(&speeds));
    let mut run_measures = Measures::from_records(&run_records, split);
    run_measures.decode_tok_per_s = facts.timed_decode_tok_per_s;
    run_measures.prefill_tok_per_s = facts.prefill_tok_per_s;
    let queue_depth = point
        .queue_depth
        .unwrap_or(plan.io.queue_depth.max(plan.io.expert_queue_depth).max(1));
    let report = crate::report::PointReport::new(
        point,
        queue_depth,
        &plan,
        Measures::from_records(&sim_records, split),
        run_measures,
        facts,
        speeds,
    );
    Ok(Validated {
        report,
        sim_records,
        run_records,
        plan,
    })
}
