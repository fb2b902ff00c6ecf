//! Router interception in the eval callback: which MoE graph nodes we stop at and what happens
//! there. At `ffn_moe_topk-N` (done) the selected expert ids of every token of the ubatch are read
//! (under replay, overwritten with the trace's first) and handed to routing (record/replay) and
//! to the per-expert streamer; at an expert matmul (`MUL_MAT_ID`) over a streamed expert tensor
//! the selected slices are filled before it runs and released after.
//!
//! Replay overwrites the ids rather than the router logits so that it costs no stop of its own:
//! the top-k stop is there anyway, and every node that reads the ids (the expert weights'
//! `get_rows`, the expert matmuls) runs after it. The weights are the router's probabilities of
//! the forced experts.

use crate::error::{Error, Result};
use crate::experts::{ExpertIo, Experts};
use crate::routing::Routing;
use crate::stream::{base_tensor, node_layer, StreamStats};
use hypura_sys as sys;

const TOPK: &[u8] = b"ffn_moe_topk-";

/// The MoE side of a [`crate::stream::Streamer`].
pub struct Moe {
    pub routing: Routing,
    pub experts: Option<Experts>,
    ids: Vec<i32>,
    picked: Vec<u16>,
}

impl Moe {
    pub fn new(routing: Routing, experts: Option<Experts>) -> Moe {
        Moe {
            routing,
            experts,
            ids: Vec::new(),
            picked: Vec::new(),
        }
    }

    /// `ask` for `node`: true when its batch must end at it (router nodes, expert matmuls).
    pub fn on_ask(
        &mut self,
        node: *const sys::ggml_tensor,
        io: ExpertIo,
        stats: &mut StreamStats,
    ) -> Result<bool> {
        if node_layer(node, TOPK).is_some() {
            return Ok(self.experts.is_some() || self.routing.wants_topk());
        }
        if let Some((x, w)) = self.experts.as_mut().zip(streamed_weight(node)) {
            if x.owns(w) {
                x.fill(w, io, stats)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The batch ending at `node` (one we asked for) has run.
    pub fn on_done(
        &mut self,
        node: *mut sys::ggml_tensor,
        io: ExpertIo,
        stats: &mut StreamStats,
    ) -> Result<()> {
        if let Some(layer) = node_layer(node, TOPK) {
            let n_tokens = self.read_topk(node)?;
            if self.routing.forced(layer, n_tokens, &mut self.picked)? {
                self.write_topk(node)?;
            }
            self.routing.selected(layer, &self.picked, n_tokens)?;
            if let Some(x) = self.experts.as_mut() {
                let upcoming = self.routing.upcoming(layer);
                x.select(layer, &self.picked, upcoming, io, stats)?;
            }
        } else if let Some((x, w)) = self.experts.as_mut().zip(streamed_weight(node)) {
            if x.owns(w) {
                x.after_matmul(w, stats)?;
            }
        }
        Ok(())
    }

    /// A decode call has finished.
    pub fn end_decode(&mut self) -> Result<()> {
        self.routing.end_decode()
    }

    /// Reads `ffn_moe_topk-N` (I32 `[top_k, n_tokens]`, rows `nb[1]` apart) into `picked`;
    /// returns the token count.
    fn read_topk(&mut self, node: *mut sys::ggml_tensor) -> Result<usize> {
        // SAFETY: a valid, computed graph node (its batch has run, nothing is running).
        let (ne, nb, ty) = unsafe { ((*node).ne, (*node).nb, (*node).type_) };
        let k = self.routing.facts().top_k as usize;
        let n_expert = self.routing.facts().n_expert;
        if ty != sys::GGML_TYPE_I32 || ne[0] as usize != k || nb[1] % 4 != 0 || ne[2] != 1 {
            return Err(Error::GraphNode {
                node: name_of(node),
                expected: format!("I32 [{k}, n_tokens]"),
                ty,
                shape: [ne[0], ne[1], ne[2]],
            });
        }
        let n_tokens = ne[1].max(0) as usize;
        self.picked.clear();
        if n_tokens == 0 {
            // The last layer of a ubatch without outputs routes no token.
            return Ok(0);
        }
        let row = nb[1] / 4;
        // SAFETY: as above; ggml_nbytes covers the view's span, which we read whole.
        unsafe {
            let bytes = sys::ggml_nbytes(node);
            self.ids.resize(bytes.div_ceil(4), 0);
            sys::ggml_backend_tensor_get(node, self.ids.as_mut_ptr().cast(), 0, bytes);
        }
        for t in 0..n_tokens {
            for &id in &self.ids[t * row..t * row + k] {
                if id < 0 || id as u32 >= n_expert {
                    return Err(Error::RouterId {
                        node: name_of(node),
                        id,
                        n_expert,
                    });
                }
                self.picked.push(id as u16);
            }
        }
        Ok(n_tokens)
    }

    /// Writes `picked` into `ffn_moe_topk-N` as [`Moe::read_topk`] read it (the rest of each
    /// argsort row unchanged).
    fn write_topk(&mut self, node: *mut sys::ggml_tensor) -> Result<()> {
        let k = self.routing.facts().top_k as usize;
        if self.picked.is_empty() {
            return Ok(()); // no token routed: nothing read, nothing to write
        }
        // SAFETY: a valid, computed graph node whose shape read_topk checked.
        let (nb1, bytes) = unsafe { ((*node).nb[1], sys::ggml_nbytes(node)) };
        let row = nb1 / 4;
        for (t, sel) in self.picked.chunks_exact(k).enumerate() {
            for (slot, &id) in self.ids[t * row..t * row + k].iter_mut().zip(sel) {
                *slot = i32::from(id);
            }
        }
        // SAFETY: `ids` holds the node's whole span (read_topk sized it); nothing is running.
        unsafe { sys::ggml_backend_tensor_set(node, self.ids.as_ptr().cast(), 0, bytes) };
        Ok(())
    }
}

/// The weight of an expert matmul: `src[0]`'s base tensor, for `MUL_MAT_ID` nodes.
fn streamed_weight(node: *const sys::ggml_tensor) -> Option<usize> {
    // SAFETY: llama.cpp passes a valid graph node.
    unsafe {
        if (*node).op != sys::GGML_OP_MUL_MAT_ID || (*node).src[0].is_null() {
            return None;
        }
        Some(base_tensor((*node).src[0]) as usize)
    }
}

fn name_of(node: *const sys::ggml_tensor) -> String {
    // SAFETY: ggml names are NUL-terminated within the fixed-size array.
    unsafe { std::ffi::CStr::from_ptr((*node).name.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}
