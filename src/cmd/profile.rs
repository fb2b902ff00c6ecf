//! `hypura profile`: measures this machine (storage, RAM, CPU, CUDA GPU) and writes a hardware
//! profile TOML, with a progress bar and a summary table.

use anyhow::{bail, Context};
use hw::measure::{self, MeasureError, Measurement, Progress, Schedule};
use hw::HwProfile;
use indicatif::{ProgressBar, ProgressStyle};
use model::units::human_bytes as fmt_bytes;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Directory on the drive to measure. A temporary file (1 GiB; 64 MiB with --quick) is
    /// written there and always removed.
    #[arg(long, value_name = "DIR", default_value = ".")]
    disk: PathBuf,
    /// Write the profile here (`-` for stdout) instead of keeping it as this machine's profile
    /// (in the user's cache directory), which commands use when --hw is not given.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Overwrite the -o file if it exists.
    #[arg(long)]
    force: bool,
    /// Seconds-long run with a small file and a 3x3 read grid (smoke tests).
    #[arg(long)]
    quick: bool,
    /// Skip timing decode steps of small synthetic models on llama.cpp (the achieved decode
    /// bandwidth and per-tensor overhead of the CPU and the GPU; the profile then has neither
    /// and the cost model uses the spec bandwidths with no overhead).
    #[arg(long)]
    no_decode: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let stdout = args.output.as_deref() == Some(std::path::Path::new("-"));
    if let Some(out) = args.output.as_ref().filter(|_| !stdout) {
        super::refuse_existing(out, args.force, "-o")?;
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                bail!(
                    "cannot write {}: directory {} does not exist",
                    out.display(),
                    parent.display()
                );
            }
        }
    }
    if args.output.is_none() {
        // No cache directory is an error before the measurement, not after it.
        crate::machine::cached_path()?;
    }
    let (m, toml) = measure(&args.disk, args.quick, !args.no_decode)?;
    let table = table(&m);
    match &args.output {
        _ if stdout => {
            eprint!("{table}");
            print!("{toml}");
        }
        Some(out) => {
            write_output(out, &toml, args.force)?;
            print!("{table}");
            println!("wrote {}", out.display());
        }
        None => {
            let path = crate::machine::store(&toml)?;
            print!("{table}");
            println!(
                "wrote {}: this machine's profile, used when a command is given no --hw",
                path.display()
            );
        }
    }
    Ok(())
}

/// Measures this machine (storage in `disk`; with `decode`, also the decode terms, whose
/// scratch models go there too) with a progress bar: the measurement and its profile TOML,
/// checked to load.
pub fn measure(
    disk: &std::path::Path,
    quick: bool,
    decode: bool,
) -> anyhow::Result<(Measurement, String)> {
    let plan = if quick {
        Schedule::quick(disk.to_path_buf())
    } else {
        Schedule::full(disk.to_path_buf())
    };
    let mut bar = Bar::new();
    let measured = measure::measure_machine(&plan, &mut bar);
    bar.0.finish_and_clear();
    let mut m = measured
        .map_err(disk_advice)
        .with_context(|| format!("profiling storage in {}", disk.display()))?;
    if decode {
        calibrate_decode(&mut m, disk, quick)?;
    }
    let header = format!(
        "Hardware profile measured by `hypura profile{}` on {} (storage: {}).\nUnits: bytes, GB/s = 1e9 B/s, seconds. Each value's comment says how it was obtained.",
        if quick { " --quick" } else { "" },
        m.date,
        m.disk_dir.display()
    );
    let toml = m.profile.to_toml_annotated(&header, &m.notes);
    // What we write must be what `HwProfile::load` accepts.
    HwProfile::from_toml_str(&toml, "the generated profile")
        .context("internal error: generated profile does not load")?;
    Ok((m, toml))
}

/// Times decode steps on the CPU and, where there is one, the GPU, and writes the fitted
/// terms (with how they were measured) into the measurement.
#[cfg(feature = "runtime")]
fn calibrate_decode(
    m: &mut Measurement,
    disk: &std::path::Path,
    quick: bool,
) -> anyhow::Result<()> {
    use experiments::calibrate::{self, Backend};
    let mut backends = vec![Backend::Cpu, Backend::CpuStreaming];
    if m.profile.gpu.is_some() {
        backends.push(Backend::Gpu);
    }
    for backend in backends {
        // The streaming-run kernels run the same graph as the repacked ones: the CPU's batch
        // overhead is measured once.
        let batch_overhead = match backend {
            Backend::CpuStreaming => m.profile.cpu.batch_tensor_overhead_s,
            Backend::Cpu | Backend::Gpu => None,
        };
        let bar = ProgressBar::new_spinner();
        bar.set_message(format!("decode calibration ({})", backend.name()));
        let fit = calibrate::measure(
            &m.profile,
            backend,
            disk,
            0,
            quick,
            batch_overhead,
            &mut |line| bar.set_message(format!("decode calibration ({}): {line}", backend.name())),
        );
        bar.finish_and_clear();
        let fit = fit.map_err(|e| {
            let advice = match e {
                calibrate::CalibrateError::NoFit { .. } => {
                    " (was the machine busy? re-run, or leave the decode terms out with --no-decode)"
                }
                _ => "",
            };
            anyhow::Error::new(e).context(format!("calibrating {} decode{advice}", backend.name()))
        })?;
        let gbps = Some(measure::round_sig(fit.decode_gbps, 3));
        let overhead = Some(measure::round_sig(fit.tensor_overhead_s, 3));
        let matmul = fit.matmul_gflops.map(|r| measure::round_sig(r, 3));
        let batch = fit
            .batch_tensor_overhead_s
            .map(|s| measure::round_sig(s, 3));
        let (decode_keys, matmul_keys): (&[&str], &[&str]) = match backend {
            Backend::Cpu => {
                m.profile.cpu.decode_gbps = gbps;
                m.profile.cpu.tensor_overhead_s = overhead;
                m.profile.cpu.matmul_gflops = matmul;
                m.profile.cpu.batch_tensor_overhead_s = batch;
                (
                    &["cpu.decode_gbps", "cpu.tensor_overhead_s"],
                    &["cpu.matmul_gflops", "cpu.batch_tensor_overhead_s"],
                )
            }
            Backend::CpuStreaming => {
                m.profile.cpu.streaming_decode_gbps = gbps;
                m.profile.cpu.streaming_matmul_gflops = matmul;
                (
                    &["cpu.streaming_decode_gbps"],
                    &["cpu.streaming_matmul_gflops"],
                )
            }
            Backend::Gpu => {
                if let Some(g) = m.profile.gpu.as_mut() {
                    g.decode_gbps = gbps;
                    g.tensor_overhead_s = overhead;
                    g.matmul_tflops = fit.matmul_gflops.map(|r| measure::round_sig(r / 1e3, 3));
                    g.batch_tensor_overhead_s = batch;
                }
                (
                    &["gpu.decode_gbps", "gpu.tensor_overhead_s"],
                    &["gpu.matmul_tflops", "gpu.batch_tensor_overhead_s"],
                )
            }
        };
        let note = format!("measured: {}", fit.describe());
        for key in decode_keys {
            m.notes.insert(key.to_string(), note.clone());
        }
        if matmul.is_some() {
            let note = format!("measured: {}", fit.describe_matmul());
            for key in matmul_keys {
                m.notes.insert(key.to_string(), note.clone());
            }
        }
    }
    if m.profile.gpu.is_some() {
        // Rests on the terms just measured: it is what they leave unexplained.
        let bar = ProgressBar::new_spinner();
        bar.set_message("decode calibration (CPU weights in a GPU graph)");
        let fit = calibrate::measure_host_layers(&m.profile, disk, 0, quick, &mut |line| {
            bar.set_message(format!(
                "decode calibration (CPU weights in a GPU graph): {line}"
            ))
        });
        bar.finish_and_clear();
        let fit = fit.context("calibrating the cost of CPU weights in a GPU graph")?;
        m.notes.insert(
            "gpu.host_layer_overhead_s".to_string(),
            format!("measured: {}", fit.describe()),
        );
        if let Some(g) = m.profile.gpu.as_mut() {
            g.host_layer_overhead_s = Some(measure::round_sig(fit.host_layer_overhead_s, 3));
        }
    }
    Ok(())
}

/// Without llama.cpp there is nothing to time decode steps on.
#[cfg(not(feature = "runtime"))]
fn calibrate_decode(
    m: &mut Measurement,
    _disk: &std::path::Path,
    _quick: bool,
) -> anyhow::Result<()> {
    m.remarks.push(
        "decode terms not measured: this build has no llama.cpp runtime (the cost model uses \
         spec bandwidths)"
            .to_string(),
    );
    Ok(())
}

/// A measurement error in the words of this command: the library says what is wrong with the
/// directory, this adds the option that chose it.
fn disk_advice(e: MeasureError) -> anyhow::Error {
    const POINT: &str = "Point --disk at a directory on the drive you want profiled (e.g. your \
                         home or model directory)";
    let msg = match &e {
        MeasureError::DirUnusable { dir, source } => {
            format!("cannot use --disk {}: {source}", dir.display())
        }
        MeasureError::NotADirectory { dir } => format!("--disk {} is not a directory", dir.display()),
        MeasureError::NulInPath { dir } => format!("--disk {} contains a NUL byte", dir.display()),
        MeasureError::MemoryFs { .. } | MeasureError::NoDirectIo { .. } => format!("{e}. {POINT}"),
        MeasureError::NoSpace { .. } => format!(
            "{e}; free some space, point --disk at another filesystem, or use --quick (smaller file)"
        ),
        _ => return e.into(),
    };
    anyhow::Error::msg(msg)
}

fn write_output(out: &std::path::Path, text: &str, force: bool) -> anyhow::Result<()> {
    super::refuse_existing(out, force, "-o")?;
    Ok(outfile::write_bytes(out, force, text.as_bytes())?)
}

/// The results as aligned text.
fn table(m: &Measurement) -> String {
    let p = &m.profile;
    let mut t = String::new();
    let _ = writeln!(t, "{}", p.name);
    let _ = writeln!(t, "  storage ({})", m.disk_dir.display());
    let _ = writeln!(
        t,
        "    sequential read        {:>10.2} GB/s",
        p.storage.seq_read_gbps
    );
    let _ = writeln!(
        t,
        "    4 KiB QD1 latency      {:>10.1} µs",
        p.storage.read_4k_qd1_latency_s * 1e6
    );
    if let Some(c) = p.storage.copy_gbps {
        let _ = writeln!(
            t,
            "    copy after each read   {c:>10.2} GB/s per reader thread"
        );
    }
    let mut blocks: Vec<u64> = p.storage.read_curve.iter().map(|r| r.block_bytes).collect();
    let mut depths: Vec<u32> = p.storage.read_curve.iter().map(|r| r.queue_depth).collect();
    blocks.sort_unstable();
    blocks.dedup();
    depths.sort_unstable();
    depths.dedup();
    let _ = writeln!(t, "    random read (GB/s by block size and queue depth)");
    let mut grid = crate::table::Table::new(
        std::iter::once("block".to_string()).chain(depths.iter().map(|d| format!("QD{d}"))),
    );
    for b in &blocks {
        grid.row(
            std::iter::once(fmt_bytes(*b).replace(".00 ", " ")).chain(
                depths
                    .iter()
                    .map(|d| format!("{:.3}", p.storage.read_gbps(*b, *d))),
            ),
        );
    }
    for line in grid.render().lines() {
        let _ = writeln!(t, "      {line}");
    }
    let _ = writeln!(t, "  RAM");
    let _ = writeln!(t, "    installed              {}", size_cell(p.ram.bytes));
    let _ = writeln!(
        t,
        "    copy bandwidth         {:>10.1} GB/s",
        p.ram.bandwidth_gbps
    );
    let _ = writeln!(
        t,
        "    OS reserve             {}",
        size_cell(p.ram.os_reserve_bytes)
    );
    let _ = writeln!(t, "  CPU");
    let _ = writeln!(t, "    logical CPUs           {:>10}", p.cpu.cores);
    let _ = writeln!(
        t,
        "    fp32 FMA               {:>10.1} GFLOP/s",
        p.cpu.fp32_gflops
    );
    decode_lines(&mut t, p.cpu.decode_gbps, p.cpu.tensor_overhead_s);
    if let Some(g) = p.cpu.streaming_decode_gbps {
        let _ = writeln!(t, "    decode (streaming run) {g:>10.1} GB/s");
    }
    if let Some(g) = p.cpu.matmul_gflops {
        let _ = writeln!(t, "    prompt matmuls         {g:>10.1} GFLOP/s");
    }
    if let Some(g) = p.cpu.streaming_matmul_gflops {
        let _ = writeln!(t, "    matmuls (streaming)    {g:>10.1} GFLOP/s");
    }
    batch_line(&mut t, p.cpu.batch_tensor_overhead_s);
    let _ = writeln!(t, "  GPU");
    if let Some(g) = &p.gpu {
        let _ = writeln!(t, "    name                   {}", g.name);
        let _ = writeln!(
            t,
            "    memory                 {}",
            size_cell(g.memory_bytes)
        );
        let _ = writeln!(
            t,
            "    usable working set     {}",
            size_cell(g.working_set_bytes)
        );
        let _ = writeln!(
            t,
            "    device copy bandwidth  {:>10.1} GB/s",
            g.bandwidth_gbps
        );
        let _ = writeln!(
            t,
            "    fp32 (estimate)        {:>10.1} TFLOP/s",
            g.fp32_tflops
        );
        let _ = writeln!(
            t,
            "    fp16 dense (estimate)  {:>10.1} TFLOP/s",
            g.fp16_tflops
        );
        decode_lines(&mut t, g.decode_gbps, g.tensor_overhead_s);
        if let Some(r) = g.matmul_tflops {
            let _ = writeln!(t, "    prompt matmuls         {r:>10.1} TFLOP/s");
        }
        batch_line(&mut t, g.batch_tensor_overhead_s);
        if let Some(o) = g.host_layer_overhead_s {
            let _ = writeln!(t, "    per layer CPU weights  {:>10.2} µs", o * 1e6);
        }
        if let Some(l) = &p.host_link {
            let _ = writeln!(t, "    host->device (pinned)  {:>10.1} GB/s", l.h2d_gbps);
            let _ = writeln!(t, "    device->host (pinned)  {:>10.1} GB/s", l.d2h_gbps);
        }
    }
    for r in &m.remarks {
        let _ = writeln!(t, "    {r}");
    }
    t
}

/// A size as the table's other values: the number right-aligned in 10 columns, then the unit.
fn size_cell(bytes: u64) -> String {
    let s = fmt_bytes(bytes);
    let (number, unit) = s.split_once(' ').unwrap_or((&s, ""));
    format!("{number:>10} {unit}")
}

/// The measured decode terms of one backend, when there are any.
fn decode_lines(t: &mut String, gbps: Option<f64>, overhead_s: Option<f64>) {
    if let Some(g) = gbps {
        let _ = writeln!(t, "    decode (achieved)      {g:>10.1} GB/s");
    }
    if let Some(o) = overhead_s {
        let _ = writeln!(t, "    per-tensor overhead    {:>10.2} µs", o * 1e6);
    }
}

/// The measured per-tensor overhead of a prompt batch, when there is one.
fn batch_line(t: &mut String, overhead_s: Option<f64>) {
    if let Some(o) = overhead_s {
        let _ = writeln!(t, "    per tensor in a batch  {:>10.2} µs", o * 1e6);
    }
}

/// indicatif progress bar on stderr (hidden when stderr is not a terminal).
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Bar {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg:<28} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Bar(bar)
    }
}

impl Progress for Bar {
    fn phase(&mut self, label: &str, steps: u64) {
        self.0.set_message(label.to_string());
        self.0.set_length(steps);
        self.0.set_position(0);
    }

    fn step(&mut self) {
        self.0.inc(1);
    }
}
