//! `/metrics` (Prometheus text format), and where the plan put each tensor group.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State as Shared;
use axum::response::IntoResponse;
use model::Group;
use plan::{TensorPlace, Tier};

use crate::State;

/// Bytes of one tensor group on one tier.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupTier {
    pub group: Group,
    pub tier: Tier,
    pub bytes: u64,
}

/// The plan's placement by tensor group and tier (a split expert tensor counts each tier's
/// experts), in group then tier order.
pub fn group_tiers(inv: &model::Inventory, plan: &plan::Plan) -> Vec<GroupTier> {
    let mut bytes: BTreeMap<(Group, usize), u64> = BTreeMap::new();
    let tier_index = |t: Tier| Tier::ALL.iter().position(|&x| x == t).expect("a tier");
    for t in &inv.tensors {
        let group = t.role.group();
        match plan.tensors.get(&t.name) {
            Some(TensorPlace::Split { layer }) => {
                let Some(e) = plan.experts.iter().find(|e| e.layer == *layer) else {
                    continue;
                };
                let n = (e.gpu.len() + e.ram.len() + e.nvme.len()).max(1) as u64;
                for (tier, ids) in [
                    (Tier::Gpu, &e.gpu),
                    (Tier::Ram, &e.ram),
                    (Tier::Nvme, &e.nvme),
                ] {
                    *bytes.entry((group, tier_index(tier))).or_default() +=
                        t.bytes / n * ids.len() as u64;
                }
            }
            Some(place) => {
                let tier = place.tier().expect("an unsplit tensor has one tier");
                *bytes.entry((group, tier_index(tier))).or_default() += t.bytes;
            }
            None => {}
        }
    }
    bytes
        .into_iter()
        .filter(|(_, b)| *b > 0)
        .map(|((group, i), bytes)| GroupTier {
            group,
            tier: Tier::ALL[i],
            bytes,
        })
        .collect()
}

pub async fn metrics(Shared(s): Shared<Arc<State>>) -> impl IntoResponse {
    let t = s.engine.totals.lock().expect("not poisoned").clone();
    let st = t.stream.unwrap_or_default();
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP hypura_{name} {help}");
        let _ = writeln!(out, "# TYPE hypura_{name} {kind}");
        let _ = writeln!(out, "hypura_{name} {value}");
    };
    let per = |a: f64, b: u64| if b > 0 { a / b as f64 } else { 0.0 };
    put(
        "prompt_tokens_total",
        "counter",
        "Prompt tokens processed.",
        t.prompt_tokens as f64,
    );
    put(
        "prompt_seconds_total",
        "counter",
        "Prompt processing time.",
        t.prompt_s,
    );
    put(
        "tokens_predicted_total",
        "counter",
        "Generated tokens.",
        t.completion_tokens as f64,
    );
    put(
        "tokens_predicted_seconds_total",
        "counter",
        "Decode time of generated tokens.",
        t.decode_s,
    );
    put(
        "requests_total",
        "counter",
        "Requests finished.",
        t.requests as f64,
    );
    put(
        "requests_cancelled_total",
        "counter",
        "Requests whose client went away.",
        t.cancelled as f64,
    );
    put(
        "requests_processing",
        "gauge",
        "Requests generating now.",
        s.engine.busy.load(Ordering::SeqCst) as f64,
    );
    put(
        "requests_deferred",
        "gauge",
        "Requests waiting for the model.",
        s.engine.queued.load(Ordering::SeqCst) as f64,
    );
    put(
        "predicted_tokens_per_second",
        "gauge",
        "Decode speed the plan predicts.",
        s.engine.info.plan.prediction.tok_per_s,
    );
    put(
        "measured_tokens_per_second",
        "gauge",
        "Decode speed of the last request.",
        t.last_decode_tok_per_s,
    );
    put(
        "storage_read_bytes_per_token",
        "gauge",
        "Bytes read from storage per decode step (kernel count).",
        per(t.decode_read_bytes as f64, t.decode_steps),
    );
    put(
        "stream_read_bytes_total",
        "counter",
        "Bytes the streamer read (since the context was made).",
        st.bytes_read as f64,
    );
    put(
        "io_wait_seconds_total",
        "counter",
        "Seconds compute waited for streamed reads (prompt and decode).",
        st.io_wait_s,
    );
    put(
        "io_wait_seconds_per_token",
        "gauge",
        "I/O wait per generated token (prompt waits included).",
        per(st.io_wait_s, t.completion_tokens),
    );
    put(
        "expert_accesses_total",
        "counter",
        "Routed-expert uses of MoE layers.",
        st.expert_accesses as f64,
    );
    put(
        "expert_hits_total",
        "counter",
        "Of those, served from memory.",
        st.expert_hits as f64,
    );
    put(
        "expert_cache_hit_ratio",
        "gauge",
        "Expert-cache hit rate.",
        per(st.expert_hits as f64, st.expert_accesses),
    );
    put(
        "expert_prefetches_total",
        "counter",
        "Experts read ahead of use.",
        st.expert_prefetches as f64,
    );
    put(
        "expert_prefetch_hits_total",
        "counter",
        "Read-ahead experts the router then chose.",
        st.expert_prefetch_hits as f64,
    );
    put(
        "expert_prefetch_waste_total",
        "counter",
        "Read-ahead experts the router did not choose.",
        st.expert_prefetches.saturating_sub(st.expert_prefetch_hits) as f64,
    );
    put(
        "stream_resident_bytes",
        "gauge",
        "Streamed weights in memory now (pool occupancy).",
        t.resident_stream_bytes as f64,
    );
    put(
        "stream_peak_resident_bytes",
        "gauge",
        "Most streamed weights in memory at once.",
        st.peak_resident_bytes as f64,
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
}
