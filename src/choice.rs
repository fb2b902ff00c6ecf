//! Enum-valued flags as clap `ValueEnum`s. They mirror library types, which do not depend on
//! clap; each converts into its library type, so no flag value is parsed by hand and none falls
//! through to a default.

use clap::builder::PossibleValue;
use clap::ValueEnum;
use gguf::GgmlType;
#[cfg(feature = "runtime")]
use policy::cache::RunPolicy;
use policy::cache::{HotSet, Partition, Policy};
use policy::prefetch::ExpertPrefetch;

/// `--expert-prefetch` of `sim` and `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Prefetch {
    /// Read misses on demand, after the router has chosen.
    None,
    /// The next layer's experts that co-occurred most with this selection (learned online).
    Coactivation,
    /// The next layer's actual selection: the upper bound.
    Oracle,
}

impl From<Prefetch> for ExpertPrefetch {
    fn from(p: Prefetch) -> ExpertPrefetch {
        match p {
            Prefetch::None => ExpertPrefetch::None,
            Prefetch::Coactivation => ExpertPrefetch::Coactivation,
            Prefetch::Oracle => ExpertPrefetch::Oracle,
        }
    }
}

/// `solve --kv-type`, `run --cache-type-k/-v`: the KV cache element types llama.cpp's cache
/// takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KvType {
    F16,
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q4_0")]
    Q4_0,
    F32,
}

impl From<KvType> for GgmlType {
    fn from(t: KvType) -> GgmlType {
        match t {
            KvType::F16 => GgmlType::F16,
            KvType::Q8_0 => GgmlType::Q8_0,
            KvType::Q4_0 => GgmlType::Q4_0,
            KvType::F32 => GgmlType::F32,
        }
    }
}

/// `run --flash-attn` (llama.cpp's `-fa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlashAttnChoice {
    On,
    Off,
    Auto,
}

#[cfg(feature = "runtime")]
impl From<FlashAttnChoice> for runtime::FlashAttn {
    fn from(c: FlashAttnChoice) -> runtime::FlashAttn {
        match c {
            FlashAttnChoice::On => runtime::FlashAttn::On,
            FlashAttnChoice::Off => runtime::FlashAttn::Off,
            FlashAttnChoice::Auto => runtime::FlashAttn::Auto,
        }
    }
}

/// `synth --type`: the weight types the synthesizer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightType {
    F32,
    F16,
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q4_0")]
    Q4_0,
}

impl From<WeightType> for GgmlType {
    fn from(t: WeightType) -> GgmlType {
        match t {
            WeightType::F32 => GgmlType::F32,
            WeightType::F16 => GgmlType::F16,
            WeightType::Q8_0 => GgmlType::Q8_0,
            WeightType::Q4_0 => GgmlType::Q4_0,
        }
    }
}

/// `synth --arch`: the architectures the synthesizer builds, by the names its presets use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SynthArch {
    Llama,
    /// llama with experts.
    Mixtral,
    Qwen2moe,
    /// The old name of qwen2moe (kept apart so the default model name keeps its spelling).
    #[value(name = "qwen-moe", hide = true)]
    QwenMoe,
    Qwen3moe,
    Deepseek2,
}

impl From<SynthArch> for synth::Arch {
    fn from(a: SynthArch) -> synth::Arch {
        use synth::Arch;
        match a {
            SynthArch::Llama => Arch::Llama,
            SynthArch::Mixtral => Arch::Mixtral,
            SynthArch::Qwen2moe | SynthArch::QwenMoe => Arch::Qwen2Moe,
            SynthArch::Qwen3moe => Arch::Qwen3Moe,
            SynthArch::Deepseek2 => Arch::DeepSeek2,
        }
    }
}

impl SynthArch {
    /// The name as given on the command line (`qwen-moe` kept apart from `qwen2moe`).
    pub fn name(self) -> &'static str {
        match self {
            SynthArch::Llama => "llama",
            SynthArch::Mixtral => "mixtral",
            SynthArch::Qwen2moe => "qwen2moe",
            SynthArch::QwenMoe => "qwen-moe",
            SynthArch::Qwen3moe => "qwen3moe",
            SynthArch::Deepseek2 => "deepseek2",
        }
    }
}

/// `synth --preset`: the synthesizer's presets, by their library names (a value enum over
/// `synth::Preset::ALL`, so the names and the list live in the library).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthPreset(pub synth::Preset);

impl ValueEnum for SynthPreset {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: std::sync::OnceLock<Vec<SynthPreset>> = std::sync::OnceLock::new();
        ALL.get_or_init(|| synth::Preset::ALL.map(SynthPreset).to_vec())
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()).help(self.0.about()))
    }
}

/// `trace import --from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFrom {
    /// DeepSeek's per-layer CSVs of selected experts.
    DeepseekCsv,
    /// Switch Transformer routing dumped as JSON.
    SwitchJson,
    /// vLLM's JSON Lines routing log.
    VllmJsonl,
    /// vLLM's routed-experts JSON.
    VllmRouted,
}

impl From<ImportFrom> for traces::import::Source {
    fn from(f: ImportFrom) -> traces::import::Source {
        use traces::import::Source;
        match f {
            ImportFrom::DeepseekCsv => Source::DeepseekCsv,
            ImportFrom::SwitchJson => Source::SwitchJson,
            ImportFrom::VllmJsonl => Source::VllmJsonl,
            ImportFrom::VllmRouted => Source::VllmRouted,
        }
    }
}

/// `--partition` of `sim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PartitionArg {
    /// One cache over every streaming layer, as the runtime keeps it.
    Global,
    /// Each streaming layer an equal byte share.
    PerLayer,
}

impl From<PartitionArg> for Partition {
    fn from(p: PartitionArg) -> Partition {
        match p {
            PartitionArg::Global => Partition::Global,
            PartitionArg::PerLayer => Partition::PerLayer,
        }
    }
}

/// A cache policy of `policy::cache`, by the names `sim --policy` and `run --cache-policy` take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CachePolicy {
    Lru,
    Lfu,
    Lfru,
    Arc,
    /// The plan's memory-tier experts pinned, LRU over the rest.
    PinnedLru,
    /// The offline optimum (needs the whole trace in advance: simulation only).
    Belady,
}

impl CachePolicy {
    /// The library policy; `pinned-lru`'s hot set is left empty for the caller to fill from
    /// the plan.
    pub fn policy(self) -> Policy {
        match self {
            CachePolicy::Lru => Policy::Lru,
            CachePolicy::Lfu => Policy::Lfu,
            CachePolicy::Lfru => Policy::Lfru,
            CachePolicy::Arc => Policy::Arc,
            CachePolicy::PinnedLru => Policy::PinnedLru(HotSet(Vec::new())),
            CachePolicy::Belady => Policy::Belady,
        }
    }
}

/// `sim --policy`: the plan's own cache, or a cache policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimPolicy {
    /// The plan's resident experts, nothing else cached.
    Static,
    Lru,
    Lfu,
    Lfru,
    Arc,
    /// The plan's resident experts pinned, LRU for the rest.
    PinnedLru,
    /// The offline optimum.
    Belady,
}

impl SimPolicy {
    /// The cache policy, or `None` for `static`.
    pub fn cache(self) -> Option<CachePolicy> {
        Some(match self {
            SimPolicy::Static => return None,
            SimPolicy::Lru => CachePolicy::Lru,
            SimPolicy::Lfu => CachePolicy::Lfu,
            SimPolicy::Lfru => CachePolicy::Lfru,
            SimPolicy::Arc => CachePolicy::Arc,
            SimPolicy::PinnedLru => CachePolicy::PinnedLru,
            SimPolicy::Belady => CachePolicy::Belady,
        })
    }
}

#[cfg(feature = "runtime")]
/// `run --cache-policy`: the policies a running cache can follow (not Belady, which needs the
/// future).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunCachePolicy {
    /// The plan's memory-tier experts preloaded, LRU over the rest (the plan's own policy).
    StaticFrequency,
    Lru,
    Lfu,
    Lfru,
    Arc,
    /// Same as static-frequency: the plan's memory-tier experts pinned, LRU over the rest.
    PinnedLru,
}

#[cfg(feature = "runtime")]
impl From<RunCachePolicy> for RunPolicy {
    fn from(p: RunCachePolicy) -> RunPolicy {
        match p {
            RunCachePolicy::StaticFrequency => RunPolicy::StaticFrequency,
            RunCachePolicy::Lru => RunPolicy::Lru,
            RunCachePolicy::Lfu => RunPolicy::Lfu,
            RunCachePolicy::Lfru => RunPolicy::Lfru,
            RunCachePolicy::Arc => RunPolicy::Arc,
            RunCachePolicy::PinnedLru => RunPolicy::PinnedLru,
        }
    }
}

#[cfg(feature = "runtime")]
/// `run --expert-streaming`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExpertStreaming {
    /// Only the selected experts' slices, through the expert cache.
    PerExpert,
    /// The whole merged tensor, like a dense one.
    Whole,
}

#[cfg(feature = "runtime")]
impl ExpertStreaming {
    pub fn name(self) -> &'static str {
        match self {
            ExpertStreaming::PerExpert => "per-expert",
            ExpertStreaming::Whole => "whole",
        }
    }
}

#[cfg(feature = "runtime")]
/// `run --streamed-memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamedMemory {
    /// Kept as stock and moved to the next fill: no page faults, no zeroing
    /// (Linux; elsewhere released).
    Recycled,
    /// Released to the kernel; the next fill faults in zeroed pages.
    Released,
}

#[cfg(feature = "runtime")]
impl From<StreamedMemory> for runtime::StreamedMemory {
    fn from(m: StreamedMemory) -> runtime::StreamedMemory {
        match m {
            StreamedMemory::Recycled => runtime::StreamedMemory::Recycled,
            StreamedMemory::Released => runtime::StreamedMemory::Released,
        }
    }
}

#[cfg(feature = "runtime")]
/// `run --plain-load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlainLoad {
    /// llama.cpp's default.
    Mmap,
    /// O_DIRECT reads into anonymous memory, as a plan loads.
    Direct,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flag spellings are the library's names, so plan.json, sim output and the flags agree.
    #[test]
    fn names_match_the_library() {
        for p in CachePolicy::value_variants() {
            let flag = p.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), p.policy().name());
        }
        for p in Prefetch::value_variants() {
            let flag = p.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), ExpertPrefetch::from(*p).name());
        }
        assert_eq!(Prefetch::value_variants().len(), ExpertPrefetch::ALL.len());
        #[cfg(feature = "runtime")]
        for p in RunCachePolicy::value_variants() {
            let flag = p.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), RunPolicy::from(*p).name());
        }
        #[cfg(feature = "runtime")]
        assert_eq!(RunCachePolicy::value_variants().len(), RunPolicy::ALL.len());
        #[cfg(feature = "runtime")]
        for p in ExpertStreaming::value_variants() {
            assert_eq!(p.to_possible_value().unwrap().get_name(), p.name());
        }
        for t in KvType::value_variants() {
            let flag = t.to_possible_value().unwrap();
            assert!(flag
                .get_name()
                .eq_ignore_ascii_case(GgmlType::from(*t).name()));
        }
        for t in WeightType::value_variants() {
            let flag = t.to_possible_value().unwrap();
            assert!(flag
                .get_name()
                .eq_ignore_ascii_case(GgmlType::from(*t).name()));
            assert!(synth::file_type((*t).into()).is_some(), "{t:?}");
        }
        for a in SynthArch::value_variants() {
            let flag = a.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), a.name());
            assert_eq!(synth::Arch::from_name(a.name()), Some((*a).into()), "{a:?}");
        }
        assert_eq!(
            SynthPreset::value_variants().len(),
            synth::Preset::ALL.len()
        );
        for p in SynthPreset::value_variants() {
            let flag = p.to_possible_value().unwrap();
            assert_eq!(synth::Preset::from_name(flag.get_name()), Some(p.0));
        }
        let from: Vec<String> = ImportFrom::value_variants()
            .iter()
            .map(|f| f.to_possible_value().unwrap().get_name().to_string())
            .collect();
        assert_eq!(from, traces::import::Source::NAMES);
        for f in ImportFrom::value_variants() {
            let name = f.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(name.parse::<traces::import::Source>(), Ok((*f).into()));
        }
        assert_eq!(
            PartitionArg::value_variants()
                .iter()
                .map(|p| p.to_possible_value().unwrap().get_name().to_string())
                .collect::<Vec<_>>(),
            ["global", "per-layer"]
        );
    }
}
