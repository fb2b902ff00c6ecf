//! Split GGUF models (`name-00001-of-00003.gguf`): finding the parts and checking they belong together.

use super::error::{GgufError, GgufErrorKind as K, SplitError};
use super::read::GgufHeader;
use std::path::{Path, PathBuf};

/// A model's header(s): one per split part, in part order (a single file is one part).
#[derive(Debug, Clone)]
pub struct GgufModel {
    pub parts: Vec<GgufHeader>,
}

/// For `dir/name-0000K-of-0000N.gguf`, all N part paths; `None` if the name is not a split name.
pub fn split_paths(path: &Path) -> Option<Vec<PathBuf>> {
    let file = path.file_name()?.to_str()?;
    let stem = file.strip_suffix(".gguf")?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, _index) = rest.rsplit_once('-')?;
    if count.len() != 5 || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = count.parse().ok()?;
    if n == 0 {
        return None;
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    Some(
        (1..=n)
            .map(|i| dir.join(format!("{prefix}-{i:05}-of-{n:05}.gguf")))
            .collect(),
    )
}

/// Opens a model: a single GGUF, or every part of a split set given any one of its parts.
pub fn open_model(path: &Path) -> Result<GgufModel, GgufError> {
    let first = GgufHeader::open(path)?;
    let fail = |p: &Path, e: SplitError| GgufError {
        path: p.to_path_buf(),
        offset: None,
        kind: K::Split(e),
    };
    let count = match first.metadata.get("split.count") {
        None => 1,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| fail(path, SplitError::BadCount(v.value_type())))?,
    };
    if count <= 1 {
        return Ok(GgufModel { parts: vec![first] });
    }
    let paths = split_paths(path).ok_or_else(|| fail(path, SplitError::NameNotSplit { count }))?;
    if paths.len() as u64 != count {
        return Err(fail(
            path,
            SplitError::PartCountMismatch {
                count,
                named: paths.len() as u64,
            },
        ));
    }
    let mut given = Some(first);
    let mut parts = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        let h = match given.take_if(|_| p == path) {
            Some(h) => h,
            None => GgufHeader::open(p).map_err(|e| match e.kind {
                K::Io(io) if !p.exists() => fail(
                    p,
                    SplitError::PartMissing {
                        part: i as u64 + 1,
                        count,
                        io,
                    },
                ),
                _ => e,
            })?,
        };
        match h.metadata.get_u64("split.no") {
            Some(no) if no == i as u64 => {}
            found => {
                return Err(fail(
                    p,
                    SplitError::BadSplitNo {
                        found,
                        part: i as u64 + 1,
                        count,
                    },
                ));
            }
        }
        let part_count = h.metadata.get_u64("split.count");
        if part_count != Some(count) {
            return Err(fail(
                p,
                SplitError::CountDisagrees {
                    found: part_count,
                    count,
                    given: path.to_path_buf(),
                },
            ));
        }
        parts.push(h);
    }
    if let Some(total) = parts[0].metadata.get_u64("split.tensors.count") {
        let found: u64 = parts.iter().map(|h| h.tensors.len() as u64).sum();
        if found != total {
            return Err(fail(
                &paths[0],
                SplitError::TensorCount {
                    declared: total,
                    count,
                    found,
                },
            ));
        }
    }
    let mut names = std::collections::HashSet::new();
    for h in &parts {
        for t in &h.tensors {
            if !names.insert(t.name.as_str()) {
                return Err(GgufError {
                    path: h.path.clone(),
                    offset: None,
                    kind: K::DuplicateTensor(t.name.clone()),
                });
            }
        }
    }
    Ok(GgufModel { parts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names() {
        let p = split_paths(Path::new("/m/llama-70b-00002-of-00003.gguf")).unwrap();
        assert_eq!(p[0], Path::new("/m/llama-70b-00001-of-00003.gguf"));
        assert_eq!(p[2], Path::new("/m/llama-70b-00003-of-00003.gguf"));
        assert!(split_paths(Path::new("/m/model.gguf")).is_none());
        assert!(split_paths(Path::new("/m/x-00001-of-3.gguf")).is_none());
    }
}
