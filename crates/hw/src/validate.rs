//! Range and consistency checks of a parsed profile; each failure names the offending key path.

use super::schema::{HwProfile, StorageProfile, PROFILE_VERSION};
use std::collections::BTreeSet;

type Check = Result<(), (String, String)>;

/// First problem found, as (key path, message).
pub(crate) fn validate(p: &HwProfile) -> Check {
    if p.version != PROFILE_VERSION {
        return fail(
            "version",
            format!(
                "unsupported profile version {}; this hypura reads version {PROFILE_VERSION}",
                p.version
            ),
        );
    }
    if p.name.trim().is_empty() {
        return fail("name", "must describe the machine (it is empty)");
    }
    if let Some(g) = &p.gpu {
        if g.name.trim().is_empty() {
            return fail("gpu.name", "is empty");
        }
        positive_bytes("gpu.memory_bytes", g.memory_bytes)?;
        positive_bytes("gpu.working_set_bytes", g.working_set_bytes)?;
        if g.working_set_bytes > g.memory_bytes {
            return fail(
                "gpu.working_set_bytes",
                format!(
                    "{} is larger than gpu.memory_bytes ({})",
                    g.working_set_bytes, g.memory_bytes
                ),
            );
        }
        if let Some(h) = g.compute_headroom_bytes {
            positive_bytes("gpu.compute_headroom_bytes", h)?;
            if h >= g.working_set_bytes {
                return fail(
                    "gpu.compute_headroom_bytes",
                    format!(
                        "{h} leaves no room for weights: it must be below gpu.working_set_bytes ({})",
                        g.working_set_bytes
                    ),
                );
            }
        }
        positive("gpu.bandwidth_gbps", g.bandwidth_gbps)?;
        positive("gpu.fp16_tflops", g.fp16_tflops)?;
        positive("gpu.fp32_tflops", g.fp32_tflops)?;
        decode_terms("gpu", g.decode_gbps, g.tensor_overhead_s)?;
        seconds_below_one("gpu.host_layer_overhead_s", g.host_layer_overhead_s)?;
        seconds_below_one("gpu.batch_tensor_overhead_s", g.batch_tensor_overhead_s)?;
        if let Some(v) = g.matmul_tflops {
            positive("gpu.matmul_tflops", v)?;
        }
        if g.unified_memory && g.memory_bytes > p.ram.bytes {
            return fail(
                "gpu.memory_bytes",
                format!(
                    "unified memory is the RAM pool, but {} is larger than ram.bytes ({})",
                    g.memory_bytes, p.ram.bytes
                ),
            );
        }
    }
    match (&p.gpu, &p.host_link) {
        (Some(g), None) if !g.unified_memory => {
            return fail("host_link", "missing: a discrete GPU (gpu.unified_memory = false) needs [host_link] h2d_gbps and d2h_gbps")
        }
        (Some(g), Some(_)) if g.unified_memory => {
            return fail("host_link", "must be absent when gpu.unified_memory = true (there is no copy link)")
        }
        (None, Some(_)) => return fail("host_link", "must be absent when there is no [gpu] section"),
        (_, Some(l)) => {
            positive("host_link.h2d_gbps", l.h2d_gbps)?;
            positive("host_link.d2h_gbps", l.d2h_gbps)?;
        }
        _ => {}
    }
    positive_bytes("ram.bytes", p.ram.bytes)?;
    positive("ram.bandwidth_gbps", p.ram.bandwidth_gbps)?;
    if p.ram.os_reserve_bytes >= p.ram.bytes {
        return fail(
            "ram.os_reserve_bytes",
            format!(
                "{} leaves nothing of ram.bytes ({})",
                p.ram.os_reserve_bytes, p.ram.bytes
            ),
        );
    }
    validate_storage(&p.storage)?;
    if p.cpu.cores == 0 {
        return fail("cpu.cores", "must be at least 1");
    }
    positive("cpu.fp32_gflops", p.cpu.fp32_gflops)?;
    for (key, v) in [
        ("cpu.streaming_decode_gbps", p.cpu.streaming_decode_gbps),
        ("cpu.matmul_gflops", p.cpu.matmul_gflops),
        ("cpu.streaming_matmul_gflops", p.cpu.streaming_matmul_gflops),
    ] {
        if let Some(v) = v {
            positive(key, v)?;
        }
    }
    seconds_below_one("cpu.batch_tensor_overhead_s", p.cpu.batch_tensor_overhead_s)?;
    decode_terms("cpu", p.cpu.decode_gbps, p.cpu.tensor_overhead_s)
}

/// The optional decode calibration of `section`: a positive bandwidth, an overhead in
/// `0..1` s (a tensor taking a second is a unit mistake, not a machine).
fn decode_terms(section: &str, gbps: Option<f64>, overhead: Option<f64>) -> Check {
    if let Some(v) = gbps {
        positive(&format!("{section}.decode_gbps"), v)?;
    }
    seconds_below_one(&format!("{section}.tensor_overhead_s"), overhead)
}

/// An optional fixed cost in `0..1` s (a second is a unit mistake, not a machine).
fn seconds_below_one(key: &str, v: Option<f64>) -> Check {
    match v {
        Some(v) if !(v.is_finite() && (0.0..1.0).contains(&v)) => fail(
            key,
            format!("must be at least 0 and below 1 s (got {v}; the unit is seconds)"),
        ),
        _ => Ok(()),
    }
}

fn validate_storage(s: &StorageProfile) -> Check {
    positive("storage.seq_read_gbps", s.seq_read_gbps)?;
    positive("storage.read_4k_qd1_latency_s", s.read_4k_qd1_latency_s)?;
    if let Some(v) = s.copy_gbps {
        positive("storage.copy_gbps", v)?;
    }
    if s.read_4k_qd1_latency_s >= 1.0 {
        return fail(
            "storage.read_4k_qd1_latency_s",
            format!(
                "{} s is not a plausible 4 KiB read time (the unit is seconds)",
                s.read_4k_qd1_latency_s
            ),
        );
    }
    if s.read_curve.is_empty() {
        return fail(
            "storage.read_curve",
            "needs at least one [[storage.read_curve]] point",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, pt) in s.read_curve.iter().enumerate() {
        if pt.block_bytes > i64::MAX as u64 {
            return fail(
                &format!("storage.read_curve[{i}].block_bytes"),
                format!("{} is more than a profile holds (2^63 - 1)", pt.block_bytes),
            );
        }
        if pt.block_bytes == 0 {
            return fail(
                &format!("storage.read_curve[{i}].block_bytes"),
                "must be positive",
            );
        }
        if pt.queue_depth == 0 {
            return fail(
                &format!("storage.read_curve[{i}].queue_depth"),
                "must be at least 1",
            );
        }
        positive(&format!("storage.read_curve[{i}].gbps"), pt.gbps)?;
        if !seen.insert((pt.block_bytes, pt.queue_depth)) {
            return fail(
                &format!("storage.read_curve[{i}]"),
                format!(
                    "duplicate point block_bytes = {}, queue_depth = {}",
                    pt.block_bytes, pt.queue_depth
                ),
            );
        }
    }
    let blocks: BTreeSet<u64> = s.read_curve.iter().map(|p| p.block_bytes).collect();
    let depths: BTreeSet<u32> = s.read_curve.iter().map(|p| p.queue_depth).collect();
    for b in &blocks {
        for d in &depths {
            if !seen.contains(&(*b, *d)) {
                return fail(
                    "storage.read_curve",
                    format!(
                        "no point for block_bytes = {b}, queue_depth = {d}; the curve must be a full grid \
                         (every block size measured at every queue depth)"
                    ),
                );
            }
        }
    }
    Ok(())
}

fn positive(key: &str, v: f64) -> Check {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        fail(key, format!("must be a positive finite number (got {v})"))
    }
}

fn positive_bytes(key: &str, v: u64) -> Check {
    if v == 0 {
        fail(key, "must be positive")
    } else if v > i64::MAX as u64 {
        // TOML integers are i64: a profile read from JSON (a plan's) could hold more.
        fail(key, format!("{v} is more than a profile holds (2^63 - 1)"))
    } else {
        Ok(())
    }
}

fn fail(key: &str, message: impl Into<String>) -> Check {
    Err((key.to_string(), message.into()))
}
