//! Helpers shared by the runtime's integration tests: page-cache residency of a file, small
//! synthesized MoE models and plans that stream their experts.

#![allow(dead_code)] // not every test binary uses every helper

use solver::place::plan::{ExpertPlacement, Plan, TensorPlace};
use solver::synth::presets::{self, Overrides};
use solver::synth::SynthSpec;
use solver::{GgmlType, Inventory};
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Drops the file's pages from the page cache.
pub fn drop_page_cache(file: &File) {
    // SAFETY: advisory call on a descriptor we own.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
}

/// Page-cache residency of every page of the file (mincore over a fresh mapping).
pub fn cached_pages(file: &File) -> Vec<bool> {
    let len = file.metadata().unwrap().len() as usize;
    // SAFETY: a read-only shared mapping of a file we hold open, unmapped below.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(addr, libc::MAP_FAILED);
        let mut vec = vec![0u8; len.div_ceil(4096)];
        assert_eq!(libc::mincore(addr, len, vec.as_mut_ptr()), 0);
        libc::munmap(addr, len);
        vec.iter().map(|b| b & 1 != 0).collect()
    }
}

/// Writes a small synthesized model (`preset` with `o`, F16 weights: no CPU repacking, so
/// plain llama.cpp runs the same kernels) into `dir`.
pub fn synth(dir: &Path, preset: &str, o: Overrides) -> PathBuf {
    let (family, base) = presets::base(Some(preset), None).unwrap();
    let arch = presets::apply(family, base, &o).unwrap();
    let spec = SynthSpec {
        arch,
        weight_type: GgmlType::F16,
        seed: 7,
        name: format!("test-{preset}"),
    };
    let path = dir.join(format!("{preset}.gguf"));
    spec.write(&path, false, &mut |_, _| {}).unwrap();
    path
}

/// A plan that keeps everything in RAM except the merged expert tensors: those stream, with the
/// experts in `ram` of every MoE layer preloaded (a split tensor) and an expert cache of
/// `cache_experts` experts.
pub fn plan_streaming_experts(model: &Path, ram: &[u32], cache_experts: u64) -> Plan {
    let inv = Inventory::from_gguf(model).unwrap();
    let hw = solver::hw::HwProfile::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../profiles/h200-141g.toml"
    ))
    .unwrap();
    let opts = solver::place::SolveOptions {
        method: solver::place::Method::Greedy,
        ..Default::default()
    };
    let mut plan = solver::place::solve(&inv, &hw, &opts).unwrap().plan;
    for place in plan.tensors.values_mut() {
        if *place != TensorPlace::Nvme {
            *place = TensorPlace::Ram;
        }
    }
    plan.experts.clear();
    let n_expert = inv.arch.n_expert;
    let mut expert_bytes = 0;
    for &layer in &inv.arch.moe_layers {
        let tensors: Vec<&solver::TensorEntry> = inv
            .tensors
            .iter()
            .filter(|t| t.layer == Some(layer) && t.expert_stride.is_some())
            .collect();
        expert_bytes = tensors.iter().map(|t| t.expert_stride.unwrap()).sum();
        for t in &tensors {
            let place = if ram.is_empty() {
                TensorPlace::Nvme
            } else {
                TensorPlace::Split { layer }
            };
            plan.tensors.insert(t.name.clone(), place);
        }
        plan.experts.push(ExpertPlacement {
            layer,
            tensors: tensors.iter().map(|t| t.name.clone()).collect(),
            expert_bytes,
            gpu: Vec::new(),
            ram: ram.to_vec(),
            nvme: (0..n_expert).filter(|e| !ram.contains(e)).collect(),
        });
    }
    plan.expert_cache.bytes = cache_experts * expert_bytes;
    plan.expert_cache.policy = "lru".into();
    plan.pool_bytes = 0;
    plan
}

/// `shared/data/<rel>` beside the checkout (looked up in the ancestors of the manifest
/// directory, so git worktrees find it too).
pub fn shared_data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/data").join(rel))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("shared/data/{rel} not found above the checkout"))
}
