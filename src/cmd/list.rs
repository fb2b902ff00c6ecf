//! `hypura list`: what can be named instead of a file: catalog models (`--model
//! mixtral-8x7b:q5_k_m`), shipped hardware profiles (`--hw m1max`) and synth presets
//! (`synth --preset tiny-mixtral`).

use crate::table::{bytes, Table};
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    what: What,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum What {
    /// Catalog models and their quantizations (`NAME:QUANT`), with tensor bytes.
    Models,
    /// Hardware profiles built into hypura, and this machine's measured one.
    Profiles,
    /// `hypura synth --preset` shapes.
    Presets,
}

pub fn run(args: Args) -> Result<()> {
    print!(
        "{}",
        match args.what {
            What::Models => models()?,
            What::Profiles => profiles()?,
            What::Presets => presets(),
        }
    );
    Ok(())
}

fn models() -> Result<String> {
    let mut t = Table::new(["--model", "tensor bytes", "Hugging Face model"]);
    for m in model::catalog::entries()? {
        for q in &m.quants {
            let name = format!("{}:{}", m.name, q.preset.name());
            t.row([
                if q.preset == m.default_preset {
                    format!("{name} (or {})", m.name)
                } else {
                    name
                },
                bytes(q.bytes),
                m.hf_name.to_string(),
            ]);
        }
    }
    Ok(t.render())
}

fn profiles() -> Result<String> {
    let mut t = Table::new(["--hw", "machine", "GPU memory", "RAM"]);
    for s in hw::shipped::SHIPPED {
        let p = s.load()?;
        let name = match s.aliases {
            [] => s.name.to_string(),
            a => format!("{} ({})", s.name, a.join(", ")),
        };
        t.row([
            name,
            p.name.clone(),
            p.gpu.as_ref().map_or("-".into(), |g| bytes(g.memory_bytes)),
            bytes(p.ram.bytes),
        ]);
    }
    let mut out = t.render();
    let path = crate::machine::cached_path()?;
    out.push_str(&match crate::machine::cached() {
        Ok(Some(p)) => format!(
            "\nthis machine: {} ({}), used when --hw is not given\n",
            path.display(),
            p.name
        ),
        Ok(None) => format!(
            "\nthis machine: not measured yet (`hypura profile` keeps it in {})\n",
            path.display()
        ),
        Err(e) => format!("\nthis machine: {}\n", crate::render(&e)),
    });
    Ok(out)
}

fn presets() -> String {
    let mut t = Table::new(["--preset", "shape"]);
    for p in synth::Preset::ALL {
        t.row([p.name(), p.about()]);
    }
    t.render()
}
