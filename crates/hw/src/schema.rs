//! The hardware profile's data types (TOML schema version 1) and their loading and writing.

use super::error::HwError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The schema version this build reads and writes.
pub const PROFILE_VERSION: u32 = 1;

/// A machine: what the placement solver and the simulator know about where bytes can live and how
/// fast they move. See the [module docs](super) for units and the TOML layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HwProfile {
    /// Schema version; must be [`PROFILE_VERSION`].
    pub version: u32,
    /// Free-form description of the machine.
    pub name: String,
    /// Absent on a machine with no usable GPU backend (CPU only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuProfile>,
    /// Host↔GPU copy link. Required for a discrete GPU; absent for unified memory and CPU-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_link: Option<HostLink>,
    pub ram: RamProfile,
    pub storage: StorageProfile,
    pub cpu: CpuProfile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuProfile {
    pub name: String,
    /// Physical device memory (for unified memory: the shared pool, i.e. RAM).
    pub memory_bytes: u64,
    /// What one process may keep resident on the GPU (CUDA: free after context creation; Metal:
    /// `recommendedMaxWorkingSetSize`).
    pub working_set_bytes: u64,
    /// Device memory bandwidth, GB/s.
    pub bandwidth_gbps: f64,
    /// Dense FP16 matrix throughput (tensor cores where the GPU has them), TFLOP/s.
    pub fp16_tflops: f64,
    /// FP32 vector throughput, TFLOP/s.
    pub fp32_tflops: f64,
    /// GPU and CPU share one memory pool (Apple silicon, integrated GPUs).
    pub unified_memory: bool,
    /// GPU memory the runtime's compute buffers (activations, scratch) take, measured on this
    /// machine; placement reserves it instead of its built-in estimate. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_headroom_bytes: Option<u64>,
    /// Weight bytes per second a batch-1 decode step streams through the GPU's kernels, GB/s:
    /// what llama.cpp achieves, below the spec `bandwidth_gbps`. Optional; the spec when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_gbps: Option<f64>,
    /// Fixed seconds each weight tensor of a forward pass costs on the GPU beyond moving its
    /// bytes (its kernel launch and the small ops around it: a matmul, a norm, a bias add).
    /// Per tensor rather than per layer because layers differ: a DeepSeek-2 MoE layer computes
    /// with about twice the tensors of a llama layer. Optional; 0 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_overhead_s: Option<f64>,
    /// The same fixed seconds per weight tensor in a prompt batch, which llama.cpp runs
    /// without the CUDA graph that replays a decode step's launches (each op is launched on
    /// its own) and with batch kernels of their own. Optional; `tensor_overhead_s` when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_tensor_overhead_s: Option<f64>,
    /// Fixed seconds a forward pass pays for each layer some of whose weights the CPU computes
    /// while the GPU runs the rest (experts or FFNs kept in RAM): the graph leaves the GPU and
    /// comes back (a synchronisation and two activation copies) and the CPU's ops have fixed
    /// costs of their own. Optional; 0 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_layer_overhead_s: Option<f64>,
    /// FLOP/s llama.cpp's matmuls over quantized weights achieve on a prompt batch, TFLOP/s:
    /// what prefill is bound by, below the `fp16_tflops` peak. Optional; `fp16_tflops` when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matmul_tflops: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostLink {
    /// Host→device copy bandwidth from pinned host memory, GB/s.
    pub h2d_gbps: f64,
    /// Device→host copy bandwidth into pinned host memory, GB/s.
    pub d2h_gbps: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RamProfile {
    pub bytes: u64,
    /// Memory bandwidth available to the CPU, GB/s.
    pub bandwidth_gbps: f64,
    /// RAM the OS and other programs keep; placement never plans to use it.
    pub os_reserve_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageProfile {
    /// Large sequential read bandwidth, GB/s.
    pub seq_read_gbps: f64,
    /// Mean (or median) time of one 4 KiB random read with one request in flight, seconds.
    pub read_4k_qd1_latency_s: f64,
    /// Rate at which one reader thread copies a finished read from its aligned bounce buffer
    /// into streamed memory given back and taken again (recycled pages on Linux, released ones
    /// with their page faults elsewhere), GB/s: what a streamed byte costs after the disk
    /// delivered it. Optional; absent in profiles whose read curve includes the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_gbps: Option<f64>,
    /// Random-read bandwidth by request size and queue depth; must be a full grid (every block size
    /// at every queue depth). Looked up with [`StorageProfile::read_gbps`]. With `copy_gbps` the
    /// curve is the reads alone; without it, the reads with their copies.
    pub read_curve: Vec<ReadPoint>,
}

/// One point of the storage read curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadPoint {
    /// Bytes per read request.
    pub block_bytes: u64,
    /// Requests in flight at once.
    pub queue_depth: u32,
    /// Achieved read bandwidth, GB/s.
    pub gbps: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuProfile {
    /// CPUs usable by one process (logical CPUs; P+E cores on Apple silicon).
    pub cores: u32,
    /// FP32 FMA throughput over all cores, GFLOP/s.
    pub fp32_gflops: f64,
    /// Weight bytes per second a batch-1 decode step streams through the CPU's kernels, GB/s,
    /// with llama.cpp's default weight repacking (a run that streams nothing). Optional;
    /// `ram.bandwidth_gbps` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_gbps: Option<f64>,
    /// The same for a run that streams weights, which repacks nothing (a streamed tensor
    /// cannot be repacked, so no tensor is: every CPU tensor runs llama.cpp's plain kernels).
    /// Optional; `decode_gbps` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming_decode_gbps: Option<f64>,
    /// Fixed seconds each weight tensor of a forward pass costs on the CPU beyond moving its
    /// bytes (small ops, thread synchronisation). Optional; 0 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_overhead_s: Option<f64>,
    /// The same fixed seconds per weight tensor in a prompt batch (its small ops over every
    /// token of the batch, the activations quantized for each matmul). Optional;
    /// `tensor_overhead_s` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_tensor_overhead_s: Option<f64>,
    /// FLOP/s llama.cpp's matmuls over quantized weights achieve on a prompt batch, GFLOP/s,
    /// with its default repacking: what prefill is bound by, below `fp32_gflops` (a peak).
    /// Optional; `fp32_gflops` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matmul_gflops: Option<f64>,
    /// The same with the plain kernels of a run that streams weights. Optional;
    /// `matmul_gflops` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming_matmul_gflops: Option<f64>,
}

impl GpuProfile {
    /// Decode bandwidth in bytes per second: [`GpuProfile::decode_gbps`], else the spec.
    pub fn decode_bytes_per_s(&self) -> f64 {
        self.decode_gbps.unwrap_or(self.bandwidth_gbps) * 1e9
    }

    /// Matmul FLOP/s of a prompt batch: [`GpuProfile::matmul_tflops`], else the fp16 peak.
    pub fn matmul_flops_per_s(&self) -> f64 {
        self.matmul_tflops.unwrap_or(self.fp16_tflops) * 1e12
    }
}

/// A memory budget the profile cannot grant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    #[error("a budget of {budget} bytes is more than the profile's {have} bytes of {what}")]
    TooLarge {
        what: &'static str,
        budget: u64,
        have: u64,
    },
    #[error("the profile has no GPU, so a GPU budget does not apply")]
    NoGpu,
}

impl HwProfile {
    /// The profile with `ram_bytes` of RAM for a plan (after the OS reserve) and `gpu_bytes` of
    /// GPU working set, where given: the machine as a plan for a smaller one sees it (a budget
    /// larger than the machine is refused). The name says so.
    pub fn with_budget(
        &self,
        ram_bytes: Option<u64>,
        gpu_bytes: Option<u64>,
    ) -> Result<HwProfile, BudgetError> {
        let mut hw = self.clone();
        if let Some(b) = ram_bytes {
            let have = hw.ram.bytes.saturating_sub(hw.ram.os_reserve_bytes);
            if b > have {
                return Err(BudgetError::TooLarge {
                    what: "RAM (after the OS reserve)",
                    budget: b,
                    have,
                });
            }
            hw.ram.bytes = b + hw.ram.os_reserve_bytes;
            hw.name = format!("{} (RAM for the plan: {} bytes)", hw.name, b);
        }
        if let Some(b) = gpu_bytes {
            let gpu = hw.gpu.as_mut().ok_or(BudgetError::NoGpu)?;
            if b > gpu.working_set_bytes {
                return Err(BudgetError::TooLarge {
                    what: "GPU working set",
                    budget: b,
                    have: gpu.working_set_bytes,
                });
            }
            gpu.working_set_bytes = b;
            hw.name = format!("{} (GPU working set: {} bytes)", hw.name, b);
        }
        Ok(hw)
    }

    /// Decode bandwidth of the CPU in bytes per second: `cpu.decode_gbps`, else the RAM's.
    pub fn cpu_decode_bytes_per_s(&self) -> f64 {
        self.cpu.decode_gbps.unwrap_or(self.ram.bandwidth_gbps) * 1e9
    }

    /// Matmul FLOP/s of the CPU on a prompt batch, in a run that streams weights (plain
    /// kernels) or not (repacked): the measured rates, else the FMA peak.
    pub fn cpu_matmul_flops_per_s(&self, streams: bool) -> f64 {
        let repacked = self.cpu.matmul_gflops.unwrap_or(self.cpu.fp32_gflops);
        let rate = if streams {
            self.cpu.streaming_matmul_gflops.unwrap_or(repacked)
        } else {
            repacked
        };
        rate * 1e9
    }

    /// [`HwProfile::cpu_decode_bytes_per_s`] in a run that streams weights:
    /// `cpu.streaming_decode_gbps`, else the same as one that does not.
    pub fn cpu_streaming_decode_bytes_per_s(&self) -> f64 {
        self.cpu
            .streaming_decode_gbps
            .map_or_else(|| self.cpu_decode_bytes_per_s(), |g| g * 1e9)
    }
}

/// Just the version key, read before the full parse so an unsupported version is reported as
/// such rather than as a pile of unknown keys.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<toml::Value>,
}

impl HwProfile {
    /// Reads, parses and validates a profile file.
    pub fn load(path: impl AsRef<Path>) -> Result<HwProfile, HwError> {
        let path = path.as_ref();
        let text = infile::read_to_string(path).map_err(|source| HwError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        HwProfile::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates profile text; `origin` names the text in errors (a file path).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<HwProfile, HwError> {
        let probe: VersionProbe =
            toml::from_str(text).map_err(|e| syntax_error(origin, text, &e))?;
        match probe.version {
            None => {
                return Err(HwError::invalid(
                    origin,
                    "version",
                    format!("missing (add `version = {PROFILE_VERSION}` at the top)"),
                ))
            }
            Some(toml::Value::Integer(v)) if v == PROFILE_VERSION as i64 => {}
            Some(v) => {
                return Err(HwError::invalid(
                    origin,
                    "version",
                    format!(
                    "unsupported profile version {v}; this hypura reads version {PROFILE_VERSION}"
                ),
                ))
            }
        }
        let deserializer = toml::Deserializer::new(text);
        let profile: HwProfile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = key_path(&e.path().to_string(), e.inner().message());
            HwError::Parse {
                origin: origin.to_string(),
                location: e.inner().span().map(|s| line_col(text, s.start)),
                key,
                message: describe(text, e.inner().span().map(|s| s.start), e.inner().message()),
            }
        })?;
        super::validate::validate(&profile)
            .map_err(|(key, message)| HwError::invalid(origin, &key, message))?;
        Ok(profile)
    }

    /// The profile as TOML (no comments); loads back with [`HwProfile::load`] to an equal profile.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("HwProfile has only TOML-representable fields")
    }

    /// Checks every value's range and the sections' consistency; the first problem is returned as
    /// (key path, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        super::validate::validate(self)
    }
}

/// The full key path of a deserialization error: serde_path_to_error's path, plus the missing
/// field's name when the error is "missing field `x`" (the path then stops at the table).
fn key_path(path: &str, message: &str) -> String {
    let path = if path == "." { "" } else { path };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (missing, path.is_empty()) {
        (Some(field), true) => field.to_string(),
        (Some(field), false) => format!("{path}.{field}"),
        (None, _) => path.to_string(),
    }
}

fn syntax_error(origin: &str, text: &str, e: &toml::de::Error) -> HwError {
    HwError::Parse {
        origin: origin.to_string(),
        location: e.span().map(|s| line_col(text, s.start)),
        key: String::new(),
        message: describe(text, e.span().map(|s| s.start), e.message()),
    }
}

/// toml's message, or where it has none (a control character in a comment, for one) a
/// description of the character the error points at.
fn describe(text: &str, at: Option<usize>, message: &str) -> String {
    if !message.trim().is_empty() {
        return message.to_string();
    }
    match at
        .and_then(|i| text.get(i..))
        .and_then(|rest| rest.chars().next())
    {
        Some(c) if c.is_control() => format!(
            "unexpected control character {c:?}; TOML allows none but tab, not even in comments"
        ),
        Some(c) => format!("unexpected character {c:?}"),
        None => "unexpected end of the text".to_string(),
    }
}

/// 1-based (line, column) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_path_appends_missing_field() {
        assert_eq!(
            key_path("storage.read_curve[3]", "missing field `queue_depth`"),
            "storage.read_curve[3].queue_depth"
        );
        assert_eq!(key_path(".", "missing field `ram`"), "ram");
        assert_eq!(key_path("gpu.name", "invalid type"), "gpu.name");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a\nbc\n", 3), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
    }
}
