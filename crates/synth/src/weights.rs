//! Synthetic tensor contents: which tensors get ones, zeros or small uniform noise, and a filler
//! that streams them in any supported type, deterministically from (seed, tensor name).

use super::quant::{self, F16Table, Q4_0_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK};
use super::rng::Rng;
use gguf::ggml_type::GgmlType;
use gguf::TensorSpec;
use model::role::{parse_name, Group, Role};
use std::io::{self, Write};

/// Largest weight magnitude: small enough that activations stay finite through many layers.
pub const MAX_AMPLITUDE: f32 = 0.05;

/// What a tensor is filled with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Norm scales: 1.0, so RMSNorm passes activations through unchanged.
    Ones,
    /// Biases: 0.
    Zeros,
    /// Uniform in ±amplitude.
    Uniform(f32),
}

/// Types the synthesizer can generate.
pub const SUPPORTED_TYPES: &[GgmlType] =
    &[GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0];

/// Norms are ones and biases zeros; weights are uniform with amplitude min(0.05, 1/sqrt(row)),
/// which keeps each matmul's output near unit scale however wide the model is.
pub fn init_for(spec: &TensorSpec) -> Init {
    let role = parse_name(&spec.name).role;
    if role.group() == Group::Norm || role == Role::OutputNorm || role == Role::TokenEmbdNorm {
        Init::Ones
    } else if spec.name.ends_with(".bias") {
        Init::Zeros
    } else {
        let row = spec.dims.first().copied().unwrap_or(1).max(1) as f32;
        Init::Uniform(MAX_AMPLITUDE.min(1.0 / row.sqrt()))
    }
}

/// Bytes generated per write: large enough that the write syscalls cost nothing.
const CHUNK_BYTES: usize = 4 << 20;

/// Streams tensor data; keeps one chunk buffer for the whole file.
pub struct Filler {
    seed: u64,
    buf: Vec<u8>,
}

impl Filler {
    pub fn new(seed: u64) -> Filler {
        Filler {
            seed,
            buf: Vec::new(),
        }
    }

    /// Writes `spec`'s data (exactly `spec.bytes()` bytes) to `out`.
    pub fn fill(&mut self, spec: &TensorSpec, out: &mut dyn Write) -> io::Result<()> {
        let ty = spec.ggml_type;
        if !SUPPORTED_TYPES.contains(&ty) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "tensor {:?}: cannot generate type {ty} (F32, F16, Q8_0 and Q4_0 can be)",
                    spec.name
                ),
            ));
        }
        let total = spec.bytes().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "tensor {:?}: size of {:?} is not computable",
                    spec.name, spec.dims
                ),
            )
        })?;
        let block = ty.block_bytes() as usize;
        let chunk = CHUNK_BYTES / block * block;
        let init = init_for(spec);
        let mut rng = Rng::for_tensor(self.seed, &spec.name);
        let table = match (init, ty) {
            (Init::Uniform(a), GgmlType::F16) => Some(F16Table::new(a)),
            _ => None,
        };
        let pattern = constant_block(init, ty);
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk as u64) as usize;
            self.buf.resize(n, 0);
            let buf = &mut self.buf[..n];
            match (init, ty) {
                (Init::Uniform(a), GgmlType::F32) => {
                    for c in buf.chunks_exact_mut(4) {
                        c.copy_from_slice(&(a * rng.next_signed_unit()).to_le_bytes());
                    }
                }
                (Init::Uniform(_), GgmlType::F16) => {
                    table.as_ref().expect("built for F16").fill(&mut rng, buf)
                }
                (Init::Uniform(a), GgmlType::Q8_0) => quant::random_q8_0_blocks(&mut rng, a, buf),
                (Init::Uniform(a), GgmlType::Q4_0) => quant::random_q4_0_blocks(&mut rng, a, buf),
                _ => {
                    for c in buf.chunks_exact_mut(block) {
                        c.copy_from_slice(&pattern);
                    }
                }
            }
            out.write_all(buf)?;
            left -= n as u64;
        }
        Ok(())
    }
}

/// One block of a constant tensor (ones or zeros) in `ty`.
fn constant_block(init: Init, ty: GgmlType) -> Vec<u8> {
    let v = match init {
        Init::Ones => 1.0f32,
        _ => 0.0,
    };
    match ty {
        GgmlType::F32 => v.to_le_bytes().to_vec(),
        GgmlType::F16 => quant::f32_to_f16(v).to_le_bytes().to_vec(),
        GgmlType::Q8_0 => quant::quantize_q8_0(&[v; QK]).to_vec(),
        GgmlType::Q4_0 => quant::quantize_q4_0(&[v; QK]).to_vec(),
        _ => vec![0; ty.block_bytes() as usize],
    }
}

/// Decodes tensor data of a supported type to f32 (for tests and checks on small tensors).
pub fn decode(ty: GgmlType, data: &[u8]) -> Option<Vec<f32>> {
    Some(match ty {
        GgmlType::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        GgmlType::F16 => data
            .chunks_exact(2)
            .map(|c| quant::f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        GgmlType::Q8_0 => data
            .chunks_exact(Q8_0_BLOCK_BYTES)
            .flat_map(|b| quant::dequantize_q8_0(b.try_into().unwrap()))
            .collect(),
        GgmlType::Q4_0 => data
            .chunks_exact(Q4_0_BLOCK_BYTES)
            .flat_map(|b| quant::dequantize_q4_0(b.try_into().unwrap()))
            .collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(name: &str, dims: Vec<u64>, ty: GgmlType, seed: u64) -> Vec<u8> {
        let spec = TensorSpec::new(name, dims, ty);
        let mut out = Vec::new();
        Filler::new(seed).fill(&spec, &mut out).unwrap();
        assert_eq!(out.len() as u64, spec.bytes().unwrap());
        out
    }

    #[test]
    fn roles_get_their_init() {
        let t = |n: &str, d: Vec<u64>| init_for(&TensorSpec::new(n, d, GgmlType::F32));
        assert_eq!(t("blk.0.attn_norm.weight", vec![64]), Init::Ones);
        assert_eq!(t("output_norm.weight", vec![64]), Init::Ones);
        assert_eq!(t("blk.0.attn_q.bias", vec![64]), Init::Zeros);
        assert_eq!(t("blk.0.attn_q.weight", vec![64, 64]), Init::Uniform(0.05));
        assert_eq!(
            t("blk.0.ffn_down.weight", vec![4096, 64]),
            Init::Uniform(1.0 / 64.0)
        );
    }

    #[test]
    fn every_type_decodes_to_small_finite_values() {
        for &ty in SUPPORTED_TYPES {
            let data = generate("blk.0.ffn_up_exps.weight", vec![64, 8, 4], ty, 1);
            let vals = decode(ty, &data).unwrap();
            assert_eq!(vals.len(), 64 * 8 * 4);
            assert!(
                vals.iter().all(|v| v.is_finite() && v.abs() <= 0.0501),
                "{ty}"
            );
            let spread = vals.iter().filter(|v| v.abs() > 0.02).count();
            assert!(spread > vals.len() / 4, "{ty}: values are not spread out");
            let norm = generate("blk.0.ffn_norm.weight", vec![64], ty, 1);
            assert!(
                decode(ty, &norm)
                    .unwrap()
                    .iter()
                    .all(|&v| (v - 1.0).abs() < 1e-3),
                "{ty} ones"
            );
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_or_name_other_bytes() {
        let a = generate("blk.1.attn_k.weight", vec![32, 16], GgmlType::Q4_0, 9);
        assert_eq!(
            a,
            generate("blk.1.attn_k.weight", vec![32, 16], GgmlType::Q4_0, 9)
        );
        assert_ne!(
            a,
            generate("blk.1.attn_k.weight", vec![32, 16], GgmlType::Q4_0, 10)
        );
        assert_ne!(
            a,
            generate("blk.1.attn_v.weight", vec![32, 16], GgmlType::Q4_0, 9)
        );
    }

    #[test]
    fn tensors_larger_than_a_chunk_are_written_whole() {
        // 2 chunks and a bit of Q8_0.
        let rows = (2 * CHUNK_BYTES / Q8_0_BLOCK_BYTES) as u64 + 3;
        let data = generate("blk.0.ffn_gate.weight", vec![32, rows], GgmlType::Q8_0, 2);
        assert_eq!(data.len() as u64, rows * 34);
    }

    #[test]
    fn unsupported_types_are_refused() {
        let spec = TensorSpec::new("x", vec![256], GgmlType::Q4_K);
        let e = Filler::new(0).fill(&spec, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("cannot generate type Q4_K"), "{e}");
    }
}
