//! Importers that turn other tools' routing records into a canonical [`Trace`].
//!
//! | `--from`       | input                                                                 |
//! |----------------|-----------------------------------------------------------------------|
//! | `deepseek-csv` | directory of per-prompt CSVs (`Layer ID,Batch Number,Token,Activated Expert IDs`), layer-major rows |
//! | `switch-json`  | `router-trace.v2.json` (+ `capture-metadata.json` beside it for prompt spans and block ids) |
//! | `vllm-jsonl`   | route log lines `{"type":"route","req_id","token_idx","layer","topk_ids","topk_weights"}` |
//! | `vllm-routed`  | routed-experts arrays `[gen_len][num_moe_layers][top_k]`, one per request |

pub mod deepseek_csv;
pub mod switch_json;
pub mod vllm_jsonl;
pub mod vllm_routed;

use crate::error::TraceError;
use crate::model::{ModelFacts, Trace};
use std::path::Path;
use std::str::FromStr;

/// A source format `hypura trace import --from` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    DeepseekCsv,
    SwitchJson,
    VllmJsonl,
    VllmRouted,
}

impl Source {
    pub const NAMES: [&'static str; 4] =
        ["deepseek-csv", "switch-json", "vllm-jsonl", "vllm-routed"];
}

/// A name that is none of [`Source::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown import format {name:?}; choose one of {}", Source::NAMES.join(", "))]
pub struct UnknownSource {
    pub name: String,
}

impl FromStr for Source {
    type Err = UnknownSource;
    fn from_str(s: &str) -> Result<Source, UnknownSource> {
        match s {
            "deepseek-csv" => Ok(Source::DeepseekCsv),
            "switch-json" => Ok(Source::SwitchJson),
            "vllm-jsonl" => Ok(Source::VllmJsonl),
            "vllm-routed" => Ok(Source::VllmRouted),
            _ => Err(UnknownSource {
                name: s.to_string(),
            }),
        }
    }
}

/// Model facts the source does not record, given by the user. Unset fields take the
/// source's documented defaults or are inferred where the records determine them.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub architecture: Option<String>,
    pub n_expert: Option<u32>,
    pub top_k: Option<u32>,
    pub moe_layers: Option<Vec<u32>>,
    pub n_shared_expert: Option<u32>,
}

impl Options {
    /// `base` with every fact the user gave replacing the default.
    pub(crate) fn override_facts(&self, base: ModelFacts) -> ModelFacts {
        ModelFacts {
            architecture: self.architecture.clone().unwrap_or(base.architecture),
            moe_layers: self.moe_layers.clone().unwrap_or(base.moe_layers),
            n_expert: self.n_expert.unwrap_or(base.n_expert),
            top_k: self.top_k.unwrap_or(base.top_k),
            n_shared_expert: self.n_shared_expert.unwrap_or(base.n_shared_expert),
        }
    }

    /// The expert count for sources that do not record it.
    pub(crate) fn required_n_expert(&self, path: &Path, source: &str) -> Result<u32, TraceError> {
        self.n_expert.ok_or_else(|| {
            TraceError::invalid(
                path.display(),
                format!("{source} records do not state the routed-expert count; pass --n-expert N"),
            )
        })
    }
}

/// Imports `path` as `source`.
pub fn import(source: Source, path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    match source {
        Source::DeepseekCsv => deepseek_csv::import(path, opts),
        Source::SwitchJson => switch_json::import(path, opts),
        Source::VllmJsonl => vllm_jsonl::import(path, opts),
        Source::VllmRouted => vllm_routed::import(path, opts),
    }
}

/// `file:line` for errors of line-oriented sources.
pub(crate) fn at_line(path: &Path, line: u64) -> String {
    format!("{}:{line}", path.display())
}
