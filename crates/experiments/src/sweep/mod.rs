//! `sweep`: a grid of simulator configurations over one trace, model and machine, one row per
//! configuration, written as Parquet files into a results directory.
//!
//! What is shared, so that a large grid is cheap: the trace is loaded once; one plan is solved
//! per memory budget (`ram`, `gpu`), not per configuration; the cache policy is replayed once
//! per (budget, policy, cache bytes, partition) and its hits reused by every configuration that
//! differs only in how the decode is driven (expert prefetch, dense depth, queue depth: hits do
//! not depend on timing); the Belady bound is replayed once per (budget, cache bytes,
//! partition). Configurations run on all cores.
//!
//! Each row carries every input, every summary number of the decode, and the identity of the
//! model, profile, trace and hypura version; its `config_id` hashes all of them, so a rerun
//! skips the rows already in the directory ([`results`]) and shards (`i/N`) split the grid
//! deterministically. Merging shards is reading the directory.
//!
//! Not here: the simulator itself (`sim`), parsing flags and drawing progress (the CLI).

pub mod grid;
pub mod results;

pub use grid::{Config, SweepGridError, SweepPolicy};
pub use results::{ResultsDir, ResultsError};

use crate::validate::{budget_profile, ValidateError};
use hw::HwProfile;
use model::Inventory;
use plan::{ModelIdentity, Plan};
use policy::cache::{Partition, Policy};
use sim::decode::{self, DecodePolicy, DecodeRun, Machine, Options, Replayed};
use sim::{Planned, SimError};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Instant;
use traces::Trace;

/// The `hypura.schema` of sweep result files.
pub const SCHEMA: &str = "hypura-sweep/1";

/// Where a sweep's rows came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub hypura_version: String,
    pub model: ModelIdentity,
    pub profile_name: String,
    /// FNV-1a 64 of the profile's canonical TOML, as plans record it.
    pub profile_hash: String,
    /// The trace as the user named it (a file name).
    pub trace_name: String,
    /// FNV-1a 64 of the trace file's bytes, hex.
    pub trace_hash: String,
    /// Tokens decoded: the trace's first.
    pub tokens: u64,
}

impl Identity {
    /// The id of `config` under this identity: FNV-1a 64 of both, hex.
    pub fn config_id(&self, config: &Config) -> String {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.hypura_version,
            self.model.name,
            self.model.file_bytes,
            self.model.header_hash,
            self.profile_hash,
            self.trace_hash,
            self.tokens,
            SCHEMA,
            config.label()
        );
        plan::fnv1a_hex(text.as_bytes())
    }
}

/// What every configuration shares.
pub struct Setup {
    pub inventory: Inventory,
    pub hw: HwProfile,
    /// The routing decoded, already cut to the tokens to decode.
    pub trace: Trace,
    pub identity: Identity,
    /// A plan to sweep instead of solving one per budget (grids then set no `ram` or `gpu`).
    pub plan: Option<Plan>,
}

/// A deterministic slice of the grid: configuration `j` (in grid order) belongs to shard
/// `j % count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0..count.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// `i/N` with 0 <= i < N.
    pub fn parse(text: &str) -> Option<Shard> {
        let (i, n) = text.split_once('/')?;
        let (index, count) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
        (count >= 1 && index < count).then_some(Shard { index, count })
    }

    pub fn holds(&self, position: usize) -> bool {
        position % self.count as usize == self.index as usize
    }
}

/// Why a sweep could not start (a configuration that fails is a row with its error instead).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("a plan was given, so the grid cannot set {key} (each budget needs its own plan)")]
    BudgetWithPlan { key: &'static str },
    #[error("the plan does not apply")]
    Plan(#[source] SimError),
    #[error(transparent)]
    Results(#[from] ResultsError),
}

/// One configuration's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub config_id: String,
    pub config: Config,
    /// The plan's expert cache bytes where the configuration gave none (cache policies), or
    /// the bytes the plan's own cache holds (static); None when the plan failed.
    pub cache_bytes: Option<u64>,
    pub prefetch_depth: Option<u32>,
    pub queue_depth: Option<u32>,
    pub plan_mode: Option<String>,
    pub plan_tok_per_s: Option<f64>,
    pub outcome: Result<Outcome, String>,
    /// Wall seconds the simulation of this configuration took (not counting shared replays;
    /// about 0 when an equivalent configuration's decode was reused: one whose options differ
    /// only where the plan cannot use them, see `sim::decode::effective_options`).
    pub sim_seconds: f64,
}

/// A configuration's simulated decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub tok_per_s: f64,
    pub token_s_p50: f64,
    pub token_s_p99: f64,
    pub hit_rate: f64,
    /// Belady's hit rate with the same cache bytes and partition (the bound the policy is
    /// measured against).
    pub belady_hit_rate: f64,
    pub prefetch_hit_rate: f64,
    pub bytes_read_per_token: f64,
    pub prefetch_wasted_bytes_per_token: f64,
    pub compute_s_per_token: f64,
    pub io_wait_s_per_token: f64,
    pub link_s_per_token: f64,
    pub storage_utilisation: f64,
    /// Routed-expert accesses simulated.
    pub expert_accesses: u64,
}

/// What a sweep did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Configurations in the grid, in this shard, already in the directory, run now.
    pub grid: usize,
    pub in_shard: usize,
    pub skipped: usize,
    pub run: usize,
    /// Rows whose configuration failed (their error is in the row).
    pub failed: usize,
    /// Cache replays made (shared by the configurations that differ only in timing).
    pub replays: usize,
    pub seconds: f64,
    /// Routed-expert accesses simulated, over all configurations run.
    pub expert_accesses: u64,
    pub files: Vec<std::path::PathBuf>,
    /// Memory budgets (`ram=.. gpu=..`, or "the profile's memory") whose plan keeps every
    /// expert in memory: there, cache, prefetch and queue depth change nothing.
    pub resident_budgets: Vec<String>,
}

/// Progress, for a bar.
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// How the sweep is driven.
pub struct Run {
    /// Worker threads (at least 1).
    pub threads: usize,
    pub shard: Shard,
    /// Rows per results file at most; a file is also written every `flush_seconds`.
    pub rows_per_file: usize,
    pub flush_seconds: f64,
}

/// Runs the configurations of `configs` that belong to `run.shard` and are not in `dir` yet,
/// writing their rows there.
pub fn sweep(
    setup: &Setup,
    configs: &[Config],
    dir: &mut ResultsDir,
    run: &Run,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, SweepError> {
    let start = Instant::now();
    check(setup, configs)?;
    let done = dir.done_ids();
    let in_shard: Vec<&Config> = configs
        .iter()
        .enumerate()
        .filter(|(j, _)| run.shard.holds(*j))
        .map(|(_, c)| c)
        .collect();
    let todo: Vec<(String, Config)> = in_shard
        .iter()
        .map(|c| (setup.identity.config_id(c), **c))
        .filter(|(id, _)| !done.contains(id))
        .collect();
    let mut summary = Summary {
        grid: configs.len(),
        in_shard: in_shard.len(),
        skipped: in_shard.len() - todo.len(),
        run: 0,
        failed: 0,
        replays: 0,
        seconds: 0.0,
        expert_accesses: 0,
        files: Vec::new(),
        resident_budgets: Vec::new(),
    };
    progress(Progress {
        done: 0,
        total: todo.len(),
    });
    let mut sink = Collector {
        dir,
        identity: &setup.identity,
        run,
        total: todo.len(),
        pending: Vec::new(),
        last: Instant::now(),
        files: Vec::new(),
        failed: None,
    };
    summary.replays = evaluate(setup, &todo, run.threads, &mut |row| {
        summary.run += 1;
        match &row.outcome {
            Ok(o) => summary.expert_accesses += o.expert_accesses,
            Err(_) => summary.failed += 1,
        }
        if row.plan_mode.as_deref() == Some(plan::Mode::FullResident.name()) {
            let budget = budget_label(&row.config);
            if !summary.resident_budgets.contains(&budget) {
                summary.resident_budgets.push(budget);
            }
        }
        let done = summary.run;
        sink.push(row);
        progress(Progress {
            done,
            total: sink.total,
        });
        sink.failed.is_none()
    });
    let written = sink.finish();
    let files = written?;
    summary.files = files;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

fn check(setup: &Setup, configs: &[Config]) -> Result<(), SweepError> {
    if setup.plan.is_some() {
        if configs.iter().any(|c| c.ram_bytes.is_some()) {
            return Err(SweepError::BudgetWithPlan { key: "ram" });
        }
        if configs.iter().any(|c| c.gpu_bytes.is_some()) {
            return Err(SweepError::BudgetWithPlan { key: "gpu" });
        }
    }
    Ok(())
}

/// Writes rows in files as they come: a file per `rows_per_file` rows or `flush_seconds`.
struct Collector<'a> {
    dir: &'a mut ResultsDir,
    identity: &'a Identity,
    run: &'a Run,
    total: usize,
    pending: Vec<Row>,
    last: Instant,
    files: Vec<std::path::PathBuf>,
    /// The first write that failed: no more rows are taken.
    failed: Option<ResultsError>,
}

impl Collector<'_> {
    fn push(&mut self, row: Row) {
        self.pending.push(row);
        if self.pending.len() >= self.run.rows_per_file.max(1)
            || self.last.elapsed().as_secs_f64() >= self.run.flush_seconds
        {
            self.flush();
            self.last = Instant::now();
        }
    }

    fn flush(&mut self) {
        if self.pending.is_empty() || self.failed.is_some() {
            return;
        }
        match self.dir.write(self.identity, &self.pending) {
            Ok(path) => self.files.push(path),
            Err(e) => self.failed = Some(e),
        }
        self.pending.clear();
    }

    fn finish(mut self) -> Result<Vec<std::path::PathBuf>, SweepError> {
        self.flush();
        match self.failed {
            Some(e) => Err(e.into()),
            None => Ok(self.files),
        }
    }
}

/// Simulates `todo` (id, configuration) on `threads` workers, handing each row to `sink` as
/// it is made (on this thread; `sink` returns false to stop taking rows). Returns the cache
/// replays made.
pub fn evaluate(
    setup: &Setup,
    todo: &[(String, Config)],
    threads: usize,
    sink: &mut dyn FnMut(Row) -> bool,
) -> usize {
    let plans = solve_plans(setup, todo);
    let groups = group(todo);
    let bounds = Bounds::default();
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Row>();
    let threads = threads.clamp(1, groups.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (groups, plans, bounds, next) = (&groups, &plans, &bounds, &next);
            s.spawn(move || loop {
                let g = next.fetch_add(1, Ordering::Relaxed);
                let Some(group) = groups.get(g) else { break };
                let plan = &plans[&(group[0].1.ram_bytes, group[0].1.gpu_bytes)];
                for row in run_group(setup, plan, group, bounds) {
                    if tx.send(row).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for row in rx {
            if !sink(row) {
                break;
            }
        }
    });
    groups.len()
}

/// `ram=5GiB gpu=2GiB`, or "the profile's memory" when the grid set neither.
fn budget_label(c: &Config) -> String {
    let parts: Vec<String> = [("ram", c.ram_bytes), ("gpu", c.gpu_bytes)]
        .iter()
        .filter_map(|(k, b)| b.map(|b| format!("{k}={}", crate::grid::format_bytes(b))))
        .collect();
    if parts.is_empty() {
        "the profile's memory".into()
    } else {
        parts.join(" ")
    }
}

/// A memory budget: (ram, gpu).
type Budget = (Option<u64>, Option<u64>);

/// One plan per budget the configurations use (the given plan for the default budget).
fn solve_plans(
    setup: &Setup,
    todo: &[(String, Config)],
) -> HashMap<Budget, Result<Planned, String>> {
    let rates = decode::expert_rates(&setup.trace);
    let mut plans = HashMap::new();
    for (_, c) in todo {
        let budget = (c.ram_bytes, c.gpu_bytes);
        plans.entry(budget).or_insert_with(|| {
            let planned = match &setup.plan {
                Some(p) => Planned::from_plan(p.clone(), &setup.inventory, &setup.hw, &rates)
                    .map_err(|e| chain(&e)),
                None => budget_profile(&setup.hw, c.ram_bytes, c.gpu_bytes)
                    .map_err(|e: ValidateError| chain(&e))
                    .and_then(|hw| {
                        Planned::solve(&setup.inventory, &hw, rates.clone()).map_err(|e| chain(&e))
                    }),
            };
            planned.map_err(|e| format!("cannot place the model: {e}"))
        });
    }
    plans
}

/// An error and its causes on one line, each said once (errors often repeat their source in
/// their own message, as the CLI's rendering also allows for).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !s.contains(&said) {
            s.push_str(": ");
            s.push_str(&said);
        }
        source = cause.source();
    }
    s
}

/// The configurations to run, grouped by what they share (plan and cache replay), in grid
/// order.
fn group(todo: &[(String, Config)]) -> Vec<Vec<(String, Config)>> {
    let mut order: Vec<grid::ReplayKey> = Vec::new();
    let mut groups: BTreeMap<grid::ReplayKey, Vec<(String, Config)>> = BTreeMap::new();
    for (id, c) in todo {
        let key = c.replay_key();
        let g = groups.entry(key).or_default();
        if g.is_empty() {
            order.push(key);
        }
        g.push((id.clone(), *c));
    }
    order
        .into_iter()
        .filter_map(|k| groups.remove(&k))
        .collect()
}

/// Belady's hit rate per (budget, cache bytes, partition), replayed once whichever worker
/// asks first.
#[derive(Default)]
struct Bounds {
    cells: std::sync::Mutex<HashMap<BoundKey, BoundCell>>,
}

/// A bound, computed once.
type BoundCell = std::sync::Arc<OnceLock<Result<f64, String>>>;

/// (budget, cache bytes, partition name).
type BoundKey = (Budget, u64, &'static str);

impl Bounds {
    fn get(
        &self,
        budget: Budget,
        capacity_bytes: u64,
        partition: Partition,
        compute: impl FnOnce() -> Result<f64, String>,
    ) -> Result<f64, String> {
        let key = (budget, capacity_bytes, grid::partition_name(partition));
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
            cells.entry(key).or_default().clone()
        };
        cell.get_or_init(compute).clone()
    }
}

/// The rows of one group: one replay, then each configuration's decode.
fn run_group(
    setup: &Setup,
    plan: &Result<Planned, String>,
    group: &[(String, Config)],
    bounds: &Bounds,
) -> Vec<Row> {
    let failed = |why: &str| -> Vec<Row> {
        group
            .iter()
            .map(|(id, c)| Row {
                config_id: id.clone(),
                config: *c,
                cache_bytes: None,
                prefetch_depth: None,
                queue_depth: None,
                plan_mode: None,
                plan_tok_per_s: None,
                outcome: Err(why.to_string()),
                sim_seconds: 0.0,
            })
            .collect()
    };
    let planned = match plan {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let placement = planned.placement();
    let first = group[0].1;
    let policy = first.decode_policy(planned.plan.expert_cache.bytes);
    let replayed = match decode::replay(&placement, &setup.trace, &policy) {
        Ok(r) => r,
        Err(e) => return failed(&chain(&e)),
    };
    let (capacity_bytes, partition) = match &policy {
        DecodePolicy::Static => (planned.plan.expert_cache.bytes, Partition::Global),
        DecodePolicy::Cache {
            capacity_bytes,
            partition,
            ..
        } => (*capacity_bytes, *partition),
    };
    let bound = bounds.get(
        (first.ram_bytes, first.gpu_bytes),
        capacity_bytes,
        partition,
        || {
            if matches!(
                policy,
                DecodePolicy::Cache {
                    policy: Policy::Belady,
                    ..
                }
            ) {
                return Ok(replayed.hit_rate());
            }
            let belady = DecodePolicy::Cache {
                policy: Policy::Belady,
                capacity_bytes,
                partition,
            };
            decode::replay(&placement, &setup.trace, &belady)
                .map(|r| r.hit_rate())
                .map_err(|e| chain(&e))
        },
    );
    let machine = Machine::from_profile(&setup.hw);
    // Configurations whose options the plan cannot tell apart decode alike: simulated once.
    let mut decoded: Vec<(Options, Decoded)> = Vec::new();
    group
        .iter()
        .map(|(id, c)| {
            let start = Instant::now();
            let opts = Options {
                prefetch_depth: c.depth.unwrap_or(planned.plan.prefetch_depth),
                expert_prefetch: c.prefetch,
                queue_depth: c.queue_depth,
                host_weights_on_gpu: false,
                keep_records: false,
            };
            let effective = decode::effective_options(&placement, &opts);
            let outcome = match decoded.iter().find(|(o, _)| *o == effective) {
                Some((_, done)) => done.clone(),
                None => {
                    let o = simulate(setup, &placement, &machine, &replayed, &effective, &bound);
                    decoded.push((effective, o.clone()));
                    o
                }
            };
            Row {
                config_id: id.clone(),
                config: *c,
                cache_bytes: match &policy {
                    DecodePolicy::Static => outcome.as_ref().ok().map(|(_, b)| *b),
                    DecodePolicy::Cache { capacity_bytes, .. } => Some(*capacity_bytes),
                },
                prefetch_depth: Some(opts.prefetch_depth),
                queue_depth: Some(decode::queue_depth(&placement, &opts)),
                plan_mode: Some(planned.plan.mode.name().to_string()),
                plan_tok_per_s: Some(planned.plan.prediction.tok_per_s),
                outcome: outcome.map(|(o, _)| o),
                sim_seconds: start.elapsed().as_secs_f64(),
            }
        })
        .collect()
}

/// One configuration's decode: its outcome and the expert cache bytes it reported.
type Decoded = Result<(Outcome, u64), String>;

/// Simulates one configuration on the shared replay.
fn simulate(
    setup: &Setup,
    placement: &decode::Placement<'_>,
    machine: &Machine,
    replayed: &Replayed,
    opts: &Options,
    bound: &Result<f64, String>,
) -> Decoded {
    let run: DecodeRun = replayed
        .simulate(placement, machine, &setup.trace, opts)
        .map_err(|e| chain(&e))?;
    let belady_hit_rate = bound.clone()?;
    let r = &run.report;
    let outcome = Outcome {
        tok_per_s: r.tok_per_s,
        token_s_p50: r.token_s_p50,
        token_s_p99: r.token_s_p99,
        hit_rate: r.hit_rate,
        belady_hit_rate,
        prefetch_hit_rate: r.prefetch_hit_rate,
        bytes_read_per_token: r.bytes_read_per_token,
        prefetch_wasted_bytes_per_token: r.prefetch_wasted_bytes_per_token,
        compute_s_per_token: r.compute_s_per_token,
        io_wait_s_per_token: r.io_wait_s_per_token,
        link_s_per_token: r.link_s_per_token,
        storage_utilisation: r.storage_utilisation,
        expert_accesses: run.summary.expert_accesses,
    };
    Ok((outcome, r.cache_bytes))
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("inner trouble")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot solve")]
        Solve(#[source] Inner),
        #[error("infeasible: {0}")]
        Repeats(#[source] Inner),
    }

    #[test]
    fn a_cause_is_said_once() {
        assert_eq!(chain(&Outer::Solve(Inner)), "cannot solve: inner trouble");
        assert_eq!(chain(&Outer::Repeats(Inner)), "infeasible: inner trouble");
    }
}
