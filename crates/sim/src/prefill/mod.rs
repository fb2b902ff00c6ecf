//! Prefill simulation: the prompt as batches of tokens, layer by layer, before decode (the
//! request's time to first token), then decode from the cache state prefill left behind.
//!
//! [`simulate_request`] takes the trace's first `prompt.tokens` tokens as the prompt and decodes
//! the tokens after them. The prompt is cut into batches of `batch` tokens (llama.cpp's default
//! ubatch, 512, capped at the prompt). Per batch and layer in order: compute is the solver's
//! cost model for the batch (`place::cost::batch_work`: compute scales with the tokens,
//! weights are read once per batch, embedding rows once per token; routed experts are priced
//! with `expert_batch_work` for each distinct expert the batch's tokens select, its uses the
//! tokens that selected it); the union of the experts the batch selects is needed: hits come
//! from the cache, misses are read at the runtime's request sizes on the decode's storage
//! device; streamed dense weights are read once per batch, `prefetch_depth` steps ahead.
//! The cache policy replays prefill's unions (one access per distinct expert of a batch and
//! layer) followed by the decode's selections, so decode starts from the cache prefill left.
//!
//! Records: prefill rows come first, one per (batch, layer), with the batch index as token
//! index (all prompt tokens of a batch share one index, as `hypura run` records its prompt
//! batch); decode rows follow with token indices from `batches` on and start times after the
//! prefill. A prefill row's `expert_accesses` counts the distinct experts of the batch.
//!
//! Where prefill and the solver's prediction (`place::prefill_time`) coincide: one
//! batch, the static cache, experts touched exactly as the solver's touch probabilities expect
//! (rates 0 or 1), no dense weights streamed, and a flat storage curve without a latency floor.
//! With a batch of 1 token, prefill runs exactly the decode steps of the same tokens.

mod batches;
mod report;
mod timeline;

pub use report::{BatchReport, PrefillReport};

use crate::decode::{
    self, check_options, resolve_layers, simulate_with_hits, steps, DecodePolicy, DecodeReport,
    Machine, Options, Placement, Residency,
};
use crate::dense::DenseReads;
use crate::error::SimError;
use metrics::TokenLayerRecord;
use place::units::ExpertLayer;
use traces::Trace;

/// llama.cpp's default physical batch (`n_ubatch`): prompt tokens per forward pass.
pub const DEFAULT_BATCH: usize = 512;

/// The prompt of a request: its length and its batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prompt {
    /// Prompt tokens: the trace's first `tokens`.
    pub tokens: usize,
    /// Tokens per prefill batch; `None` is [`DEFAULT_BATCH`] capped at the prompt.
    pub batch: Option<usize>,
}

impl Prompt {
    /// Checks the prompt against a trace of `trace_tokens` tokens and returns the batch size.
    pub fn batch_for(&self, trace_tokens: usize) -> Result<usize, SimError> {
        if self.tokens == 0 {
            return Err(SimError::EmptyPrompt);
        }
        if self.batch == Some(0) {
            return Err(SimError::EmptyBatch);
        }
        if self.tokens >= trace_tokens {
            return Err(SimError::PromptTooLong {
                prompt: self.tokens,
                trace_tokens,
            });
        }
        Ok(self.batch.unwrap_or(DEFAULT_BATCH).min(self.tokens))
    }
}

/// A simulated request: prefill, then decode.
#[derive(Debug, Clone)]
pub struct RequestRun {
    pub prefill: PrefillReport,
    /// The decode of the tokens after the prompt, from the cache state prefill left.
    pub decode: DecodeReport,
    /// Prefill rows, then decode rows (see the module doc for the token indices).
    pub records: Vec<TokenLayerRecord>,
}

/// Simulates prefilling the first `prompt.tokens` tokens of `trace` in batches and decoding
/// the rest, on `placement` and `machine` with `policy`.
pub fn simulate_request(
    placement: &Placement<'_>,
    machine: &Machine,
    trace: &Trace,
    policy: &DecodePolicy,
    opts: &Options,
    prompt: &Prompt,
) -> Result<RequestRun, SimError> {
    let batch = prompt.batch_for(trace.n_tokens())?;
    check_options(machine, opts)?;
    let moe = resolve_layers(placement, trace)?;
    let prompt_trace = decode::token_range(trace, 0..prompt.tokens)?;
    let rest = decode::token_range(trace, prompt.tokens..trace.n_tokens())?;
    let mut batches = batches::unions(&prompt_trace, batch);
    let mut residency = (opts.expert_prefetch == decode::ExpertPrefetch::Coactivation
        && matches!(policy, DecodePolicy::Cache { .. }))
    .then(|| Residency::new(moe.len()));
    let decode_hits = batches::replay(
        &moe,
        &prompt_trace,
        &mut batches,
        &rest,
        policy,
        &mut residency,
    )?;

    let full = steps::build(placement, machine, opts, &moe, batch as u64)?;
    let last_tokens = batches.last().map_or(batch, |b| b.tokens);
    let last = if last_tokens == batch {
        full.clone()
    } else {
        steps::build(placement, machine, opts, &moe, last_tokens as u64)?
    };
    let units: Vec<&ExpertLayer> = moe
        .iter()
        .map(|m| {
            placement
                .units
                .experts
                .iter()
                .find(|e| e.layer == m.layer)
                .expect("resolve_layers found every MoE layer in the units")
        })
        .collect();
    let storage = decode::storage_device(placement, machine, opts)?;
    let dense = DenseReads::of_run(placement, opts.prefetch_depth, 0, batches.len())?;
    let inputs = timeline::Inputs {
        placement,
        machine,
        opts,
        moe: &moe,
        units: &units,
        full: &full,
        last: &last,
        batches: &batches,
        dense: dense.as_ref(),
    };
    let out = timeline::run(&inputs, storage);
    let tokens: Vec<usize> = batches.iter().map(|b| b.tokens).collect();
    let prefill = report::summarize(&out, &tokens, batch);

    let decoded = simulate_with_hits(
        placement,
        machine,
        &rest,
        policy,
        opts,
        &moe,
        &decode_hits,
        residency,
        batches.len(),
    )?;
    let mut records = if opts.keep_records {
        out.records
    } else {
        Vec::new()
    };
    let (offset, shift) = (batches.len() as u32, prefill.ttft_s);
    records.extend(decoded.records.into_iter().map(|mut r| {
        r.token += offset;
        r.start_s += shift;
        r
    }));
    Ok(RequestRun {
        prefill,
        decode: decoded.report,
        records,
    })
}
