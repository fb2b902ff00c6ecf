//! The prompt's batches as the cache sees them: per batch and MoE layer, the distinct experts
//! its tokens select (the union, in order of first use, with their use counts), and the one
//! cache replay over the prefill's selections followed by the decode's, so decode starts from
//! the cache state prefill left behind.
//!
//! As in the runtime, a batch accesses the cache once per token and selected expert (tokens in
//! order), so a batch's repeated uses refresh recency; an expert counts as a hit when its first
//! access in the batch finds it in memory, and is read otherwise (once, however often it misses
//! again in the batch).

use crate::decode::{DecodePolicy, MoeLayer, Residency, StreamingCache};
use crate::error::SimError;
use place::Tier;
use policy::cache::{self, CacheConfig, Capacity, ExpertBytes, HotSet, Partition, Policy};
use traces::{ModelFacts, TokenExtras, Trace, TraceBuilder};

/// One distinct expert a batch needs at one MoE layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    pub expert: u16,
    /// Tokens of the batch that selected it.
    pub uses: u32,
    /// Whether it was in memory when the batch first asked for it (a miss is read).
    pub hit: bool,
}

/// One prefill batch: its token count and, per MoE position, the experts it touches.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub tokens: usize,
    pub layers: Vec<Vec<Touch>>,
}

/// The prompt (tokens `0..prompt.n_tokens()`) cut into batches of `batch` tokens (the last
/// one shorter), every touch marked as a hit for now.
pub(super) fn unions(prompt: &Trace, batch: usize) -> Vec<Batch> {
    let m = prompt.model();
    let (n_moe, n_expert) = (m.n_layers(), m.n_expert as usize);
    let mut count = vec![0u32; n_expert];
    let mut out = Vec::new();
    let mut first = 0;
    while first < prompt.n_tokens() {
        let end = (first + batch).min(prompt.n_tokens());
        let layers = (0..n_moe)
            .map(|pos| {
                let mut order = Vec::new();
                for token in first..end {
                    for &e in prompt.selection(token, pos) {
                        if count[e as usize] == 0 {
                            order.push(e);
                        }
                        count[e as usize] += 1;
                    }
                }
                order
                    .into_iter()
                    .map(|e| Touch {
                        expert: e,
                        uses: std::mem::take(&mut count[e as usize]),
                        hit: true,
                    })
                    .collect()
            })
            .collect();
        out.push(Batch {
            tokens: end - first,
            layers,
        });
        first = end;
    }
    out
}

/// Marks every touch of `batches` (cut from `prompt`) and returns the decode trace's hits
/// (parallel to its expert ids): resident experts hit under the static policy; under a cache
/// policy the streaming layers' accesses are replayed, the prompt's first, through one cache
/// shared by them. `residency`, when given, gets the same caches with the prompt's accesses
/// replayed (None again where a policy cannot run online).
pub(super) fn replay(
    moe: &[MoeLayer],
    prompt: &Trace,
    batches: &mut [Batch],
    decode: &Trace,
    policy: &DecodePolicy,
    residency: &mut Option<Residency>,
) -> Result<Vec<bool>, SimError> {
    let k = decode.model().top_k as usize;
    let mut hits: Vec<bool> = decode
        .expert_ids()
        .iter()
        .enumerate()
        .map(|(i, &e)| moe[(i / k) % moe.len()].tier[e as usize] != Tier::Nvme)
        .collect();
    for b in batches.iter_mut() {
        for (pos, touches) in b.layers.iter_mut().enumerate() {
            for t in touches {
                t.hit = moe[pos].tier[t.expert as usize] != Tier::Nvme;
            }
        }
    }
    let DecodePolicy::Cache {
        policy,
        capacity_bytes,
        partition,
    } = policy
    else {
        return Ok(hits);
    };
    let Some(c) = StreamingCache::new(moe, policy, *capacity_bytes) else {
        return Ok(hits);
    };
    let n_expert = decode.model().n_expert as usize;
    // The caches replayed: one over every streaming layer (global), or one per layer holding
    // an equal byte share (per-layer partitions never interact, so each replays alone).
    let HotSet(hot) = match &c.policy {
        Policy::PinnedLru(h) => h.clone(),
        _ => HotSet(Vec::new()),
    };
    let groups: Vec<CacheGroup> = match partition {
        Partition::Global => vec![(c.streaming.clone(), hot, c.slots)],
        Partition::PerLayer => {
            c.check_per_layer(moe, *capacity_bytes)?;
            let share = capacity_bytes / c.streaming.len() as u64;
            c.streaming
                .iter()
                .enumerate()
                .map(|(pos, &l)| {
                    let mine = hot
                        .iter()
                        .filter(|h| h.0 == pos)
                        .map(|h| (0, h.1))
                        .collect();
                    let cap = (share / c.sizes[pos]).min(n_expert as u64);
                    (vec![l], mine, cap)
                })
                .collect()
        }
    };
    for (layers, hot, slots) in groups {
        let (flat, prompt_accesses) = flat_accesses(&layers, batches, prompt, decode)?;
        // One slot per (layer of the group, expert).
        let policy = match &c.policy {
            Policy::PinnedLru(_) => Policy::PinnedLru(HotSet(
                hot.into_iter()
                    .map(|(pos, e)| (0, (pos * n_expert + usize::from(e)) as u16))
                    .collect(),
            )),
            p => p.clone(),
        };
        let config = CacheConfig {
            policy,
            partition: Partition::Global,
            capacity: Capacity::Experts(slots),
        };
        let size = ExpertBytes::uniform(1, c.sizes[0])?;
        if let Some(r) = residency.as_mut() {
            let slots = layers.len() * n_expert;
            let placed = layers
                .iter()
                .enumerate()
                .map(|(i, &l)| (l, 0, (i * n_expert) as u16));
            match r.add(1, slots, &config, &size, placed) {
                Some(cache) => {
                    for &slot in &flat.expert_ids()[..prompt_accesses] {
                        r.access_slot(cache, slot);
                    }
                }
                None => *residency = None,
            }
        }
        let (_, flat_hits) = cache::replay_hits(&flat, &config, &size)?;
        let mut it = flat_hits.into_iter();
        let mut token = 0;
        for b in batches.iter_mut() {
            for &l in &layers {
                let mut seen = vec![false; n_expert];
                for tok in token..token + b.tokens {
                    for &e in prompt.selection(tok, l) {
                        let hit = it.next().expect("one hit per access");
                        if !std::mem::replace(&mut seen[usize::from(e)], true) {
                            let t = b.layers[l]
                                .iter_mut()
                                .find(|t| t.expert == e)
                                .expect("the union holds every selected expert");
                            t.hit = hit;
                        }
                    }
                }
            }
            token += b.tokens;
        }
        for token in 0..decode.n_tokens() {
            for &l in &layers {
                let first = (token * moe.len() + l) * k;
                for h in &mut hits[first..first + k] {
                    *h = it.next().expect("one hit per access");
                }
            }
        }
    }
    Ok(hits)
}

/// One cache of the prefill replay: its MoE positions, their pinned experts as (index among
/// those positions, expert id), and its capacity in experts.
type CacheGroup = (Vec<usize>, Vec<(usize, u16)>, u64);

/// The streaming layers' accesses as a one-layer, top-1 trace over slots
/// `position * n_expert + expert`: the prompt's selections batch by batch (per layer, tokens
/// in order), then every decode selection; and how many of them are the prompt's.
fn flat_accesses(
    streaming: &[usize],
    batches: &[Batch],
    prompt: &Trace,
    decode: &Trace,
) -> Result<(Trace, usize), SimError> {
    let n_expert = decode.model().n_expert as usize;
    let slots = streaming.len() * n_expert;
    if slots > usize::from(u16::MAX) + 1 {
        return Err(SimError::PrefillSlots {
            layers: streaming.len(),
            n_expert,
            slots,
        });
    }
    let model = ModelFacts {
        architecture: "prefill-then-decode".into(),
        moe_layers: vec![0],
        n_expert: slots as u32,
        top_k: 1,
        n_shared_expert: 0,
    };
    let mut b = TraceBuilder::new(model)?;
    b.begin_sequence("accesses")?;
    let mut push = |pos: usize, e: u16| {
        let slot = (pos * n_expert + usize::from(e)) as u16;
        b.push_token(&[slot], TokenExtras::default())
    };
    let mut token = 0;
    for batch in batches {
        for (pos, &l) in streaming.iter().enumerate() {
            for tok in token..token + batch.tokens {
                for &e in prompt.selection(tok, l) {
                    push(pos, e)?;
                }
            }
        }
        token += batch.tokens;
    }
    let prompt_accesses = prompt.model().top_k as usize * token * streaming.len();
    for token in 0..decode.n_tokens() {
        for (pos, &l) in streaming.iter().enumerate() {
            for &e in decode.selection(token, l) {
                push(pos, e)?;
            }
        }
    }
    b.end_sequence()?;
    Ok((b.finish()?, prompt_accesses))
}
