//! Measuring this machine into an [`HwProfile`]: storage (uncached reads on a scratch file), RAM
//! copy bandwidth, CPU FMA throughput and, where a CUDA driver is present, the GPU and its host
//! link. Each value gets a note saying how it was obtained.

mod cpu;
pub mod cuda;
mod disk;
pub mod interrupt;
mod ram;
mod system;
mod tempfile;

pub use disk::{file_read_rate, DiskSchedule};
pub use system::{memory, physical_cores, Memory};
pub use tempfile::free_bytes;

use model::units::human_bytes as fmt_bytes;

use crate::{
    CpuProfile, GpuProfile, HostLink, HwProfile, Notes, RamProfile, StorageProfile, PROFILE_VERSION,
};
use std::path::PathBuf;
use std::time::Duration;

/// What to measure and how long to spend.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Directory on the storage to measure; the scratch file goes there.
    pub disk_dir: PathBuf,
    pub disk: DiskSchedule,
    pub ram_copy_bytes: usize,
    pub ram_reps: usize,
    pub cpu_time: Duration,
    pub gpu_copy_bytes: usize,
    pub gpu_reps: usize,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

impl Schedule {
    /// The normal run: a 1 GiB scratch file, 4 KiB..16 MiB x QD 1..32; about 20-40 s on an SSD.
    pub fn full(disk_dir: PathBuf) -> Schedule {
        Schedule {
            disk_dir,
            disk: DiskSchedule {
                file_bytes: 1024 * MIB,
                blocks: vec![
                    4 * KIB,
                    16 * KIB,
                    64 * KIB,
                    256 * KIB,
                    MIB,
                    4 * MIB,
                    16 * MIB,
                ],
                depths: vec![1, 2, 4, 8, 16, 32],
                point_time: Duration::from_millis(250),
                seq_min_time: Duration::from_secs(1),
                latency_samples: 1000,
            },
            ram_copy_bytes: 256 * MIB as usize,
            ram_reps: 5,
            cpu_time: Duration::from_secs(1),
            gpu_copy_bytes: 256 * MIB as usize,
            gpu_reps: 10,
        }
    }

    /// A seconds-long run for tests and smoke checks: 64 MiB file, a 3x3 read grid.
    pub fn quick(disk_dir: PathBuf) -> Schedule {
        Schedule {
            disk_dir,
            disk: DiskSchedule {
                file_bytes: 64 * MIB,
                blocks: vec![4 * KIB, 64 * KIB, MIB],
                depths: vec![1, 4, 16],
                point_time: Duration::from_millis(20),
                seq_min_time: Duration::ZERO,
                latency_samples: 100,
            },
            ram_copy_bytes: 32 * MIB as usize,
            ram_reps: 3,
            cpu_time: Duration::from_millis(100),
            gpu_copy_bytes: 32 * MIB as usize,
            gpu_reps: 3,
        }
    }
}

/// Receives progress: a phase with a number of steps, then that many `step` calls.
pub trait Progress {
    fn phase(&mut self, label: &str, steps: u64);
    fn step(&mut self);
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {
    fn phase(&mut self, _label: &str, _steps: u64) {}
    fn step(&mut self) {}
}

/// Why a measurement failed. The messages say what is wrong with the directory or the machine;
/// the caller names the option that chose the directory.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("interrupted; the benchmark file was removed")]
    Interrupted,
    /// The storage directory cannot be looked at (missing, no permission).
    #[error("cannot use {}: {source}", dir.display())]
    DirUnusable {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a directory", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("{} contains a NUL byte", dir.display())]
    NulInPath { dir: PathBuf },
    /// Recent kernels accept O_DIRECT on tmpfs, which would "measure" RAM as storage.
    #[error("{} is on tmpfs/ramfs (RAM, not a storage device); nothing was measured", dir.display())]
    MemoryFs { dir: PathBuf },
    /// The filesystem refuses direct I/O; `tmpfs` when that is the reason.
    #[error(
        "the filesystem holding {}{} refuses O_DIRECT, so reads would come from the page cache \
         instead of the storage device; nothing was measured",
        dir.display(),
        if *tmpfs { " (it is tmpfs, i.e. RAM)" } else { "" }
    )]
    NoDirectIo { dir: PathBuf, tmpfs: bool },
    /// Uncached reads exist on Linux and macOS only.
    #[error("uncached reads are implemented for Linux (O_DIRECT) and macOS (F_NOCACHE) only; cannot measure {}", path.display())]
    Unsupported { path: PathBuf },
    /// The scratch file and the margin left free do not fit in the free space.
    #[error(
        "not enough free space in {}: the storage benchmark writes a {} temporary file and keeps \
         {} free besides, but only {} is available",
        dir.display(),
        fmt_bytes(*file_bytes),
        fmt_bytes(*margin_bytes),
        fmt_bytes(*free_bytes)
    )]
    NoSpace {
        dir: PathBuf,
        file_bytes: u64,
        margin_bytes: u64,
        free_bytes: u64,
    },
    #[error("cannot allocate {count} aligned read buffer(s) of {bytes} bytes")]
    NoBuffer { count: u32, bytes: u64 },
    #[error("a read thread panicked")]
    ThreadPanicked,
    #[error("benchmark file ended early at offset {offset}")]
    EndedEarly { offset: u64 },
    #[error("uncached read returned an unaligned length")]
    UnalignedRead,
    #[error("cannot read the installed RAM size from the OS")]
    NoRamSize,
    /// The measured values break a profile rule (`key` and `message` from the profile check).
    #[error("the measured profile is inconsistent at `{key}`: {message}")]
    Inconsistent { key: String, message: String },
    #[error("{op}: {source}")]
    Io { op: IoOp, source: std::io::Error },
    #[error("GPU measurement failed: {0}")]
    Gpu(#[source] cuda::CudaProbeError),
}

/// The file operation an [`MeasureError::Io`] failed in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IoOp {
    #[error("cannot create the benchmark file {}", .0.display())]
    Create(PathBuf),
    #[error("cannot open {} uncached", .0.display())]
    OpenUncached(PathBuf),
    #[error("writing the benchmark file")]
    Write,
    #[error("fsync of the benchmark file")]
    Fsync,
    #[error("reading the benchmark file")]
    Read,
    #[error("statvfs {}", .0.display())]
    Statvfs(PathBuf),
    #[error("mapping recycled pages")]
    Recycle,
}

impl MeasureError {
    pub(crate) fn io(op: IoOp, source: std::io::Error) -> MeasureError {
        MeasureError::Io { op, source }
    }
}

/// A measured profile with per-key notes and remarks for the user (e.g. why there is no GPU).
#[derive(Debug, Clone)]
pub struct Measurement {
    pub profile: HwProfile,
    pub notes: Notes,
    pub remarks: Vec<String>,
    /// Where the storage was measured.
    pub disk_dir: PathBuf,
    pub date: String,
}

/// Runs every measurement of `plan`. The scratch file is removed before this returns, whatever
/// happens; Ctrl-C removes it at once and makes this return [`MeasureError::Interrupted`].
pub fn measure_machine(
    plan: &Schedule,
    progress: &mut dyn Progress,
) -> Result<Measurement, MeasureError> {
    let _signals = interrupt::install();
    let date = system::today_utc();
    let mut notes = Notes::new();
    let mut remarks = Vec::new();
    let mut note = |key: &str, text: String| notes.insert(key.to_string(), text);
    let dir = plan.disk_dir.display().to_string();

    let mut disk_plan = plan.disk.clone();
    disk_plan.blocks.retain(|&b| b <= disk_plan.file_bytes);
    let disk = disk::measure(&plan.disk_dir, &disk_plan, progress)?;
    note(
        "storage.seq_read_gbps",
        format!(
            "measured: O_DIRECT reads of the whole {} file in {dir}, {} requests, {} in flight",
            fmt_bytes(disk_plan.file_bytes),
            fmt_bytes(disk::SEQ_BLOCK),
            disk::SEQ_DEPTH
        ),
    );
    note(
        "storage.read_4k_qd1_latency_s",
        format!(
            "measured: median of {} random 4 KiB O_DIRECT reads, one at a time, each copied into streamed memory as the runtime does (recycled pages on Linux, else released ones)",
            disk_plan.latency_samples
        ),
    );
    note(
        "storage.read_curve[].gbps",
        format!(
            "measured: random block-aligned O_DIRECT reads into a reused buffer (the copy out of it is copy_gbps), queue_depth threads for {} ms",
            disk_plan.point_time.as_millis()
        ),
    );
    note(
        "storage.copy_gbps",
        format!(
            "measured: one thread copying {} from a reused buffer into streamed memory given back and taken again before each copy ({}), as the runtime's readers do after each read, for {} ms",
            fmt_bytes(disk.copy_block),
            if crate::pages::PagePool::new().is_ok() {
                "recycled pages"
            } else {
                "pages released to the OS"
            },
            disk_plan.point_time.as_millis()
        ),
    );

    progress.phase("RAM copy bandwidth", 1);
    let threads = system::logical_cpus();
    let ram_gbps = ram::copy_gbps(plan.ram_copy_bytes, threads, plan.ram_reps)?;
    progress.step();
    note("ram.bandwidth_gbps", format!("measured: best of {} copies of {} on {threads} threads, read+write bytes (STREAM copy)", plan.ram_reps, fmt_bytes(plan.ram_copy_bytes as u64)));
    let mem = system::memory().ok_or(MeasureError::NoRamSize)?;
    let in_use = mem.total.saturating_sub(mem.available);
    let os_reserve = in_use.max(1 << 30).div_ceil(256 * MIB) * (256 * MIB);
    let os_reserve = os_reserve.min(mem.total / 2);
    note("ram.bytes", "from the OS (installed RAM)".to_string());
    note("ram.os_reserve_bytes", format!("measured: RAM in use at profiling time ({}), rounded up to 256 MiB, at least 1 GiB, at most half", fmt_bytes(in_use)));

    progress.phase("CPU FMA throughput", 1);
    let (gflops, kernel) = cpu::fma_gflops(threads, plan.cpu_time)?;
    progress.step();
    note(
        "cpu.cores",
        "from the OS: logical CPUs available to this process".to_string(),
    );
    note(
        "cpu.fp32_gflops",
        format!(
            "measured: f32 {kernel} loop on {threads} threads for {} ms",
            plan.cpu_time.as_millis()
        ),
    );

    progress.phase("GPU (CUDA driver)", 1);
    let (gpu, host_link) = match cuda::probe(plan.gpu_copy_bytes, plan.gpu_reps)? {
        Ok(g) => gpu_sections(&g, &mut notes, &mut remarks),
        Err(why) => {
            remarks.push(format!("no GPU backend found: {why}"));
            (None, None)
        }
    };
    progress.step();

    let cpu_name = system::cpu_model().unwrap_or_else(|| "unknown CPU".into());
    let name = match &gpu {
        Some(g) => format!(
            "{cpu_name} + {} (measured by hypura profile, {date})",
            g.name
        ),
        None => format!("{cpu_name} (measured by hypura profile, {date})"),
    };
    let profile = HwProfile {
        version: PROFILE_VERSION,
        name,
        gpu,
        host_link,
        ram: RamProfile {
            bytes: mem.total,
            bandwidth_gbps: ram_gbps,
            os_reserve_bytes: os_reserve,
        },
        storage: StorageProfile {
            seq_read_gbps: disk.seq_read_gbps,
            read_4k_qd1_latency_s: disk.latency_4k_qd1_s,
            read_curve: disk.curve,
            copy_gbps: Some(disk.copy_gbps),
        },
        cpu: CpuProfile {
            cores: threads as u32,
            fp32_gflops: gflops,
            decode_gbps: None,
            streaming_decode_gbps: None,
            tensor_overhead_s: None,
            batch_tensor_overhead_s: None,
            matmul_gflops: None,
            streaming_matmul_gflops: None,
        },
    };
    let profile = rounded(profile);
    if let Err((key, message)) = profile.validate() {
        return Err(MeasureError::Inconsistent { key, message });
    }
    Ok(Measurement {
        profile,
        notes,
        remarks,
        disk_dir: plan.disk_dir.clone(),
        date,
    })
}

fn gpu_sections(
    g: &cuda::CudaGpu,
    notes: &mut Notes,
    remarks: &mut Vec<String>,
) -> (Option<GpuProfile>, Option<HostLink>) {
    let mut note = |key: &str, text: String| notes.insert(key.to_string(), text);
    let (major, minor) = g.compute_capability;
    let clock_ghz = if g.clock_khz > 0 {
        g.clock_khz as f64 / 1e6
    } else {
        1.5
    };
    let clock_src = if g.clock_khz > 0 {
        format!("max SM clock {clock_ghz:.3} GHz")
    } else {
        "SM clock unreadable, 1.5 GHz assumed".into()
    };
    let lanes = cuda::fp32_lanes_per_sm(g.compute_capability);
    let fp32 =
        g.sm_count.max(1) as f64 * clock_ghz * 1e9 * 2.0 * lanes.unwrap_or(128) as f64 / 1e12;
    let tensor = cuda::fp16_tensor_flops_per_sm_clock(g.compute_capability);
    let fp16 = match tensor {
        Some(t) => g.sm_count.max(1) as f64 * clock_ghz * 1e9 * t as f64 / 1e12,
        None => 2.0 * fp32,
    };
    if g.device_count > 1 {
        remarks.push(format!(
            "{} CUDA devices found; profiled device 0",
            g.device_count
        ));
    }
    note(
        "gpu.name",
        "from the CUDA driver (cuDeviceGetName), device 0".into(),
    );
    note(
        "gpu.memory_bytes",
        "from the CUDA driver (cuDeviceTotalMem_v2)".into(),
    );
    note(
        "gpu.working_set_bytes",
        "measured: free device memory after creating a context (cuMemGetInfo_v2)".into(),
    );
    note(
        "gpu.bandwidth_gbps",
        format!(
            "measured: cuMemcpyDtoD of {}, read+write bytes",
            fmt_bytes(g.copy_bytes as u64)
        ),
    );
    note(
        "gpu.fp32_tflops",
        format!("estimate: {} SMs x {clock_src} x {} FP32 lanes/SM (compute capability {major}.{minor}) x 2", g.sm_count, lanes.map_or("128 (assumed)".to_string(), |l| l.to_string())),
    );
    note(
        "gpu.fp16_tflops",
        match tensor {
            Some(t) => format!("estimate: {} SMs x {clock_src} x {t} dense FP16 tensor FLOP/clock/SM (compute capability {major}.{minor})", g.sm_count),
            None => "estimate: 2 x fp32_tflops (tensor-core rate unknown for this compute capability)".into(),
        },
    );
    note(
        "gpu.unified_memory",
        "from the CUDA driver (CU_DEVICE_ATTRIBUTE_INTEGRATED)".into(),
    );
    let gpu = GpuProfile {
        name: g.name.clone(),
        memory_bytes: g.total_bytes,
        working_set_bytes: g.free_bytes.min(g.total_bytes),
        bandwidth_gbps: g.d2d_gbps,
        fp16_tflops: fp16,
        fp32_tflops: fp32,
        unified_memory: g.integrated,
        compute_headroom_bytes: None,
        decode_gbps: None,
        tensor_overhead_s: None,
        batch_tensor_overhead_s: None,
        host_layer_overhead_s: None,
        matmul_tflops: None,
    };
    if g.integrated {
        return (Some(gpu), None);
    }
    let copies = format!(
        "median of timed {} copies with pinned host memory (cuMemHostAlloc)",
        fmt_bytes(g.copy_bytes as u64)
    );
    note(
        "host_link.h2d_gbps",
        format!("measured: cuMemcpyHtoD_v2, {copies}"),
    );
    note(
        "host_link.d2h_gbps",
        format!("measured: cuMemcpyDtoH_v2, {copies}"),
    );
    (
        Some(gpu),
        Some(HostLink {
            h2d_gbps: g.h2d_gbps,
            d2h_gbps: g.d2h_gbps,
        }),
    )
}

/// Measured values keep 4 significant digits: more would be noise, and the TOML stays readable.
fn rounded(mut p: HwProfile) -> HwProfile {
    let r = |x: &mut f64| *x = round_sig(*x, 4);
    if let Some(g) = &mut p.gpu {
        [
            &mut g.bandwidth_gbps,
            &mut g.fp16_tflops,
            &mut g.fp32_tflops,
        ]
        .into_iter()
        .for_each(r);
    }
    if let Some(l) = &mut p.host_link {
        [&mut l.h2d_gbps, &mut l.d2h_gbps].into_iter().for_each(r);
    }
    [
        &mut p.ram.bandwidth_gbps,
        &mut p.storage.seq_read_gbps,
        &mut p.storage.read_4k_qd1_latency_s,
        &mut p.cpu.fp32_gflops,
    ]
    .into_iter()
    .for_each(r);
    p.storage
        .read_curve
        .iter_mut()
        .for_each(|pt| r(&mut pt.gbps));
    p.storage.copy_gbps.iter_mut().for_each(r);
    p
}

/// `x` rounded to `digits` significant decimal digits (positive finite x; others unchanged).
pub fn round_sig(x: f64, digits: i32) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.log10().floor() as i32);
    let y = (x * scale).round() / scale;
    // Re-parse the shortest decimal so 0.1 + noise prints as 0.1.
    format!(
        "{y:.*}",
        (digits - 1 - x.log10().floor() as i32).max(0) as usize
    )
    .parse()
    .unwrap_or(y)
}

#[cfg(test)]
mod tests {
    use super::round_sig;

    #[test]
    fn rounds_to_significant_digits() {
        assert_eq!(round_sig(0.3374774481944239, 4), 0.3375);
        assert_eq!(round_sig(66.53297493951342, 4), 66.53);
        assert_eq!(round_sig(0.000045928, 3), 0.0000459);
        assert_eq!(round_sig(1234567.0, 4), 1235000.0);
        assert_eq!(round_sig(0.0, 4), 0.0);
    }
}
