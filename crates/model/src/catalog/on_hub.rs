//! Where on the Hugging Face Hub a catalog model's published GGUF is ([`HubLocation`]), and which
//! files of a repository make it up ([`pick_gguf`]): one file, or every part of a split set.
//! Nothing here touches the network; the `hub` crate lists and downloads.

use super::models::Published;

/// A published GGUF's place on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubLocation {
    /// `org/name`.
    pub repo: String,
    /// Branch, tag or commit (`main` for every catalog entry).
    pub revision: String,
    pub within: Within,
}

/// What of the repository the catalog names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Within {
    /// One file, by path.
    File(String),
    /// A folder holding the parts of a split set.
    Folder(String),
    /// The repository: the GGUF whose name carries the quantization (`...Q5_K_M.gguf`).
    Repo,
}

impl HubLocation {
    /// Reads `https://huggingface.co/ORG/NAME[/(blob|tree)/REV/PATH]`.
    pub fn parse(url: &str) -> Option<HubLocation> {
        let rest = url.strip_prefix("https://huggingface.co/")?;
        let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let repo = match parts.as_slice() {
            [org, name, ..] if !org.is_empty() && !name.is_empty() => format!("{org}/{name}"),
            _ => return None,
        };
        let (revision, within) = match parts.as_slice() {
            [_, _] => ("main".to_string(), Within::Repo),
            [_, _, kind, rev, path @ ..] if !path.is_empty() => {
                let path = path.join("/");
                let within = match *kind {
                    "blob" | "resolve" => Within::File(path),
                    "tree" => Within::Folder(path),
                    _ => return None,
                };
                (rev.to_string(), within)
            }
            _ => return None,
        };
        Some(HubLocation {
            repo,
            revision,
            within,
        })
    }
}

impl Published {
    /// Where this file is on the hub (every catalog URL parses; a test checks).
    pub fn location(&self) -> HubLocation {
        HubLocation::parse(self.url).expect("catalog URLs are hub URLs")
    }
}

/// Why no file, or no single set of files, could be picked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("{0} is not in the repository")]
    Missing(String),
    #[error("no {quant} GGUF {place}")]
    NoMatch { quant: String, place: String },
    #[error("the {quant} GGUF {place} is split, but not every part is there: {}", .files.join(", "))]
    Incomplete {
        quant: String,
        place: String,
        files: Vec<String>,
    },
    #[error("more than one {quant} GGUF {place}: {}", .files.join(", "))]
    Ambiguous {
        quant: String,
        place: String,
        files: Vec<String>,
    },
}

/// The repository files that make up `preset` of a model at `location`, from a listing of the
/// repository (all paths, `/`-separated): the named file; or the one GGUF, or every part of the
/// one split set (`NAME-00001-of-00003.gguf`, in part order), in the named folder or, for a whole
/// repository, among GGUFs whose name carries the quantization `quant` (`q5_k_m`, `IQ4_XS`). Multimodal projectors
/// (`mmproj`) are never picked.
pub fn pick_gguf(
    files: &[String],
    location: &HubLocation,
    quant: &str,
) -> Result<Vec<String>, PickError> {
    let tag = quant;
    let quant = quant.to_ascii_uppercase();
    let is_gguf = |f: &&String| {
        let lower = f.to_ascii_lowercase();
        lower.ends_with(".gguf") && !file_name(&lower).contains("mmproj")
    };
    let (candidates, place): (Vec<&String>, String) = match &location.within {
        Within::File(path) => {
            return if files.contains(path) {
                Ok(vec![path.clone()])
            } else {
                Err(PickError::Missing(path.clone()))
            };
        }
        Within::Folder(folder) => {
            let prefix = format!("{folder}/");
            (
                files
                    .iter()
                    .filter(|f| f.starts_with(&prefix))
                    .filter(is_gguf)
                    .collect(),
                format!("in {folder}/ of {}", location.repo),
            )
        }
        Within::Repo => (
            files
                .iter()
                .filter(is_gguf)
                .filter(|f| names_quant(file_name(f), tag))
                .collect(),
            format!("in {}", location.repo),
        ),
    };
    let listed = || candidates.iter().map(|f| f.to_string()).collect();
    match candidates.as_slice() {
        [] => Err(PickError::NoMatch { quant, place }),
        [one] if split_part(one).is_none() => Ok(vec![(*one).clone()]),
        many if many.iter().all(|f| split_part(f).is_some()) => {
            split_set(many).ok_or_else(|| PickError::Incomplete {
                quant,
                place,
                files: listed(),
            })
        }
        _ => Err(PickError::Ambiguous {
            quant,
            place,
            files: listed(),
        }),
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether a file name carries the quantization `tag`, `-`, `_` and `.` alike inside it
/// (`q5_k_m` matches `X.Q5_K_M.gguf`, `x-q5-k-m.gguf` and `X-Q5_K_M-00001-of-00002.gguf`), as a
/// whole word: not `X.IQ5_K_M.gguf`, nor `X.Q4_0_4_4.gguf` for `q4_0`.
fn names_quant(name: &str, tag: &str) -> bool {
    // One character for one: positions in the normalized name are positions in `name`.
    let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '.'], "_");
    let (folded, tag) = (norm(name), norm(tag));
    let raw = name.as_bytes();
    folded.match_indices(&tag).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| raw[i]);
        let after = raw.get(at + tag.len()).copied();
        !before.is_some_and(|b| b.is_ascii_alphanumeric())
            && matches!(after, None | Some(b'.' | b'-'))
    })
}

/// `files` in part order when they are exactly the parts 1..=N of one split set.
fn split_set(files: &[&String]) -> Option<Vec<String>> {
    let mut parts: Vec<(String, u32, u32, &String)> = files
        .iter()
        .map(|f| split_part(f).map(|(stem, i, n)| (stem.to_string(), i, n, *f)))
        .collect::<Option<_>>()?;
    parts.sort_by_key(|p| p.1);
    let (stem, _, n, _) = parts[0].clone();
    let whole = parts.len() == n as usize
        && parts
            .iter()
            .enumerate()
            .all(|(k, p)| p.0 == stem && p.2 == n && p.1 == k as u32 + 1);
    whole.then(|| parts.into_iter().map(|p| p.3.clone()).collect())
}

/// `(stem, part, parts)` of `STEM-00002-of-00005.gguf`, as llama.cpp's `gguf-split` names them.
pub fn split_part(path: &str) -> Option<(&str, u32, u32)> {
    let base = path.strip_suffix(".gguf")?;
    let (rest, n) = base.rsplit_once("-of-")?;
    let (stem, i) = rest.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(i) && digits(n)) {
        return None;
    }
    let (i, n): (u32, u32) = (i.parse().ok()?, n.parse().ok()?);
    (1..=n).contains(&i).then_some((stem, i, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::MODELS;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_catalog_url_is_a_hub_location() {
        for m in MODELS {
            for p in m.published {
                let loc = HubLocation::parse(p.url)
                    .unwrap_or_else(|| panic!("{}: {} is not a hub URL", m.name, p.url));
                assert!(p.url.contains(&loc.repo));
                assert_eq!(loc.revision, "main");
            }
        }
        let loc = HubLocation::parse(
            "https://huggingface.co/bartowski/Llama-3.3-70B-Instruct-GGUF/tree/main/Llama-3.3-70B-Instruct-Q5_K_M",
        )
        .unwrap();
        assert_eq!(loc.repo, "bartowski/Llama-3.3-70B-Instruct-GGUF");
        assert_eq!(
            loc.within,
            Within::Folder("Llama-3.3-70B-Instruct-Q5_K_M".into())
        );
        for bad in [
            "https://example.com/a/b",
            "https://huggingface.co/a",
            "https://huggingface.co/a/b/blob/main",
        ] {
            assert_eq!(HubLocation::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_named_file_is_picked_only_when_listed() {
        let loc = HubLocation::parse("https://huggingface.co/o/r/blob/main/x.Q4_K_M.gguf").unwrap();
        let files = strings(&["README.md", "x.Q4_K_M.gguf", "x.Q5_K_M.gguf"]);
        assert_eq!(
            pick_gguf(&files, &loc, "q4_k_m").unwrap(),
            ["x.Q4_K_M.gguf"]
        );
        assert_eq!(
            pick_gguf(&files[..1], &loc, "q4_k_m"),
            Err(PickError::Missing("x.Q4_K_M.gguf".into()))
        );
    }

    #[test]
    fn a_folder_gives_its_split_set_in_part_order() {
        let loc = HubLocation::parse("https://huggingface.co/o/r/tree/main/M-Q5_K_M").unwrap();
        let files = strings(&[
            "M-Q4_K_M.gguf",
            "M-Q5_K_M/M-Q5_K_M-00002-of-00002.gguf",
            "M-Q5_K_M/M-Q5_K_M-00001-of-00002.gguf",
        ]);
        assert_eq!(
            pick_gguf(&files, &loc, "q5_k_m").unwrap(),
            [
                "M-Q5_K_M/M-Q5_K_M-00001-of-00002.gguf",
                "M-Q5_K_M/M-Q5_K_M-00002-of-00002.gguf"
            ]
        );
        // A part missing: not a whole set, so nothing is picked silently.
        assert!(matches!(
            pick_gguf(&files[..2], &loc, "q5_k_m"),
            Err(PickError::Incomplete { .. })
        ));
        let three = strings(&[
            "M-Q5_K_M/M-Q5_K_M-00001-of-00003.gguf",
            "M-Q5_K_M/M-Q5_K_M-00002-of-00003.gguf",
        ]);
        assert!(matches!(
            pick_gguf(&three, &loc, "q5_k_m"),
            Err(PickError::Incomplete { .. })
        ));
        let mixed = strings(&[
            "M-Q5_K_M/M-Q5_K_M-00001-of-00001.gguf",
            "M-Q5_K_M/other.gguf",
        ]);
        assert!(matches!(
            pick_gguf(&mixed, &loc, "q5_k_m"),
            Err(PickError::Ambiguous { .. })
        ));
    }

    #[test]
    fn a_repository_gives_the_gguf_named_for_the_quantization() {
        let loc = HubLocation::parse("https://huggingface.co/o/r").unwrap();
        let files = strings(&[
            "X.IQ4_XS.gguf",
            "X.Q4_K_S.gguf",
            "X.Q5_K_M.gguf",
            "X.mmproj-Q5_K_M.gguf",
            "X.Q5_K_M.gguf.sha256",
            "x-q4-k-m.gguf",
        ]);
        assert_eq!(
            pick_gguf(&files, &loc, "q5_k_m").unwrap(),
            ["X.Q5_K_M.gguf"]
        );
        assert_eq!(
            pick_gguf(&files, &loc, "q4_k_m").unwrap(),
            ["x-q4-k-m.gguf"]
        );
        assert!(matches!(
            pick_gguf(&files, &loc, "q8_0"),
            Err(PickError::NoMatch { .. })
        ));
        let two = strings(&["a.Q5_K_M.gguf", "b.Q5_K_M.gguf"]);
        let e = pick_gguf(&two, &loc, "q5_k_m").unwrap_err().to_string();
        assert!(e.contains("a.Q5_K_M.gguf, b.Q5_K_M.gguf"), "{e}");
    }

    #[test]
    fn quantization_tags_match_whole_words_only() {
        assert!(names_quant("X.Q4_0.gguf", "q4_0"));
        assert!(!names_quant("X.Q4_0_4_4.gguf", "q4_0"));
        assert!(!names_quant("X.IQ4_0.gguf", "q4_0"));
        assert!(names_quant("openai_gpt-oss-20b-MXFP4.gguf", "mxfp4"));
        assert!(!names_quant("X.Q4_K_S.gguf", "q4_k"));
        assert!(names_quant("X-Q5_K_M-00001-of-00002.gguf", "q5_k_m"));
    }

    #[test]
    fn split_parts_are_read_as_gguf_split_names_them() {
        assert_eq!(split_part("a/M-00002-of-00005.gguf"), Some(("a/M", 2, 5)));
        assert_eq!(split_part("M-00006-of-00005.gguf"), None);
        assert_eq!(split_part("M-0002-of-00005.gguf"), None);
        assert_eq!(split_part("M.gguf"), None);
    }
}
