//! What a model name means on this machine: a file path; or a catalog name
//! (`gemma-3-270m:q4_k_m`) or hub repository (`hf.co/ORG/REPO:QUANT`) whose GGUF `hypura pull`,
//! `hf download` or any `huggingface_hub` program put in the hub cache.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use model::catalog::{pick_gguf, HubLocation, Within};

/// A GGUF published on the hub, by the name the user gave.
pub struct HubModel {
    /// `gemma-3-270m:q4_k_m`, `hf.co/org/repo:Q4_K_M`.
    pub name: String,
    /// Its page on the hub.
    #[cfg_attr(not(feature = "runtime"), allow(dead_code))]
    pub page: String,
    pub location: HubLocation,
    /// The quantization tag files are picked by (`q4_k_m`).
    pub quant: String,
}

/// The quantization `hf.co/ORG/REPO` means without a tag (as Ollama and llama.cpp's `-hf`).
const DEFAULT_HF_QUANT: &str = "Q4_K_M";

/// The hub GGUF `spec` names: a catalog model with a published file, or `hf.co/ORG/REPO[:QUANT]`
/// (also `huggingface.co/...`). `None` for anything else (a path, a catalog model's unknown
/// name); an error for a catalog model whose quantization has no published file.
pub fn hub_model(spec: &str) -> Result<Option<HubModel>> {
    let hf = ["hf.co/", "huggingface.co/", "https://huggingface.co/"]
        .iter()
        .find_map(|p| spec.strip_prefix(p));
    if let Some(rest) = hf {
        let (repo, quant) = rest.split_once(':').unwrap_or((rest, DEFAULT_HF_QUANT));
        hub::RepoId::parse(repo).with_context(|| format!("model {spec}"))?;
        return Ok(Some(HubModel {
            name: spec.to_string(),
            page: format!("https://huggingface.co/{repo}"),
            location: HubLocation {
                repo: repo.to_string(),
                revision: "main".into(),
                within: Within::Repo,
            },
            quant: quant.to_string(),
        }));
    }
    let (m, preset) = match model::catalog::resolve(spec) {
        Ok(found) => found,
        // A catalog model with a quantization it lacks: the catalog's error says which it has.
        Err(e) if model::catalog::model(spec.split(':').next().unwrap_or("")).is_some() => {
            return Err(e.into())
        }
        Err(_) => return Ok(None),
    };
    let name = format!("{}:{}", m.name, preset.name());
    let published = m.published(preset).ok_or_else(|| {
        let have: Vec<&str> = m.published.iter().map(|p| p.preset.name()).collect();
        anyhow!(
            "{name} has no published GGUF in the catalog (published: {})",
            have.join(", ")
        )
    })?;
    Ok(Some(HubModel {
        name,
        page: published.url.to_string(),
        location: published.location(),
        quant: preset.name().to_string(),
    }))
}

/// The GGUF of `m` in the hub cache (the first part of a split set), if it is there whole.
pub fn pulled(m: &HubModel) -> Result<Option<PathBuf>> {
    let cache = hub::Cache::from_env()?;
    let repo = hub::RepoId::parse(&m.location.repo)?;
    let folder = match &m.location.within {
        Within::File(p) => return Ok(cache.file(&repo, &m.location.revision, p)?),
        Within::Folder(f) => f.as_str(),
        Within::Repo => "",
    };
    let files = cache.files(&repo, &m.location.revision, folder)?;
    let Ok(picked) = pick_gguf(&files, &m.location, &m.quant) else {
        return Ok(None);
    };
    let snapshot = cache
        .snapshot(&repo, &m.location.revision)?
        .expect("files were listed from the snapshot");
    Ok(Some(snapshot.join(&picked[0])))
}

/// `spec` as something to read: itself when it is a path that exists (or is no hub model);
/// the pulled GGUF a catalog or hub name stands for (said on stderr); else `spec` unchanged, so
/// that a catalog name still means the catalog's inventory.
pub fn locate(spec: &str) -> Result<String> {
    if Path::new(spec).exists() {
        return Ok(spec.to_string());
    }
    let m = match hub_model(spec) {
        Ok(Some(m)) => m,
        // A catalog model with no published file still has the catalog's inventory.
        Ok(None) | Err(_) if model::catalog::resolve(spec).is_ok() => return Ok(spec.to_string()),
        Ok(None) => return Ok(spec.to_string()),
        Err(e) => return Err(e),
    };
    match pulled(&m)? {
        Some(path) => {
            eprintln!("hypura: {} is {} (pulled)", m.name, path.display());
            Ok(path.display().to_string())
        }
        None => Ok(spec.to_string()),
    }
}

/// [`locate`] for a path argument.
#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
pub fn locate_path(spec: &Path) -> Result<PathBuf> {
    match spec.to_str() {
        Some(s) => locate(s).map(PathBuf::from),
        None => Ok(spec.to_path_buf()),
    }
}
