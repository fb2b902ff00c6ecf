//! `hypura synth`: llama.cpp-loadable GGUF models with random weights for any architecture shape,
//! byte-identical for the same spec and seed. Shapes and `{arch}.*` keys come from the `model`
//! catalog; the file format is the `gguf` writer's.
//!
//! The weights are noise: these models exist to exercise loaders, placement and streaming with
//! real shapes, not to generate meaningful text.

pub mod fit;
pub mod output;
pub mod presets;
pub mod quant;
pub mod rng;
pub mod tokenizer;
pub mod weights;

use gguf::ggml_type::GgmlType;
use gguf::{encode_header, write_gguf, GgufWriteError, Metadata, TensorSpec, Value};
use model::catalog::{arch_metadata, tensor_shapes, ArchSpec};
use model::role::{parse_name, Group, Role};
use model::SpecError;
use output::OutputError;
use std::path::{Path, PathBuf};

pub use fit::{fit_size, parse_size, SizeError};
pub use presets::{Arch, Overrides, Preset, ShapeError};
pub use tokenizer::VocabError;

/// Everything that decides a synthetic file's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    pub arch: ArchSpec,
    /// Type of the 2-D and 3-D weights: F32, F16, Q8_0 or Q4_0. Norms, 1-D tensors and the
    /// router stay F32, as llama.cpp's quantizer leaves them.
    pub weight_type: GgmlType,
    pub seed: u64,
    /// `general.name`.
    pub name: String,
}

/// Why a synthetic model could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("weight type {0} is not one the synthesizer writes (f32, f16, q8_0, q4_0)")]
    WeightType(GgmlType),
    #[error("{heads} heads are not a multiple of {kv_heads} kv heads")]
    KvHeads { heads: u64, kv_heads: u64 },
    /// A tensor's rows are not whole blocks of its (quantized) type.
    #[error(
        "tensor {tensor} has rows of {row} values, not a multiple of {ty}'s block of {block}; \
         choose widths (embd, ff, expert ff, heads x head dim) that are multiples of {block}, \
         or f16 weights"
    )]
    PartialBlock {
        tensor: String,
        row: u64,
        ty: GgmlType,
        block: u64,
    },
    #[error(transparent)]
    Vocab(#[from] VocabError),
    /// The header cannot be encoded (metadata or tensor list the GGUF writer refuses).
    #[error(transparent)]
    Header(GgufWriteError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: GgufWriteError,
    },
}

/// Weight types the synthesizer writes, with llama.cpp's `general.file_type` (`llama_ftype`).
pub const WEIGHT_TYPES: &[(GgmlType, u32)] = &[
    (GgmlType::F32, 0),
    (GgmlType::F16, 1),
    (GgmlType::Q4_0, 2),
    (GgmlType::Q8_0, 7),
];

/// The `general.file_type` for files whose weights are `ty`.
pub fn file_type(ty: GgmlType) -> Option<u32> {
    WEIGHT_TYPES.iter().find(|(t, _)| *t == ty).map(|&(_, f)| f)
}

/// Metadata and tensor list of a synthetic model, before any data is generated.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthPlan {
    pub metadata: Metadata,
    pub tensors: Vec<TensorSpec>,
}

/// The type a tensor is stored in: F32 for norms, 1-D tensors and routers (llama.cpp keeps
/// `ffn_gate_inp` in F32 and its CPU matmul for it expects that); the weight type otherwise.
pub fn tensor_type(name: &str, dims: &[u64], weight_type: GgmlType) -> GgmlType {
    let role = parse_name(name).role;
    let keep_f32 = dims.len() < 2
        || role.group() == Group::Norm
        || matches!(
            role,
            Role::FfnGateInp | Role::FfnGateInpShexp | Role::ExpProbsB | Role::AttnSinks
        );
    if keep_f32 {
        GgmlType::F32
    } else {
        weight_type
    }
}

impl SynthSpec {
    /// Checks the spec and lays out the model: metadata (general, `{arch}.*`, tokenizer, seed)
    /// and every tensor with its type.
    pub fn plan(&self) -> Result<SynthPlan, SynthError> {
        let a = &self.arch;
        a.check()?;
        let ftype = file_type(self.weight_type).ok_or(SynthError::WeightType(self.weight_type))?;
        if a.n_head_kv > 0 && a.n_head % a.n_head_kv != 0 {
            return Err(SynthError::KvHeads {
                heads: a.n_head,
                kv_heads: a.n_head_kv,
            });
        }
        let tensors: Vec<TensorSpec> = tensor_shapes(a)
            .into_iter()
            .map(|s| {
                let ty = tensor_type(&s.name, &s.dims, self.weight_type);
                TensorSpec::new(s.name, s.dims, ty)
            })
            .collect();
        for t in &tensors {
            let block = t.ggml_type.block_size();
            if t.dims[0] % block != 0 {
                return Err(SynthError::PartialBlock {
                    tensor: t.name.clone(),
                    row: t.dims[0],
                    ty: t.ggml_type,
                    block,
                });
            }
        }

        let mut md = Metadata::default();
        md.insert("general.architecture", Value::String(a.arch.clone()));
        md.insert("general.name", Value::String(self.name.clone()));
        md.insert("general.file_type", Value::U32(ftype));
        md.insert(
            "general.alignment",
            Value::U32(gguf::DEFAULT_ALIGNMENT as u32),
        );
        if self.weight_type.block_size() > 1 {
            // The quantization format version llama.cpp writes next to quantized weights.
            md.insert("general.quantization_version", Value::U32(2));
        }
        for (k, v) in arch_metadata(a).0 {
            md.insert(k, v);
        }
        for (k, v) in tokenizer::spm_metadata(a.n_vocab)?.0 {
            md.insert(k, v);
        }
        md.insert("hypura.synth.seed", Value::U64(self.seed));
        Ok(SynthPlan {
            metadata: md,
            tensors,
        })
    }

    /// Size of the file [`SynthSpec::write`] would produce.
    pub fn file_bytes(&self) -> Result<u64, SynthError> {
        let plan = self.plan()?;
        let (_, layout) =
            encode_header(&plan.metadata, &plan.tensors).map_err(SynthError::Header)?;
        Ok(layout.file_bytes)
    }

    /// Writes the model to `path` (see [`output::write_atomically`]: refused if the file exists
    /// and `force` is false, or if the disk is too small). `progress(done, total)` is called after
    /// each tensor with bytes written so far.
    pub fn write(
        &self,
        path: &Path,
        force: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<WriteSummary, SynthError> {
        let plan = self.plan()?;
        let wrap = |source| SynthError::Write {
            path: path.to_path_buf(),
            source,
        };
        let (_, layout) = encode_header(&plan.metadata, &plan.tensors).map_err(wrap)?;
        let total = layout.file_bytes;
        let mut filler = weights::Filler::new(self.seed);
        output::write_atomically(path, total, force, |w| {
            let mut done = layout.data_start;
            write_gguf(w, &plan.metadata, &plan.tensors, |i, t, sink| {
                filler.fill(t, sink)?;
                done += layout.sizes[i].div_ceil(layout.alignment) * layout.alignment;
                progress(done, total);
                Ok(())
            })
            .map_err(wrap)?;
            Ok::<(), SynthError>(())
        })?;
        Ok(WriteSummary {
            path: path.to_path_buf(),
            file_bytes: total,
            tensors: plan.tensors.len(),
        })
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    pub path: PathBuf,
    pub file_bytes: u64,
    pub tensors: usize,
}
