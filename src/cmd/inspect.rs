//! `hypura inspect MODEL`: a model's tensors by group, role and layer, and what a token touches.

use crate::table::{bytes, percent, Table};
use model::summary::Summary;
use model::{Inventory, PerLayer, Source};

#[derive(clap::Args)]
pub struct Args {
    /// A GGUF file (any part of a split set) or a catalog name such as `mixtral-8x7b:q5_k_m`.
    pub model: String,
    /// Print the summary as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also list every tensor (with --json: include them in the output).
    #[arg(long)]
    pub tensors: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let inv = model::load_model(&crate::models::locate(&args.model)?)?;
    let summary = Summary::of(&inv);
    if args.json {
        let mut v = serde_json::to_value(&summary)?;
        if args.tensors {
            v["tensors"] = serde_json::to_value(&inv.tensors)?;
        }
        let v = super::stamped("hypura.inspect/1", v);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&inv, &summary, args.tensors));
    }
    Ok(())
}

fn per_layer(p: &PerLayer) -> String {
    match p {
        PerLayer::Uniform(v) => v.to_string(),
        PerLayer::Layers(v) => {
            let (lo, hi) = (v.iter().min().unwrap_or(&0), v.iter().max().unwrap_or(&0));
            format!("{lo}..{hi} (per layer)")
        }
    }
}

/// Layer ids as compact ranges: `1-26`, `0,2,4`.
fn ranges(ids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            ids[i].to_string()
        } else {
            format!("{}-{}", ids[i], ids[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// The human-readable report (what `hypura inspect` prints without --json).
pub fn render(inv: &Inventory, s: &Summary, list_tensors: bool) -> String {
    let a = &s.arch;
    let mut out = String::new();
    let source = match &s.source {
        Source::File { paths, file_bytes } => {
            let name = paths[0]
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let files = if paths.len() == 1 {
                "1 file".to_string()
            } else {
                format!("{} split files", paths.len())
            };
            format!(
                "{name} ({files}, {} on disk)",
                bytes(file_bytes.iter().sum())
            )
        }
        Source::Catalog { name, reference } => {
            format!("catalog {name} (published file: {reference})")
        }
    };
    out += &format!("model    {source}\n");
    out += &format!(
        "arch     {}{}: {} layers, n_embd {}, n_ff {}, heads {} (kv {}), ctx {}, vocab {}\n",
        a.arch,
        a.name
            .as_deref()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default(),
        a.n_layer,
        a.n_embd,
        per_layer(&a.n_ff),
        per_layer(&a.n_head),
        per_layer(&a.n_head_kv),
        a.n_ctx_train,
        a.n_vocab
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into()),
    );
    if a.is_moe() {
        out += &format!(
            "experts  {} routed, top-{}, {} shared, expert ffn {}, leading dense layers {}, MoE layers {}\n",
            a.n_expert,
            a.n_expert_used,
            a.n_shared_expert,
            a.expert_ff.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
            a.n_leading_dense,
            ranges(&a.moe_layers),
        );
    } else {
        out += "experts  none (dense model)\n";
    }
    out += &format!(
        "tensors  {}, {} ({} bytes)\n",
        s.tensor_count,
        bytes(s.total_bytes),
        s.total_bytes
    );

    let mut t = Table::new(["group", "tensors", "bytes", "share"]);
    for g in &s.groups {
        t.row([
            g.group.name().to_string(),
            g.count.to_string(),
            bytes(g.bytes),
            percent(g.share),
        ]);
    }
    out += &format!("\nBy group\n{}", t.render());

    let mut t = Table::new([
        "role",
        "group",
        "types",
        "tensors",
        "bytes",
        "share",
        "per expert",
    ]);
    for r in &s.roles {
        let types: Vec<&str> = r.types.iter().map(|t| t.name()).collect();
        t.row([
            r.role.stem().to_string(),
            r.group.name().to_string(),
            types.join(","),
            r.count.to_string(),
            bytes(r.bytes),
            percent(r.share),
            r.expert_stride.map(bytes).unwrap_or_else(|| "-".into()),
        ]);
    }
    out += &format!("\nBy role\n{}", t.render());

    let mut t = Table::new([
        "layer",
        "tensors",
        "bytes",
        "share",
        "experts",
        "one expert",
    ]);
    for l in &s.layers {
        t.row([
            l.layer
                .map(|v| v.to_string())
                .unwrap_or_else(|| "global".into()),
            l.count.to_string(),
            bytes(l.bytes),
            percent(l.share),
            if l.expert_bytes > 0 {
                bytes(l.expert_bytes)
            } else {
                "-".into()
            },
            l.expert_stride.map(bytes).unwrap_or_else(|| "-".into()),
        ]);
    }
    out += &format!("\nBy layer\n{}", t.render());

    let p = &s.per_token;
    out += "\nPer decoded token (uniform routing)\n";
    let mut t = Table::new(["", "bytes"]);
    t.row(["non-expert weights".to_string(), bytes(p.dense)]);
    if a.is_moe() {
        t.row([
            format!(
                "routed experts: {}/{} of {}",
                a.n_expert_used,
                a.n_expert,
                bytes(p.expert_total)
            ),
            bytes(p.expert_touched as u64),
        ]);
    }
    t.row(["total".to_string(), bytes(p.total() as u64)]);
    out += &t.render();

    if list_tensors {
        let mut t = Table::new([
            "tensor",
            "role",
            "layer",
            "type",
            "dims",
            "bytes",
            "file",
            "offset",
            "per expert",
        ]);
        for e in &inv.tensors {
            let dims: Vec<String> = e.dims.iter().map(u64::to_string).collect();
            t.row([
                e.name.clone(),
                e.role.stem().to_string(),
                e.layer.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
                e.ggml_type.name().to_string(),
                dims.join("x"),
                e.bytes.to_string(),
                e.file.to_string(),
                e.offset
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                e.expert_stride
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        out += &format!("\nTensors\n{}", t.render());
    }
    out
}
