//! A sweep's grid: `key=values;key=values` (the `--grid` text of `hypura sweep`), expanded to
//! its configurations.
//!
//! Keys: `ram`, `gpu` (memory the plan may use there: one plan is solved per pair), `policy`
//! (`static`, the plan's own cache, or a cache policy: lru, lfu, lfru, arc, pinned-lru, belady),
//! `cache` (expert cache bytes of a cache policy), `partition` (global, per-layer), `prefetch`
//! (expert prefetch: none, coactivation, oracle), `depth` (layers ahead that streamed dense
//! weights are read) and `qd` (storage requests in flight). Values are a comma list; bytes also
//! take `A..B:N`, N sizes from A to B evenly spaced on a log scale (cache curves are read on
//! one) rounded to whole MiB, and integers `A..B`, every integer from A to B. A key left out
//! takes one default: the profile's memory, the plan's cache bytes, depth and queue depth,
//! policy `lru`, partition `global`, prefetch `none`.
//!
//! `static` keeps the plan's own experts, so `cache` and `partition` do not apply to it: a grid
//! gives it one configuration per value of the other keys, not one per cache size.

use crate::grid::{format_bytes, key_values, parse_bytes, SplitError};
use policy::cache::{HotSet, Partition, Policy};
use policy::prefetch::ExpertPrefetch;
use sim::decode::DecodePolicy;
use std::fmt;

/// Sweeps larger than this are refused before any work (a typing slip in a range).
pub const MAX_CONFIGS: usize = 1 << 20;

/// Values one key may expand to.
const MAX_VALUES: usize = 4096;

/// An expert cache policy of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SweepPolicy {
    /// The plan's own experts, loaded at start and never evicted.
    Static,
    Lru,
    Lfu,
    Lfru,
    Arc,
    /// The plan's memory-tier experts pinned, LRU over the rest.
    PinnedLru,
    /// The offline optimum (needs the future: simulated only).
    Belady,
}

impl SweepPolicy {
    pub const ALL: [SweepPolicy; 7] = [
        SweepPolicy::Static,
        SweepPolicy::Lru,
        SweepPolicy::Lfu,
        SweepPolicy::Lfru,
        SweepPolicy::Arc,
        SweepPolicy::PinnedLru,
        SweepPolicy::Belady,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SweepPolicy::Static => "static",
            p => p.cache_policy().map_or("static", |c| c.name()),
        }
    }

    /// The cache policy (None for the plan's own); pinned-lru's hot set is filled from the
    /// plan by the simulator.
    pub fn cache_policy(self) -> Option<Policy> {
        Some(match self {
            SweepPolicy::Static => return None,
            SweepPolicy::Lru => Policy::Lru,
            SweepPolicy::Lfu => Policy::Lfu,
            SweepPolicy::Lfru => Policy::Lfru,
            SweepPolicy::Arc => Policy::Arc,
            SweepPolicy::PinnedLru => Policy::PinnedLru(HotSet(Vec::new())),
            SweepPolicy::Belady => Policy::Belady,
        })
    }
}

/// A partition's name in grids and tables.
pub fn partition_name(p: Partition) -> &'static str {
    match p {
        Partition::Global => "global",
        Partition::PerLayer => "per-layer",
    }
}

/// One configuration of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// RAM the plan may use (after the profile's OS reserve); None: the profile's.
    pub ram_bytes: Option<u64>,
    /// GPU memory the plan may use; None: the profile's.
    pub gpu_bytes: Option<u64>,
    pub policy: SweepPolicy,
    /// Expert cache bytes (cache policies); None: the plan's expert cache.
    pub cache_bytes: Option<u64>,
    /// None for `static`.
    pub partition: Option<Partition>,
    pub prefetch: ExpertPrefetch,
    /// Dense prefetch depth; None: the plan's.
    pub depth: Option<u32>,
    /// Storage requests in flight; None: the plan's.
    pub queue_depth: Option<u32>,
}

impl Config {
    /// The configurations that share a plan and a cache replay have equal keys: memory
    /// budgets, policy, cache bytes and partition.
    pub fn replay_key(&self) -> ReplayKey {
        ReplayKey {
            ram_bytes: self.ram_bytes,
            gpu_bytes: self.gpu_bytes,
            policy: self.policy,
            cache_bytes: self.cache_bytes,
            partition: self.partition.map(partition_name),
        }
    }

    /// The simulator's policy, with the plan's expert cache bytes where the grid gave none.
    pub fn decode_policy(&self, plan_cache_bytes: u64) -> DecodePolicy {
        match self.policy.cache_policy() {
            None => DecodePolicy::Static,
            Some(policy) => DecodePolicy::Cache {
                policy,
                capacity_bytes: self.cache_bytes.unwrap_or(plan_cache_bytes),
                partition: self.partition.unwrap_or(Partition::Global),
            },
        }
    }

    /// `policy=lru cache=2GiB partition=global prefetch=none` and the keys the grid set; the
    /// same text for the same configuration (part of its id).
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = self.ram_bytes {
            parts.push(format!("ram={}", format_bytes(b)));
        }
        if let Some(b) = self.gpu_bytes {
            parts.push(format!("gpu={}", format_bytes(b)));
        }
        parts.push(format!("policy={}", self.policy.name()));
        if let Some(b) = self.cache_bytes {
            parts.push(format!("cache={}", format_bytes(b)));
        }
        if let Some(p) = self.partition {
            parts.push(format!("partition={}", partition_name(p)));
        }
        parts.push(format!("prefetch={}", self.prefetch.name()));
        if let Some(d) = self.depth {
            parts.push(format!("depth={d}"));
        }
        if let Some(q) = self.queue_depth {
            parts.push(format!("qd={q}"));
        }
        parts.join(" ")
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// What configurations of one replay share (see [`Config::replay_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplayKey {
    pub ram_bytes: Option<u64>,
    pub gpu_bytes: Option<u64>,
    pub policy: SweepPolicy,
    pub cache_bytes: Option<u64>,
    pub partition: Option<&'static str>,
}

/// What is wrong with a sweep's `--grid` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepGridError {
    #[error("{part:?} is not key=values (keys: {KEYS})")]
    NotKeyValues { part: String },
    #[error("unknown key {key:?} (keys: {KEYS})")]
    UnknownKey { key: String },
    #[error("key {key:?} appears twice")]
    DuplicateKey { key: String },
    #[error("{key}: no values")]
    NoValues { key: String },
    #[error("{key}: {value:?} appears twice")]
    DuplicateValue { key: String, value: String },
    #[error("{key}: {value:?} is not {expected}")]
    BadValue {
        key: &'static str,
        value: String,
        expected: String,
    },
    #[error("the grid has {configs} configurations, more than {MAX_CONFIGS}")]
    TooMany { configs: usize },
}

const KEYS: &str = "ram, gpu, policy, cache, partition, prefetch, depth, qd";

impl From<SplitError> for SweepGridError {
    fn from(e: SplitError) -> SweepGridError {
        match e {
            SplitError::NotKeyValues { part } => SweepGridError::NotKeyValues { part },
            SplitError::DuplicateKey { key } => SweepGridError::DuplicateKey { key },
            SplitError::NoValues { key } => SweepGridError::NoValues { key },
        }
    }
}

/// The values of each key, in the order written.
#[derive(Debug, Clone, PartialEq)]
struct Axes {
    ram: Vec<Option<u64>>,
    gpu: Vec<Option<u64>>,
    policy: Vec<SweepPolicy>,
    cache: Vec<Option<u64>>,
    partition: Vec<Partition>,
    prefetch: Vec<ExpertPrefetch>,
    depth: Vec<Option<u32>>,
    qd: Vec<Option<u32>>,
}

/// The configurations of `text`, e.g. `policy=lru,belady;cache=1GiB..16GiB:8;depth=0..2`:
/// the cross product in the key order of the module doc (`ram` outermost, `qd` innermost),
/// values as written, `static` once per value of the keys that apply to it.
pub fn parse(text: &str) -> Result<Vec<Config>, SweepGridError> {
    let axes = axes(text)?;
    let dynamic = axes
        .policy
        .iter()
        .filter(|p| **p != SweepPolicy::Static)
        .count();
    let statics = axes.policy.len() - dynamic;
    let per_plan = (dynamic * axes.cache.len() * axes.partition.len() + statics)
        * axes.prefetch.len()
        * axes.depth.len()
        * axes.qd.len();
    let configs = per_plan * axes.ram.len() * axes.gpu.len();
    if configs > MAX_CONFIGS {
        return Err(SweepGridError::TooMany { configs });
    }
    let mut out = Vec::with_capacity(configs);
    for &ram_bytes in &axes.ram {
        for &gpu_bytes in &axes.gpu {
            for &policy in &axes.policy {
                let (caches, partitions): (Vec<Option<u64>>, Vec<Option<Partition>>) =
                    if policy == SweepPolicy::Static {
                        (vec![None], vec![None])
                    } else {
                        (
                            axes.cache.clone(),
                            axes.partition.iter().map(|&p| Some(p)).collect(),
                        )
                    };
                for &cache_bytes in &caches {
                    for &partition in &partitions {
                        for &prefetch in &axes.prefetch {
                            for &depth in &axes.depth {
                                for &queue_depth in &axes.qd {
                                    out.push(Config {
                                        ram_bytes,
                                        gpu_bytes,
                                        policy,
                                        cache_bytes,
                                        partition,
                                        prefetch,
                                        depth,
                                        queue_depth,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

fn axes(text: &str) -> Result<Axes, SweepGridError> {
    let mut axes = Axes {
        ram: vec![None],
        gpu: vec![None],
        policy: vec![SweepPolicy::Lru],
        cache: vec![None],
        partition: vec![Partition::Global],
        prefetch: vec![ExpertPrefetch::None],
        depth: vec![None],
        qd: vec![None],
    };
    for part in key_values(text) {
        let (key, values) = part?;
        match key {
            "ram" => axes.ram = some(bytes_values("ram", &values)?),
            "gpu" => axes.gpu = some(bytes_values("gpu", &values)?),
            "cache" => axes.cache = some(bytes_values("cache", &values)?),
            "policy" => axes.policy = names("policy", &values, parse_policy)?,
            "partition" => axes.partition = names("partition", &values, parse_partition)?,
            "prefetch" => axes.prefetch = names("prefetch", &values, parse_prefetch)?,
            "depth" => axes.depth = some(int_values("depth", &values, 0, 512)?),
            "qd" => axes.qd = some(int_values("qd", &values, 1, 1024)?),
            _ => {
                return Err(SweepGridError::UnknownKey {
                    key: key.to_string(),
                })
            }
        }
    }
    Ok(axes)
}

fn some<T>(v: Vec<T>) -> Vec<Option<T>> {
    v.into_iter().map(Some).collect()
}

/// Fails on a value that appears twice (after ranges are expanded).
fn distinct<T: PartialEq + fmt::Display>(key: &str, v: Vec<T>) -> Result<Vec<T>, SweepGridError> {
    for (i, x) in v.iter().enumerate() {
        if v[..i].contains(x) {
            return Err(SweepGridError::DuplicateValue {
                key: key.to_string(),
                value: x.to_string(),
            });
        }
    }
    Ok(v)
}

fn names<T: Copy + PartialEq>(
    key: &str,
    values: &[&str],
    parse: fn(&str) -> Result<T, SweepGridError>,
) -> Result<Vec<T>, SweepGridError> {
    let mut out = Vec::new();
    for v in values {
        let x = parse(v)?;
        if out.contains(&x) {
            return Err(SweepGridError::DuplicateValue {
                key: key.to_string(),
                value: v.to_string(),
            });
        }
        out.push(x);
    }
    Ok(out)
}

fn parse_policy(v: &str) -> Result<SweepPolicy, SweepGridError> {
    SweepPolicy::ALL
        .into_iter()
        .find(|p| p.name() == v)
        .ok_or_else(|| SweepGridError::BadValue {
            key: "policy",
            value: v.to_string(),
            expected: one_of(SweepPolicy::ALL.map(SweepPolicy::name)),
        })
}

fn parse_partition(v: &str) -> Result<Partition, SweepGridError> {
    [Partition::Global, Partition::PerLayer]
        .into_iter()
        .find(|p| partition_name(*p) == v)
        .ok_or_else(|| SweepGridError::BadValue {
            key: "partition",
            value: v.to_string(),
            expected: one_of(["global", "per-layer"]),
        })
}

fn parse_prefetch(v: &str) -> Result<ExpertPrefetch, SweepGridError> {
    ExpertPrefetch::parse(v).ok_or_else(|| SweepGridError::BadValue {
        key: "prefetch",
        value: v.to_string(),
        expected: one_of(ExpertPrefetch::ALL.map(ExpertPrefetch::name)),
    })
}

fn one_of<const N: usize>(names: [&str; N]) -> String {
    format!("one of {}", names.join(", "))
}

/// Byte values: `3GiB`, or `A..B:N` (N log-spaced sizes, whole MiB).
fn bytes_values(key: &'static str, values: &[&str]) -> Result<Vec<u64>, SweepGridError> {
    let mut out = Vec::new();
    for v in values {
        match v.split_once("..") {
            None => out.push(one_bytes(key, v)?),
            Some((a, rest)) => out.extend(log_range(key, v, a, rest)?),
        }
        if out.len() > MAX_VALUES {
            return Err(too_many_values(key, v));
        }
    }
    distinct(key, out.into_iter().map(Bytes).collect())
        .map(|v| v.into_iter().map(|b| b.0).collect())
}

/// Bytes displayed as the grid writes them (for duplicate errors).
#[derive(PartialEq)]
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_bytes(self.0))
    }
}

fn one_bytes(key: &'static str, v: &str) -> Result<u64, SweepGridError> {
    parse_bytes(key, v).map_err(|_| SweepGridError::BadValue {
        key,
        value: v.to_string(),
        expected:
            "a byte count such as 3GiB, 512MiB or 2000000000 (at most 2^50), or a range A..B:N"
                .into(),
    })
}

fn log_range(key: &'static str, v: &str, a: &str, rest: &str) -> Result<Vec<u64>, SweepGridError> {
    let bad = |why: &str| SweepGridError::BadValue {
        key,
        value: v.to_string(),
        expected: format!("a range A..B:N of N sizes from A to B ({why})"),
    };
    let (b, n) = rest
        .split_once(':')
        .ok_or_else(|| bad("the :N is missing"))?;
    let (lo, hi) = (one_bytes(key, a.trim())?, one_bytes(key, b.trim())?);
    let n: usize = n
        .trim()
        .parse()
        .ok()
        .filter(|n| (2..=MAX_VALUES).contains(n))
        .ok_or_else(|| bad("N is an integer 2..=4096"))?;
    if lo >= hi {
        return Err(bad("A must be less than B"));
    }
    const MIB: f64 = (1u64 << 20) as f64;
    let (l, h) = ((lo as f64).ln(), (hi as f64).ln());
    let mut out: Vec<u64> = (0..n)
        .map(|i| {
            let x = (l + (h - l) * i as f64 / (n - 1) as f64).exp();
            match i {
                0 => lo,
                i if i == n - 1 => hi,
                _ => ((x / MIB).round() * MIB).max(1.0) as u64,
            }
        })
        .collect();
    out.dedup();
    if out.len() < n {
        return Err(bad(
            "the sizes, rounded to whole MiB, repeat: use fewer or a wider range",
        ));
    }
    Ok(out)
}

/// Integers `lo..=hi`: a list, or `A..B` for every integer from A to B.
fn int_values(
    key: &'static str,
    values: &[&str],
    lo: u32,
    hi: u32,
) -> Result<Vec<u32>, SweepGridError> {
    let bad = |v: &str| SweepGridError::BadValue {
        key,
        value: v.to_string(),
        expected: format!("an integer {lo}..={hi} or a range A..B of them"),
    };
    let one = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|x| (lo..=hi).contains(x))
            .ok_or_else(|| bad(v))
    };
    let mut out = Vec::new();
    for v in values {
        match v.split_once("..") {
            None => out.push(one(v)?),
            Some((a, b)) => {
                let (a, b) = (one(a)?, one(b)?);
                if a > b {
                    return Err(bad(v));
                }
                out.extend(a..=b);
            }
        }
        if out.len() > MAX_VALUES {
            return Err(too_many_values(key, v));
        }
    }
    distinct(key, out)
}

fn too_many_values(key: &'static str, v: &str) -> SweepGridError {
    SweepGridError::BadValue {
        key,
        value: v.to_string(),
        expected: format!("at most {MAX_VALUES} values"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_is_one_configuration_per_other_value() {
        let c =
            parse("policy=static,lru;cache=1GiB,2GiB;partition=global,per-layer;qd=1,4").unwrap();
        // static: 2 (qd); lru: 2 caches x 2 partitions x 2 qd.
        assert_eq!(c.len(), 2 + 8);
        assert!(c[..2]
            .iter()
            .all(|c| c.cache_bytes.is_none() && c.partition.is_none()));
        assert_eq!(
            c[2].label(),
            "policy=lru cache=1GiB partition=global prefetch=none qd=1"
        );
        let labels: std::collections::HashSet<String> = c.iter().map(Config::label).collect();
        assert_eq!(labels.len(), c.len(), "labels are unique");
    }

    #[test]
    fn ranges_expand() {
        let c = parse("cache=1GiB..16GiB:5;depth=0..2").unwrap();
        let caches: Vec<u64> = c
            .iter()
            .step_by(3)
            .map(|c| c.cache_bytes.unwrap())
            .collect();
        // 1, 2, 4, 8, 16 GiB: powers of two on a log scale.
        assert_eq!(caches, [1, 2, 4, 8, 16].map(|g| g << 30));
        let depths: Vec<u32> = c[..3].iter().map(|c| c.depth.unwrap()).collect();
        assert_eq!(depths, [0, 1, 2]);
        let uneven = parse("cache=1GiB..10GiB:3").unwrap();
        // sqrt(10) GiB = 3238.2 MiB, rounded to whole MiB.
        assert_eq!(uneven[1].cache_bytes, Some(3238 << 20));
    }

    #[test]
    fn defaults_are_one_lru_configuration() {
        let c = parse(" ").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].label(), "policy=lru partition=global prefetch=none");
    }

    #[test]
    fn bad_grids_name_the_key_and_value() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert_eq!(
            e("policy=mru"),
            "policy: \"mru\" is not one of static, lru, lfu, lfru, arc, pinned-lru, belady"
        );
        assert!(
            e("cache=2GiB..1GiB:3").contains("A must be less than B"),
            "{}",
            e("cache=2GiB..1GiB:3")
        );
        assert!(e("cache=1GiB..2GiB").contains(":N is missing"));
        assert!(e("cache=1MiB..2MiB:8").contains("repeat"));
        assert!(e("cache=1GiB..2GiB:1").contains("2..=4096"));
        assert!(e("depth=3..1").contains("depth: \"3..1\""));
        assert!(e("depth=0..600").contains("0..=512"));
        assert!(e("qd=0").contains("qd: \"0\""));
        assert!(e("depth=1,0..2").contains("\"1\" appears twice"));
        assert!(e("cache=1GiB,1024MiB").contains("\"1GiB\" appears twice"));
        assert!(e("size=1").contains("unknown key \"size\""));
        assert!(e("qd=1;qd=2").contains("appears twice"));
        assert!(e("qd").contains("not key=values"));
        assert!(e("qd=").contains("no values"));
        assert!(e("cache=1GiB..1TiB:4096;depth=0..512;qd=1..1024").contains("more than"));
    }
}
