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
    Tokenize(String),
    #[error("the prompt is empty after tokenization")]
    EmptyPrompt,
    #[error("prompt ({prompt} tokens) plus {predict} generated tokens exceed the context size {n_ctx}; pass a larger --ctx")]
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
    Gguf(#[from] gguf::GgufError),
    #[error("the plan does not match the model")]
    Plan(#[from] plan::CheckError),
    #[error("the replayed trace's {what} is {trace} but the model's is {model}; replay a trace of a model with the same routing shape (or synthesize one: `hypura synth`)")]
    TraceShape {
        what: &'static str,
        trace: String,
        model: String,
    },
    #[error("{0}")]
    Placement(String),
    #[error("streaming pool of {pool} bytes cannot hold tensor {tensor} ({need} bytes) next to the {pinned} bytes the current step needs")]
    PoolTooSmall {
        pool: u64,
        need: u64,
        pinned: u64,
        tensor: String,
    },
    #[error("out of memory: {0}")]
    OutOfMemory(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<plan::PlacementError> for Error {
    fn from(e: plan::PlacementError) -> Error {
        Error::Plan(e.into())
    }
}
