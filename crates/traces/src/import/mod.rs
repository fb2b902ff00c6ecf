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

use crate::builder::RuleError;
use crate::error::{Location, TraceError};
use crate::model::{ModelFacts, Trace};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub use deepseek_csv::{CsvError, IdsError};
pub use switch_json::SwitchError;
pub use vllm_jsonl::JsonlError;
pub use vllm_routed::{EntryError, RoutedError};

/// What is wrong with another tool's records; [`TraceError::Import`] says where. Facts the
/// user gave ([`Options`]) are named as such; the caller names the option that gave them.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source does not record the routed-expert count, and [`Options::n_expert`] is unset.
    #[error("{format} records do not state the routed-expert count")]
    NeedsExpertCount { format: &'static str },
    /// [`Options::moe_layers`] names another number of layers than the records hold.
    #[error("the MoE layer list given names {given} layers but {found_in} {found}")]
    LayerCount {
        given: usize,
        found: usize,
        found_in: LayersIn,
    },
    /// A rule of the trace format, broken by the file as a whole (or by the line `at` names).
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Csv(#[from] CsvError),
    #[error(transparent)]
    Switch(#[from] SwitchError),
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    #[error(transparent)]
    Routed(#[from] RoutedError),
}

/// Where the records' own layer count is: the routed-experts arrays or the router trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayersIn {
    Arrays,
    Trace,
}

impl fmt::Display for LayersIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LayersIn::Arrays => "the arrays have",
            LayersIn::Trace => "the trace has",
        })
    }
}

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
    pub(crate) fn required_n_expert(
        &self,
        path: &Path,
        format: &'static str,
    ) -> Result<u32, TraceError> {
        self.n_expert.ok_or_else(|| {
            TraceError::import(
                Location::file(path),
                ImportError::NeedsExpertCount { format },
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
