//! The runtime's error type: every llama.cpp failure, I/O failure and plan mismatch, with the file
//! or tensor it concerns.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: llama.cpp could not load the model{detail}")]
    ModelLoad { path: PathBuf, detail: String },
    #[error("llama.cpp could not create a context (n_ctx {n_ctx}){detail}")]
    Context { n_ctx: u32, detail: String },
    #[error("cannot tokenize the prompt: {0}")]
    Tokenize(TokenizeError),
    #[error("no device {name:?} to place tensors on; llama.cpp's backends have: {}", known.join(", "))]
    UnknownDevice { name: String, known: Vec<String> },
    #[error("cannot format the chat: {0}")]
    ChatTemplate(String),
    #[error("the prompt is empty after tokenization")]
    EmptyPrompt,
    /// The context is too small for the prompt and the tokens to generate.
    #[error(
        "prompt ({prompt} tokens) plus {predict} generated tokens exceed the context size {n_ctx}"
    )]
    ContextTooSmall {
        prompt: usize,
        predict: usize,
        n_ctx: u32,
    },
    #[error("llama_decode failed with status {status} at token {token}{detail}")]
    Decode {
        status: i32,
        token: usize,
        detail: String,
    },
    #[error("{path}: reading {len} bytes at offset {offset} for tensor {tensor}: {source}")]
    Read {
        path: PathBuf,
        tensor: String,
        offset: u64,
        len: u64,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Inventory(#[from] model::InventoryError),
    #[error("the plan does not match the model")]
    Plan(#[from] plan::CheckError),
    #[error("the replayed trace's {what} is {trace} but the model's is {model}")]
    TraceShape {
        what: &'static str,
        trace: String,
        model: String,
    },
    /// A graph node the streamer reads (the router's top-k selections) has a type or shape that
    /// llama.cpp's MoE graph never builds.
    #[error("{node}: expected {expected}, got ggml type {ty} shape {shape:?}")]
    GraphNode {
        node: String,
        expected: String,
        ty: u32,
        shape: [i64; 3],
    },
    #[error("{node}: expert id {id} out of range 0..{n_expert}")]
    RouterId {
        node: String,
        id: i32,
        n_expert: u32,
    },
    #[error("router node of MoE layer {layer} has {n_tokens} tokens inside a ubatch of {ubatch}")]
    RouterTokens {
        layer: u32,
        n_tokens: usize,
        ubatch: usize,
    },
    #[error("no router selection (ffn_moe_topk-{layer}) was seen for MoE layer {layer}")]
    NoRouterSelection { layer: u32 },
    #[error("the replayed trace has {trace_tokens} tokens, but this run decodes at least {decoded}; record a longer trace or generate fewer tokens")]
    ReplayTooShort { trace_tokens: usize, decoded: usize },
    #[error("the oracle expert prefetch reads the next layer's experts from a trace replayed on every token, and none is given")]
    OracleWithoutReplay,
    #[error("the plan's KV cache type {0:?} (inputs.kv_type) is none llama.cpp's cache takes: f16, f32, q8_0, q4_0")]
    KvType(String),
    #[error("routing traces need a MoE model; {path} ({arch}) has no routed experts")]
    NotMoe { path: PathBuf, arch: String },
    #[error("a catalog model has no file to stream from")]
    CatalogModel,
    #[error("streamed tensor {tensor} is not page-aligned in its buffer")]
    Unaligned { tensor: String },
    #[error("streamed tensor {tensor} is not in the GGUF header")]
    NotInHeader { tensor: String },
    #[error("llama.cpp did not place the NVMe-tier tensors as planned (not streamed: {missing:?}; streamed but not planned: {extra:?})")]
    NotPlacedAsPlanned {
        missing: Vec<String>,
        extra: Vec<String>,
    },
    #[error("expert tensor {tensor} is in block {layer}, which is not a MoE layer of the model")]
    ExpertTensorLayer { tensor: String, layer: u32 },
    #[error("expert tensor {tensor} ({bytes} bytes) is not {n_expert} slices of {stride} bytes")]
    ExpertSlices {
        tensor: String,
        bytes: u64,
        n_expert: u64,
        stride: u64,
    },
    #[error("expert cache: {0}")]
    Cache(#[from] policy::PolicyError),
    #[error("I/O queue depth {depth} is more than the {max} reader threads hypura starts")]
    QueueDepth { depth: u32, max: u32 },
    #[error("panic in the eval callback")]
    CallbackPanic,
    /// The routing taken does not make a valid trace (a bug: the router's selections are
    /// checked as they are recorded).
    #[error("recording the routing trace: {0}")]
    Recording(#[from] traces::RuleError),
    #[error("streaming pool of {pool} bytes cannot hold tensor {tensor} ({need} bytes) next to the {pinned} bytes the current step needs")]
    PoolTooSmall {
        pool: u64,
        need: u64,
        pinned: u64,
        tensor: String,
    },
    #[error("out of memory: {what}{}", .bytes.map(|b| format!(" ({b} bytes)")).unwrap_or_default())]
    OutOfMemory {
        what: &'static str,
        bytes: Option<u64>,
    },
    #[error("cannot start an I/O thread: {0}")]
    ThreadSpawn(std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Why llama.cpp's tokenizer gave no tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenizeError {
    #[error("the prompt is longer than 2 GiB")]
    PromptTooLong,
    #[error("more than 2^31 tokens")]
    TooManyTokens,
    #[error("llama_tokenize disagreed on the token count")]
    CountMismatch,
}

impl From<plan::PlacementError> for Error {
    fn from(e: plan::PlacementError) -> Error {
        Error::Plan(e.into())
    }
}
