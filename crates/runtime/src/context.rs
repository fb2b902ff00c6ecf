//! A llama.cpp context over a [`Model`]: decoding a prompt and generating tokens with llama.cpp's
//! own samplers (greedy at temperature 0), optionally with a [`Streamer`] in the eval callback.

use crate::backend;
use crate::error::{Error, Result};
use crate::mem;
use crate::model::Model;
use crate::stream::{self, Streamer};
use gguf::GgmlType;
use hypura_sys as sys;
use std::ptr::NonNull;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct ContextParams {
    pub n_ctx: u32,
    /// Threads for decoding; 0: all available cores.
    pub n_threads: u32,
    /// llama.cpp's `op_offload` (its default: on): a large batch's op on host weights runs on the
    /// GPU, its weights copied there. Off keeps such ops in the CPU backend, as a run that streams
    /// weights always does.
    pub op_offload: bool,
    /// Element types of the KV cache's keys and values (llama.cpp's `-ctk` and `-ctv`; its
    /// default F16). A quantized V cache needs flash attention.
    pub type_k: GgmlType,
    pub type_v: GgmlType,
    /// llama.cpp's `-fa`.
    pub flash_attn: FlashAttn,
}

impl ContextParams {
    /// llama.cpp's defaults (all cores, op_offload on, an F16 KV cache, flash attention as
    /// llama.cpp decides) for a 512-token context.
    pub const DEFAULT: ContextParams = ContextParams {
        n_ctx: 512,
        n_threads: 0,
        op_offload: true,
        type_k: GgmlType::F16,
        type_v: GgmlType::F16,
        flash_attn: FlashAttn::Auto,
    };
}

/// Whether attention uses llama.cpp's flash-attention kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashAttn {
    /// llama.cpp's choice (its default: on where the backend supports it).
    Auto,
    On,
    Off,
}

/// How the next token is chosen: llama.cpp's samplers in llama.cpp's order (repetition
/// penalty, top-k, top-p, min-p, temperature, then a seeded draw; greedy at temperature 0 after
/// the penalty). [`Sampling::GREEDY`] leaves every filter off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0: greedy (argmax, llama.cpp's greedy sampler).
    pub temp: f32,
    pub seed: u32,
    /// Keep generating past end-of-generation tokens (benchmarks want exactly `n_predict`).
    pub ignore_eos: bool,
    /// Keep the `top_k` most likely tokens; 0: all.
    pub top_k: u32,
    /// Keep the most likely tokens whose probabilities sum to `top_p`; 1: all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0: none.
    pub min_p: f32,
    /// Divide the logits of tokens seen in the last `repeat_last_n` by this; 1: off.
    pub repeat_penalty: f32,
    pub repeat_last_n: u32,
}

impl Sampling {
    pub const GREEDY: Sampling = Sampling {
        temp: 0.0,
        seed: 0,
        ignore_eos: false,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        repeat_last_n: 64,
    };
}

/// What a generation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub prompt_tokens: Vec<i32>,
    /// Generated token ids (stops early at an end-of-generation token, which is included, unless
    /// [`Sampling::ignore_eos`]).
    pub tokens: Vec<i32>,
    /// Seconds to decode the prompt batch.
    pub prompt_s: f64,
    /// Seconds of each generated token's decode step (the first entry is the prompt's token,
    /// sampled from the prompt batch: 0).
    pub token_s: Vec<f64>,
    /// Bytes the process read from storage during the decode steps (after the prompt batch), as
    /// the kernel counts them ([`crate::mem::storage_read_bytes`]); None without /proc.
    pub decode_read_bytes: Option<u64>,
}

impl Generation {
    /// Seconds of the decode steps (the prompt batch not included).
    pub fn decode_s(&self) -> f64 {
        self.token_s.iter().sum()
    }

    /// Tokens per second of the decode steps: every generated token after the first (which the
    /// prompt batch gives); 0 with fewer than two.
    pub fn decode_tok_per_s(&self) -> f64 {
        let s = self.decode_s();
        if self.tokens.len() > 1 && s > 0.0 {
            (self.tokens.len() - 1) as f64 / s
        } else {
            0.0
        }
    }
}

pub struct Context<'m> {
    raw: NonNull<sys::llama_context>,
    model: &'m Model,
    n_ctx: u32,
    // Boxed so its address, which llama.cpp holds, is stable.
    streamer: Option<Box<Streamer>>,
    /// Compute every token's outputs in multi-token batches (for routing record/replay: the
    /// last layer then routes every prompt token, not only the output one).
    all_outputs: bool,
    /// The CPU backend's threads, kept across graph computes (see [`persistent_threads`]).
    threadpool: Option<NonNull<sys::ggml_threadpool>>,
}

/// A CPU thread pool that lives as long as the context. With no pool attached, ggml creates and
/// joins its worker threads at every graph compute; the streamer's callback splits each token's
/// graph into dozens of computes, and on a 2-core machine that churn, racing the I/O threads,
/// made 2 decode threads 3-4x slower than 1 (RESEARCH_NOTES, "Decode threads"). llama.cpp's
/// default polling is kept: sleeping workers (`poll = 0`) measured no faster.
fn persistent_threads(threads: u32) -> Option<NonNull<sys::ggml_threadpool>> {
    if threads < 2 {
        return None;
    }
    // SAFETY: plain constructors; the pool is freed in Context's Drop after the context.
    unsafe {
        let mut p = sys::ggml_threadpool_params_default(threads as i32);
        NonNull::new(sys::ggml_threadpool_new(&mut p))
    }
}

impl<'m> Context<'m> {
    pub fn new(
        model: &'m Model,
        params: ContextParams,
        streamer: Option<Streamer>,
    ) -> Result<Context<'m>> {
        let mut streamer = streamer.map(Box::new);
        // SAFETY: returns a plain struct of defaults.
        let mut cp = unsafe { sys::llama_context_default_params() };
        cp.n_ctx = params.n_ctx;
        cp.n_batch = params.n_ctx;
        let threads = if params.n_threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
        } else {
            params.n_threads
        };
        cp.n_threads = threads as i32;
        cp.n_threads_batch = threads as i32;
        cp.op_offload = params.op_offload;
        cp.type_k = params.type_k.id() as sys::ggml_type;
        cp.type_v = params.type_v.id() as sys::ggml_type;
        cp.flash_attn_type = match params.flash_attn {
            FlashAttn::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
            FlashAttn::On => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttn::Off => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        };
        if let Some(s) = streamer.as_mut() {
            // With op_offload a prompt batch's op on host weights moves to the GPU and the scheduler
            // copies the weights there before the split runs, i.e. before the callback has filled
            // them (shared/design notes, MUL_MAT_ID): streamed weights must stay on CPU ops.
            if s.streams_weights() {
                cp.op_offload = false;
            }
            let ud = (&mut **s) as *mut Streamer as *mut std::ffi::c_void;
            cp.cb_eval = Some(stream::eval_callback);
            cp.cb_eval_user_data = ud;
            cp.abort_callback = Some(stream::abort_callback);
            cp.abort_callback_data = ud;
        }
        backend::clear_log();
        // SAFETY: the model outlives the context ('m); the streamer box lives in the context.
        let raw = unsafe { sys::llama_init_from_model(model.raw(), cp) };
        let raw = NonNull::new(raw).ok_or_else(|| Error::Context {
            n_ctx: params.n_ctx,
            detail: backend::log_detail(),
        })?;
        let threadpool = if streamer.is_some() {
            persistent_threads(threads)
        } else {
            None
        };
        if let Some(tp) = threadpool {
            // SAFETY: both live until Drop, which frees the context before the pool.
            unsafe { sys::llama_attach_threadpool(raw.as_ptr(), tp.as_ptr(), tp.as_ptr()) };
        }
        let all_outputs = streamer
            .as_ref()
            .and_then(|s| s.moe())
            .is_some_and(|m| m.routing.active());
        Ok(Context {
            raw,
            model,
            n_ctx: params.n_ctx,
            streamer,
            all_outputs,
            threadpool,
        })
    }

    pub fn streamer(&self) -> Option<&Streamer> {
        self.streamer.as_deref()
    }

    /// The logits of the last decoded token (empty before any decode).
    pub fn last_logits(&self) -> &[f32] {
        // SAFETY: llama.cpp returns NULL or n_vocab floats owned by the context, valid until the
        // next decode (which needs &mut self).
        unsafe {
            let p = sys::llama_get_logits_ith(self.raw.as_ptr(), -1);
            if p.is_null() {
                return &[];
            }
            std::slice::from_raw_parts(p, self.model.n_vocab())
        }
    }

    /// Decodes one throwaway token and forgets it, so that a timed prompt does not pay the
    /// context's one-time costs (compute buffers first touched, threads started, GPU kernels
    /// loaded), as llama-bench's warm-up run does. The streamer sits it out: nothing is
    /// read, recorded or replayed and the expert cache is untouched; streamed weights are
    /// computed from whatever their memory holds (zero pages, or a released tensor's
    /// leftovers) and the result is discarded with the KV cache.
    pub fn warm_up(&mut self) -> Result<()> {
        if let Some(s) = self.streamer.as_mut() {
            s.set_paused(true);
        }
        // SAFETY: the model is live; any token id below the vocabulary size is valid.
        let bos = unsafe { sys::llama_vocab_bos(sys::llama_model_get_vocab(self.model.raw())) };
        let token = if (0..self.model.n_vocab() as i32).contains(&bos) {
            bos
        } else {
            0
        };
        let r = self.decode(&mut [token], 0);
        // SAFETY: the context is live; clearing its memory leaves it empty for the next batch.
        unsafe {
            sys::llama_synchronize(self.raw.as_ptr());
            sys::llama_memory_clear(sys::llama_get_memory(self.raw.as_ptr()), true);
        }
        if let Some(s) = self.streamer.as_mut() {
            s.set_paused(false);
        }
        r
    }

    /// Forgets every decoded token: the next [`Context::generate`] starts a new sequence (a
    /// server's next request). Streamed weights and the expert cache stay as they are.
    pub fn clear(&mut self) {
        // SAFETY: the context is live; clearing its memory leaves it empty for the next batch.
        unsafe {
            sys::llama_synchronize(self.raw.as_ptr());
            sys::llama_memory_clear(sys::llama_get_memory(self.raw.as_ptr()), true);
        }
    }

    /// Tokens the context holds from earlier calls (0 for a new one).
    pub fn used_tokens(&self) -> usize {
        // SAFETY: the context is live; sequence 0 is the one generate decodes into.
        let max =
            unsafe { sys::llama_memory_seq_pos_max(sys::llama_get_memory(self.raw.as_ptr()), 0) };
        (max + 1).max(0) as usize
    }

    /// Decodes `prompt` and generates up to `n_predict` tokens.
    pub fn generate(
        &mut self,
        prompt: &[i32],
        n_predict: usize,
        sampling: Sampling,
    ) -> Result<Generation> {
        self.generate_with(prompt, n_predict, sampling, |_| true)
    }

    /// [`Context::generate`], calling `on_token` with each token as soon as it is sampled (to
    /// show text while the next one is computed); generation stops after a token for which it
    /// returns false. The context keeps what it decoded: a later call continues the same
    /// sequence (a conversation's next turn).
    pub fn generate_with(
        &mut self,
        prompt: &[i32],
        n_predict: usize,
        sampling: Sampling,
        mut on_token: impl FnMut(i32) -> bool,
    ) -> Result<Generation> {
        if prompt.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let used = self.used_tokens();
        if used + prompt.len() + n_predict > self.n_ctx as usize {
            return Err(Error::ContextTooSmall {
                prompt: used + prompt.len(),
                predict: n_predict,
                n_ctx: self.n_ctx,
            });
        }
        let sampler = Sampler::new(sampling, self.model.n_vocab().min(i32::MAX as usize) as i32)?;
        let mut gen = Generation {
            prompt_tokens: prompt.to_vec(),
            tokens: Vec::with_capacity(n_predict),
            prompt_s: 0.0,
            token_s: Vec::with_capacity(n_predict),
            decode_read_bytes: None,
        };
        if n_predict == 0 {
            return Ok(gen);
        }
        let mut batch: Vec<i32> = prompt.to_vec();
        let mut step_s = 0.0;
        let mut read_after_prompt = None;
        loop {
            let start = Instant::now();
            if let Some(st) = self.streamer.as_mut() {
                st.begin_token(gen.tokens.len() as u32);
            }
            self.decode(&mut batch, gen.tokens.len())?;
            // llama_decode returns once a GPU backend has the work queued; without this the step
            // time (and the streamer's per-token record) would miss the GPU's compute.
            // SAFETY: the context is live.
            unsafe { sys::llama_synchronize(self.raw.as_ptr()) };
            if let Some(st) = self.streamer.as_mut() {
                st.end_token();
            }
            let s = start.elapsed().as_secs_f64();
            if gen.tokens.is_empty() {
                gen.prompt_s = s;
                read_after_prompt = mem::storage_read_bytes();
            } else {
                step_s = s;
            }
            // SAFETY: the context has logits for the last token of the batch just decoded.
            let next =
                unsafe { sys::llama_sampler_sample(sampler.0.as_ptr(), self.raw.as_ptr(), -1) };
            gen.tokens.push(next);
            gen.token_s.push(step_s);
            let go_on = on_token(next);
            let stop = !go_on || (!sampling.ignore_eos && self.model.is_end_of_generation(next));
            if gen.tokens.len() == n_predict || stop {
                gen.decode_read_bytes = mem::storage_read_bytes()
                    .zip(read_after_prompt)
                    .map(|(now, then)| now.saturating_sub(then));
                return Ok(gen);
            }
            batch.clear();
            batch.push(next);
        }
    }

    fn decode(&mut self, tokens: &mut [i32], token_index: usize) -> Result<()> {
        backend::clear_log();
        let mut outputs = vec![1i8; if self.all_outputs { tokens.len() } else { 0 }];
        // SAFETY: the batch borrows `tokens` and `outputs`, which outlive the call.
        let status = unsafe {
            let mut batch = sys::llama_batch_get_one(tokens.as_mut_ptr(), tokens.len() as i32);
            if self.all_outputs {
                batch.logits = outputs.as_mut_ptr();
            }
            sys::llama_decode(self.raw.as_ptr(), batch)
        };
        if let Some(e) = self.streamer.as_mut().and_then(|s| s.take_error()) {
            return Err(e);
        }
        if status != 0 {
            return Err(Error::Decode {
                status,
                token: token_index,
                detail: backend::log_detail(),
            });
        }
        Ok(())
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the context; the streamer box is dropped after it.
        unsafe { sys::llama_free(self.raw.as_ptr()) };
        if let Some(tp) = self.threadpool {
            // SAFETY: ours, and no context uses it any more.
            unsafe { sys::ggml_threadpool_free(tp.as_ptr()) };
        }
    }
}

struct Sampler(NonNull<sys::llama_sampler>);

impl Sampler {
    fn new(s: Sampling, n_vocab: i32) -> Result<Sampler> {
        // SAFETY: llama.cpp sampler constructors; the chain takes ownership of what is added.
        unsafe {
            let chain = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
            let chain = NonNull::new(chain).ok_or(Error::OutOfMemory {
                what: "sampler",
                bytes: None,
            })?;
            let add = |smpl| sys::llama_sampler_chain_add(chain.as_ptr(), smpl);
            if s.repeat_penalty != 1.0 && s.repeat_last_n > 0 {
                add(sys::llama_sampler_init_penalties(
                    n_vocab,
                    s.repeat_last_n.min(i32::MAX as u32) as i32,
                    s.repeat_penalty,
                    0.0,
                    0.0,
                ));
            }
            if s.temp <= 0.0 {
                add(sys::llama_sampler_init_greedy());
            } else {
                if s.top_k > 0 {
                    add(sys::llama_sampler_init_top_k(
                        s.top_k.min(i32::MAX as u32) as i32
                    ));
                }
                if s.top_p < 1.0 {
                    add(sys::llama_sampler_init_top_p(s.top_p, 1));
                }
                if s.min_p > 0.0 {
                    add(sys::llama_sampler_init_min_p(s.min_p, 1));
                }
                add(sys::llama_sampler_init_temp(s.temp));
                add(sys::llama_sampler_init_dist(s.seed));
            }
            Ok(Sampler(chain))
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: we own the chain.
        unsafe { sys::llama_sampler_free(self.0.as_ptr()) };
    }
}
