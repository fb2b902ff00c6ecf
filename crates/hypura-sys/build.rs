//! Compiles hypura's C shim against the llama.cpp source that llama-cpp-sys-2 built.
//!
//! The shim needs ggml's internal `ggml-backend-impl.h`, which llama-cpp-sys-2 neither installs
//! nor exports. How we find it: llama-cpp-sys-2 declares `links = "llama"` and prints
//! `cargo:ggml_cmake_dir=<OUT_DIR>/lib/cmake`, which cargo hands to us (a direct dependent) as
//! `DEP_LLAMA_GGML_CMAKE_DIR`. Two levels up is its OUT_DIR, whose `build/CMakeCache.txt` records
//! the source tree cmake configured (`ggml_SOURCE_DIR`, else `CMAKE_HOME_DIRECTORY`/ggml). This is
//! the exact tree the linked libraries were built from — unlike guessing a registry path, it
//! follows `[patch]`, vendoring and a non-default CARGO_HOME.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=shim");
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_GGML_CMAKE_DIR");
    let ggml_src = match ggml_source_dir() {
        Ok(p) => p,
        Err(e) => panic!("hypura-sys: cannot find llama.cpp's ggml source: {e}"),
    };
    let impl_header = ggml_src.join("src").join("ggml-backend-impl.h");
    if !impl_header.is_file() {
        panic!(
            "hypura-sys: {} is missing; hypura-sys is written for llama-cpp-sys-2 =0.1.161",
            impl_header.display()
        );
    }
    cc::Build::new()
        .file("shim/stream_buft.c")
        .include("shim")
        .include(ggml_src.join("include"))
        .include(ggml_src.join("src"))
        .warnings(true)
        .extra_warnings(true)
        .compile("hypura_shim");
}

fn ggml_source_dir() -> Result<PathBuf, String> {
    let cmake_dir = std::env::var_os("DEP_LLAMA_GGML_CMAKE_DIR")
        .ok_or("llama-cpp-sys-2 did not export DEP_LLAMA_GGML_CMAKE_DIR")?;
    let out_dir = Path::new(&cmake_dir)
        .parent()
        .and_then(Path::parent)
        .ok_or("DEP_LLAMA_GGML_CMAKE_DIR has no grandparent")?;
    let cache_path = out_dir.join("build").join("CMakeCache.txt");
    let cache = std::fs::read_to_string(&cache_path)
        .map_err(|e| format!("{}: {e}", cache_path.display()))?;
    let entry = |key: &str| {
        cache.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.split(':').next() == Some(key)).then(|| PathBuf::from(v.trim()))
        })
    };
    entry("ggml_SOURCE_DIR")
        .or_else(|| entry("CMAKE_HOME_DIRECTORY").map(|p| p.join("ggml")))
        .ok_or_else(|| {
            format!(
                "{}: neither ggml_SOURCE_DIR nor CMAKE_HOME_DIRECTORY",
                cache_path.display()
            )
        })
}
