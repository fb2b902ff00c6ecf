//! Decode calibration: the terms of a backend's roofline that a spec sheet does not give,
//! measured on this machine — the weight bytes per second its batch-1 kernels achieve
//! (`decode_gbps`), the fixed time each weight tensor costs beyond moving its bytes
//! (`tensor_overhead_s`), the FLOP/s its matmuls reach on a prompt batch (`matmul_gflops`,
//! [`PREFILL`] tokens on the same models), the fixed time per tensor of a prompt batch
//! (`batch_tensor_overhead_s`, from batches of [`SMALL_PREFILL`] tokens), and on a GPU the
//! fixed cost of a layer whose weights the CPU computes ([`measure_host_layers`]).
//!
//! Three synthetic dense llama models (random Q4_0 weights, [`synth`]) of about the same size
//! in 8, 32 and 128 layers are planned fully resident on the backend, loaded by the runtime
//! and decoded greedily; the median step time of each (the fastest of three interleaved rounds) is fitted by least squares (relative
//! errors) to `time = tensors x overhead + bytes / bandwidth`, where `tensors` and `bytes` are
//! what the cost model charges a token for that plan (9 tensors per llama layer, 3 globals).
//! The size is what the backend's spec bandwidth moves in about
//! 10 ms (at least 256 MB, beyond CPU caches; at most 2 GB).
//!
//! A prompt batch has fixed costs of its own: on a GPU, llama.cpp launches a batch's kernels
//! one by one (a decode step replays a CUDA graph), so a small batch of a many-tensor model
//! costs several decode steps. The batches are fitted to `time = tensors x batch overhead +
//! the cost model's roofline`: the large batches give the matmul rate (their FLOPs over their
//! time less the overhead), the small ones the overhead (their time beyond the roofline at
//! that rate, per tensor), alternated until both settle.
//!
//! Not here: timing the other parts of a profile (the `hw` crate measures storage, RAM, CPU
//! and the GPU's copies), and choosing what to do with the terms (the CLI writes them into
//! the profile; the cost model reads them from there).

use hw::HwProfile;
use place::{CostModel, SolveOptions};
use plan::Mode;
use std::path::{Path, PathBuf};
use synth::SynthSpec;

/// Which backend a calibration times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// llama.cpp's CPU backend, weights in RAM, repacked for its kernels as llama.cpp does by
    /// default (and hypura's runs that stream nothing).
    Cpu,
    /// The CPU backend with the plain kernels of a run that streams weights (no repacking).
    CpuStreaming,
    /// The profile's GPU, weights in its memory.
    Gpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::CpuStreaming => "cpu, streaming-run kernels",
            Backend::Gpu => "gpu",
        }
    }
}

/// A timed prompt batch of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Batch {
    pub tokens: u64,
    /// FLOPs the cost model charges it.
    pub flops: f64,
    /// Measured seconds, on a context already warm.
    pub seconds: f64,
}

/// One timed model.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `layers x width`, for reports.
    pub shape: String,
    /// Transformer layers.
    pub layers: u32,
    /// Weight tensors the cost model charges the fixed overhead for.
    pub tensors: u32,
    /// Bytes the cost model charges one decode step of the model's resident plan.
    pub bytes_per_token: f64,
    /// Median measured seconds per decode step.
    pub seconds_per_token: f64,
    /// Prompt batches of [`SMALL_PREFILL`] and [`PREFILL`] tokens.
    pub batches: [Batch; 2],
}

/// The fitted terms and what they were fitted to.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeFit {
    pub backend: Backend,
    pub decode_gbps: f64,
    pub tensor_overhead_s: f64,
    /// FLOP/s of the prompt batches' matmuls, GFLOP/s; None when the batches were not bound
    /// by compute (the fitted bandwidth explains half their time or more).
    pub matmul_gflops: Option<f64>,
    /// Fixed seconds per tensor of a prompt batch; None without a matmul rate.
    pub batch_tensor_overhead_s: Option<f64>,
    pub samples: Vec<Sample>,
}

impl DecodeFit {
    /// The fit's time for a sample.
    pub fn predicted_s(&self, s: &Sample) -> f64 {
        f64::from(s.tensors) * self.tensor_overhead_s + s.bytes_per_token / (self.decode_gbps * 1e9)
    }

    /// The largest relative difference between the fit and a measured sample.
    pub fn max_error(&self) -> f64 {
        self.samples
            .iter()
            .map(|s| (self.predicted_s(s) / s.seconds_per_token - 1.0).abs())
            .fold(0.0, f64::max)
    }

    /// One line for a profile's comment: how the terms were measured.
    pub fn describe(&self) -> String {
        let shapes: Vec<String> = self
            .samples
            .iter()
            .map(|s| {
                format!(
                    "{} {:.1} MB {:.2} ms",
                    s.shape,
                    s.bytes_per_token / 1e6,
                    s.seconds_per_token * 1e3
                )
            })
            .collect();
        format!(
            "greedy decode of synthetic Q4_0 llama models on the {} backend ({}), least-squares fit of time = tensors x overhead + bytes / bandwidth, max error {:.1}%",
            self.backend.name(),
            shapes.join("; "),
            self.max_error() * 100.0
        )
    }

    /// One line for a profile's comment: how the prompt terms were measured.
    pub fn describe_matmul(&self) -> String {
        let shapes: Vec<String> = self
            .samples
            .iter()
            .map(|s| {
                let [small, large] = s.batches;
                format!(
                    "{} {:.1} GFLOP {:.2} ms, {:.1} GFLOP {:.2} ms",
                    s.shape,
                    small.flops / 1e9,
                    small.seconds * 1e3,
                    large.flops / 1e9,
                    large.seconds * 1e3
                )
            })
            .collect();
        format!(
            "prompt batches of {SMALL_PREFILL} and {PREFILL} tokens of the same models on a warm context on the {} backend ({}): the {PREFILL}-token batches' FLOPs over their time less the per-tensor batch overhead, the {SMALL_PREFILL}-token batches' time beyond the roofline at that rate per tensor",
            self.backend.name(),
            shapes.join("; "),
        )
    }
}

/// Why a calibration failed.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("the profile has no GPU to calibrate")]
    NoGpu,
    #[error("cannot create a scratch directory in {dir}")]
    Scratch {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the synthetic model {shape}")]
    Synth {
        shape: String,
        #[source]
        source: Box<synth::SynthError>,
    },
    #[error("cannot read the synthetic model {shape}")]
    Inventory {
        shape: String,
        #[source]
        source: Box<model::InventoryError>,
    },
    #[error("cannot plan the synthetic model {shape}")]
    Solve {
        shape: String,
        #[source]
        source: Box<place::PlaceError>,
    },
    #[error(
        "the synthetic model {shape} does not fit the {backend} backend's memory ({mode:?} plan)"
    )]
    NotResident {
        shape: String,
        backend: &'static str,
        mode: Mode,
    },
    #[error("cannot run the synthetic model {shape}")]
    Run {
        shape: String,
        #[source]
        source: Box<runtime::Error>,
    },
    #[error("the decode times do not fit a positive bandwidth ({samples})")]
    NoFit { samples: String },
}

/// Decode steps timed per run, after [`WARMUP`] untimed ones.
const STEPS: usize = 24;
const WARMUP: usize = 2;
/// Rounds per model, interleaved across the models; a model's time is the fastest of its
/// round medians (other work on the machine only ever slows a round down).
const ROUNDS: usize = 3;
/// Rounds after which a calibration whose times still fit no positive bandwidth gives up.
const MAX_ROUNDS: usize = 6;
/// Seconds a model's weights take at the spec bandwidth, within [`MIN_BYTES`, `MAX_BYTES`].
const WEIGHT_SECONDS: f64 = 0.010;
const MIN_BYTES: f64 = 256e6;
const MAX_BYTES: f64 = 2e9;
/// Bytes of each model in a quick calibration (a smoke test: small enough for caches to flatter
/// the bandwidth).
const QUICK_BYTES: f64 = 48e6;

/// Measures `backend`'s decode terms on this machine, writing its scratch models in `dir`
/// (removed afterwards). `progress` gets a line per finished run. When the times fit no
/// positive bandwidth (a busy machine slowed one model's rounds), more rounds are run, up to
/// [`MAX_ROUNDS`].
/// `batch_overhead`: the per-tensor overhead of a prompt batch when already known (the CPU's
/// streaming-run kernels run the same graph as its repacked ones), so that only the matmul
/// rate is fitted.
pub fn measure(
    hw: &HwProfile,
    backend: Backend,
    dir: &Path,
    threads: u32,
    quick: bool,
    batch_overhead: Option<f64>,
    progress: &mut dyn FnMut(&str),
) -> Result<DecodeFit, CalibrateError> {
    let hw = backend_profile(hw, backend)?;
    let size = if quick {
        QUICK_BYTES
    } else {
        model_bytes(&hw, backend)
    };
    let scratch = scratch_dir(dir)?;
    let models = shapes(size)
        .into_iter()
        .map(|spec| prepare(&hw, backend, scratch.path(), spec))
        .collect::<Result<Vec<_>, _>>()?;
    let blank: Vec<Sample> = models
        .iter()
        .map(|m| Sample {
            shape: m.shape.clone(),
            layers: m.layers,
            tensors: m.tensors,
            bytes_per_token: m.bytes_per_token,
            seconds_per_token: f64::INFINITY,
            batches: [SMALL_PREFILL, PREFILL].map(|tokens| Batch {
                tokens,
                flops: m.batch_flops[usize::from(tokens == PREFILL)],
                seconds: f64::INFINITY,
            }),
        })
        .collect();
    fit_rounds(
        backend,
        blank,
        batch_overhead,
        |i| {
            let m = &models[i];
            let (steps, batches) = time_model(&m.model, &m.shape, threads)?;
            Ok((median(&steps), batches))
        },
        progress,
    )
}

/// The fixed cost of a layer some of whose weights the CPU computes while the GPU runs the
/// graph (`gpu.host_layer_overhead_s`): what one model's decode step gains when every layer's
/// FFN moves from the GPU to RAM, beyond what the cost model charges for moving those bytes
/// through the CPU instead of the GPU, per layer.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLayerFit {
    pub shape: String,
    pub layers: u32,
    /// Measured step: fully resident, and with the FFNs in RAM (fastest round's median).
    pub resident_s: f64,
    pub host_s: f64,
    /// The cost model's step for the two plans, without the fixed cost.
    pub predicted_resident_s: f64,
    pub predicted_host_s: f64,
    pub host_layer_overhead_s: f64,
}

impl HostLayerFit {
    /// Fits the term: the measured difference less the predicted one, over the layers (at
    /// least 0).
    fn new(shape: String, layers: u32, measured: [f64; 2], predicted: [f64; 2]) -> HostLayerFit {
        let extra = (measured[1] - measured[0]) - (predicted[1] - predicted[0]);
        HostLayerFit {
            shape,
            layers,
            resident_s: measured[0],
            host_s: measured[1],
            predicted_resident_s: predicted[0],
            predicted_host_s: predicted[1],
            host_layer_overhead_s: (extra / f64::from(layers)).max(0.0),
        }
    }

    /// One line for a profile's comment: how the term was measured.
    pub fn describe(&self) -> String {
        format!(
            "greedy decode of a synthetic Q4_0 llama model ({}) fully on the GPU ({:.2} ms per token) and with the FFN of each of its {} layers in RAM ({:.2} ms); the cost model without this term predicts {:.2} and {:.2} ms; the difference left, per layer",
            self.shape,
            self.resident_s * 1e3,
            self.layers,
            self.host_s * 1e3,
            self.predicted_resident_s * 1e3,
            self.predicted_host_s * 1e3
        )
    }
}

/// Measures `gpu.host_layer_overhead_s` on this machine. `hw` must carry the decode terms
/// already measured (GPU and CPU): the prediction subtracted rests on them.
pub fn measure_host_layers(
    hw: &HwProfile,
    dir: &Path,
    threads: u32,
    quick: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<HostLayerFit, CalibrateError> {
    let hw = backend_profile(hw, Backend::Gpu)?;
    let size = if quick {
        QUICK_BYTES
    } else {
        model_bytes(&hw, Backend::Gpu)
    };
    let scratch = scratch_dir(dir)?;
    let model = Synthetic::write(scratch.path(), shapes(size)[1])?;
    let (solved, mean) = model.solve_resident(&hw, Backend::Gpu)?;
    // Every FFN tensor to RAM: the CPU computes them (on the kernels a resident run uses).
    let mut plan = solved.plan.clone();
    let mut moved = mean.assignment.clone();
    for (i, u) in mean.units.units.iter().enumerate() {
        if u.group == model::Group::DenseFfn {
            moved.units[i] = place::Tier::Ram;
            for t in &u.tensors {
                plan.tensors.insert(t.clone(), plan::TensorPlace::Ram);
            }
        }
    }
    let cost = CostModel {
        host_layer_overhead_s: 0.0,
        ..mean.cost.clone()
    };
    let predicted = [
        cost.predict(&mean.units, &mean.assignment).token_s,
        cost.predict(&mean.units, &moved).token_s,
    ];
    let models = [model.load(&solved.plan, None)?, model.load(&plan, None)?];
    let mut measured = [f64::INFINITY; 2];
    for round in 1..=ROUNDS {
        for (i, (m, name)) in models.iter().zip(["resident", "FFNs in RAM"]).enumerate() {
            let step = median(&time_model(m, &model.shape, threads)?.0);
            progress(&format!(
                "{} {name} round {round}: {:.2} ms per token",
                model.shape,
                step * 1e3
            ));
            measured[i] = measured[i].min(step);
        }
    }
    Ok(HostLayerFit::new(
        model.shape.clone(),
        model.layers,
        measured,
        predicted,
    ))
}

fn scratch_dir(dir: &Path) -> Result<tempfile::TempDir, CalibrateError> {
    tempfile::Builder::new()
        .prefix(".hypura-calibrate-")
        .tempdir_in(dir)
        .map_err(|source| CalibrateError::Scratch {
            dir: dir.to_path_buf(),
            source,
        })
}

/// Times each model once per round (`time(i)` is model `i`'s median step and its two prompt
/// batches), keeps each model's fastest round and fits from [`ROUNDS`] rounds on, until a fit
/// succeeds or [`MAX_ROUNDS`] have run.
fn fit_rounds(
    backend: Backend,
    mut samples: Vec<Sample>,
    batch_overhead: Option<f64>,
    mut time: impl FnMut(usize) -> Result<(f64, [f64; 2]), CalibrateError>,
    progress: &mut dyn FnMut(&str),
) -> Result<DecodeFit, CalibrateError> {
    let mut round = 0;
    loop {
        round += 1;
        for (i, s) in samples.iter_mut().enumerate() {
            let (step, batches) = time(i)?;
            progress(&format!(
                "{} round {round}: {:.2} ms per token",
                s.shape,
                step * 1e3
            ));
            s.seconds_per_token = s.seconds_per_token.min(step);
            for (b, t) in s.batches.iter_mut().zip(batches) {
                b.seconds = b.seconds.min(t);
            }
        }
        if round < ROUNDS {
            continue;
        }
        match fit(backend, samples.clone(), batch_overhead) {
            Err(CalibrateError::NoFit { .. }) if round < MAX_ROUNDS => {
                progress("the times fit no positive bandwidth yet; measuring another round")
            }
            done => return done,
        }
    }
}

/// The profile the backend's plans are solved on: without the GPU for the CPU backend.
fn backend_profile(hw: &HwProfile, backend: Backend) -> Result<HwProfile, CalibrateError> {
    let mut hw = hw.clone();
    match backend {
        Backend::Cpu | Backend::CpuStreaming => {
            hw.gpu = None;
            hw.host_link = None;
        }
        Backend::Gpu if hw.gpu.is_none() => return Err(CalibrateError::NoGpu),
        Backend::Gpu => {}
    }
    Ok(hw)
}

/// Llama shapes: (layers, width), all about the same bytes (well beyond any CPU cache, so
/// every model streams its weights from memory alike) in 8, 32 and 128 layers: the overhead
/// shows in how time grows with depth, the bandwidth in the time left. Q4_0 weights of a llama
/// layer with `ff = 2.75 x width` are about `6.9 x width^2` bytes.
fn shapes(bytes: f64) -> Vec<(u32, u64)> {
    [8, 32, 128]
        .into_iter()
        .map(|layers| {
            let w = (bytes / layers as f64 / 6.9).sqrt();
            (layers, ((w / 128.0).round() as u64).max(1) * 128)
        })
        .collect()
}

/// Bytes of each model: what the backend's spec bandwidth moves in [`WEIGHT_SECONDS`], within
/// [`MIN_BYTES`]..[`MAX_BYTES`] and a quarter of its memory.
fn model_bytes(hw: &HwProfile, backend: Backend) -> f64 {
    let (spec_gbps, memory) = match (backend, &hw.gpu) {
        (Backend::Gpu, Some(g)) => (g.bandwidth_gbps, g.working_set_bytes),
        _ => (
            hw.ram.bandwidth_gbps,
            hw.ram.bytes.saturating_sub(hw.ram.os_reserve_bytes),
        ),
    };
    (spec_gbps * 1e9 * WEIGHT_SECONDS)
        .clamp(MIN_BYTES, MAX_BYTES)
        .min(memory as f64 / 4.0)
}

/// A synthetic model loaded on its backend (its file already deleted: a resident model
/// does not read it again, and an interrupted calibration leaves nothing behind).
struct Prepared {
    shape: String,
    layers: u32,
    tensors: u32,
    model: runtime::PlannedModel,
    bytes_per_token: f64,
    /// Of a [`SMALL_PREFILL`]- and a [`PREFILL`]-token batch.
    batch_flops: [f64; 2],
}

fn prepare(
    hw: &HwProfile,
    backend: Backend,
    dir: &Path,
    shape: (u32, u64),
) -> Result<Prepared, CalibrateError> {
    let model = Synthetic::write(dir, shape)?;
    let (solved, mean) = model.solve_resident(hw, backend)?;
    let repack = (backend == Backend::CpuStreaming).then_some(false);
    let loaded = model.load(&solved.plan, repack);
    Ok(Prepared {
        tensors: mean.cost.layer_tensors.iter().sum::<u32>() + mean.cost.global_tensors,
        bytes_per_token: charged_bytes(&mean),
        batch_flops: [SMALL_PREFILL, PREFILL].map(|n| charged_flops(&mean, n)),
        layers: model.layers,
        shape: model.shape.clone(),
        model: loaded?,
    })
}

/// A synthetic llama model written to disk, until loaded (its file is deleted then: a resident
/// model does not read it again, and an interrupted calibration leaves nothing behind).
struct Synthetic {
    shape: String,
    layers: u32,
    path: PathBuf,
    inventory: model::Inventory,
}

impl Synthetic {
    fn write(dir: &Path, (layers, width): (u32, u64)) -> Result<Synthetic, CalibrateError> {
        let shape = format!("{layers}x{width}");
        let spec = SynthSpec {
            arch: model::catalog::ArchSpec {
                arch: "llama".into(),
                n_layer: layers,
                n_embd: width,
                n_ff: (width * 11 / 4).div_ceil(128) * 128,
                n_head: width / 128,
                n_head_kv: width / 128,
                head_dim: 128,
                n_vocab: 512,
                n_ctx_train: 4096,
                rms_eps: 1e-5,
                rope_freq_base: 10_000.0,
                ..Default::default()
            },
            weight_type: gguf::GgmlType::Q4_0,
            seed: 0,
            name: format!("hypura-calibrate-{shape}"),
        };
        let path = dir.join(format!("{shape}.gguf"));
        spec.write(&path, false, &mut |_, _| {})
            .map_err(|source| CalibrateError::Synth {
                shape: shape.clone(),
                source: Box::new(source),
            })?;
        let inventory =
            model::Inventory::from_gguf(&path).map_err(|source| CalibrateError::Inventory {
                shape: shape.clone(),
                source: Box::new(source),
            })?;
        Ok(Synthetic {
            shape,
            layers,
            path,
            inventory,
        })
    }

    /// The backend's fully resident plan for the calibration context, and the same solved
    /// for the mean context of a timed step (whose cost model charges what the runs average:
    /// the first charges KV reads of a full context).
    fn solve_resident(
        &self,
        hw: &HwProfile,
        backend: Backend,
    ) -> Result<(place::Solved, place::Solved), CalibrateError> {
        let solve = |ctx: u64| {
            let opts = SolveOptions {
                headroom: place::Headroom {
                    ctx,
                    ..place::Headroom::default()
                },
                ..SolveOptions::default()
            };
            place::solve(&self.inventory, hw, &opts).map_err(|source| CalibrateError::Solve {
                shape: self.shape.clone(),
                source: Box::new(source),
            })
        };
        let solved = solve(CONTEXT as u64)?;
        if solved.plan.mode != Mode::FullResident {
            return Err(CalibrateError::NotResident {
                shape: self.shape.clone(),
                backend: backend.name(),
                mode: solved.plan.mode,
            });
        }
        Ok((solved, solve(MEAN_CONTEXT)?))
    }

    fn load(
        &self,
        plan: &plan::Plan,
        repack: Option<bool>,
    ) -> Result<runtime::PlannedModel, CalibrateError> {
        runtime::PlannedModel::load_with(&self.path, plan, None, repack).map_err(|source| {
            CalibrateError::Run {
                shape: self.shape.clone(),
                source: Box::new(source),
            }
        })
    }
}

impl Drop for Synthetic {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Bytes the cost model charges a decode step of the solved plan.
fn charged_bytes(solved: &place::Solved) -> f64 {
    charged(solved, 1, f64::INFINITY, 1.0)
}

/// FLOPs the cost model charges a prompt batch of `n_tokens` on the solved plan.
fn charged_flops(solved: &place::Solved, n_tokens: u64) -> f64 {
    charged(solved, n_tokens, 1.0, f64::INFINITY)
}

/// The solved plan's time for a batch of `n_tokens` on a machine of the given rates with no
/// fixed costs: with one rate 1 and the other infinite, what the cost model charges of the
/// other quantity.
fn charged(solved: &place::Solved, n_tokens: u64, flops_per_s: f64, bytes_per_s: f64) -> f64 {
    let unit = place::cost::Device {
        flops_per_s,
        bytes_per_s,
    };
    let cost = CostModel {
        gpu: solved.cost.gpu.map(|_| unit),
        cpu: unit,
        tensor_overhead_s: 0.0,
        batch_tensor_overhead_s: None,
        host_layer_overhead_s: 0.0,
        ..solved.cost.clone()
    };
    // Per token of the batch, times its tokens.
    cost.predict_batch(&solved.units, &solved.assignment, n_tokens)
        .token_s
        * n_tokens as f64
}

/// Tokens of the timed prompt batches (after the decode steps, on the same context): a large
/// one for the matmul rate, a small one for the batch's fixed costs.
pub const PREFILL: u64 = 128;
pub const SMALL_PREFILL: u64 = 16;

/// Context of the calibration runs: the prompt and the decoded tokens.
const CONTEXT: u32 = 256;
/// Prompt tokens of a run.
const PROMPT: i32 = 8;
/// The mean context of a timed step (prompt, warm-up, half the timed steps).
const MEAN_CONTEXT: u64 = PROMPT as u64 + (1 + WARMUP + STEPS / 2) as u64;

/// One run's decode step times of `model` (named `shape` in errors), warm-up left out, then
/// the seconds of a [`SMALL_PREFILL`]- and a [`PREFILL`]-token prompt batch on the same
/// context (warm by then: a context's first batch pays one-time costs).
fn time_model(
    model: &runtime::PlannedModel,
    shape: &str,
    threads: u32,
) -> Result<(Vec<f64>, [f64; 2]), CalibrateError> {
    let err = |source| CalibrateError::Run {
        shape: shape.to_string(),
        source: Box::new(source),
    };
    let mut ctx = model
        .context(&runtime::MoeOptions::default(), CONTEXT, threads, false)
        .map_err(err)?;
    let sampling = runtime::Sampling {
        ignore_eos: true,
        ..runtime::Sampling::GREEDY
    };
    // Byte tokens of the synthetic vocabulary; what they say does not matter.
    let prompt: Vec<i32> = (10..10 + PROMPT).collect();
    let g = ctx
        .generate(&prompt, 1 + WARMUP + STEPS, sampling)
        .map_err(err)?;
    let steps = g.token_s.iter().skip(1 + WARMUP).copied().collect();
    let mut batches = [0.0; 2];
    for (s, n) in batches.iter_mut().zip([SMALL_PREFILL, PREFILL]) {
        let batch: Vec<i32> = (0..n as i32).map(|i| 10 + i % 400).collect();
        *s = ctx.generate(&batch, 1, sampling).map_err(err)?.prompt_s;
    }
    Ok((steps, batches))
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Least squares on relative errors of `t = tensors x a + bytes x b`; `a` is kept at
/// zero or above (refitting `b` alone when the free fit makes it negative). Then the prompt
/// batches' terms ([`prompt_terms`]; `batch_overhead` given: the rate alone).
pub fn fit(
    backend: Backend,
    samples: Vec<Sample>,
    batch_overhead: Option<f64>,
) -> Result<DecodeFit, CalibrateError> {
    let rows: Vec<(f64, f64, f64)> = samples
        .iter()
        .map(|s| {
            let w = 1.0 / s.seconds_per_token;
            (f64::from(s.tensors) * w, s.bytes_per_token * w, 1.0)
        })
        .collect();
    let (mut a, mut b) = solve_2x2(&rows);
    if a.is_nan() || a < 0.0 {
        a = 0.0;
        let num: f64 = rows.iter().map(|&(_, x, y)| x * y).sum();
        let den: f64 = rows.iter().map(|&(_, x, _)| x * x).sum();
        b = num / den;
    }
    if b.is_nan() || b <= 0.0 || b.is_infinite() {
        return Err(CalibrateError::NoFit {
            samples: samples
                .iter()
                .map(|s| format!("{}: {:.3} ms", s.shape, s.seconds_per_token * 1e3))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let (rate, batch_overhead) = prompt_terms(backend, &samples, 1.0 / b, batch_overhead);
    Ok(DecodeFit {
        backend,
        decode_gbps: 1.0 / b / 1e9,
        tensor_overhead_s: a,
        matmul_gflops: rate.map(|r| r / 1e9),
        batch_tensor_overhead_s: batch_overhead.filter(|_| rate.is_some()),
        samples,
    })
}

/// Passes of [`prompt_terms`]: each moves the overhead by the small batch's share of the
/// large one's FLOPs (an eighth), so this many leave nothing to move.
const PROMPT_PASSES: usize = 40;

/// The matmul rate (FLOP/s) and the per-tensor overhead (s) of the prompt batches: the rate
/// from the large batches ([`matmul_rate`]) given the overhead, the overhead from the small
/// ones ([`small_batch_overhead`]) given the rate, alternated from no overhead on. With
/// `known`, the overhead is that and only the rate is fitted. No rate when the large batches
/// are not bound by compute.
fn prompt_terms(
    backend: Backend,
    samples: &[Sample],
    bytes_per_s: f64,
    known: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    if let Some(overhead) = known {
        return (matmul_rate(samples, overhead, bytes_per_s), known);
    }
    let mut overhead = 0.0;
    let mut rate = None;
    for _ in 0..PROMPT_PASSES {
        rate = matmul_rate(samples, overhead, bytes_per_s);
        let Some(r) = rate else { break };
        overhead = small_batch_overhead(backend, samples, r, bytes_per_s);
    }
    (rate, rate.map(|_| overhead))
}

/// FLOP/s of the samples' large prompt batches: their FLOPs over their time less the
/// per-tensor overhead (the cost model prices a batch as the larger of compute and weight
/// bytes, plus the overhead). None when a batch is not bound by compute: its weight bytes at
/// the decode bandwidth take half its compute time or more, or the overhead all of it.
fn matmul_rate(samples: &[Sample], overhead_s: f64, bytes_per_s: f64) -> Option<f64> {
    let (mut flops, mut secs) = (0.0, 0.0);
    for s in samples {
        let b = &s.batches[1];
        let compute = b.seconds - f64::from(s.tensors) * overhead_s;
        let finite = b.flops.is_finite() && compute.is_finite();
        if !finite || compute <= 0.0 || s.bytes_per_token / bytes_per_s >= 0.5 * compute {
            return None;
        }
        flops += b.flops;
        secs += compute;
    }
    (secs > 0.0).then(|| flops / secs)
}

/// Seconds per tensor of the small prompt batches beyond the cost model's roofline at
/// `flops_per_s` (a GPU's, or a CPU's with its reuse: `place::cost::Device`): least squares on
/// relative errors, kept at zero or above.
fn small_batch_overhead(
    backend: Backend,
    samples: &[Sample],
    flops_per_s: f64,
    bytes_per_s: f64,
) -> f64 {
    let device = place::cost::Device {
        flops_per_s,
        bytes_per_s,
    };
    let (mut num, mut den) = (0.0, 0.0);
    for s in samples {
        let b = &s.batches[0];
        let n = b.tokens.max(1) as f64;
        let work = place::cost::Work {
            flops: b.flops,
            bytes: s.bytes_per_token,
            // Every weight of a dense model is used by each token of the batch.
            reuse_flops: b.flops * (n - 1.0) / n,
        };
        let roofline = match backend {
            Backend::Gpu => device.time(work),
            Backend::Cpu | Backend::CpuStreaming => device.cpu_time(work),
        };
        let x = f64::from(s.tensors) / b.seconds;
        num += x * (b.seconds - roofline) / b.seconds;
        den += x * x;
    }
    if num.is_finite() && den > 0.0 {
        (num / den).max(0.0)
    } else {
        0.0
    }
}

/// Normal equations of `y ≈ a x1 + b x2`.
fn solve_2x2(rows: &[(f64, f64, f64)]) -> (f64, f64) {
    let (mut s11, mut s12, mut s22, mut r1, mut r2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x1, x2, y) in rows {
        s11 += x1 * x1;
        s12 += x1 * x2;
        s22 += x2 * x2;
        r1 += x1 * y;
        r2 += x2 * y;
    }
    let det = s11 * s22 - s12 * s12;
    ((r1 * s22 - r2 * s12) / det, (s11 * r2 - s12 * r1) / det)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A llama model's sample: 9 tensors per layer and 3 globals.
    fn sample(layers: u32, mb: f64, ms: f64) -> Sample {
        Sample {
            batches: [SMALL_PREFILL, PREFILL].map(|tokens| Batch {
                tokens,
                flops: f64::NAN,
                seconds: f64::NAN,
            }),
            shape: format!("{layers}"),
            layers,
            tensors: 9 * layers + 3,
            bytes_per_token: mb * 1e6,
            seconds_per_token: ms * 1e-3,
        }
    }

    #[test]
    fn host_layer_term_is_the_unexplained_difference_per_layer() {
        // Measured 10 -> 20 ms; the cost model moves 9 -> 15 ms: 4 ms over 10 layers.
        let f = HostLayerFit::new("10x512".into(), 10, [10e-3, 20e-3], [9e-3, 15e-3]);
        assert!((f.host_layer_overhead_s - 0.4e-3).abs() < 1e-12);
        // A model that over-charges the move leaves nothing, not a negative cost.
        let f = HostLayerFit::new("10x512".into(), 10, [10e-3, 12e-3], [9e-3, 15e-3]);
        assert_eq!(f.host_layer_overhead_s, 0.0);
        assert!(f.describe().contains("10x512"), "{}", f.describe());
    }

    #[test]
    fn fit_recovers_exact_terms() {
        // 20 GB/s and 50 us per tensor: t = (9 L + 3) x 50e-6 + bytes / 20e9.
        let t = |l: u32, mb: f64| (f64::from(9 * l + 3) * 50e-6 + mb * 1e6 / 20e9) * 1e3;
        let f = fit(
            Backend::Cpu,
            vec![
                sample(8, 200.0, t(8, 200.0)),
                sample(16, 50.0, t(16, 50.0)),
                sample(32, 3.0, t(32, 3.0)),
            ],
            None,
        )
        .unwrap();
        assert!((f.decode_gbps - 20.0).abs() < 1e-9, "{f:?}");
        assert!((f.tensor_overhead_s - 50e-6).abs() < 1e-12, "{f:?}");
        assert!(f.max_error() < 1e-12);
        // Batches without a time give no rate.
        assert_eq!(f.matmul_gflops, None);
        assert_eq!(f.batch_tensor_overhead_s, None);
    }

    /// Batches timed as the cost model prices them on a GPU: `tensors x overhead +
    /// max(FLOPs / rate, bytes / bandwidth)`.
    fn with_batches(l: u32, mb: f64, ms: f64, overhead: f64, flops_per_s: f64) -> Sample {
        let tensors = f64::from(9 * l + 3);
        let batch = |tokens: u64| {
            let flops = 10e9 * tokens as f64 / PREFILL as f64;
            Batch {
                tokens,
                flops,
                seconds: tensors * overhead + (flops / flops_per_s).max(mb * 1e6 / 20e9),
            }
        };
        Sample {
            batches: [batch(SMALL_PREFILL), batch(PREFILL)],
            ..sample(l, mb, ms)
        }
    }

    #[test]
    fn prompt_terms_recover_the_rate_and_the_batch_overhead() {
        // Decode: 50 us per tensor, 20 GB/s. Prompt batches: 200 GFLOP/s and 300 us per
        // tensor; the small batches of the 200 MB model are bound by its bytes.
        let t = |l: u32, mb: f64| (f64::from(9 * l + 3) * 50e-6 + mb * 1e6 / 20e9) * 1e3;
        let samples: Vec<Sample> = [(8, 200.0), (16, 50.0), (32, 3.0)]
            .into_iter()
            .map(|(l, mb)| with_batches(l, mb, t(l, mb), 300e-6, 200e9))
            .collect();
        let f = fit(Backend::Gpu, samples.clone(), None).unwrap();
        let r = f.matmul_gflops.unwrap();
        assert!((r - 200.0).abs() < 1e-6, "{r}");
        let o = f.batch_tensor_overhead_s.unwrap();
        assert!((o - 300e-6).abs() < 1e-12, "{o}");
        assert!((f.tensor_overhead_s - 50e-6).abs() < 1e-12, "{f:?}");
        assert!(
            f.describe_matmul().contains("16 and 128 tokens"),
            "{}",
            f.describe_matmul()
        );
        // A known overhead is kept; the rate is fitted given it.
        let f = fit(Backend::Gpu, samples.clone(), Some(0.0)).unwrap();
        assert_eq!(f.batch_tensor_overhead_s, Some(0.0));
        assert!(f.matmul_gflops.unwrap() < 200.0);
        // No rate, no overhead: a model whose large batch is its bytes.
        let mut slow = samples.clone();
        slow[0].bytes_per_token = 8e9;
        assert_eq!(prompt_terms(Backend::Gpu, &slow, 20e9, None), (None, None));
    }

    #[test]
    fn small_batch_overhead_on_a_cpu_follows_its_reuse_pricing() {
        // A CPU batch of 16 tokens costs bytes / bandwidth + 15/16 of its FLOPs / rate (its
        // first use of each weight hides under the weight stream), not the GPU's max.
        let (rate, bw) = (100e9, 20e9);
        let l = 8;
        let tensors = f64::from(9 * l + 3);
        let mut s = sample(l, 400.0, 30.0);
        let flops = 16.0 * 2.0 * 200e6;
        let cpu = 400e6 / bw + 15.0 / 16.0 * flops / rate + tensors * 20e-6;
        s.batches[0] = Batch {
            tokens: 16,
            flops,
            seconds: cpu,
        };
        let o = small_batch_overhead(Backend::Cpu, &[s.clone()], rate, bw);
        assert!((o - 20e-6).abs() < 1e-12, "{o}");
        // The GPU's pricing would see more time left over for the overhead.
        assert!(small_batch_overhead(Backend::Gpu, &[s], rate, bw) > 20e-6);
    }

    #[test]
    fn matmul_rate_is_flops_over_time_less_the_overhead() {
        // 50 us per tensor, 20 GB/s; batches of 10 GFLOP at 200 GFLOP/s take 50 ms plus
        // their overhead.
        let t = |l: u32, mb: f64| (f64::from(9 * l + 3) * 50e-6 + mb * 1e6 / 20e9) * 1e3;
        let samples: Vec<Sample> = [(8, 200.0), (16, 50.0), (32, 3.0)]
            .into_iter()
            .map(|(l, mb)| with_batches(l, mb, t(l, mb), 50e-6, 200e9))
            .collect();
        let r = matmul_rate(&samples, 50e-6, 20e9).unwrap();
        assert!((r / 200e9 - 1.0).abs() < 1e-9, "{r}");
        // A batch whose weight bytes take most of its time measures bandwidth, not compute.
        let mut slow = samples;
        slow[0].bytes_per_token = 8e9; // 0.4 s at 20 GB/s
        assert_eq!(matmul_rate(&slow, 50e-6, 20e9), None);
    }

    #[test]
    fn negative_overhead_is_clamped_to_zero() {
        // Deeper models measured faster than bytes alone explain: no negative overhead.
        let f = fit(
            Backend::Cpu,
            vec![sample(8, 200.0, 10.0), sample(32, 100.0, 4.0)],
            None,
        )
        .unwrap();
        assert_eq!(f.tensor_overhead_s, 0.0);
        assert!(f.decode_gbps > 0.0);
    }

    /// A busy round slows a model down; the fit uses each model's fastest round and measures
    /// more rounds while the times fit no bandwidth.
    #[test]
    fn rounds_keep_the_fastest_and_retry_until_a_fit() {
        let exact = |layers: u32, mb: f64| (9 * layers + 3) as f64 * 1e-5 + mb * 1e6 / 50e9;
        let shapes = [(8, 200.0), (32, 200.0), (128, 200.0)];
        let blank: Vec<Sample> = shapes
            .iter()
            .map(|&(l, mb)| sample(l, mb, f64::INFINITY))
            .collect();
        // Models 1 and 2 are slowed 50x and 20x in their first four rounds (as on a busy CI
        // machine): no positive bandwidth fits those.
        let mut calls = vec![0; 3];
        let f = fit_rounds(
            Backend::Cpu,
            blank.clone(),
            None,
            |i| {
                calls[i] += 1;
                let (l, mb) = shapes[i];
                let slow = match i {
                    _ if calls[i] > 4 => 1.0,
                    1 => 50.0,
                    2 => 20.0,
                    _ => 1.0,
                };
                Ok((exact(l, mb) * slow, [f64::NAN; 2]))
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(calls, vec![5, 5, 5]);
        assert!((f.decode_gbps - 50.0).abs() < 1e-6, "{}", f.decode_gbps);
        assert!((f.tensor_overhead_s - 1e-5).abs() < 1e-12);

        // Always slow: gives up after MAX_ROUNDS with the times it saw.
        let mut n = 0;
        let e = fit_rounds(
            Backend::Cpu,
            blank,
            None,
            |i| {
                n += 1;
                let (l, mb) = shapes[i];
                Ok((exact(l, mb) * [1.0, 50.0, 20.0][i], [f64::NAN; 2]))
            },
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(n, 3 * MAX_ROUNDS);
        assert!(matches!(e, CalibrateError::NoFit { .. }), "{e}");
    }

    #[test]
    fn nonsense_times_are_an_error() {
        let e = fit(Backend::Gpu, vec![sample(8, 0.0, 1.0)], None).unwrap_err();
        assert!(e.to_string().contains("8: 1.000 ms"), "{e}");
    }

    #[test]
    fn shapes_scale_with_the_spec_bandwidth() {
        let hw = HwProfile::from_toml_str(
            include_str!("../../../profiles/h200-141g.toml"),
            "h200-141g.toml",
        )
        .unwrap();
        let gpu = shapes(model_bytes(&hw, Backend::Gpu));
        let cpu = shapes(model_bytes(&hw, Backend::Cpu));
        assert_eq!(gpu.len(), 3);
        assert!(gpu[0].1 > cpu[0].1, "{gpu:?} vs {cpu:?}");
        for s in [&gpu, &cpu] {
            let bytes: Vec<f64> = s
                .iter()
                .map(|&(l, w)| l as f64 * 6.9 * (w * w) as f64)
                .collect();
            for (b, (l, w)) in bytes.iter().zip(s.iter()) {
                assert!(w % 128 == 0, "{l}x{w}");
                assert!((b / bytes[0] - 1.0).abs() < 0.2, "{s:?}: sizes differ");
                assert!(*b >= 0.8 * MIN_BYTES && *b <= 1.2 * MAX_BYTES, "{l}x{w}");
            }
        }
    }
}
