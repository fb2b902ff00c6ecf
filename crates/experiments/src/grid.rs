//! A grid of configurations: `key=v1,v2;key=v3` (the `--grid` text), expanded to its points.
//!
//! Keys: `ram` and `gpu` (memory the plan may use there, as bytes or with a unit: `3GiB`,
//! `512MiB`; the profile's own when left out), `policy` (expert cache policy), `prefetch`
//! (expert prefetch) and `qd` (storage requests in flight). A key left out takes one default
//! value. Points are the cross product, in the order the keys are listed above and the values
//! as written.

use policy::cache::RunPolicy;
use policy::prefetch::ExpertPrefetch;
use std::fmt;

/// A grid's name for an expert cache policy: `sim --policy`'s `static` for the plan's own
/// (`run --cache-policy static-frequency`), else the policy's name. Policies that need the
/// future (Belady) cannot run, so the grid offers only [`RunPolicy`]s.
pub fn policy_name(p: RunPolicy) -> &'static str {
    match p {
        RunPolicy::StaticFrequency => "static",
        p => p.name(),
    }
}

/// The policy [`policy_name`] calls `name`.
fn policy_from_name(name: &str) -> Option<RunPolicy> {
    match name {
        "static" => Some(RunPolicy::StaticFrequency),
        // The plan's own goes by the grid's name only.
        "static-frequency" => None,
        name => RunPolicy::from_name(name),
    }
}

/// One configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// RAM the plan may use (after the profile's OS reserve); None: the profile's.
    pub ram_bytes: Option<u64>,
    /// GPU memory the plan may use (the working set); None: the profile's.
    pub gpu_bytes: Option<u64>,
    pub policy: RunPolicy,
    pub prefetch: ExpertPrefetch,
    /// Storage requests in flight; None: the plan's.
    pub queue_depth: Option<u32>,
}

impl Point {
    /// The grid's name for the point's policy ([`policy_name`]).
    pub fn policy_name(&self) -> &'static str {
        policy_name(self.policy)
    }

    /// A short name, unique within a grid: `ram=3GiB policy=lru prefetch=none qd=4` (keys at
    /// the profile's or plan's value are left out).
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = self.ram_bytes {
            parts.push(format!("ram={}", format_bytes(b)));
        }
        if let Some(b) = self.gpu_bytes {
            parts.push(format!("gpu={}", format_bytes(b)));
        }
        parts.push(format!("policy={}", self.policy_name()));
        parts.push(format!("prefetch={}", self.prefetch.name()));
        if let Some(q) = self.queue_depth {
            parts.push(format!("qd={q}"));
        }
        parts.join(" ")
    }
}

/// What is wrong with a `--grid` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    #[error("{part:?} is not key=values (keys: ram, gpu, policy, prefetch, qd)")]
    NotKeyValues { part: String },
    #[error("unknown key {key:?} (keys: ram, gpu, policy, prefetch, qd)")]
    UnknownKey { key: String },
    #[error("key {key:?} appears twice")]
    DuplicateKey { key: String },
    #[error("{key}: no values")]
    NoValues { key: String },
    #[error("{key}: {value:?} appears twice")]
    DuplicateValue { key: String, value: String },
    #[error("{key}: {value:?} is not one of {expected}")]
    BadValue {
        key: &'static str,
        value: String,
        expected: String,
    },
    #[error("the grid has {points} points, more than {MAX_POINTS}")]
    TooManyPoints { points: usize },
}

/// More points than anyone runs for real (each is a model load and a decode).
pub const MAX_POINTS: usize = 4096;

/// The points of `text`, e.g. `ram=2GiB,3GiB;policy=static,lru;prefetch=none,oracle;qd=4`.
pub fn parse(text: &str) -> Result<Vec<Point>, GridError> {
    let mut rams: Option<Vec<Option<u64>>> = None;
    let mut gpus: Option<Vec<Option<u64>>> = None;
    let mut policies: Option<Vec<RunPolicy>> = None;
    let mut prefetches: Option<Vec<ExpertPrefetch>> = None;
    let mut qds: Option<Vec<Option<u32>>> = None;
    for part in key_values(text) {
        let (key, values) = part?;
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(GridError::DuplicateValue {
                    key: key.to_string(),
                    value: v.to_string(),
                });
            }
        }
        let dup = || GridError::DuplicateKey {
            key: key.to_string(),
        };
        match key {
            "ram" => set(
                &mut rams,
                parse_all(&values, |v| parse_bytes("ram", v).map(Some)),
            )
            .ok_or_else(dup)?,
            "gpu" => set(
                &mut gpus,
                parse_all(&values, |v| parse_bytes("gpu", v).map(Some)),
            )
            .ok_or_else(dup)?,
            "policy" => set(&mut policies, parse_all(&values, parse_policy)).ok_or_else(dup)?,
            "prefetch" => {
                set(&mut prefetches, parse_all(&values, parse_prefetch)).ok_or_else(dup)?
            }
            "qd" => set(&mut qds, parse_all(&values, |v| parse_qd(v).map(Some))).ok_or_else(dup)?,
            _ => {
                return Err(GridError::UnknownKey {
                    key: key.to_string(),
                })
            }
        }?;
    }
    let rams = rams.unwrap_or_else(|| vec![None]);
    let gpus = gpus.unwrap_or_else(|| vec![None]);
    let policies = policies.unwrap_or_else(|| vec![RunPolicy::StaticFrequency]);
    let prefetches = prefetches.unwrap_or_else(|| vec![ExpertPrefetch::None]);
    let qds = qds.unwrap_or_else(|| vec![None]);
    let points = rams.len() * gpus.len() * policies.len() * prefetches.len() * qds.len();
    if points > MAX_POINTS {
        return Err(GridError::TooManyPoints { points });
    }
    let mut out = Vec::with_capacity(points);
    for &ram_bytes in &rams {
        for &gpu_bytes in &gpus {
            for &policy in &policies {
                for &prefetch in &prefetches {
                    for &queue_depth in &qds {
                        out.push(Point {
                            ram_bytes,
                            gpu_bytes,
                            policy,
                            prefetch,
                            queue_depth,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// What is wrong with a grid text's shape, before any key is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SplitError {
    NotKeyValues { part: String },
    DuplicateKey { key: String },
    NoValues { key: String },
}

impl From<SplitError> for GridError {
    fn from(e: SplitError) -> GridError {
        match e {
            SplitError::NotKeyValues { part } => GridError::NotKeyValues { part },
            SplitError::DuplicateKey { key } => GridError::DuplicateKey { key },
            SplitError::NoValues { key } => GridError::NoValues { key },
        }
    }
}

/// The `key=v1,v2` parts of a `;`-separated grid text, in order, values trimmed and empty ones
/// dropped: the shape `validate`'s and `sweep`'s grids share. Parts come one at a time, so an
/// error is the first part's that has one.
pub(crate) fn key_values(
    text: &str,
) -> impl Iterator<Item = Result<(&str, Vec<&str>), SplitError>> {
    let mut seen: Vec<&str> = Vec::new();
    text.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(move |part| {
            let (key, values) = part
                .split_once('=')
                .ok_or_else(|| SplitError::NotKeyValues {
                    part: part.to_string(),
                })?;
            let key = key.trim();
            if seen.contains(&key) {
                return Err(SplitError::DuplicateKey {
                    key: key.to_string(),
                });
            }
            seen.push(key);
            let values: Vec<&str> = values
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                return Err(SplitError::NoValues {
                    key: key.to_string(),
                });
            }
            Ok((key, values))
        })
}

/// Sets `slot` to the parsed values unless it was set before (None: a duplicate key).
fn set<T>(slot: &mut Option<T>, parsed: Result<T, GridError>) -> Option<Result<(), GridError>> {
    if slot.is_some() {
        return None;
    }
    Some(parsed.map(|v| *slot = Some(v)))
}

fn parse_all<T>(
    values: &[&str],
    f: impl Fn(&str) -> Result<T, GridError>,
) -> Result<Vec<T>, GridError> {
    values.iter().map(|v| f(v)).collect()
}

fn parse_policy(v: &str) -> Result<RunPolicy, GridError> {
    policy_from_name(v).ok_or_else(|| GridError::BadValue {
        key: "policy",
        value: v.to_string(),
        expected: RunPolicy::ALL.map(policy_name).join(", "),
    })
}

fn parse_prefetch(v: &str) -> Result<ExpertPrefetch, GridError> {
    ExpertPrefetch::parse(v).ok_or_else(|| GridError::BadValue {
        key: "prefetch",
        value: v.to_string(),
        expected: ExpertPrefetch::ALL.map(ExpertPrefetch::name).join(", "),
    })
}

fn parse_qd(v: &str) -> Result<u32, GridError> {
    v.parse::<u32>()
        .ok()
        .filter(|q| (1..=1024).contains(q))
        .ok_or_else(|| GridError::BadValue {
            key: "qd",
            value: v.to_string(),
            expected: "an integer 1..=1024".into(),
        })
}

/// Bytes as every hypura option reads them ([`model::units::parse_bytes`]: `3GiB`, `512MiB`,
/// `2GB`, `2000000000`), at least one and at most 2^50 (a petabyte of plan).
pub fn parse_bytes(key: &'static str, v: &str) -> Result<u64, GridError> {
    match model::units::parse_bytes(v) {
        Ok(b) if (1..=1u64 << 50).contains(&b) => Ok(b),
        _ => Err(GridError::BadValue {
            key,
            value: v.to_string(),
            expected: "a byte count such as 3GiB, 512MiB or 2000000000 (at most 2^50)".into(),
        }),
    }
}

/// `3GiB`, `1.5GiB` or `512MiB` where exact enough, else bytes.
pub fn format_bytes(b: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if b >= scale {
            let x = b as f64 / scale as f64;
            if (x * 100.0).fract() == 0.0 || b % (scale / 100).max(1) == 0 {
                return format!("{}{unit}", trim(x));
            }
        }
    }
    b.to_string()
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_product_in_key_order() {
        let p = parse("qd=1,4; policy=static,lru; ram=2GiB").unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].ram_bytes, Some(2 << 30));
        assert_eq!(p[0].gpu_bytes, None);
        assert_eq!(
            p.iter()
                .map(|p| (p.policy, p.queue_depth))
                .collect::<Vec<_>>(),
            vec![
                (RunPolicy::StaticFrequency, Some(1)),
                (RunPolicy::StaticFrequency, Some(4)),
                (RunPolicy::Lru, Some(1)),
                (RunPolicy::Lru, Some(4)),
            ]
        );
        assert!(p.iter().all(|p| p.prefetch == ExpertPrefetch::None));
    }

    #[test]
    fn empty_grid_is_one_default_point() {
        let p = parse("").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].ram_bytes, None);
        assert_eq!(p[0].queue_depth, None);
    }

    #[test]
    fn policy_names_are_the_grid_s() {
        let names: Vec<&str> = RunPolicy::ALL.into_iter().map(policy_name).collect();
        assert_eq!(names, ["static", "lru", "lfu", "lfru", "arc", "pinned-lru"]);
        for p in RunPolicy::ALL {
            assert_eq!(parse_policy(policy_name(p)), Ok(p));
        }
        assert!(parse_policy("static-frequency").is_err());
        assert!(parse_policy("belady").is_err());
    }

    #[test]
    fn bad_grids_name_what_is_wrong() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert_eq!(
            e("policy=belady"),
            "policy: \"belady\" is not one of static, lru, lfu, lfru, arc, pinned-lru"
        );
        assert_eq!(
            e("prefetch=all"),
            "prefetch: \"all\" is not one of none, coactivation, oracle"
        );
        assert!(e("cache=1").contains("unknown key \"cache\""));
        assert!(e("qd=0").contains("qd: \"0\""));
        assert!(e("qd=1;qd=2").contains("appears twice"));
        assert!(e("qd=1,1").contains("\"1\" appears twice"));
        assert!(e("qd").contains("not key=values"));
        assert!(e("qd=").contains("no values"));
        assert!(e("ram=-1GiB").contains("ram: \"-1GiB\""));
        assert!(e("gpu=2PiB").contains("gpu: \"2PiB\""));
        assert!(e("ram=nan").contains("ram"));
        let many = format!(
            "ram={}",
            (1..=5000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(e(&many).contains("more than 4096"));
    }

    #[test]
    fn byte_units() {
        assert_eq!(parse_bytes("ram", "3GiB").unwrap(), 3 << 30);
        assert_eq!(parse_bytes("ram", "1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("ram", "2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_bytes("ram", "4096").unwrap(), 4096);
        assert_eq!(format_bytes(3 << 30), "3GiB");
        assert_eq!(format_bytes(3 << 29), "1.5GiB");
        assert_eq!(format_bytes(100), "100");
    }
}
