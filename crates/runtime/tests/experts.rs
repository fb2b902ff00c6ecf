//! Per-expert streaming, the expert cache and routing record/replay on synthesized MoE models
//! through llama.cpp: greedy tokens equal plain llama.cpp's with an expert cache smaller than the
//! experts; a recorded routing replays exactly; a real DeepSeek-V2-Lite trace forces its routing
//! on a synthesized model of the same shape; streamed expert bytes stay out of the page cache.

mod common;

use common::{plan_streaming_experts, shared_data, synth};
use policy::cache::RunPolicy;
use policy::prefetch::ExpertPrefetch;
use runtime::page_cache::{cached_pages, drop_cached};
use runtime::stream::StreamStats;
use runtime::{
    Context, ContextParams, Model, ModelParams, MoeOptions, PlannedModel, ReplayScope, Sampling,
    StreamedMemory,
};
use std::path::{Path, PathBuf};
use synth::presets::Overrides;
use traces::Trace;

const PROMPT: &str = "The expert cache keeps";
const N_PREDICT: usize = 12;
const PARAMS: ContextParams = ContextParams {
    n_ctx: 128,
    n_threads: 2,
    op_offload: true,
    ..ContextParams::DEFAULT
};

fn plain_llama(path: &Path) -> Vec<i32> {
    let model = Model::load(path, &ModelParams::llama_defaults()).unwrap();
    let prompt = model.tokenize(PROMPT, true).unwrap();
    let mut ctx = Context::new(&model, PARAMS, None).unwrap();
    ctx.generate(&prompt, N_PREDICT, Sampling::GREEDY)
        .unwrap()
        .tokens
}

struct Run {
    tokens: Vec<i32>,
    prompt_len: usize,
    stats: StreamStats,
    trace: Option<Trace>,
    logits_finite: bool,
    n_predict: usize,
}

fn run(path: &Path, plan: &plan::Plan, opts: &MoeOptions, n: usize) -> Run {
    run_after(path, plan, opts, n, false)
}

/// [`run`], after a warm-up token when `warm_up`.
fn run_after(path: &Path, plan: &plan::Plan, opts: &MoeOptions, n: usize, warm_up: bool) -> Run {
    let planned = PlannedModel::load(path, plan, None).unwrap();
    let prompt = planned.model.tokenize(PROMPT, true).unwrap();
    let streamer = planned.streamer_with(opts).unwrap();
    let mut ctx = Context::new(&planned.model, PARAMS, streamer).unwrap();
    if warm_up {
        ctx.warm_up().unwrap();
    }
    let g = ctx.generate(&prompt, n, Sampling::GREEDY).unwrap();
    let s = ctx.streamer().unwrap();
    let trace = opts
        .record
        .then(|| s.moe().unwrap().routing.recorded_trace("t").unwrap());
    Run {
        tokens: g.tokens,
        prompt_len: prompt.len(),
        stats: s.stats(),
        trace,
        logits_finite: ctx.last_logits().iter().all(|x| x.is_finite()),
        n_predict: n,
    }
}

fn mixtral(dir: &Path) -> PathBuf {
    // Expert slices of 256 x 500 f16 = 62.5 pages: neighbours share a page.
    synth(
        dir,
        "tiny-mixtral",
        Overrides {
            n_ff: Some(500),
            expert_ff: Some(500),
            n_vocab: Some(300),
            ..Default::default()
        },
    )
}

fn deepseek(dir: &Path) -> PathBuf {
    // DeepSeek-V2-Lite's routing (27 layers, first dense, 64 experts, top-6) on slices of
    // 128 x 40 f16 = 2.5 pages.
    synth(
        dir,
        "tiny-deepseek-v2-lite",
        Overrides {
            expert_ff: Some(40),
            n_vocab: Some(300),
            ..Default::default()
        },
    )
}

fn whole_page_mixtral(dir: &Path) -> PathBuf {
    // Expert slices of 256 x 512 f16 = 64 pages each: their pages are recycled
    // (`runtime::recycle`) instead of released to the kernel.
    synth(
        dir,
        "tiny-mixtral",
        Overrides {
            n_ff: Some(512),
            expert_ff: Some(512),
            n_vocab: Some(300),
            ..Default::default()
        },
    )
}

/// Pages of the model's streamed tensors in memory now, as the kernel reports them (mincore).
fn resident_streamed_pages(model: &Model) -> usize {
    let mut n = 0;
    for t in model.streamed() {
        let mut pages = vec![0u8; t.reserved.div_ceil(4096)];
        // SAFETY: the tensor's reserved range is mapped for as long as the model lives; mincore
        // only reads the page tables.
        let r = unsafe { libc::mincore(t.data.cast(), t.reserved, pages.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
        n += pages.iter().filter(|&&p| p & 1 == 1).count();
    }
    n
}

/// Bytes of one expert's slice of the model's merged expert tensors.
fn expert_stride(path: &Path) -> u64 {
    let inv = model::Inventory::from_gguf(path).unwrap();
    inv.tensors
        .iter()
        .find_map(|t| t.expert_stride)
        .expect("expert tensors")
}

fn record() -> MoeOptions {
    MoeOptions {
        record: true,
        ..Default::default()
    }
}

/// Uses per token: prompt tokens and generated ones but the last (never decoded).
fn routed_tokens(r: &Run) -> u64 {
    (r.prompt_len + r.n_predict - 1) as u64
}

/// Expert accesses the runtime counts for a run whose routing `trace` recorded: per MoE layer,
/// the distinct experts of the prompt's tokens (one batch), then top-k per decoded token.
fn accesses(trace: &Trace, prompt_len: usize) -> u64 {
    let m = trace.model();
    let mut n = 0u64;
    for pos in 0..m.n_layers() {
        let mut seen = vec![false; m.n_expert as usize];
        for t in 0..prompt_len {
            for &e in trace.selection(t, pos) {
                seen[usize::from(e)] = true;
            }
        }
        n += seen.iter().filter(|&&s| s).count() as u64;
    }
    n + (trace.n_tokens() - prompt_len) as u64 * m.n_layers() as u64 * u64::from(m.top_k)
}

#[test]
fn mixtral_style_per_expert_streaming_with_a_small_cache_matches_llama_cpp_and_replays_exactly() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = mixtral(dir.path());
    let reference = plain_llama(&path);
    assert_eq!(reference.len(), N_PREDICT);

    // 3 cached experts of the 32 (4 layers x 8).
    let plan = plan_streaming_experts(&path, &[], 3);
    let r = run(&path, &plan, &record(), N_PREDICT);
    assert_eq!(r.tokens, reference);
    assert_eq!(
        r.stats.expert_accesses,
        accesses(r.trace.as_ref().unwrap(), r.prompt_len)
    );
    assert!(
        r.stats.expert_hits < r.stats.expert_accesses,
        "{:?}",
        r.stats
    );
    assert!(r.stats.expert_fills > 0 && r.stats.bytes_read > 0);
    // Never more than the cache plus one step's experts of one tensor in memory.
    let stride = expert_stride(&path);
    let experts_total = 4 * 8 * 3 * stride;
    assert!(
        r.stats.peak_resident_bytes < experts_total / 2,
        "{} of {experts_total}",
        r.stats.peak_resident_bytes
    );

    let recorded = r.trace.clone().unwrap();
    assert_eq!(recorded.n_tokens() as u64, routed_tokens(&r));
    assert_eq!(recorded.model().n_expert, 8);
    assert_eq!(recorded.model().top_k, 2);
    let replay = MoeOptions {
        replay: Some(recorded.clone()),
        record: true,
        ..Default::default()
    };
    let again = run(&path, &plan, &replay, N_PREDICT);
    assert_eq!(again.tokens, reference);
    assert_eq!(again.trace.unwrap(), recorded);
    assert_eq!(again.stats.expert_accesses, r.stats.expert_accesses);
    assert_eq!(again.stats.bytes_read, r.stats.bytes_read);

    // Whole-tensor streaming reads more for the same tokens.
    let whole = MoeOptions {
        whole_expert_tensors: true,
        ..Default::default()
    };
    let mut plan_whole = plan.clone();
    plan_whole.pool_bytes = 2 * 8 * stride * 2;
    let w = run(&path, &plan_whole, &whole, N_PREDICT);
    assert_eq!(w.tokens, reference);
    assert!(w.stats.bytes_read > r.stats.bytes_read, "{:?}", w.stats);
}

#[test]
fn whole_page_expert_slices_recycle_their_pages_and_still_match_llama_cpp() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = whole_page_mixtral(dir.path());
    let stride = expert_stride(&path);
    assert_eq!(stride % 4096, 0, "{stride}");
    let reference = plain_llama(&path);

    let plan = plan_streaming_experts(&path, &[], 3);
    for prefetch in [ExpertPrefetch::None, ExpertPrefetch::Coactivation] {
        let opts = MoeOptions {
            record: true,
            expert_prefetch: prefetch,
            ..Default::default()
        };
        let r = run(&path, &plan, &opts, N_PREDICT);
        assert_eq!(r.tokens, reference, "{prefetch:?}");
        assert!(
            r.stats.expert_hits < r.stats.expert_accesses,
            "{:?}",
            r.stats
        );
        // Pages were recycled, and the pool holds the plan's expert memory (stocked at load)
        // or, beyond it, what was resident at once, no more.
        assert!(r.stats.recycled_bytes > 0, "{:?}", r.stats);
        let budget = plan.expert_cache.bytes.max(r.stats.peak_resident_bytes);
        assert!(
            r.stats.recycled_bytes <= budget,
            "{prefetch:?}: {budget} {:?}",
            r.stats
        );
        // Recycled pages hold earlier experts' bytes: a replay over them reads the same.
        let replay = MoeOptions {
            replay: r.trace.clone(),
            expert_prefetch: prefetch,
            ..Default::default()
        };
        let again = run(&path, &plan, &replay, N_PREDICT);
        assert_eq!(again.tokens, reference, "{prefetch:?}");
        assert_eq!(again.stats.bytes_read, r.stats.bytes_read, "{prefetch:?}");
    }
}

#[test]
fn a_dropped_streamer_gives_its_expert_memory_back() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = whole_page_mixtral(dir.path());
    let plan = plan_streaming_experts(&path, &[], 12);
    let mut planned = PlannedModel::load(&path, &plan, None).unwrap();
    let prompt = planned.model.tokenize(PROMPT, true).unwrap();
    for memory in [StreamedMemory::Recycled, StreamedMemory::Released] {
        planned.io.memory = memory;
        {
            let streamer = planned.streamer_with(&MoeOptions::default()).unwrap();
            let mut ctx = Context::new(&planned.model, PARAMS, streamer).unwrap();
            ctx.generate(&prompt, 4, Sampling::GREEDY).unwrap();
            assert!(resident_streamed_pages(&planned.model) > 0, "{memory:?}");
        }
        // The cache, the slices in use and the recycled stock are all given back.
        assert_eq!(resident_streamed_pages(&planned.model), 0, "{memory:?}");
    }
}

#[test]
fn sixty_four_experts_top_six_with_preloaded_experts_match_llama_cpp() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = deepseek(dir.path());
    let reference = plain_llama(&path);
    // Experts 0..8 of every layer in memory, room for 40 more: the plan's own policy and
    // pinned-lru preload and pin the 8 x 26 and cache 40 of the others; lru, lfru and arc manage
    // all 8 x 26 + 40 slots themselves.
    let ram: Vec<u32> = (0..8).collect();
    let plan = plan_streaming_experts(&path, &ram, 40);
    let expert_bytes = plan.experts[0].expert_bytes;
    for policy in [
        RunPolicy::StaticFrequency,
        RunPolicy::PinnedLru,
        RunPolicy::Lru,
        RunPolicy::Lfru,
        RunPolicy::Arc,
    ] {
        let opts = MoeOptions {
            cache_policy: Some(policy),
            record: true,
            ..Default::default()
        };
        let r = run(&path, &plan, &opts, N_PREDICT);
        let policy = policy.name();
        assert_eq!(r.tokens, reference, "{policy}");
        assert_eq!(
            r.stats.expert_accesses,
            accesses(r.trace.as_ref().unwrap(), r.prompt_len),
            "{policy}"
        );
        assert!(r.stats.expert_hits < r.stats.expert_accesses, "{policy}");
        // The plan's expert memory, plus at most one layer's experts needed by one matmul only.
        assert!(
            r.stats.peak_resident_bytes <= plan.expert_cache.bytes + 64 * expert_bytes,
            "{policy}: {} resident, expert memory {}",
            r.stats.peak_resident_bytes,
            plan.expert_cache.bytes
        );
    }
}

#[test]
fn a_real_deepseek_trace_forces_its_routing_on_a_synthesized_model() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = deepseek(dir.path());
    let csv = shared_data("traces/deepseek-v2-lite/prompt_0001.csv");
    let real = traces::import::deepseek_csv::import(&csv, &Default::default()).unwrap();
    let plan = plan_streaming_experts(&path, &[], 64);
    let opts = MoeOptions {
        replay: Some(real.clone()),
        record: true,
        ..Default::default()
    };
    let n = 6;
    let r = run(&path, &plan, &opts, n);
    assert!(r.logits_finite);
    let recorded = r.trace.clone().unwrap();
    assert_eq!(recorded.n_tokens() as u64, routed_tokens(&r));
    for t in 0..recorded.n_tokens() {
        for l in 0..26 {
            assert_eq!(recorded.selection(t, l), real.selection(t, l), "token {t}");
        }
    }

    // Forced on the prompt only: the decode steps take the synthesized router's own choices,
    // which are not the real model's.
    let prompt_only = MoeOptions {
        replay: Some(real.clone()),
        replay_scope: ReplayScope::Prompt,
        record: true,
        ..Default::default()
    };
    let p = run(&path, &plan, &prompt_only, n);
    let taken = p.trace.clone().unwrap();
    assert_eq!(taken.n_tokens(), recorded.n_tokens());
    let same = |t: usize| (0..26).all(|l| taken.selection(t, l) == real.selection(t, l));
    assert!(
        (0..p.prompt_len).all(same),
        "the prompt's routing was not forced"
    );
    assert!(
        !(p.prompt_len..taken.n_tokens()).all(same),
        "the decode steps were forced too"
    );
    assert_eq!(
        p.tokens[0], r.tokens[0],
        "the first token comes from the prompt"
    );

    // Too short a trace, or another shape, is refused with the numbers.
    let planned = PlannedModel::load(&path, &plan, None).unwrap();
    let wider = traces::import::deepseek_csv::import(
        &csv,
        &traces::import::Options {
            n_expert: Some(80),
            ..Default::default()
        },
    )
    .unwrap();
    let e = planned
        .streamer_with(&MoeOptions {
            replay: Some(wider),
            ..Default::default()
        })
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("expert count is 80") && e.contains("64"), "{e}");
}

#[test]
fn streamed_expert_bytes_do_not_enter_the_page_cache() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = mixtral(dir.path());
    let file = std::fs::File::open(&path).unwrap();
    file.sync_all().unwrap();
    drop_cached(&file).unwrap();
    let plan = plan_streaming_experts(&path, &[], 3);
    let r = run(&path, &plan, &MoeOptions::default(), 4);
    assert!(r.stats.bytes_read > 0);
    let cached = cached_pages(&file).unwrap();
    let inv = model::Inventory::from_gguf(&path).unwrap();
    let (mut pages, mut hot) = (0, 0);
    for t in inv.tensors.iter().filter(|t| t.expert_stride.is_some()) {
        let first = t.offset.unwrap().div_ceil(4096);
        let end = (t.offset.unwrap() + t.bytes) / 4096;
        for p in first..end {
            pages += 1;
            hot += cached[p as usize] as u64;
        }
    }
    assert!(pages > 1000);
    assert_eq!(
        hot, 0,
        "{hot} of {pages} expert pages are in the page cache"
    );
}

#[test]
fn coactivation_prefetch_reads_ahead_without_changing_tokens_or_routing() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = deepseek(dir.path());
    // DeepSeek-V2-Lite's routing shape, synthesized with strong ties between layers (token
    // clusters with preferred experts), long enough for 40 decode steps.
    let params = traces::synth::SynthParams::uniform(
        traces::import::deepseek_csv::deepseek_v2_lite(),
        vec![80],
        traces::synth::LayerParams {
            skew: 0.5,
            reuse: 0.2,
            affinity: 0.9,
            drift: 0.0,
        },
    );
    let routing = traces::synth::synthesize(&params, 7).unwrap();
    // Room for 4 experts of the 26 x 64: nearly every access misses, so prefetch has work.
    let plan = plan_streaming_experts(&path, &[], 4);
    let replay = |prefetch| MoeOptions {
        replay: Some(routing.clone()),
        expert_prefetch: prefetch,
        ..Default::default()
    };
    let n = 40;
    let on_demand = run(&path, &plan, &replay(ExpertPrefetch::None), n);
    let ahead = run(&path, &plan, &replay(ExpertPrefetch::Coactivation), n);
    assert_eq!(ahead.tokens, on_demand.tokens);
    let (a, d) = (&ahead.stats, &on_demand.stats);
    eprintln!(
        "prefetched {} experts, {} taken; slices read {} (on demand {})",
        a.expert_prefetches, a.expert_prefetch_hits, a.expert_fills, d.expert_fills
    );
    assert_eq!(a.expert_accesses, d.expert_accesses);
    assert_eq!(d.expert_prefetches, 0);
    assert!(a.expert_prefetches > 0, "{a:?}");
    // Learned online from the replayed routing: some predictions are taken, never more than made.
    assert!(
        a.expert_prefetch_hits > 0 && a.expert_prefetch_hits <= a.expert_prefetches,
        "{a:?}"
    );
    // Every expert read ahead is read once, whether the router takes it or not, and one it takes
    // is not read again (the cache then holds what on-demand reading would have put there): the
    // slices read are the on-demand ones plus those of the guesses the router did not take.
    let slices = plan.experts[0].tensors.len() as u64;
    assert_eq!(
        a.expert_fills,
        d.expert_fills + slices * (a.expert_prefetches - a.expert_prefetch_hits),
        "{a:?} vs {d:?}"
    );
    let expert_bytes = plan.experts[0].expert_bytes;
    // The cache, one layer's experts for a prompt batch, and top-k read ahead.
    assert!(
        a.peak_resident_bytes <= plan.expert_cache.bytes + (64 + 6) * expert_bytes,
        "{a:?}"
    );
}

#[test]
fn oracle_prefetch_reads_exactly_the_next_layers_misses_ahead() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = mixtral(dir.path());
    let routing = traces::synth::synthesize(
        &traces::synth::SynthParams::uniform(
            runtime::routing::model_facts(&model::Inventory::from_gguf(&path).unwrap().arch),
            vec![80],
            traces::synth::LayerParams {
                skew: 0.5,
                reuse: 0.2,
                affinity: 0.5,
                drift: 0.0,
            },
        ),
        3,
    )
    .unwrap();
    // Room for 3 experts of the 8 per layer: most accesses miss.
    let plan = plan_streaming_experts(&path, &[], 3);
    let replay = |prefetch| MoeOptions {
        replay: Some(routing.clone()),
        expert_prefetch: prefetch,
        cache_policy: Some(RunPolicy::Lru),
        ..Default::default()
    };
    let n = 24;
    let on_demand = run(&path, &plan, &replay(ExpertPrefetch::None), n);
    let oracle = run(&path, &plan, &replay(ExpertPrefetch::Oracle), n);
    assert_eq!(oracle.tokens, on_demand.tokens);
    let (o, d) = (&oracle.stats, &on_demand.stats);
    eprintln!("oracle {o:?}\non demand {d:?}");
    // The same cache hits; a prefetched expert is a hit too.
    assert_eq!(
        (o.expert_accesses, o.expert_hits - o.expert_prefetch_hits),
        (d.expert_accesses, d.expert_hits)
    );
    // Every expert read ahead is taken, and it replaces a read, never adds one.
    assert!(o.expert_prefetches > 0, "{o:?}");
    assert_eq!(o.expert_prefetch_hits, o.expert_prefetches);
    assert_eq!(o.expert_fills, d.expert_fills);
    assert_eq!(o.bytes_read, d.bytes_read);
}

#[test]
fn a_warm_up_token_reads_routes_and_records_nothing() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = deepseek(dir.path());
    let plan = plan_streaming_experts(&path, &[], 4);
    let routing = run(&path, &plan, &record(), N_PREDICT).trace.unwrap();
    // Replayed and recorded again: the warm-up must neither consume the replay nor be recorded.
    let opts = MoeOptions {
        record: true,
        replay: Some(routing.clone()),
        ..Default::default()
    };
    let cold = run_after(&path, &plan, &opts, N_PREDICT, false);
    let warm = run_after(&path, &plan, &opts, N_PREDICT, true);
    assert_eq!(warm.tokens, cold.tokens);
    assert_eq!(warm.tokens, plain_llama(&path));
    let (w, c) = (&warm.stats, &cold.stats);
    assert_eq!(
        (
            w.expert_accesses,
            w.expert_hits,
            w.expert_fills,
            w.bytes_read
        ),
        (
            c.expert_accesses,
            c.expert_hits,
            c.expert_fills,
            c.bytes_read
        ),
        "{w:?} vs {c:?}"
    );
    let (wt, ct) = (warm.trace.unwrap(), cold.trace.unwrap());
    assert_eq!(wt.n_tokens(), ct.n_tokens());
    assert_eq!(wt.expert_ids(), routing.expert_ids());
}

#[test]
fn oracle_prefetch_without_a_replayed_trace_is_refused() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = mixtral(dir.path());
    let plan = plan_streaming_experts(&path, &[], 3);
    let planned = PlannedModel::load(&path, &plan, None).unwrap();
    let opts = MoeOptions {
        expert_prefetch: ExpertPrefetch::Oracle,
        ..Default::default()
    };
    let e = planned
        .streamer_with(&opts)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("replay"), "{e}");
}
