//! Routing traces of real runs: records the experts every MoE layer's router selected (each
//! token, prompt included) in the traces crate's canonical form, and forces a recorded trace's
//! selections: the router's top-k ids (`ffn_moe_topk-N`) are overwritten with the trace's once
//! top-k has run, before the expert weights are gathered and the expert matmuls read them.
//!
//! A decode call runs in ubatches; each runs every MoE layer once over its tokens. A ubatch
//! starts at the first router node of MoE layer position 0 after the previous one's top-k.

use crate::error::{Error, Result};
use traces::{ModelFacts, Phase, TokenExtras, Trace, TraceBuilder};

struct Ubatch {
    open: bool,
    /// Global index of its first token.
    base: usize,
    n_tokens: usize,
    /// `[token][layer position][k]`.
    ids: Vec<u16>,
    seen_topk: Vec<bool>,
}

/// Which tokens a replayed trace's routing is forced on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplayScope {
    /// Every token: the prompt and each decode step.
    #[default]
    AllTokens,
    /// The prompt (the first decode call) only; decode steps keep the model's own routing and,
    /// unless something else needs them, the router is not stopped at.
    Prompt,
}

pub struct Routing {
    facts: ModelFacts,
    record: bool,
    replay: Option<Trace>,
    scope: ReplayScope,
    ub: Ubatch,
    /// Tokens whose ubatch has started.
    started: usize,
    decodes: usize,
    recorded: Vec<u16>,
    phases: Vec<Phase>,
}

/// The routing shape of a model, as traces describe it.
pub fn model_facts(arch: &model::ArchInfo) -> ModelFacts {
    ModelFacts {
        architecture: arch.arch.clone(),
        moe_layers: arch.moe_layers.clone(),
        n_expert: arch.n_expert,
        top_k: arch.n_expert_used,
        n_shared_expert: arch.n_shared_expert,
    }
}

impl Routing {
    /// `facts`: the model's routing facts; `replay`: a trace to force (checked against them).
    pub fn new(facts: ModelFacts, record: bool, replay: Option<Trace>) -> Result<Routing> {
        if let Some(t) = &replay {
            check_trace(&facts, t.model())?;
        }
        let n = facts.n_layers();
        Ok(Routing {
            facts,
            record,
            replay,
            scope: ReplayScope::AllTokens,
            ub: Ubatch {
                open: false,
                base: 0,
                n_tokens: 0,
                ids: Vec::new(),
                seen_topk: vec![false; n],
            },
            started: 0,
            decodes: 0,
            recorded: Vec::new(),
            phases: Vec::new(),
        })
    }

    /// Forces the replayed routing on `scope`'s tokens only.
    pub fn with_scope(mut self, scope: ReplayScope) -> Routing {
        self.scope = scope;
        self
    }

    pub fn facts(&self) -> &ModelFacts {
        &self.facts
    }

    pub fn replaying(&self) -> bool {
        self.replay.is_some()
    }

    /// Whether the current decode call's router selections are needed: recorded, or forced.
    pub fn wants_topk(&self) -> bool {
        self.record || self.forcing()
    }

    /// Whether the current decode call's routing is forced from the trace.
    fn forcing(&self) -> bool {
        self.replay.is_some() && (self.scope == ReplayScope::AllTokens || self.decodes == 0)
    }

    /// Recording or replaying: every token's routing at every layer is needed, so decodes must
    /// compute every token's outputs (llama.cpp otherwise runs the last layer over the output
    /// tokens alone).
    pub fn active(&self) -> bool {
        self.record || self.replay.is_some()
    }

    /// MoE layer position of block `layer`.
    pub fn position(&self, layer: u32) -> Option<usize> {
        self.facts.layer_index(layer)
    }

    /// A router node of position `pos` over `n_tokens` tokens: opens the next ubatch when due.
    fn enter(&mut self, pos: usize, n_tokens: usize) -> Result<()> {
        if !self.ub.open || (pos == 0 && self.ub.seen_topk[0]) {
            self.close()?;
            let per_token = self.facts.ids_per_token();
            self.ub = Ubatch {
                open: true,
                base: self.started,
                n_tokens,
                ids: vec![0; n_tokens * per_token],
                seen_topk: vec![false; self.facts.n_layers()],
            };
            self.started += n_tokens;
        } else if n_tokens != self.ub.n_tokens {
            return Err(Error::RouterTokens {
                layer: self.facts.moe_layers[pos],
                n_tokens,
                ubatch: self.ub.n_tokens,
            });
        }
        Ok(())
    }

    /// Under replay, the trace's selection for the `n_tokens` tokens of the ubatch at block
    /// `layer` (`top_k` per token, router order), written to `ids`; false (and `ids` untouched)
    /// when this decode call is not forced or `layer` is not an MoE layer.
    pub fn forced(&mut self, layer: u32, n_tokens: usize, ids: &mut Vec<u16>) -> Result<bool> {
        let Some(pos) = self.position(layer).filter(|_| self.forcing()) else {
            return Ok(false);
        };
        self.enter(pos, n_tokens)?;
        let trace = self.replay.as_ref().expect("forcing() checked it");
        if self.started > trace.n_tokens() {
            return Err(Error::ReplayTooShort {
                trace_tokens: trace.n_tokens(),
                decoded: self.started,
            });
        }
        ids.clear();
        for t in 0..n_tokens {
            ids.extend_from_slice(trace.selection(self.ub.base + t, pos));
        }
        Ok(true)
    }

    /// The router of block `layer` selected `ids` (`top_k` per token, router order; under
    /// replay, the [`Routing::forced`] ones).
    pub fn selected(&mut self, layer: u32, ids: &[u16], n_tokens: usize) -> Result<()> {
        let Some(pos) = self.position(layer).filter(|_| self.active()) else {
            return Ok(());
        };
        self.enter(pos, n_tokens)?;
        let k = self.facts.top_k as usize;
        let per_token = self.facts.ids_per_token();
        for (t, sel) in ids.chunks_exact(k).enumerate() {
            self.ub.ids[t * per_token + pos * k..][..k].copy_from_slice(sel);
        }
        self.ub.seen_topk[pos] = true;
        Ok(())
    }

    /// Under replay, during a one-token ubatch (a decode step) whose router of block `layer` has
    /// run: the trace's selection for that token at the next MoE layer, which the oracle
    /// prefetch reads ahead. None for the last MoE layer and for prompt batches.
    pub fn upcoming(&self, layer: u32) -> Option<&[u16]> {
        let trace = self.replay.as_ref()?;
        let pos = self.position(layer)?;
        if !self.ub.open || self.ub.n_tokens != 1 || pos + 1 >= self.facts.n_layers() {
            return None;
        }
        Some(trace.selection(self.ub.base, pos + 1))
    }

    /// Ends a ubatch: every MoE layer must have been routed.
    fn close(&mut self) -> Result<()> {
        if !self.ub.open {
            return Ok(());
        }
        self.ub.open = false;
        let layers = &self.facts.moe_layers;
        if let Some(p) = self.ub.seen_topk.iter().position(|&s| !s) {
            return Err(Error::NoRouterSelection { layer: layers[p] });
        }
        if self.record {
            let phase = if self.decodes == 0 {
                Phase::Prefill
            } else {
                Phase::Decode
            };
            self.recorded.extend_from_slice(&self.ub.ids);
            self.phases
                .extend(std::iter::repeat_n(phase, self.ub.n_tokens));
        }
        Ok(())
    }

    /// A decode call has finished.
    pub fn end_decode(&mut self) -> Result<()> {
        if !self.active() {
            return Ok(());
        }
        self.close()?;
        self.decodes += 1;
        Ok(())
    }

    /// Tokens routed so far (decoded, in order).
    pub fn n_tokens(&self) -> usize {
        self.started
    }

    /// The routing recorded so far as one sequence named `sequence`.
    pub fn recorded_trace(&self, sequence: &str) -> Result<Trace> {
        let mut b = TraceBuilder::new(self.facts.clone())?;
        b.begin_sequence(sequence)?;
        let per_token = self.facts.ids_per_token();
        for (ids, &phase) in self.recorded.chunks_exact(per_token).zip(&self.phases) {
            let extras = TokenExtras {
                phase: Some(phase),
                ..TokenExtras::default()
            };
            b.push_token(ids, extras)?;
        }
        b.end_sequence()?;
        Ok(b.finish()?)
    }
}

/// A trace can be replayed on a model with the same MoE layers, expert count and top-k.
pub fn check_trace(model: &ModelFacts, trace: &ModelFacts) -> Result<()> {
    let bad = |what: &'static str, trace: String, model: String| {
        Err(Error::TraceShape { what, trace, model })
    };
    if trace.n_expert != model.n_expert {
        return bad(
            "expert count",
            trace.n_expert.to_string(),
            model.n_expert.to_string(),
        );
    }
    if trace.top_k != model.top_k {
        return bad("top-k", trace.top_k.to_string(), model.top_k.to_string());
    }
    if trace.moe_layers.len() != model.moe_layers.len() {
        return bad(
            "MoE layer count",
            trace.moe_layers.len().to_string(),
            model.moe_layers.len().to_string(),
        );
    }
    if trace.moe_layers != model.moe_layers {
        return bad(
            "list of MoE layers",
            format!("{:?}", trace.moe_layers),
            format!("{:?}", model.moe_layers),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(n_expert: u32, top_k: u32, layers: Vec<u32>) -> ModelFacts {
        ModelFacts {
            architecture: "llama".into(),
            moe_layers: layers,
            n_expert,
            top_k,
            n_shared_expert: 0,
        }
    }

    #[test]
    fn forced_ids_are_the_traces_for_each_token_of_the_ubatch() {
        let f = facts(8, 2, vec![0, 1]);
        let mut b = TraceBuilder::new(f.clone()).unwrap();
        b.begin_sequence("s").unwrap();
        b.push_token(&[5, 2, 0, 7], TokenExtras::default()).unwrap();
        b.push_token(&[1, 3, 6, 4], TokenExtras::default()).unwrap();
        b.end_sequence().unwrap();
        let mut r = Routing::new(f, true, Some(b.finish().unwrap())).unwrap();
        let mut ids = vec![9; 3];
        assert!(r.forced(0, 2, &mut ids).unwrap());
        assert_eq!(ids, [5, 2, 1, 3]);
        r.selected(0, &ids, 2).unwrap();
        assert!(r.forced(1, 2, &mut ids).unwrap());
        assert_eq!(ids, [0, 7, 6, 4]);
        // Not an MoE layer: nothing to force.
        assert!(!r.forced(5, 2, &mut ids).unwrap());
        assert_eq!(ids, [0, 7, 6, 4]);
    }

    #[test]
    fn a_prompt_scope_forces_the_first_decode_call_only() {
        let f = facts(8, 2, vec![0]);
        let mut b = TraceBuilder::new(f.clone()).unwrap();
        b.begin_sequence("s").unwrap();
        for t in 0..3u16 {
            b.push_token(&[t, t + 1], TokenExtras::default()).unwrap();
        }
        b.end_sequence().unwrap();
        let mut r = Routing::new(f, false, Some(b.finish().unwrap()))
            .unwrap()
            .with_scope(ReplayScope::Prompt);
        let mut ids = Vec::new();
        assert!(r.wants_topk());
        assert!(r.forced(0, 2, &mut ids).unwrap());
        assert_eq!(ids, [0, 1, 1, 2]);
        r.selected(0, &ids, 2).unwrap();
        r.end_decode().unwrap();
        assert!(!r.wants_topk());
        assert!(!r.forced(0, 1, &mut ids).unwrap());
    }

    #[test]
    fn too_short_a_trace_says_how_many_tokens_it_has_and_needs() {
        let f = facts(4, 1, vec![3]);
        let mut b = TraceBuilder::new(f.clone()).unwrap();
        b.begin_sequence("s").unwrap();
        b.push_token(&[1], TokenExtras::default()).unwrap();
        b.end_sequence().unwrap();
        let mut r = Routing::new(f, false, Some(b.finish().unwrap())).unwrap();
        let e = r.forced(3, 3, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("1 tokens") && e.contains("at least 3"), "{e}");
    }

    #[test]
    fn mismatched_shapes_are_refused_naming_the_field() {
        let m = facts(64, 6, vec![1, 2]);
        let e = check_trace(&m, &facts(8, 6, vec![1, 2])).unwrap_err();
        assert!(e.to_string().contains("expert count is 8"), "{e}");
        let e = check_trace(&m, &facts(64, 2, vec![1, 2])).unwrap_err();
        assert!(e.to_string().contains("top-k is 2"), "{e}");
        let e = check_trace(&m, &facts(64, 6, vec![1])).unwrap_err();
        assert!(e.to_string().contains("MoE layer count is 1"), "{e}");
    }
}
