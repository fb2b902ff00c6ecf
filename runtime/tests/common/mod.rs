//! Model setup shared by the runtime's tests and its decode bench: the real Gemma 3 270M, its FFN
//! matrices, tensor file locations and hypura's load path (O_DIRECT, no repacking).
#![allow(dead_code)] // not every test binary uses every helper

use runtime::{LoadMode, Model, ModelParams};
use solver::{Inventory, TensorEntry};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The real Gemma 3 270M GGUF; fails with install instructions when it is missing.
pub fn gemma() -> PathBuf {
    solver::testdata::gemma_3_270m().unwrap_or_else(|e| panic!("{e}"))
}

/// The FFN weight matrices (not the FFN norms): what the tests stream.
pub fn ffn_tensors(inv: &Inventory) -> Vec<&TensorEntry> {
    inv.tensors
        .iter()
        .filter(|t| t.name.contains(".ffn_") && !t.name.contains("norm"))
        .collect()
}

/// Names of [`ffn_tensors`].
pub fn ffn_names(inv: &Inventory) -> Vec<String> {
    ffn_tensors(inv).iter().map(|t| t.name.clone()).collect()
}

/// (file index, absolute data offset) of every tensor, by name: what `Streamer::new` takes.
pub fn locations(inv: &Inventory) -> HashMap<String, (usize, u64)> {
    inv.tensors
        .iter()
        .map(|t| (t.name.clone(), (t.file as usize, t.offset.unwrap())))
        .collect()
}

/// hypura's load path: O_DIRECT reads, no repacked copies, `streamed` tensors (exact names) in
/// the streamed-weights buffer type.
pub fn load_ours(path: &Path, streamed: &[String]) -> Model {
    Model::load(
        path,
        &ModelParams {
            load_mode: LoadMode::DirectIo,
            use_extra_bufts: false,
            streamed: runtime::plan::name_patterns(streamed),
            host: Vec::new(),
        },
    )
    .unwrap()
}

/// The largest reserved size of the model's streamed tensors: the smallest pool that works.
pub fn largest_streamed(model: &Model) -> u64 {
    model
        .streamed()
        .iter()
        .map(|t| t.reserved as u64)
        .max()
        .unwrap()
}
