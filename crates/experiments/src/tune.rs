//! `tune`: the simulator in the loop picks what a run of the user's trace on the user's machine
//! should use: expert cache bytes, cache policy, expert prefetch and queue depth, among what
//! `hypura run` can do (no Belady, no oracle prefetch: they need the future).
//!
//! Candidates: every runnable policy (the plan's own `static` included), cache bytes from a
//! quarter of the plan's expert memory to all of it, prefetch none or co-activation, queue
//! depths 1 to 32. The plan is `hypura solve`'s for the profile and the trace's expert use;
//! the candidates are a sweep on it (shared replays, all cores). The best is the fastest; with
//! `within` > 0, the one with the least cache bytes within that fraction of the fastest (memory
//! given back for a little speed). Beside it: Belady's hit rate and speed with the same bytes,
//! prefetch and queue depth (how far the chosen policy is from the optimum on this trace), and
//! the oracle prefetch's speed (what a perfect predictor would add).
//!
//! Not here: applying the choice to a run (the CLI writes it into the plan and prints the
//! `hypura run` flags).

use crate::sweep::{self, grid::SweepPolicy, Config, Row, Setup};
use plan::Plan;
use policy::cache::Partition;
use policy::prefetch::ExpertPrefetch;

/// Queue depths tried.
pub const QUEUE_DEPTHS: [u32; 6] = [1, 2, 4, 8, 16, 32];
/// Policies `hypura run` can follow.
pub const POLICIES: [SweepPolicy; 6] = [
    SweepPolicy::Static,
    SweepPolicy::Lru,
    SweepPolicy::Lfu,
    SweepPolicy::Lfru,
    SweepPolicy::Arc,
    SweepPolicy::PinnedLru,
];

/// Why nothing could be tuned.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("cannot place the model")]
    Solve(#[source] place::PlaceError),
    #[error("the plan keeps every routed expert in memory ({mode}): no cache, prefetch or queue depth changes its decode; nothing to tune")]
    NothingStreams { mode: String },
    #[error("no candidate could be simulated; the first said: {first}")]
    NoneRan { first: String },
}

/// What tuning chose.
#[derive(Debug, Clone)]
pub struct Tuned {
    /// The plan with the choice written in: expert cache bytes and policy, queue depths.
    pub plan: Plan,
    pub best: Row,
    /// Belady with the best's cache bytes, prefetch and queue depth.
    pub belady: Option<Row>,
    /// The best's configuration with oracle prefetch.
    pub oracle: Option<Row>,
    /// Every runnable candidate that ran, fastest first.
    pub ranked: Vec<Row>,
    /// Candidates simulated (bounds included).
    pub simulated: usize,
}

/// The candidates for a plan whose expert memory is `expert_bytes`.
pub fn candidates(expert_bytes: u64) -> Vec<Config> {
    let caches: Vec<u64> = [1u64, 2, 3, 4]
        .iter()
        .map(|q| expert_bytes / 4 * q)
        .filter(|&b| b > 0)
        .collect();
    let mut out = Vec::new();
    for policy in POLICIES {
        let sizes: Vec<Option<u64>> = match policy {
            SweepPolicy::Static => vec![None],
            _ => caches.iter().map(|&b| Some(b)).collect(),
        };
        for cache_bytes in sizes {
            for prefetch in [ExpertPrefetch::None, ExpertPrefetch::Coactivation] {
                for qd in QUEUE_DEPTHS {
                    out.push(Config {
                        ram_bytes: None,
                        gpu_bytes: None,
                        policy,
                        cache_bytes,
                        partition: (policy != SweepPolicy::Static).then_some(Partition::Global),
                        prefetch,
                        depth: None,
                        queue_depth: Some(qd),
                    });
                }
            }
        }
    }
    out
}

/// Tunes `setup` (its `plan` is ignored: the plan is solved here) on `threads` workers;
/// `within` is the speed fraction given up for less cache (0: the fastest).
pub fn tune(setup: &Setup, within: f64, threads: usize) -> Result<Tuned, TuneError> {
    let rates = sim::decode::expert_rates(&setup.trace);
    let planned =
        sim::Planned::solve(&setup.inventory, &setup.hw, rates).map_err(TuneError::Solve)?;
    let plan = planned.plan.clone();
    let streams = plan.experts.iter().any(|e| !e.nvme.is_empty());
    if !streams || plan.expert_cache.bytes == 0 {
        return Err(TuneError::NothingStreams {
            mode: plan.mode.name().to_string(),
        });
    }
    let setup = Setup {
        inventory: setup.inventory.clone(),
        hw: setup.hw.clone(),
        trace: setup.trace.clone(),
        identity: setup.identity.clone(),
        plan: Some(plan.clone()),
    };
    let todo: Vec<(String, Config)> = candidates(plan.expert_cache.bytes)
        .into_iter()
        .map(|c| (setup.identity.config_id(&c), c))
        .collect();
    let mut rows = Vec::new();
    sweep::evaluate(&setup, &todo, threads, &mut |r| {
        rows.push(r);
        true
    });
    let mut simulated = rows.len();
    let first_error = rows.iter().find_map(|r| r.outcome.as_ref().err().cloned());
    let speed = |r: &Row| {
        r.outcome
            .as_ref()
            .map_or(f64::NEG_INFINITY, |o| o.tok_per_s)
    };
    let mut ranked: Vec<Row> = rows.into_iter().filter(|r| r.outcome.is_ok()).collect();
    ranked.sort_by(|a, b| {
        speed(b)
            .total_cmp(&speed(a))
            .then(a.config.label().cmp(&b.config.label()))
    });
    let Some(fastest) = ranked.first() else {
        return Err(TuneError::NoneRan {
            first: first_error.unwrap_or_else(|| "nothing ran".into()),
        });
    };
    let floor = speed(fastest) * (1.0 - within.clamp(0.0, 1.0));
    let best = ranked
        .iter()
        .filter(|r| speed(r) >= floor)
        .min_by(|a, b| {
            let bytes = |r: &Row| r.cache_bytes.unwrap_or(u64::MAX);
            bytes(a).cmp(&bytes(b)).then(speed(b).total_cmp(&speed(a)))
        })
        .cloned()
        .unwrap_or_else(|| fastest.clone());
    // The bounds beside the choice.
    let bytes = best.cache_bytes.unwrap_or(plan.expert_cache.bytes);
    let belady = Config {
        policy: SweepPolicy::Belady,
        cache_bytes: Some(bytes),
        partition: Some(Partition::Global),
        ..best.config
    };
    let oracle = Config {
        prefetch: ExpertPrefetch::Oracle,
        ..best.config
    };
    let bounds: Vec<(String, Config)> = [belady, oracle]
        .into_iter()
        .map(|c| (setup.identity.config_id(&c), c))
        .collect();
    let mut extra = Vec::new();
    sweep::evaluate(&setup, &bounds, threads, &mut |r| {
        extra.push(r);
        true
    });
    simulated += extra.len();
    let find = |p: &dyn Fn(&Config) -> bool| {
        extra
            .iter()
            .find(|r| p(&r.config) && r.outcome.is_ok())
            .cloned()
    };
    let belady = find(&|c| c.policy == SweepPolicy::Belady);
    let oracle = find(&|c| c.prefetch == ExpertPrefetch::Oracle);
    let mut tuned_plan = plan;
    apply(&mut tuned_plan, &best);
    Ok(Tuned {
        plan: tuned_plan,
        best,
        belady,
        oracle,
        ranked,
        simulated,
    })
}

/// Writes the choice into the plan: the expert cache's bytes and policy (the name `hypura run`
/// reads), and the queue depths the runtime reads with.
fn apply(plan: &mut Plan, best: &Row) {
    let c = &best.config;
    if let Some(b) = c.cache_bytes {
        plan.expert_cache.bytes = b;
    }
    plan.expert_cache.policy = match c.policy {
        SweepPolicy::Static => "static-frequency".into(),
        p => p.name().into(),
    };
    if let Some(qd) = best.queue_depth {
        plan.io.queue_depth = qd;
        plan.io.expert_queue_depth = qd;
    }
}
