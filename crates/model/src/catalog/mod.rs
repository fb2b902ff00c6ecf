//! The model catalog: inventories for models not on disk, built from architecture
//! hyperparameters ([`shapes`]) and llama.cpp's quantization recipe ([`recipe`]).

pub mod models;
pub mod on_hub;
pub mod recipe;
pub mod shapes;

pub use models::{Model, Published, MODELS};
pub use on_hub::{pick_gguf, HubLocation, PickError, Within};
pub use recipe::Preset;
pub use shapes::{arch_metadata, tensor_shapes, ArchSpec, TensorShape};

use crate::arch::ArchInfo;
use crate::error::{MetadataError, RecipeError, SpecError};
use crate::inventory::{Inventory, Source, TensorEntry};
use gguf::GgmlType;

/// Why a catalog name could not be turned into an inventory.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown catalog model {name:?}{}; known models: {}", suggestion_text(.suggestion), .known.join(", "))]
    UnknownModel {
        name: String,
        known: Vec<String>,
        suggestion: Option<String>,
    },
    #[error("catalog model {model} has no quantization {quant:?}; available: {}", .available.join(", "))]
    UnknownQuant {
        model: String,
        quant: String,
        available: Vec<String>,
    },
    /// The catalog's own data is inconsistent (a bug in the catalog, not in the request).
    #[error("catalog entry {spec}: {problem}")]
    Invalid { spec: String, problem: InvalidEntry },
}

/// What is inconsistent in a catalog entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidEntry {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("tensor {tensor} {dims:?} cannot be stored as {ty}")]
    TensorType {
        tensor: String,
        dims: Vec<u64>,
        ty: GgmlType,
    },
}

fn suggestion_text(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

/// One quantization of a catalog model, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantEntry {
    pub preset: Preset,
    /// Tensor bytes the catalog computes.
    pub bytes: u64,
    /// The published file it is checked against, when one is known.
    pub published: Option<Published>,
}

/// A catalog model with all its quantizations, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub name: &'static str,
    pub hf_name: &'static str,
    pub config_url: &'static str,
    pub default_preset: Preset,
    pub quants: Vec<QuantEntry>,
}

/// Every catalog model with its quantizations, computed sizes and references.
pub fn entries() -> Result<Vec<CatalogEntry>, CatalogError> {
    MODELS
        .iter()
        .map(|m| {
            let quants = m
                .presets
                .iter()
                .map(|&p| {
                    Ok(QuantEntry {
                        preset: p,
                        bytes: build(m, p)?.total_bytes(),
                        published: m.published(p).copied(),
                    })
                })
                .collect::<Result<_, CatalogError>>()?;
            Ok(CatalogEntry {
                name: m.name,
                hf_name: m.hf_name,
                config_url: m.config_url,
                default_preset: m.default_preset(),
                quants,
            })
        })
        .collect()
}

/// Finds a catalog model by name (case-insensitive).
pub fn model(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.name.eq_ignore_ascii_case(name))
}

/// Builds the inventory for `model[:quant]` (e.g. `mixtral-8x7b:q5_k_m`; without a quant, the
/// model's default). Unknown names get the list of known ones and the closest match.
pub fn lookup(spec: &str) -> Result<Inventory, CatalogError> {
    let (m, preset) = resolve(spec)?;
    build(m, preset)
}

/// The model and quantization `model[:quant]` names, as [`lookup`] reads it.
pub fn resolve(spec: &str) -> Result<(&'static Model, Preset), CatalogError> {
    let (name, quant) = match spec.split_once(':') {
        Some((n, q)) => (n.trim(), Some(q.trim())),
        None => (spec.trim(), None),
    };
    let m = model(name).ok_or_else(|| CatalogError::UnknownModel {
        name: name.to_string(),
        known: MODELS.iter().map(|m| m.name.to_string()).collect(),
        suggestion: closest(name, MODELS.iter().map(|m| m.name)).map(str::to_string),
    })?;
    let preset = match quant {
        None => m.default_preset(),
        Some(q) => Preset::from_name(q)
            .filter(|p| m.presets.contains(p))
            .ok_or_else(|| CatalogError::UnknownQuant {
                model: m.name.to_string(),
                quant: q.to_string(),
                available: m.presets.iter().map(|p| p.name().to_string()).collect(),
            })?,
    };
    Ok((m, preset))
}

/// The inventory of `m` quantized with `preset`.
pub fn build(m: &Model, preset: Preset) -> Result<Inventory, CatalogError> {
    let full_name = format!("{}:{}", m.name, preset.name());
    let invalid = |problem: InvalidEntry| CatalogError::Invalid {
        spec: full_name.clone(),
        problem,
    };
    let spec = (m.spec)();
    spec.check().map_err(|e| invalid(e.into()))?;
    let shapes = tensor_shapes(&spec);
    let types = recipe::tensor_types(&spec, &shapes, preset).map_err(|e| invalid(e.into()))?;
    let tensors = shapes
        .into_iter()
        .zip(types)
        .map(|(t, ty)| {
            TensorEntry::new(&t.name, ty, t.dims.clone(), spec.n_expert).ok_or_else(|| {
                invalid(InvalidEntry::TensorType {
                    tensor: t.name.clone(),
                    dims: t.dims.clone(),
                    ty,
                })
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut arch = ArchInfo::from_metadata(&arch_metadata(&spec)).map_err(|e| invalid(e.into()))?;
    arch.name = Some(m.hf_name.to_string());
    arch.file_type = Some(preset.ftype());
    arch.complete_from_tensors(&tensors);
    let reference = m
        .published(preset)
        .map_or(m.config_url, |p| p.url)
        .to_string();
    Ok(Inventory {
        source: Source::Catalog {
            name: full_name,
            reference,
        },
        arch,
        tensors,
    })
}

/// The candidate nearest to `name` by edit distance, if it is plausibly a typo (at most a third
/// of the name's length away) or `name` is a prefix of it.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    candidates
        .map(|c| {
            let d = if c.starts_with(&name) && !name.is_empty() {
                0
            } else {
                edit_distance(&name, c)
            };
            (d, c)
        })
        .filter(|&(d, c)| d <= c.len().max(name.len()) / 3)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + (ca != cb) as usize)
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_spec_is_valid_and_its_metadata_reads_back() {
        for m in MODELS {
            let spec = (m.spec)();
            assert_eq!(spec.check(), Ok(()), "{}", m.name);
            let info = ArchInfo::from_metadata(&arch_metadata(&spec)).unwrap();
            assert_eq!(info.arch, spec.arch, "{}", m.name);
            assert_eq!(info.n_layer, spec.n_layer, "{}", m.name);
            assert_eq!(info.n_embd, spec.n_embd, "{}", m.name);
            assert_eq!(info.n_head.max(), spec.n_head, "{}", m.name);
            assert_eq!(info.n_vocab, Some(spec.n_vocab), "{}", m.name);
            assert_eq!(info.n_expert, spec.n_expert, "{}", m.name);
            assert_eq!(info.n_expert_used, spec.n_expert_used, "{}", m.name);
            assert_eq!(info.n_leading_dense, spec.n_leading_dense, "{}", m.name);
            assert_eq!(info.n_shared_expert, spec.n_shared_expert, "{}", m.name);
            if spec.is_moe() {
                assert_eq!(info.expert_ff, Some(spec.expert_ff), "{}", m.name);
            }
            // The inventory's view after completing from the tensors agrees too.
            let inv = build(m, m.default_preset()).unwrap();
            let moe_layers = (0..spec.n_layer)
                .filter(|&l| spec.layer_is_moe(l))
                .collect::<Vec<_>>();
            assert_eq!(inv.arch.moe_layers, moe_layers, "{}", m.name);
            assert_eq!(inv.arch.n_leading_dense, spec.n_leading_dense, "{}", m.name);
        }
    }

    #[test]
    fn closest_finds_typos_and_prefixes() {
        let names = || MODELS.iter().map(|m| m.name);
        assert_eq!(closest("mixtral-8x7", names()), Some("mixtral-8x7b"));
        assert_eq!(closest("mixtrl-8x7b", names()), Some("mixtral-8x7b"));
        assert_eq!(closest("deepseek-v3", names()), Some("deepseek-v3"));
        assert_eq!(closest("totally-unrelated-name", names()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
