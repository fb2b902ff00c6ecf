//! Which streamed dense tensors each step reads: the runtime's streaming pool
//! ([`policy::dense_pool`]) replayed over the run's forward passes. A pool with room beyond
//! what one pass needs keeps tensors across passes, so a step reads only what the pool let go.
//!
//! The replay uses each streamed tensor in llama.cpp's graph order (a tied token embedding
//! first, then every layer's tensors, then the output head; tensors not used yet are read
//! ahead in file order, as the runtime does before it has seen them) and charges a tensor's bytes to the
//! step that waits for it, as the runtime's records do: the layer that uses it, or the one whose
//! read evicted it first. What comes before layer 0 is layer 0's; the output head is the
//! globals'.

use crate::decode::Placement;
use crate::error::SimError;
use model::role::{parse_name, Role};
use place::units::Unit;
use place::Tier;
use policy::dense_pool::{Action, DensePool};
use policy::use_order::UseOrder;

/// Pages a streamed tensor's memory is reserved in (the runtime rounds each tensor up to
/// whole pages of the machine it runs on; 4 KiB on Linux x86_64).
const PAGE: u64 = 4096;

/// The requests each step of each pass reads.
#[derive(Debug, Clone)]
pub(crate) struct DenseReads {
    /// `steps[pass * per_pass + step]`.
    steps: Vec<Vec<u64>>,
}

struct Slot {
    layer: Option<u32>,
    /// Place in the graph's use order within the layer.
    rank: u32,
    /// Where the runtime places a tensor before its first use: file order.
    offset: u64,
    reserved: u64,
    reads: Vec<u64>,
    /// A tied token embedding: used first in a pass as well as last.
    embedding: bool,
}

impl DenseReads {
    /// Replays `passes` forward passes of the placement's streamed tensors, in a pool of
    /// `pool_bytes`, reading `depth` layers ahead. `per_pass` steps make a pass: the globals,
    /// then layers 0, 1, ...
    pub(crate) fn replay(
        p: &Placement<'_>,
        pool_bytes: u64,
        depth: u32,
        request: u64,
        passes: usize,
    ) -> Result<DenseReads, SimError> {
        let per_pass = p.units.n_layer as usize + 1;
        let slots = slots(p, request);
        let n_layer = p.units.n_layer;
        let layers: Vec<Option<u32>> = slots.iter().map(|s| s.layer).collect();
        let offsets: Vec<u64> = slots.iter().map(|s| s.offset).collect();
        let order = UseOrder::new(&layers, &offsets, n_layer);
        let reserved = slots.iter().map(|s| s.reserved).collect();
        let mut pool = DensePool::new(reserved, order, pool_bytes, depth).map_err(|e| {
            SimError::DensePool {
                need: e.need,
                pool: e.pool,
            }
        })?;
        // The use sequence of one pass: (slot, step it is charged to).
        let mut uses: Vec<(usize, usize)> = Vec::new();
        let mut by_order: Vec<usize> = (0..slots.len()).collect();
        by_order.sort_by_key(|&i| (slots[i].layer.map_or(n_layer, |l| l), slots[i].rank, i));
        uses.extend(
            by_order
                .iter()
                .filter(|&&i| slots[i].embedding)
                .map(|&i| (i, 1.min(per_pass - 1))),
        );
        uses.extend(
            by_order
                .iter()
                .map(|&i| (i, slots[i].layer.map_or(0, |l| l as usize + 1))),
        );
        let mut steps = vec![Vec::new(); per_pass * passes];
        let mut actions = Vec::new();
        for pass in 0..passes {
            for &(i, step) in &uses {
                actions.clear();
                let r = pool.ensure(&[i], &mut actions);
                pool.done();
                r.map_err(|e| SimError::DensePool {
                    need: e.need,
                    pool: e.pool,
                })?;
                for a in &actions {
                    if let Action::Collect(j) = *a {
                        steps[pass * per_pass + step].extend_from_slice(&slots[j].reads);
                    }
                }
            }
        }
        Ok(DenseReads { steps })
    }

    /// The requests of global step `g` (pass `g / per_pass`).
    pub(crate) fn step(&self, g: usize) -> &[u64] {
        self.steps.get(g).map_or(&[], Vec::as_slice)
    }

    /// The reads of `passes` passes after `before` others (a decode after its prefill's
    /// batches), for a placement with a pool; None without one (every step then reads all its
    /// streamed tensors).
    pub(crate) fn of_run(
        p: &Placement<'_>,
        depth: u32,
        before: usize,
        passes: usize,
    ) -> Result<Option<DenseReads>, SimError> {
        let Some(pool) = p.dense_pool_bytes else {
            return Ok(None);
        };
        let request = hw::direct::request_size(p.cost.io.dense_block_bytes);
        let mut r = DenseReads::replay(p, pool, depth, request, before + passes)?;
        let per_pass = p.units.n_layer as usize + 1;
        r.steps.drain(..before * per_pass);
        Ok(Some(r))
    }
}

/// The streamed whole tensors of the placement, one slot per tensor with file positions.
fn slots(p: &Placement<'_>, request: u64) -> Vec<Slot> {
    let mut out = Vec::new();
    for (u, &tier) in p.units.units.iter().zip(p.unit_tiers) {
        if tier != Tier::Nvme || u.row_reads() {
            continue;
        }
        out.extend(unit_slots(u, request));
    }
    out
}

fn unit_slots(u: &Unit, request: u64) -> Vec<Slot> {
    let Some(spans) = &u.spans else {
        // Without file positions the unit is one read of its logical bytes.
        let mut reads = Vec::new();
        crate::decode::reads::unit(u, request, &mut reads);
        return vec![Slot {
            layer: u.layer,
            rank: u.tensors.first().map_or(u32::MAX, |t| graph_rank(t)),
            offset: 0,
            reserved: u.bytes.div_ceil(PAGE) * PAGE,
            reads,
            embedding: u.group == model::Group::Embedding,
        }];
    };
    u.tensors
        .iter()
        .zip(spans)
        .map(|(name, s)| Slot {
            layer: u.layer,
            rank: graph_rank(name),
            offset: s.offset,
            reserved: s.bytes.div_ceil(PAGE) * PAGE,
            reads: s.device_reads(request).collect(),
            embedding: parse_name(name).role == Role::TokenEmbd,
        })
        .collect()
}

/// Where llama.cpp's graph uses a weight within its layer: the order of its nodes, which is
/// the depth-first order in which `ggml_build_forward_expand` reaches them, not the order the
/// model code builds them in. Attention expands Q (with DeepSeek's absorbed K_b), then K, then
/// V, then the output projection; the output norm comes before the output head; a gated FFN reaches its gate before its up projection (the
/// gate is the GLU's first operand). Seen in the runtime's use order for DeepSeek-V2 (MLA),
/// llama and Gemma 3 graphs.
fn graph_rank(name: &str) -> u32 {
    use Role::*;
    const ORDER: &[Role] = &[
        TokenEmbd,
        AttnQkv,
        AttnQ,
        AttnQA,
        AttnQB,
        AttnKB,
        AttnK,
        AttnKvAMqa,
        AttnKvB,
        AttnV,
        AttnVB,
        AttnSinks,
        AttnOutput,
        FfnGateExps,
        FfnUpExps,
        FfnGateUpExps,
        FfnDownExps,
        FfnGateInpShexp,
        FfnGateShexp,
        FfnUpShexp,
        FfnDownShexp,
        FfnGate,
        FfnUp,
        FfnDown,
        OutputNorm,
        Output,
    ];
    let role = parse_name(name).role;
    ORDER
        .iter()
        .position(|&r| r == role)
        .map_or(ORDER.len() as u32, |p| p as u32)
}
