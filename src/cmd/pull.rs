//! `hypura pull`: download a model's published GGUF into the Hugging Face cache, where `run`,
//! `chat`, `solve` and `inspect` then find it by name (and `huggingface_hub` programs too).

use anyhow::{bail, Context, Result};
use model::catalog::{pick_gguf, Within};
use model::units::human_bytes;

use crate::models::hub_model;

#[derive(clap::Args)]
pub struct Args {
    /// A catalog model (`gemma-3-270m`, `mixtral-8x7b:q5_k_m`; see `hypura list models`) or a
    /// hub repository, `hf.co/ORG/REPO[:QUANT]` (default quantization Q4_K_M).
    #[arg(value_name = "MODEL")]
    pub model: String,
}

pub fn run(args: Args) -> Result<()> {
    let Some(m) = hub_model(&args.model)? else {
        bail!(
            "{} is neither a catalog model (hypura list models) nor hf.co/ORG/REPO:QUANT",
            args.model
        );
    };
    let hub = hub::Hub::from_env();
    let cache = hub::Cache::from_env()?;
    let repo = hub::RepoId::parse(&m.location.repo)?;
    let rev = m.location.revision.as_str();
    let files = match &m.location.within {
        Within::File(p) => vec![p.clone()],
        Within::Folder(f) => pick(&hub, &repo, rev, f, &m)?,
        Within::Repo => pick(&hub, &repo, rev, "", &m)?,
    };
    let parts = files.len();
    let mut first = None;
    for (i, file) in files.iter().enumerate() {
        let label = if parts > 1 {
            format!("{file} ({}/{parts})", i + 1)
        } else {
            file.clone()
        };
        let bar = crate::progress::bytes(0, label.clone());
        let fetched = hub
            .download(&cache, &repo, rev, file, &mut |step, done, total| {
                if bar.length() != Some(total) {
                    bar.set_length(total);
                }
                bar.set_message(match step {
                    hub::Step::Rehashing => format!("{label}: checking the partial download"),
                    hub::Step::Downloading => label.clone(),
                });
                bar.set_position(done);
            })
            .with_context(|| format!("cannot pull {} from {}", m.name, hub.endpoint()))?;
        bar.finish_and_clear();
        eprintln!("hypura pull: {}", said(&repo, file, &fetched));
        first.get_or_insert(fetched.path);
    }
    println!(
        "{}",
        first.expect("pick_gguf gives at least one file").display()
    );
    Ok(())
}

/// The files of `m` under `folder`, from the hub's listing.
fn pick(
    hub: &hub::Hub,
    repo: &hub::RepoId,
    rev: &str,
    folder: &str,
    m: &crate::models::HubModel,
) -> Result<Vec<String>> {
    let listed =
        crate::progress::spinner(format!("listing {repo}"), || hub.list(repo, rev, folder))
            .with_context(|| format!("cannot pull {}", m.name))?;
    let names: Vec<String> = listed.into_iter().map(|f| f.path).collect();
    pick_gguf(&names, &m.location, &m.quant).with_context(|| format!("cannot pull {}", m.name))
}

/// One line on what happened to a file.
fn said(repo: &hub::RepoId, file: &str, f: &hub::Fetched) -> String {
    let size = human_bytes(f.meta.size);
    let what = match (&f.checksum, f.resumed_from) {
        (None, _) => "already in the cache".to_string(),
        (Some(sum), from) => {
            let resumed = if from > 0 {
                format!(", resumed after {}", human_bytes(from))
            } else {
                String::new()
            };
            let checked = match sum {
                hub::Checksum::Sha256(h) => format!("sha256 {h} checked"),
                hub::Checksum::SizeOnly => "size checked (the hub gives no sha256 for it)".into(),
            };
            format!("downloaded{resumed}; {checked}")
        }
    };
    format!("{repo} {file} ({size}): {what}")
}
