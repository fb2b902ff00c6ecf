//! Split GGUF models (`name-00001-of-00003.gguf`): finding the parts and checking they belong together.

use super::error::{GgufError, GgufErrorKind as K};
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
    Some((1..=n).map(|i| dir.join(format!("{prefix}-{i:05}-of-{n:05}.gguf"))).collect())
}

/// Opens a model: a single GGUF, or every part of a split set given any one of its parts.
pub fn open_model(path: &Path) -> Result<GgufModel, GgufError> {
    let first = GgufHeader::open(path)?;
    let count = first.metadata.get_u64("split.count").unwrap_or(1);
    if count <= 1 {
        return Ok(GgufModel { parts: vec![first] });
    }
    let fail = |p: &Path, msg: String| GgufError { path: p.to_path_buf(), offset: None, kind: K::Split(msg) };
    let paths = split_paths(path).ok_or_else(|| {
        fail(path, format!("split.count is {count}, but the file name is not of the form NAME-00001-of-{count:05}.gguf"))
    })?;
    if paths.len() as u64 != count {
        return Err(fail(path, format!("split.count is {count}, but the file name says {} parts", paths.len())));
    }
    let mut parts = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        let h = if p == path { first.clone() } else { GgufHeader::open(p)? };
        let no = h.metadata.get_u64("split.no");
        if no != Some(i as u64) {
            return Err(fail(p, format!("split.no is {no:?}, expected {i} for part {} of {count}", i + 1)));
        }
        parts.push(h);
    }
    if let Some(total) = parts[0].metadata.get_u64("split.tensors.count") {
        let found: u64 = parts.iter().map(|h| h.tensors.len() as u64).sum();
        if found != total {
            return Err(fail(&paths[0], format!("split.tensors.count is {total}, but the parts hold {found} tensors")));
        }
    }
    let mut names = std::collections::HashSet::new();
    for h in &parts {
        for t in &h.tensors {
            if !names.insert(t.name.as_str()) {
                return Err(GgufError { path: h.path.clone(), offset: None, kind: K::DuplicateTensor(t.name.clone()) });
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
