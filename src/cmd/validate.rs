//! `hypura validate`: predicted against measured. Each point of a grid is solved, simulated
//! and run for real on the same plan, profile and routing; prints the comparison and writes
//! it (JSON report, Parquet tables, SVG chart, both sides' records) to a directory.

use crate::range;
use anyhow::{Context, Result};
use experiments::grid;
use experiments::report::{self, ErrorSummary, ValidateReport};
use experiments::{table, Setup};
use hw::HwProfile;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF to run (real, or from `hypura synth` for a MoE shape with a replayed trace).
    #[arg(short = 'm', long)]
    pub model: PathBuf,
    /// Hardware profile the simulator and the solver use: a TOML file or a shipped profile's
    /// name; default: this machine's profile (`hypura profile`; see --profile-now).
    #[arg(long, value_name = "FILE|NAME", conflicts_with = "profile_now")]
    pub hw: Option<String>,
    /// Without --hw: when this machine has no profile yet, measure it now (`hypura profile`,
    /// storage on the model's drive) and keep it for later commands.
    #[arg(long)]
    pub profile_now: bool,
    /// Routing trace (.json or .htrace) both sides follow; required for a MoE model, refused
    /// for a dense one.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// The grid: `key=v1,v2;...` with keys ram and gpu (bytes the plan may use, e.g. 3GiB),
    /// policy (static, lru, lfu, lfru, arc, pinned-lru), prefetch (none, coactivation, oracle)
    /// and qd (storage requests in flight, 1..=1024). Points are the cross product.
    #[arg(long, default_value = "")]
    pub grid: String,
    /// Tokens to generate per point, 2..=4096 (the first is sampled from the prompt, the rest
    /// are decoded).
    #[arg(long, default_value_t = 16, value_parser = range::int::<usize>(2..=4096))]
    pub tokens: usize,
    /// Prompt tokens, 1..=512 (one prefill batch): the trace's first tokens.
    #[arg(long, default_value_t = 32, value_parser = range::int::<usize>(1..=512))]
    pub prompt_len: usize,
    /// Decoded tokens left out of the timing on both sides, 0..=4095.
    #[arg(long, default_value_t = 1, value_parser = range::int::<u32>(0..=4095))]
    pub warmup: u32,
    /// Decode threads of the runs, 0..=512 (0: all cores).
    #[arg(long, default_value_t = 0, value_parser = range::int::<u32>(0..=range::MAX_THREADS))]
    pub threads: u32,
    /// Solve each point with the greedy baseline instead of the ILP.
    #[arg(long)]
    pub greedy: bool,
    /// Timed runs per point, 1..=50: the one with the median decode speed is compared (the
    /// report lists every run's speed). For machines whose timings wander between runs. Each
    /// point also runs once observed (records of every layer), for hits, bytes and layer times.
    #[arg(long, default_value_t = 1, value_parser = range::int::<u32>(1..=50))]
    pub repeat: u32,
    /// Write the results to this directory (created; refused if it exists, unless --force).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Write into an existing -o directory, replacing validate's files there.
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut args: Args) -> Result<()> {
    args.model = crate::models::locate_path(&args.model)?;
    let points = grid::parse(&args.grid).with_context(|| format!("--grid {:?}", args.grid))?;
    if let Some(dir) = &args.output {
        super::refuse_existing_dir(dir, args.force, "-o")?;
    }
    let hw = match (&args.hw, args.profile_now) {
        (None, true) => this_machine(&args.model)?,
        (hw, _) => crate::machine::resolve(hw.as_deref())?,
    };
    let inventory = model::Inventory::from_gguf(&args.model)?;
    let trace = match &args.trace {
        Some(p) => Some(traces::load(p)?),
        None => None,
    };
    let setup = Setup {
        model_path: args.model.clone(),
        inventory,
        hw,
        trace,
        prompt_len: args.prompt_len,
        tokens: args.tokens,
        warmup: args.warmup,
        threads: args.threads,
        greedy: args.greedy,
        repeats: args.repeat,
    };
    setup.check().map_err(|e| match e {
        experiments::ValidateError::NeedsTrace { .. } => {
            anyhow::Error::new(e).context("pass --trace")
        }
        experiments::ValidateError::DenseWithTrace { .. } => {
            anyhow::Error::new(e).context("drop --trace")
        }
        e => anyhow::Error::new(e).context("--prompt-len, --tokens and --warmup"),
    })?;
    // Every point's budget must fit the profile before the first (slow) run.
    for p in &points {
        experiments::validate::point_profile(&setup.hw, p)
            .with_context(|| format!("--grid point {p}"))?;
    }
    if let Some(dir) = &args.output {
        std::fs::create_dir_all(dir.join("records"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut reports = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        eprintln!("validate: point {} of {}: {p}", i + 1, points.len());
        let v = experiments::validate::validate_point(&setup, p)
            .with_context(|| format!("point {p}"))?;
        if let Some(dir) = &args.output {
            let n = i + 1;
            outfile::write_bytes(
                &dir.join(format!("records/{n}-plan.json")),
                true,
                v.plan.to_json().as_bytes(),
            )?;
            metrics::write_records(
                &dir.join(format!("records/{n}-sim.parquet")),
                &v.sim_records,
                true,
            )?;
            metrics::write_records(
                &dir.join(format!("records/{n}-run.parquet")),
                &v.run_records,
                true,
            )?;
        }
        reports.push(v.report);
    }
    let report = ValidateReport {
        schema: report::SCHEMA,
        hypura_version: env!("CARGO_PKG_VERSION"),
        model: args.model.display().to_string(),
        profile: setup.hw.name.clone(),
        trace: args.trace.as_ref().map(|p| p.display().to_string()),
        prompt_len: args.prompt_len,
        tokens: args.tokens,
        warmup: args.warmup,
        repeats: args.repeat,
        summary: ErrorSummary::of(&reports),
        points: reports,
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = &args.output {
        outfile::write_bytes(&dir.join("report.json"), true, json.as_bytes())?;
        table::write(
            &dir.join("points.parquet"),
            "validate_point",
            &table::points(&report),
        )?;
        table::write(
            &dir.join("layers.parquet"),
            "validate_layer",
            &table::layers(&report),
        )?;
        if let Some(svg) = experiments::chart::svg(&report) {
            outfile::write_bytes(&dir.join("decode.svg"), true, svg.as_bytes())?;
        }
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", report::render(&report));
        if let Some(dir) = &args.output {
            println!(
                "wrote {}: report.json, points.parquet, layers.parquet, decode.svg, records/",
                dir.display()
            );
        }
    }
    Ok(())
}

/// This machine's profile: the one `hypura profile` keeps, else measured now (storage on the
/// model's drive) and kept.
fn this_machine(model: &Path) -> Result<HwProfile> {
    if let Some(p) = crate::machine::cached()? {
        eprintln!(
            "validate: using this machine's profile {}",
            crate::machine::cached_path()?.display()
        );
        return Ok(p);
    }
    let disk = model
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    eprintln!(
        "validate: measuring this machine (storage in {}); the profile is kept in {}",
        disk.display(),
        crate::machine::cached_path()?.display()
    );
    let (_, toml) = super::profile::measure(disk, false, true)?;
    let path = crate::machine::store(&toml)?;
    Ok(HwProfile::from_toml_str(
        &toml,
        &path.display().to_string(),
    )?)
}
